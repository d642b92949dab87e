"""Fitting a direction: the difference of means between two labelled sets of clips at a hook.

Encoder hooks average over real frames only (Whisper's padding never counts); decoder hooks take the
position that predicts the first text token, with the task prefix as input. Without a hook, the
encoder layer is the one where a linear probe separates the two sets best
(:func:`otoscope.geometry.probe_layers` on mean-pooled activations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from otoscope.errors import OtoscopeError
from otoscope.steer.direction import Direction


@dataclass
class ClassMeans:
    """Per-class means and norms of one hook's activations."""

    hook: str
    """Hook point."""
    positive: torch.Tensor
    """``[d_model]`` mean over the positive set's frames (or first positions)."""
    negative: torch.Tensor
    """``[d_model]`` mean over the negative set's."""
    mean_norm: float
    """Mean activation norm over both sets."""


def decoder_first_states(model, audio: Sequence, hook: str, batch_size: int = 8) -> torch.Tensor:
    """Activation at decoder ``hook`` at the first-prediction position per clip → ``[clips, d_model]``."""
    first = len(model.task_prefix()) - 1
    rows = []
    for start in range(0, len(audio), batch_size):
        _, cache = model.run_with_cache(list(audio[start : start + batch_size]), names_filter=hook)
        rows.append(cache[hook][:, first].float().cpu())
    return torch.cat(rows)


def encoder_frames(model, audio: Sequence, hooks: list[str], batch_size: int = 4) -> list[list[torch.Tensor]]:
    """Real-frame activations per clip at each encoder hook: ``[clip][hook] → [frames_real, d_model]``."""
    from otoscope.geometry.collect import iter_layers

    return [list(item.acts) for item in iter_layers(model, list(audio), hooks=hooks, batch_size=batch_size)]


def class_means(model, positive: Sequence, negative: Sequence, hook: str) -> ClassMeans:
    """Means of ``hook``'s activation over the positive and the negative clips."""
    if not positive or not negative:
        raise OtoscopeError("a difference of means needs at least one positive and one negative clip.")
    if hook.startswith("decoder."):
        pos, neg = decoder_first_states(model, positive, hook), decoder_first_states(model, negative, hook)
    elif hook.startswith("encoder."):
        pos = torch.cat([c[0] for c in encoder_frames(model, positive, [hook])])
        neg = torch.cat([c[0] for c in encoder_frames(model, negative, [hook])])
    else:
        raise OtoscopeError(f"cannot fit a direction at '{hook}'; use an encoder.* or decoder.* hook.")
    norm = float(torch.cat([pos, neg]).norm(dim=-1).mean())
    return ClassMeans(hook, pos.mean(0), neg.mean(0), norm)


def best_probe_layer(model, positive: Sequence, negative: Sequence, seed: int = 0) -> tuple[str, list[dict]]:
    """The encoder ``hook_resid_post`` where a linear probe tells positive from negative best → (hook, table rows)."""
    from otoscope.geometry.collect import collect_layers, layer_hooks
    from otoscope.geometry.probe import probe_layers

    hooks = layer_hooks(model, include_embed=False)
    items = collect_layers(model, list(positive) + list(negative), ["positive"] * len(positive) + ["negative"] * len(negative),
                           hooks=hooks)
    table = probe_layers(items, seed=seed).table
    best = int(table["accuracy"].to_numpy().argmax())  # the shallowest of equally good layers
    return hooks[best], table.to_dict("records")


def fit_direction(model, positive: Sequence, negative: Sequence, hook: str | None = None, alpha: float = 1.0,
                  positions: str = "all") -> Direction:
    """``mean(positive) − mean(negative)`` at ``hook`` (chosen by probe accuracy when None) as a :class:`Direction`.

    ``alpha`` is the default strength in units of the mean activation norm at the hook.
    """
    probe = None
    if hook is None:
        hook, probe = best_probe_layer(model, positive, negative)
    means = class_means(model, positive, negative, hook)
    meta = {"method": "difference of means", "n_positive": len(positive), "n_negative": len(negative),
            "raw_norm": float((means.positive - means.negative).norm())}
    if probe is not None:
        meta["probe"] = [{"hook": r["hook"], "accuracy": r["accuracy"]} for r in probe]
    return Direction(means.positive - means.negative, hook, model.name, alpha, "add", "mean_norm", means.mean_norm,
                     positions, None, meta)
