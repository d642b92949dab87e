"""Applying a :class:`~otoscope.steer.direction.Direction`: the ``steering`` context manager.

    with otoscope.steer.steering(model, direction, alpha=1.5, frames=slice(0, 100)):
        model.transcribe("clip.flac")

Encoder hooks are steered on every frame (Whisper's padding included) or on ``frames``; decoder hooks
on every token position, or with ``positions='first'`` only on the position that predicts the first
text token (the last prefix position: during cached decoding, the first step only). A gate, when the
direction has one, restricts the edit to clips (or frames) whose score is above its threshold.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from otoscope.errors import OtoscopeError
from otoscope.hooks.select import check_name
from otoscope.steer.direction import Direction, check_alpha
from otoscope.steer.gate import GateState, feature_hook, gate_fn

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

FrameSelection = "slice | Sequence[int] | torch.Tensor | None"


def frame_mask(frames, n: int, device=None) -> torch.Tensor | None:
    """``frames`` (None, a slice, indices or a bool ``[n]`` tensor) → bool ``[n]`` mask, or None for all."""
    if frames is None:
        return None
    mask = torch.zeros(n, dtype=torch.bool, device=device)
    if isinstance(frames, slice):
        mask[frames] = True
    elif isinstance(frames, torch.Tensor) and frames.dtype == torch.bool:
        if frames.shape != (n,):
            raise OtoscopeError(f"a boolean frame mask must have shape ({n},), got {tuple(frames.shape)}.")
        mask = frames.to(device)
    else:
        idx = torch.as_tensor(list(frames) if not isinstance(frames, torch.Tensor) else frames, dtype=torch.long)
        if idx.numel() and (idx.min() < -n or idx.max() >= n):
            raise OtoscopeError(f"frame indices must lie in [0, {n}); got {int(idx.min())}..{int(idx.max())}.")
        mask[idx.to(device)] = True
    return mask


def edit(x: torch.Tensor, direction: Direction, alpha: float, where: torch.Tensor | None) -> torch.Tensor:
    """Steer ``x`` ``[batch, pos, d]`` where ``where`` (``[batch, pos]`` bool or None = everywhere) is True."""
    v = direction.vector.to(x.device, x.dtype)
    if direction.kind == "add":
        change = direction.delta(alpha).to(x.device, x.dtype).expand_as(x)
    else:
        change = -(x @ v)[..., None] * v  # [batch, pos, d]: minus the component along v̂
    if where is not None:
        change = change * where[..., None].to(x.dtype)
    return x + change


def _first_position(model: HookedAudioModel) -> int:
    return max(len(model.task_prefix()) - 1, 0)  # the last prefix token predicts the first text token


@contextlib.contextmanager
def steering(model: HookedAudioModel, direction: Direction, alpha: float | None = None, frames=None,
             check_model: bool = True) -> Iterator[GateState]:
    """Steer ``model`` with ``direction`` while the block runs; yields the gate's state (scores per clip).

    ``alpha`` overrides the direction's default strength (units: ``direction.units``); ``frames`` picks
    encoder frames (None = all). Refuses a direction made for another model unless ``check_model=False``.
    """
    a = check_alpha(direction.alpha if alpha is None else alpha)
    if check_model and direction.model != model.name:
        raise OtoscopeError(f"this steering direction was made for '{direction.model}', not '{model.name}'; "
                            "load the matching model or fit a new direction.")
    check_name(direction.hook, model.points)
    decoder = direction.hook.startswith("decoder.")
    if decoder and frames is not None:
        raise OtoscopeError("frames select encoder frames; a decoder hook takes positions='all' or 'first'.")
    d_model = model.config.d_model if hasattr(model.config, "d_model") else model.config.hidden_size
    if direction.vector.numel() != d_model:
        raise OtoscopeError(f"the direction has {direction.vector.numel()} dimensions but {model.name} has d_model={d_model}.")
    state = GateState()
    first = _first_position(model)

    def steer(x: torch.Tensor, hook):
        batch, n = x.shape[:2]
        where = None
        if decoder and direction.positions == "first":
            if n <= first:  # a cached decoding step after the first: nothing to do
                return None
            where = torch.zeros(batch, n, dtype=torch.bool, device=x.device)
            where[:, first] = True
        mask = frame_mask(frames, n, x.device)
        if mask is not None:
            where = mask.expand(batch, n) if where is None else where & mask
        if direction.gate is not None:
            if state.open is None or state.open.shape[0] != batch:
                return None  # the gate did not run for this batch (e.g. a decoder call on given encoder states)
            gate_open = state.open.to(x.device)
            gate_open = gate_open[:, None].expand(batch, n) if gate_open.ndim == 1 else gate_open
            if gate_open.shape != (batch, n):
                raise OtoscopeError("a frame-mode gate must score the hook it steers; use mode='clip'.")
            where = gate_open if where is None else where & gate_open
        return edit(x, direction, a, where)

    hooks = []
    handles = []
    if direction.gate is not None:
        check_name(direction.gate.hook, model.points)
        handles.append(feature_hook(model, state))
        hooks.append((direction.gate.hook, gate_fn(direction.gate, state)))
    hooks.append((direction.hook, steer))
    try:
        with model.hooks(hooks):
            yield state
    finally:
        for h in handles:
            h.remove()
