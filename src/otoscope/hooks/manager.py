"""Installing hook functions on hook points: the one place that handles tensor-or-tuple values.

A hook function has the TransformerLens signature ``fn(activation, hook) -> replacement | None``:
``activation`` is the tensor in its documented shape, ``hook`` the :class:`HookPoint` (``hook.name``).
Returning None (or the same tensor) leaves the model untouched; returning a tensor of the same shape
replaces the activation downstream.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from otoscope.errors import OtoscopeError
from otoscope.hooks.attention import pattern_hooks
from otoscope.hooks.points import HookPoint, Site

HookFn = Callable[[torch.Tensor, HookPoint], "torch.Tensor | None"]


def _first(value):
    """The tensor in a module's output or input: a tensor, the first element of a tuple, or the first field of a
    transformers ``ModelOutput`` (a whole model's output, e.g. MusicGen's decoder and its logits)."""
    return value[0] if isinstance(value, (tuple, list)) or hasattr(value, "to_tuple") else value


def _with_first(value, tensor):
    """``value`` with its tensor (or first tuple element) replaced by ``tensor``."""
    if isinstance(value, tuple):
        return (tensor, *value[1:])
    if isinstance(value, list):
        return [tensor, *value[1:]]
    if hasattr(value, "to_tuple"):  # a ModelOutput: its first set field
        value[next(iter(value.keys()))] = tensor
        return value
    return tensor


def _to_user(point: HookPoint, raw: torch.Tensor) -> torch.Tensor:
    if point.channels_first:
        raw = raw.transpose(1, 2)  # [batch, channels, frames] → [batch, frames, channels]
    if point.heads:
        raw = raw.unflatten(-1, (point.heads, -1))  # [..., heads * d_head] → [..., heads, d_head]
    return raw


def _from_user(point: HookPoint, value: torch.Tensor) -> torch.Tensor:
    if point.heads:
        value = value.flatten(-2)
    if point.channels_first:
        value = value.transpose(1, 2)
    return value


def _apply(point: HookPoint, fns: Sequence[HookFn], value: torch.Tensor) -> torch.Tensor | None:
    """Run ``fns`` in order on ``value``; return the final replacement, or None when nothing changed."""
    current, changed = value, False
    for fn in fns:
        out = fn(current, point)
        if out is None or out is current:
            continue
        if not isinstance(out, torch.Tensor) or out.shape != current.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise OtoscopeError(f"hook function on {point.name} returned {got}; it must return None or a tensor "
                                f"of shape {tuple(current.shape)} {point.shape}.")
        current, changed = out.to(value.dtype), True
    return current if changed else None


def _install_one(point: HookPoint, fns: list[HookFn]) -> list:
    handles = []
    if point.site is Site.OUTPUT:
        def out_hook(module, args, output):
            new = _apply(point, fns, _to_user(point, _first(output)))
            return None if new is None else _with_first(output, _from_user(point, new))
        handles.append(point.module.register_forward_hook(out_hook))
    elif point.site is Site.INPUT:
        def in_hook(module, args, kwargs):
            if args:
                new = _apply(point, fns, _to_user(point, args[0]))
                return None if new is None else ((_from_user(point, new), *args[1:]), kwargs)
            new = _apply(point, fns, _to_user(point, kwargs["hidden_states"]))
            return None if new is None else (args, {**kwargs, "hidden_states": _from_user(point, new)})
        handles.append(point.module.register_forward_pre_hook(in_hook, with_kwargs=True))
    elif point.site is Site.RESID_SUM:
        residual: dict[str, torch.Tensor] = {}

        def grab_residual(module, args, kwargs):
            residual["x"] = args[0] if args else kwargs["hidden_states"]

        def sum_hook(module, args, output):
            branch = _first(output)
            before = residual.pop("x")
            new = _apply(point, fns, before + branch)  # exactly the add transformers does next
            return None if new is None else _with_first(output, new - before)
        handles.append(point.residual_module.register_forward_pre_hook(grab_residual, with_kwargs=True))
        handles.append(point.module.register_forward_hook(sum_hook))
    else:
        raise AssertionError(f"pattern hooks are installed by pattern_hooks(), not here: {point.name}")
    return handles


@contextlib.contextmanager
def installed(model: nn.Module, points: dict[str, HookPoint], hooks: Sequence[tuple[str, HookFn]]) -> Iterator[None]:
    """Install ``(hook name, fn)`` pairs for the duration of the block; every handle is removed on exit.

    Hooks run in the model's forward order; several functions on one point run in the order given.
    """
    by_name: dict[str, list[HookFn]] = defaultdict(list)
    for name, fn in hooks:
        by_name[name].append(fn)
    handles = []
    patterns: dict[nn.Module, list] = {}
    try:
        for name, point in points.items():  # the table is in forward order
            fns = by_name.get(name)
            if not fns:
                continue
            if point.site is Site.PATTERN:
                patterns[point.module] = [_pattern_adapter(point, fns)]
            else:
                handles += _install_one(point, fns)
        with pattern_hooks(model, patterns):
            yield
    finally:
        for handle in handles:
            handle.remove()


def _pattern_adapter(point: HookPoint, fns: list[HookFn]):
    def run(weights: torch.Tensor) -> torch.Tensor:
        new = _apply(point, fns, weights)
        return weights if new is None else new
    return run
