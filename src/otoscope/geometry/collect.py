"""Collecting per-layer encoder activations over many clips, real frames only, in bounded memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Sequence

import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class LayerActivations:
    """Real-frame activations of one clip at every encoder layer."""

    name: str
    """Where the clip came from."""
    layers: list[str]
    """Hook names, in order (the first axis of ``acts``)."""
    acts: torch.Tensor
    """``[layers, frames_real, d_model]`` float32 on CPU."""
    label: str | None = None
    """Optional group label."""
    extra: dict = field(default_factory=dict)
    """Anything else the caller attached."""

    def pooled(self) -> torch.Tensor:
        """Mean over real frames: ``[layers, d_model]``."""
        return self.acts.mean(dim=1)


def layer_hooks(model: HookedAudioModel, include_embed: bool = True) -> list[str]:
    """The residual-stream hooks of the encoder, in depth order: embed, then every block's resid_post."""
    names = [f"encoder.blocks.{i}.hook_resid_post" for i in range(model.n_layers)]
    return (["encoder.hook_embed"] if include_embed else []) + names


def iter_layers(model: HookedAudioModel, audio: Sequence, labels: Sequence | None = None, hooks: list[str] | None = None,
                batch_size: int = 4, progress: bool = False) -> Iterator[LayerActivations]:
    """Yield :class:`LayerActivations` clip by clip; only one batch is ever held in memory.

    For Whisper only the encoder runs (the decoder is not needed for encoder geometry).
    """
    hooks = hooks or layer_hooks(model)
    clips = model.clips(list(audio))
    bar = tqdm(total=len(clips), desc="activations", unit="clip", disable=not progress)
    for start in range(0, len(clips), batch_size):
        batch = clips[start : start + batch_size]
        inputs = model.prepare(batch)
        grabbed: dict[str, torch.Tensor] = {}
        with torch.no_grad(), model.hooks([(h, lambda t, hook: grabbed.__setitem__(hook.name, t)) for h in hooks]):
            model.adapter.encode(inputs)  # Whisper: the encoder alone
        for i, clip in enumerate(batch):
            n = int(inputs.frame_mask[i].sum())
            acts = torch.stack([grabbed[h][i, :n] for h in hooks]).float().cpu()  # [layers, frames_real, d_model]
            label = None if labels is None else labels[start + i]
            yield LayerActivations(clip.name, hooks, acts, label)
        bar.update(len(batch))
    bar.close()


def collect_layers(model: HookedAudioModel, audio: Sequence, labels: Sequence | None = None, **kwargs) -> list[LayerActivations]:
    """All clips' :class:`LayerActivations` in a list (for small sets; stream with :func:`iter_layers`)."""
    return list(iter_layers(model, audio, labels, **kwargs))
