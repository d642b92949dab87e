"""Attention probabilities as a hook point.

Fused attention kernels (SDPA, flash) never materialise the probabilities, so ``hook_pattern`` needs an
eager kernel. While a pattern hook is installed, the model's attention implementation is switched to
``"otoscope"``: transformers' own eager maths plus a call-out that lets hooks read or replace the
probabilities ``[batch, heads, query, key]`` before they weight the values. Registration with
transformers' attention registry happens on first use, never at import.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

IMPLEMENTATION = "otoscope"
PATTERN_HOOKS_ATTR = "_otoscope_pattern_hooks"
_registered = False


def _attention(module: nn.Module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    # query [batch, heads, q, d_head]; key, value [batch, heads, k, d_head]
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # [batch, heads, q, k]
    if attention_mask is not None:
        scores = scores + attention_mask[..., : key.shape[-2]]
    weights = nn.functional.softmax(scores, dim=-1)
    for hook in getattr(module, PATTERN_HOOKS_ATTR, ()):
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
def pattern_hooks(model: nn.Module, hooks: dict[nn.Module, list[Callable[[torch.Tensor], torch.Tensor]]]) -> Iterator[None]:
    """Route ``model``'s attention through the eager kernel and attach ``hooks`` to attention modules."""
    if not hooks:
        yield
        return
    _register()
    configs = {id(m.config): m.config for m in model.modules() if hasattr(m, "config") and hasattr(m.config, "_attn_implementation")}
    previous = {k: c._attn_implementation for k, c in configs.items()}
    for module, fns in hooks.items():
        setattr(module, PATTERN_HOOKS_ATTR, list(getattr(module, PATTERN_HOOKS_ATTR, [])) + list(fns))
    for config in configs.values():
        config._attn_implementation = IMPLEMENTATION
    try:
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = previous[key]
        for module, fns in hooks.items():
            remaining = getattr(module, PATTERN_HOOKS_ATTR, [])[: -len(fns)]
            if remaining:
                setattr(module, PATTERN_HOOKS_ATTR, remaining)
            elif hasattr(module, PATTERN_HOOKS_ATTR):
                delattr(module, PATTERN_HOOKS_ATTR)
