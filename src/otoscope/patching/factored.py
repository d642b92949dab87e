"""Whisper's decoder cross-attention computed against the encoder output directly, without keys or values.

A patch inside the encoder (below its last layer) changes the whole encoder output, so the plain decoder
projects all 1500 frames to keys and values in every layer — ``2 · frames · d_model²`` multiply-adds per
layer, as much arithmetic as half an encoder layer — for the ~10 tokens a teacher-forced readout queries.
The projections can be moved onto the queries instead, exactly. Per head h, with x_j the encoder output
at frame j (after its final layer norm):

* score_{t,j} = (W_k,h x_j + b_k,h) · q_{t,h} = x_j · (W_k,hᵀ q_{t,h}) + const_t: the queries are mapped
  into d_model (q̃_{t,h} = W_k,hᵀ q_{t,h}) and scored against x itself; a key bias adds the same amount
  to every score of a query, which the softmax ignores;
* Σ_j p_{t,j} v_{j,h} = W_v,h (Σ_j p_{t,j} x_j) + b_v,h, since Σ_j p_{t,j} = 1.

That costs ``heads · queries · frames · d_model`` per term instead of ``frames · d_model²``: cheaper
when queries · (heads − 1) < d_model — about 76 queries for whisper-tiny (``queries`` counts every
decoder row of a cell: rows of one cell share its encoder output). :func:`factored_cross_attention`
swaps each cross-attention module's ``forward`` for this computation while active; it calls the module's
own ``q_proj`` and ``out_proj`` (so hooks on ``hook_q`` and ``hook_z`` fire as usual) and uses its
``k_proj``/``v_proj`` weights without calling them. The module's own forward hooks (``hook_cross_attn_out``,
``hook_resid_mid_cross``) fire as usual. Keys, values and probabilities never exist, so the runner uses this
only when nothing hooks them (:func:`applicable`).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Sequence

import torch
from torch import nn

from otoscope.hooks.attention import MASK_ATTR, PATTERN_HOOKS_ATTR


def cross_attention_modules(model) -> list[nn.Module]:
    """Each decoder layer's cross-attention module, found through the hook points."""
    return [model.points[f"decoder.blocks.{i}.cross_attn.hook_pattern"].module for i in range(model.n_decoder_layers)]


def _hook_free(attn: nn.Module) -> bool:
    """Nothing reads or changes this module's keys, values or probabilities, and its forward is the class's."""
    projections = (attn.k_proj, attn.v_proj)
    return (not attn.training and "forward" not in attn.__dict__
            and not getattr(attn, PATTERN_HOOKS_ATTR, None) and getattr(attn, MASK_ATTR, None) is None
            and all(isinstance(m, nn.Linear) and not m._forward_hooks and not m._forward_pre_hooks
                    for m in projections))


def cheaper(attn: nn.Module, queries: int) -> bool:
    """Whether the factored form does less arithmetic than projecting keys/values, for ``queries`` query
    tokens per encoder output (all decoder rows of one cell)."""
    return queries * (attn.num_heads - 1) < attn.embed_dim


def applicable(modules: Sequence[nn.Module], queries: int, force: bool | None = None) -> bool:
    """Use the factored form? Never when a hook needs keys/values/probabilities; otherwise ``force``, or by
    cost (:func:`cheaper`) when ``force`` is None."""
    if not all(_hook_free(m) for m in modules):
        return False
    return all(cheaper(m, queries) for m in modules) if force is None else force


def factored_attention(attn: nn.Module, hidden: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """``attn``'s cross-attention output for queries from ``hidden`` ``[cells * rows, tokens, d_model]``
    against encoder outputs ``memory`` ``[cells, frames, d_model]`` (row ``c * rows + r`` reads cell ``c``)."""
    cells, frames, d_model = memory.shape
    n, tokens, _ = hidden.shape
    heads, d_head = attn.num_heads, attn.head_dim
    m = n // cells * tokens  # queries per cell
    # exactly WhisperAttention's queries: the projection (its hooks fire), then the scaling
    q = attn.q_proj(hidden) * attn.scaling  # [n, tokens, d_model]
    q = q.reshape(cells, m, heads, d_head).transpose(1, 2)  # [cells, heads, m, d_head]
    w_k = attn.k_proj.weight.view(heads, d_head, d_model)
    q_model = torch.matmul(q, w_k).reshape(cells, heads * m, d_model)  # W_k,hᵀ q: [cells, heads * m, d_model]
    probs = torch.softmax(torch.bmm(q_model, memory.transpose(1, 2)), dim=-1)  # [cells, heads * m, frames]
    mixed = torch.bmm(probs, memory).view(cells, heads, m, d_model)  # Σ_j p_j x_j
    w_v = attn.v_proj.weight.view(heads, d_head, d_model)
    z = torch.matmul(mixed, w_v.transpose(1, 2))  # [cells, heads, m, d_head]
    if attn.v_proj.bias is not None:
        z = z + attn.v_proj.bias.view(heads, 1, d_head)
    z = z.transpose(1, 2).reshape(n, tokens, heads * d_head)  # [n, tokens, d_model], heads concatenated
    return attn.out_proj(z)  # the module's output projection (hook_z fires on its input)


def _forward(attn: nn.Module, memory: torch.Tensor, hidden_states: torch.Tensor, key_value_states=None,
             past_key_values=None, attention_mask=None, output_attentions: bool = False, **kwargs):
    if past_key_values is not None or kwargs.get("cache") is not None or attention_mask is not None or output_attentions:
        raise RuntimeError("factored cross-attention runs without a cache, an attention mask or attention outputs")
    return factored_attention(attn, hidden_states, memory), None


@contextlib.contextmanager
def factored_cross_attention(modules: Sequence[nn.Module], memory: torch.Tensor) -> Iterator[None]:
    """While active, each cross-attention module in ``modules`` attends to ``memory`` ``[cells, frames,
    d_model]`` (the encoder outputs, after the final layer norm) in the factored form, whatever
    ``key_value_states`` the decoder passes it; decoder row ``c * rows + r`` reads cell ``c``.

    The caller checks :func:`applicable` first. The modules' forwards are restored on exit.
    """
    replaced = []
    try:
        for module in modules:
            module.forward = functools.partial(_forward, module, memory)  # shadows the class's forward
            replaced.append(module)
        yield
    finally:
        for module in replaced:
            module.__dict__.pop("forward", None)
