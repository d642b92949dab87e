"""Attention probabilities as a hook point, and attention masks as an intervention.

Fused attention kernels (SDPA, flash) never materialise the probabilities, so ``hook_pattern`` needs an
eager kernel. While a pattern hook or an extra attention mask is installed, the model's attention
implementation is switched to ``"otoscope"``: transformers' own eager maths plus two call-outs — hooks
that read or replace the probabilities ``[batch, heads, query, key]`` before they weight the values,
and extra boolean masks (True = may attend) applied before the softmax. A module with only a mask and
no pattern hook runs PyTorch's fused SDPA with that mask, which is several times faster than eager; a local
mask (a band, a window) runs it block by block of queries over only the keys each block may see.
Registration with transformers' attention registry happens on first use, never at import.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

IMPLEMENTATION = "otoscope"
PATTERN_HOOKS_ATTR = "_otoscope_pattern_hooks"
MASK_ATTR = "_otoscope_attention_mask"
_registered = False


def _combined_mask(module: nn.Module, attention_mask, key_len: int, dtype):
    """The model's additive mask with the extra boolean mask folded in (or None when neither exists)."""
    extra = getattr(module, MASK_ATTR, None)
    base = None if attention_mask is None else attention_mask[..., :key_len]
    if extra is None:
        return base
    extra = extra.to(dtype=torch.bool)
    if base is None:
        return extra
    if base.dtype == torch.bool:
        return base & extra
    return base.masked_fill(~extra, torch.finfo(base.dtype).min)


QUERY_BLOCK = 128  # queries per block when a mask lets them see only a stretch of keys
SPARSE_SHARE = 0.5  # blockwise only when it computes at most this share of the full score matrix


def key_spans(mask: torch.Tensor, block: int = QUERY_BLOCK) -> list[tuple[int, int, int, int]] | None:
    """``(q0, q1, k0, k1)`` per block of queries: the keys ``k0:k1`` outside which ``mask`` ``[..., q, k]``
    (bool, True = may attend) is False for every query of the block in every batch row and head — or None when
    blocks would not save at least half of the score matrix (an unrestricted or scattered mask).

    Keys outside a block's span get zero probability, so attending block by block over the spans is exact.
    """
    allowed = mask.reshape(-1, *mask.shape[-2:]).any(0)  # [q, k]
    n_q, n_k = allowed.shape
    cols = torch.arange(n_k, device=mask.device)
    spans, work = [], 0
    for q0 in range(0, n_q, block):
        q1 = min(q0 + block, n_q)
        seen = allowed[q0:q1].any(0)
        if not bool(seen.any()):
            return None  # a fully masked block: leave the NaN rows to the plain kernel
        k0, k1 = int(cols[seen].min()), int(cols[seen].max()) + 1
        spans.append((q0, q1, k0, k1))
        work += (q1 - q0) * (k1 - k0)
    return spans if work <= SPARSE_SHARE * n_q * n_k else None


def _attention(module: nn.Module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    # query [batch, heads, q, d_head]; key, value [batch, heads, k, d_head]
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    if key.shape[1] != query.shape[1]:  # grouped-query attention: each key-value head serves a group of query heads
        groups = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    hooks = getattr(module, PATTERN_HOOKS_ATTR, ())
    mask = _combined_mask(module, attention_mask, key.shape[-2], query.dtype)
    if not hooks and getattr(module, MASK_ATTR, None) is not None:
        p = dropout if module.training else 0.0
        mask = mask.to(query.device)
        spans = key_spans(mask) if mask.dtype == torch.bool and p == 0.0 else None
        if spans is None:
            out = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=p, scale=scaling)
        else:  # a local mask: each block of queries only against the keys it may see
            out = torch.cat([nn.functional.scaled_dot_product_attention(
                query[:, :, q0:q1], key[:, :, k0:k1], value[:, :, k0:k1], attn_mask=mask[..., q0:q1, k0:k1], scale=scaling)
                for q0, q1, k0, k1 in spans], dim=2)
        return out.transpose(1, 2).contiguous(), None
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # [batch, heads, q, k]
    if mask is not None:
        mask = mask.to(scores.device)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = nn.functional.softmax(scores, dim=-1)
    for hook in hooks:
        weights = hook(weights)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()  # [batch, q, heads, d_head]
    return out, weights


def _register() -> None:
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(IMPLEMENTATION, _attention)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)
    _registered = True


@contextlib.contextmanager
def _otoscope_kernel(model: nn.Module) -> Iterator[None]:
    """Route every attention module of ``model`` through :func:`_attention` for the block."""
    _register()
    configs = {id(m.config): m.config for m in model.modules()
               if hasattr(m, "config") and hasattr(m.config, "_attn_implementation")}
    previous = {k: c._attn_implementation for k, c in configs.items()}
    for config in configs.values():
        config._attn_implementation = IMPLEMENTATION
    try:
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = previous[key]


@contextlib.contextmanager
def pattern_hooks(model: nn.Module, hooks: dict[nn.Module, list[Callable[[torch.Tensor], torch.Tensor]]]) -> Iterator[None]:
    """Route ``model``'s attention through the eager kernel and attach ``hooks`` to attention modules."""
    if not hooks:
        yield
        return
    for module, fns in hooks.items():
        setattr(module, PATTERN_HOOKS_ATTR, list(getattr(module, PATTERN_HOOKS_ATTR, [])) + list(fns))
    try:
        with _otoscope_kernel(model):
            yield
    finally:
        for module, fns in hooks.items():
            remaining = getattr(module, PATTERN_HOOKS_ATTR, [])[: -len(fns)]
            if remaining:
                setattr(module, PATTERN_HOOKS_ATTR, remaining)
            elif hasattr(module, PATTERN_HOOKS_ATTR):
                delattr(module, PATTERN_HOOKS_ATTR)


@contextlib.contextmanager
def attention_masks(model: nn.Module, masks: dict[nn.Module, torch.Tensor]) -> Iterator[None]:
    """Restrict attention modules to boolean ``masks`` (True = may attend), broadcast to ``[batch, heads, q, k]``.

    Every query row must keep at least one key, or its output is NaN.
    """
    for module, mask in masks.items():
        if hasattr(module, MASK_ATTR):
            raise ValueError("an attention mask is already installed on this module; nest masks by combining them.")
        setattr(module, MASK_ATTR, mask)
    try:
        with _otoscope_kernel(model):
            yield
    finally:
        for module in masks:
            if hasattr(module, MASK_ATTR):
                delattr(module, MASK_ATTR)
