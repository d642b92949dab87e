"""Cells: the units a sweep patches one at a time, and the masks that select them in an activation.

A cell is one hook point restricted to a window of positions (encoder frames or decoder tokens), and
optionally to one attention head or one neuron. Frame windows tile the clip's *real* frames only —
Whisper's padding frames get a cell only when ``window=None`` patches every position at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from otoscope.errors import OtoscopeError

POSITION_AXES = ("frames", "tokens")


@dataclass(frozen=True)
class HookLayout:
    """Where the position, head and feature axes sit in a hook's activation (batch axis included)."""

    pos_axis: int | None
    """Axis of positions (the query axis for attention patterns), or None."""
    pos_kind: str | None
    """``frames`` or ``tokens``."""
    head_axis: int | None
    """Axis of attention heads, or None."""
    ndim: int
    """Number of axes."""

    @classmethod
    def of(cls, point) -> "HookLayout":
        """Read the layout off a :class:`~otoscope.hooks.points.HookPoint`'s documented shape."""
        axes = [a.strip() for a in point.shape.strip("[]").split(",")]
        pos = next((i for i, a in enumerate(axes) if i > 0 and a in POSITION_AXES), None)
        head = axes.index("heads") if "heads" in axes else None
        return cls(pos, axes[pos] if pos is not None else None, head, len(axes))

    @property
    def feature_axis(self) -> int | None:
        """The last axis when it holds features (not positions or heads)."""
        last = self.ndim - 1
        return None if last in (self.pos_axis, self.head_axis) or (self.head_axis is not None) else last


@dataclass(frozen=True)
class Cell:
    """One patched unit."""

    hook: str
    """Canonical hook name."""
    start: int
    """First position (frame or token) patched."""
    end: int
    """One past the last position patched."""
    axis: str | None
    """``frames`` or ``tokens`` (None for hooks without a position axis)."""
    head: int | None = None
    """The attention head patched, or None for all."""
    neuron: int | None = None
    """The last-axis index patched, or None for all."""

    @property
    def layer(self) -> int | None:
        """Block index of the hook (None for hooks outside the blocks, such as ``encoder.hook_ln_final``)."""
        match = re.search(r"blocks\.(\d+)\.", self.hook)
        return int(match.group(1)) if match else None


def windows(n: int, size: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` windows of ``size`` every ``stride`` positions covering ``0..n``; the last may be shorter."""
    out = []
    for start in range(0, n, stride):
        end = min(start + size, n)
        out.append((start, end))
        if end == n:
            break
    return out


def frame_windows(config, geometry, n_real: int) -> list[tuple[int, int]] | None:
    """The frame windows a config asks for over ``n_real`` real frames (None: all positions at once)."""
    if config.window is None:
        return None
    if config.window_unit == "seconds":
        size = int(geometry.convert(config.window, "seconds", "frames"))
        stride = int(geometry.convert(config.stride, "seconds", "frames")) if config.stride is not None else size
        step = 1 / geometry.frame_rate
        if size < 1 or stride < 1:
            raise OtoscopeError(f"window {config.window} s / stride {config.stride} s is shorter than one frame "
                                f"({step:.3f} s); use a longer window.")
    else:
        size = int(config.window)
        stride = int(config.stride) if config.stride is not None else size
    if size > n_real:
        seconds = geometry.convert(n_real, "frames", "seconds")
        asked = geometry.convert(size, "frames", "seconds")
        raise OtoscopeError(f"window of {size} frames ({asked:.2f} s) is larger than the clip's {n_real} real frames "
                            f"({seconds:.2f} s); use a smaller window, or window=None for one cell over all frames.")
    return windows(n_real, size, stride)


def check_units(model, names: list[str], config, n_real: int) -> None:
    """The checks that need no activations (so bad input fails before any forward pass)."""
    frame_windows(config, model.geometry, n_real)
    for name in names:
        layout = HookLayout.of(model.points[name])
        if config.heads and layout.head_axis is None:
            raise OtoscopeError(f"per-head cells need a hook with a heads axis (hook_q/k/v/z, hook_pattern); "
                                f"'{name}' has shape {model.points[name].shape}.")
        if config.neurons is not None and layout.feature_axis is None:
            raise OtoscopeError(f"neuron cells index the last axis of a hook without heads (e.g. mlp.hook_post); "
                                f"'{name}' has shape {model.points[name].shape}.")


def make_cells(model, names: list[str], config, n_real: int, n_tokens: int | None,
               shapes: dict[str, tuple[int, ...]]) -> list[Cell]:
    """Every cell of the sweep, hook by hook in forward order.

    ``n_real``: real encoder frames; ``n_tokens``: decoder context length (token windows tile it);
    ``shapes``: each hook's activation shape in the unpatched run.
    """
    check_units(model, names, config, n_real)
    frames = frame_windows(config, model.geometry, n_real)
    cells: list[Cell] = []
    for name in names:
        layout = HookLayout.of(model.points[name])
        shape = shapes[name]
        if layout.pos_axis is None:
            spans: list[tuple[int, int]] = [(0, 0)]
        elif layout.pos_kind == "frames":
            spans = [(0, shape[layout.pos_axis])] if frames is None else frames
        else:
            total = shape[layout.pos_axis]
            spans = [(0, total)] if config.token_window is None else windows(n_tokens or total, config.token_window,
                                                                              config.token_window)
        heads: list[int | None] = [None]
        if config.heads:
            heads = list(range(shape[layout.head_axis]))
        neurons: list[int | None] = [None]
        if config.neurons is not None:
            width = shape[layout.feature_axis]
            bad = [n for n in config.neurons if n >= width]
            if bad:
                raise OtoscopeError(f"neuron {bad[0]} is out of range for '{name}', which has {width} features.")
            neurons = [int(n) for n in config.neurons]
        for start, end in spans:
            for head in heads:
                for neuron in neurons:
                    cells.append(Cell(name, start, end, layout.pos_kind, head, neuron))
    return cells


def cell_mask(cells: list[Cell], layout: HookLayout, shape: tuple[int, ...]) -> torch.Tensor:
    """Boolean mask ``[cells, ...]`` broadcastable against the activation: True where cell ``i`` patches.

    Axes a cell does not index have size 1, so ``torch.where(mask, source, base)`` broadcasts.
    """
    mshape = [len(cells)] + [1] * (layout.ndim - 1)
    if layout.pos_axis is not None:
        mshape[layout.pos_axis] = shape[layout.pos_axis]
    if any(c.head is not None for c in cells):
        mshape[layout.head_axis] = shape[layout.head_axis]
    if any(c.neuron is not None for c in cells):
        mshape[layout.feature_axis] = shape[layout.feature_axis]
    mask = torch.zeros(mshape, dtype=torch.bool)
    for i, cell in enumerate(cells):
        index: list = [i] + [slice(None)] * (layout.ndim - 1)
        if layout.pos_axis is not None:
            index[layout.pos_axis] = slice(cell.start, cell.end)
        if cell.head is not None:
            index[layout.head_axis] = cell.head
        if cell.neuron is not None:
            index[layout.feature_axis] = cell.neuron
        mask[tuple(index)] = True
    return mask
