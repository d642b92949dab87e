"""Whisper's cross-attention keys and values, computed once and handed to the decoder.

Each decoder layer projects the whole encoder output (1500 frames) to keys and values — for whisper-tiny
that is about as much arithmetic as half an encoder layer, and it is the same for every cell that
leaves the encoder output alone (decoder cells) or changes only a few of its frames (a window at the
last encoder layer). :func:`cross_kv` computes them with the layers' own ``k_proj``/``v_proj`` weights
(only the changed frames when given a base to start from), and :func:`substituted` makes the HF
decoder use them: a pre-hook shrinks the projection's input to one frame and a forward hook returns the
precomputed tensor, so the decoder runs unmodified but does not recompute what is known.

A cell that changes the whole encoder output (a patch below the last encoder layer) needs new keys and
values everywhere; the runner then skips them altogether when it can (:mod:`otoscope.patching.factored`)
and computes them here with :func:`cross_kv` otherwise.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer: keys, values [batch, frames, d_model]


def kv_modules(model) -> list[tuple[nn.Linear, nn.Linear]]:
    """Each decoder layer's cross-attention ``(k_proj, v_proj)``, found through the hook points."""
    out = []
    for layer in range(model.n_decoder_layers):
        k = model.points[f"decoder.blocks.{layer}.cross_attn.hook_k"].module
        v = model.points[f"decoder.blocks.{layer}.cross_attn.hook_v"].module
        if not (isinstance(k, nn.Linear) and isinstance(v, nn.Linear)):
            raise NotImplementedError(f"cross-attention projections of {type(k).__name__} are not nn.Linear")
        out.append((k, v))
    return out


def _project(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # the module's own affine map, without firing hooks installed on it (those fire inside the decoder)
    return F.linear(x, module.weight, module.bias)


def cross_kv(modules: Sequence[tuple[nn.Linear, nn.Linear]], encoder_out: torch.Tensor) -> KV:
    """Keys and values of every decoder layer for ``encoder_out`` ``[batch, frames, d_model]``."""
    return [(_project(k, encoder_out), _project(v, encoder_out)) for k, v in modules]


def cross_kv_rows(modules: Sequence[tuple[nn.Linear, nn.Linear]], base: KV, rows: torch.Tensor,
                  index: torch.Tensor) -> KV:
    """``base`` (batch 1) with some frames recomputed, per batch row.

    ``rows`` ``[batch, m, d_model]`` are the new encoder outputs at frames ``index`` ``[batch, m]``
    (an index may repeat; repeats carry the same values). Exact: projections act frame by frame.
    """
    batch, _, d = rows.shape
    where = index[..., None].expand(-1, -1, d)  # [batch, m, d_model]
    out = []
    for (k_mod, v_mod), (k, v) in zip(modules, base):
        new_k = k.expand(batch, -1, -1).clone().scatter_(1, where, _project(k_mod, rows))
        new_v = v.expand(batch, -1, -1).clone().scatter_(1, where, _project(v_mod, rows))
        out.append((new_k, new_v))
    return out


def repeat_rows(kv: KV, batch: int, repeats: int) -> KV:
    """Keys/values for ``batch × repeats`` decoder rows (row ``b * repeats + r`` uses cell ``b``)."""
    def grow(t):
        if t.shape[0] == 1:
            return t.expand(batch * repeats, -1, -1)
        return t if repeats == 1 else t.repeat_interleave(repeats, dim=0)
    return [(grow(k), grow(v)) for k, v in kv]


@contextlib.contextmanager
def substituted(modules: Sequence[tuple[nn.Linear, nn.Linear]], kv: KV) -> Iterator[None]:
    """While active, each cross-attention ``k_proj``/``v_proj`` returns the given tensor instead of computing.

    The hooks are prepended, so hooks installed by the user (or by the engine's patch) see — and may
    replace — the substituted keys and values exactly as if the projection had computed them.
    """
    handles = []

    def shrink(module, args):
        return (args[0][:, :1],)  # one frame: the projection's own output is discarded

    def provide(tensor):
        return lambda module, args, output: tensor

    try:
        for (k_mod, v_mod), (k, v) in zip(modules, kv):
            for module, tensor in ((k_mod, k), (v_mod, v)):
                handles.append(module.register_forward_pre_hook(shrink, prepend=True))
                handles.append(module.register_forward_hook(provide(tensor), prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
