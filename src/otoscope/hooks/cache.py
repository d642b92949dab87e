"""ActivationCache: the activations of one forward pass, by hook name, with the real-frame mask."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Iterator

import torch

from otoscope.audio.frames import FrameGeometry
from otoscope.errors import HookNameError, did_you_mean


@dataclass
class ActivationCache:
    """Cached activations, ``cache[name]`` → tensor ``[batch, pos, ...]`` as documented per hook."""

    activations: dict[str, torch.Tensor]
    """Tensors by canonical hook name, in forward order."""
    frame_mask: torch.Tensor
    """``[batch, frames]`` bool: True where an encoder frame carries real audio (False: padding)."""
    geometry: FrameGeometry
    """Frame ↔ seconds conversion for this model."""
    token_mask: torch.Tensor | None = None
    """``[batch, tokens]`` bool for decoder hooks: True for real tokens (False: batch padding)."""
    clip_names: list[str] = field(default_factory=list)
    """Where each clip in the batch came from."""
    text_mask: torch.Tensor | None = None
    """``[batch, tokens]`` bool for text-encoder hooks (``text_encoder.*``: MusicGen's prompt): True for real
    tokens (False: batch padding); None when the model has no text encoder."""

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.activations[name]
        except KeyError:
            raise HookNameError(f"'{name}' is not in this cache.{did_you_mean(name, self.activations)} "
                                "Cache it with run_with_cache(names_filter=...).") from None

    def __contains__(self, name: object) -> bool:
        return name in self.activations

    def __iter__(self) -> Iterator[str]:
        return iter(self.activations)

    def __len__(self) -> int:
        return len(self.activations)

    def keys(self):
        """Cached hook names in forward order."""
        return self.activations.keys()

    def items(self):
        """``(name, tensor)`` pairs in forward order."""
        return self.activations.items()

    def n_frames(self, clip: int) -> int:
        """Real encoder frames of clip ``clip``."""
        return int(self.frame_mask[clip].sum())

    def real(self, name: str, clip: int = 0) -> torch.Tensor:
        """Activation of one clip with Whisper's padding frames dropped: ``[frames_real, ...]``.

        Only for frame-indexed encoder hooks (and cross-attention k/v); decoder hooks drop batch padding.
        """
        tensor = self[name][clip]
        if name.startswith("text_encoder."):
            return tensor if self.text_mask is None else tensor[: int(self.text_mask[clip].sum())]
        if name.startswith("encoder.") or ".cross_attn.hook_k" in name or ".cross_attn.hook_v" in name:
            if name.endswith("hook_pattern"):
                n = self.n_frames(clip)
                return tensor[:, :n, :n]
            return tensor[: self.n_frames(clip)]
        if self.token_mask is not None:
            return tensor[: int(self.token_mask[clip].sum())]
        return tensor

    def stack(self, pattern: str) -> torch.Tensor:
        """Stack the cached hooks matching ``pattern`` (glob) along a new leading axis, in layer order.

        ``cache.stack("encoder.blocks.*.hook_resid_post")`` → ``[layers, batch, frames, d_model]``.
        """
        names = [n for n in self.activations if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            raise HookNameError(f"no cached hook matches '{pattern}'; cached: {len(self.activations)} hooks.")
        return torch.stack([self.activations[n] for n in names])

    def layers(self, pattern: str) -> list[int]:
        """Block indices of the cached hooks matching ``pattern``, in the order :meth:`stack` uses."""
        out = []
        for n in self.activations:
            if fnmatch.fnmatchcase(n, pattern):
                m = re.search(r"blocks\.(\d+)\.", n)
                out.append(int(m.group(1)) if m else -1)
        return out

    def to(self, device: str | torch.device) -> "ActivationCache":
        """A copy with every tensor on ``device``."""
        return ActivationCache({k: v.to(device) for k, v in self.activations.items()}, self.frame_mask.to(device),
                               self.geometry, None if self.token_mask is None else self.token_mask.to(device),
                               list(self.clip_names),
                               text_mask=None if self.text_mask is None else self.text_mask.to(device))
