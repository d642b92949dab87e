"""Editing SAE latents in place: zero, scale or clamp chosen latents on chosen frames.

The SAE is spliced in with its reconstruction error added back (``use_error_term=True``), so the model
receives ``x̂(z_edited) + (x − x̂(z))``: exactly its own activation when nothing is edited, and only the
edited latents' decoder rows change it otherwise.

    with otoscope.steer.edit_latents(model, sae, [LatentEdit(123, "zero")], frames=slice(0, 150)):
        model.transcribe("clip.flac")
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from otoscope.errors import OtoscopeError
from otoscope.steer.apply import frame_mask

OPS = ("zero", "scale", "clamp")


@dataclass(frozen=True)
class LatentEdit:
    """One edit of one latent."""

    index: int
    """Latent index in ``[0, d_sae)``."""
    op: str = "zero"
    """``zero`` (set to 0), ``scale`` (multiply by ``value``) or ``clamp`` (set to ``value`` where edited)."""
    value: float = 0.0
    """Factor for ``scale``, activation for ``clamp``; unused by ``zero``."""

    def __post_init__(self):
        if self.op not in OPS:
            raise OtoscopeError(f"latent edit op must be one of {OPS}, got '{self.op}'.")
        if not math.isfinite(float(self.value)):
            raise OtoscopeError(f"latent edit value must be finite, got {self.value}.")


def apply_edits(z: torch.Tensor, edits: Sequence[LatentEdit], where: torch.Tensor | None) -> torch.Tensor:
    """``z`` ``[batch, pos, d_sae]`` with ``edits`` applied where ``where`` ``[pos]`` (None = everywhere) is True."""
    out = z.clone()
    for e in edits:
        col = out[..., e.index]
        new = torch.zeros_like(col) if e.op == "zero" else col * e.value if e.op == "scale" \
            else torch.full_like(col, e.value)
        out[..., e.index] = new if where is None else torch.where(where, new, col)
    return out


@contextlib.contextmanager
def edit_latents(model, sae, edits: Sequence[LatentEdit], frames=None, hook: str | None = None) -> Iterator:
    """Splice ``sae`` (error term on) and edit its latents while the block runs; yields the spliced SAE."""
    edits = list(edits)
    for e in edits:
        if not 0 <= e.index < sae.d_sae:
            raise OtoscopeError(f"latent {e.index} is out of range: the SAE has {sae.d_sae} latents.")
    with model.add_sae(sae, hook, use_error_term=True) as spliced:
        if not edits:
            yield spliced
            return

        def fn(z: torch.Tensor, point):
            return apply_edits(z, edits, frame_mask(frames, z.shape[1], z.device))

        with model.hooks([(f"{spliced.hook}.hook_sae_acts", fn)]):
            yield spliced
