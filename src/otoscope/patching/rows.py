"""Frame-wise projections recomputed on the frames that changed, the rest taken from the cached run.

When a patch changes a block's input in a window of frames only, the block's layer norm and its
query/key/value projections — which act frame by frame — differ from the cached run in those frames
alone (and in none when the patch sits further inside the block). The HF block still runs as it is: a
pre-hook on each projection computes the changed frames with the module's own weights and shrinks the
input to one frame, and a forward hook returns the cached output with those frames written in. For
whisper-tiny that is ~15% of an encoder layer's arithmetic per cell; the attention itself, which mixes all
frames, runs in full.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F


def changed_index(mask: torch.Tensor, limit: float) -> torch.Tensor | None:
    """Frames each cell changes, ``[cells, m]`` (padded by repeating a changed frame), from a mask
    ``[cells, frames, ...]``; None when some cell changes more than ``limit`` × frames."""
    cells, frames = mask.shape[:2]
    changed = mask.reshape(cells, frames, -1).any(-1)  # [cells, frames]
    width = int(changed.sum(1).max()) if cells else 0
    if width > limit * frames:
        return None
    index = torch.zeros(cells, width, dtype=torch.long, device=mask.device)
    for c in range(cells):
        where = changed[c].nonzero().flatten()
        if where.numel():
            index[c, : where.numel()] = where
            index[c, where.numel():] = where[0]  # repeats write the same values
    return index


@contextlib.contextmanager
def changed_frames_only(projections: Sequence[tuple[nn.Linear, torch.Tensor]], index: torch.Tensor) -> Iterator[None]:
    """Each ``(linear, cached output [1, frames, out])``: compute only frames ``index`` ``[batch, m]``.

    Hooks are prepended, so any other hook on the projection sees the full output as usual.
    """
    pending: dict[nn.Module, torch.Tensor] = {}
    cached = {module: out for module, out in projections}
    handles = []

    def compute(module, args):
        x = args[0]  # [batch, frames, d_in]
        out = cached[module].expand(x.shape[0], -1, -1).clone()  # [batch, frames, d_out]
        if index.shape[1]:
            rows = x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
            out.scatter_(1, index[..., None].expand(-1, -1, out.shape[-1]), F.linear(rows, module.weight, module.bias))
        pending[module] = out
        return (x[:, :1],)

    def provide(module, args, output):
        return pending.pop(module)

    try:
        for module, _ in projections:
            handles.append(module.register_forward_pre_hook(compute, prepend=True))
            handles.append(module.register_forward_hook(provide, prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
