"""AtP* (Kramár et al. 2024): attribution patching with its two fixes, for Whisper's encoder residual stream.

**QK fix.** Attribution linearises everything after the patch, the attention softmax included, and a
softmax that is saturated (one key takes nearly all the weight) is where a tangent is worst: a key that
would win the attention after the patch has ~0 gradient before it. A residual-stream patch of frames
``[a, b)`` enters the next attention through its keys and queries at those frames only, so the pattern it
produces there can be computed exactly and cheaply: the key side changes columns ``a..b`` of every row
(the softmax renormalised), the query side changes rows ``a..b`` (recomputed in full). The estimate is then

    metric(base) + Δx · ∂metric/∂x [q, k of that attention held fixed] + Σ ∂metric/∂A ⊙ (A' − A)

— the first-order estimate through every other path, plus the exact change of the pattern weighted by its
gradient. The attention a patch enters is encoder block L+1's self-attention for ``blocks.L.hook_resid_post``
(block L's for ``hook_resid_pre``) and, for the last block's output and ``encoder.hook_ln_final``, the
decoder's cross-attention in every layer (key side: the decoder's queries do not change there). Cells at
other hooks keep the plain attribution estimate. One extra backward pass per attention entered.

**GradDrop.** Paths that cancel in the gradient hide an effect. For each later layer ℓ, a backward pass with
the gradient through ℓ's residual branch stopped gives an estimate ĉ_ℓ; AtP* scores a cell by the mean of
|ĉ_ℓ| over the layers. Here the sign comes from the QK-fixed estimate, so the map stays signed:
value = metric(base) + sign(ĉ) · mean_ℓ |ĉ_ℓ| (each ĉ_ℓ with the same QK correction as ĉ). One forward pass
with a gate on every layer (:class:`_BranchGate`, the identity going forward), then one backward pass per layer
(encoder and decoder) with that layer's gate closed.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch.nn import functional as F

from otoscope.patching.cells import Cell, HookLayout, cell_mask
from otoscope.patching.runner import WhisperRunner
from otoscope.patching.session import PatchSession, frozen_weights


def key_query_change(q: torch.Tensor, k: torch.Tensor, pattern: torch.Tensor, grad: torch.Tensor, span: tuple[int, int],
                     k_new: torch.Tensor, q_new: torch.Tensor | None, scale: float,
                     weighted: torch.Tensor | None = None) -> float:
    """Σ grad ⊙ (A' − A) for one attention when keys (and queries, if given) change at positions ``span``.

    ``q`` ``[queries, heads, d_head]``, ``k`` ``[keys, heads, d_head]`` (the base run's, unscaled),
    ``pattern``/``grad`` ``[heads, queries, keys]`` (the base pattern A and ∂metric/∂A), ``k_new``/``q_new``
    ``[span, heads, d_head]`` the new keys/queries at ``span`` (queries index the same positions as keys: self
    attention); ``weighted``: Σ_keys grad ⊙ A ``[heads, queries]`` when already computed (it is the same for
    every span). A' is exact: rows outside ``span`` are renormalised over the changed columns, rows inside
    (when queries change) recomputed in full. Only the span's rows and columns are read; float64 arithmetic.
    """
    a, b = span
    if weighted is None:
        weighted = (grad * pattern).sum(-1)
    q, k, k_new, weighted = q.double(), k.double(), k_new.double(), weighted.double()
    cols, gcols = pattern[..., a:b].double(), grad[..., a:b].double()  # [heads, queries, span]
    # key side, every row: the scores of columns a..b change by δ; A'_ij = A_ij e^δij / (1 − Σ_c A + Σ_c A e^δ)
    old = torch.einsum("ihd,jhd->hij", q, k[a:b]) * scale  # [heads, queries, span]
    new = torch.einsum("ihd,jhd->hij", q, k_new) * scale
    grown = cols * torch.exp(new - old)  # A_ij e^δij
    ratio = 1.0 / (1.0 - cols.sum(-1) + grown.sum(-1))  # Z / Z'  [heads, queries]
    rest = weighted - (gcols * cols).sum(-1)  # Σ over the unchanged columns of G A
    per_row = (ratio - 1.0) * rest + (gcols * (grown * ratio[..., None] - cols)).sum(-1)  # [heads, queries]
    if q_new is None:
        return float(per_row.sum())
    # query side: rows a..b see new queries against the new keys, recomputed in full
    keys = k.clone()
    keys[a:b] = k_new
    rows = torch.softmax(torch.einsum("ihd,jhd->hij", q_new.double(), keys) * scale, dim=-1)  # [heads, span, keys]
    inside = (grad[:, a:b].double() * (rows - pattern[:, a:b].double())).sum()
    return float(per_row.sum() - per_row[:, a:b].sum() + inside)


def _entry(model, hook: str) -> tuple[str, int | None] | None:
    """The attention a residual patch at ``hook`` enters first: ``("encoder", block)``, ``("cross", None)``, or None."""
    last = model.n_layers - 1
    if hook == "encoder.hook_ln_final":
        return "cross", None
    match = re.fullmatch(r"encoder\.blocks\.(\d+)\.(hook_resid_post|hook_resid_pre)", hook)
    if not match:
        return None
    layer = int(match.group(1)) + (1 if match.group(2) == "hook_resid_post" else 0)
    return ("cross", None) if layer > last else ("encoder", layer)


def _attn(model, name: str):
    return model.points[name].module  # the attention module (hook_pattern) or its projection (hook_q/hook_k)


def qk_fixed(session: PatchSession, cells: list[Cell], direction: str) -> np.ndarray:
    """Values ``[cells]``: plain attribution, with the QK fix for the cells whose hook enters an attention (see
    the module docstring). Computed once per session (``atp-qk`` and ``atp-star`` share it)."""
    return session.memo(("qk_fixed", direction, tuple(cells)), lambda: _qk_fixed(session, cells, direction)).copy()


def _qk_fixed(session: PatchSession, cells: list[Cell], direction: str) -> np.ndarray:
    model = session.model
    values = session.attribution(cells, direction)
    if not isinstance(session.runner, WhisperRunner):  # the QK fix reads Whisper's attention modules
        return values
    groups: dict[tuple, list[int]] = {}
    for i, cell in enumerate(cells):
        entry = _entry(model, cell.hook)
        if entry is not None and cell.axis == "frames" and cell.head is None and cell.neuron is None:
            groups.setdefault((cell.hook, entry), []).append(i)
    names = list(dict.fromkeys(c.hook for c in cells))
    base, source = session.base_and_source(direction, names)
    base_value = session._value(base)
    for (hook, (kind, layer)), index in groups.items():
        if kind == "encoder":
            prefix = [f"encoder.blocks.{layer}.attn"]
        else:
            prefix = [f"decoder.blocks.{d}.cross_attn" for d in range(model.n_decoder_layers)]
        store: dict[str, torch.Tensor] = {}
        deltas: dict[str, torch.Tensor] = {}

        def keep_fixed(act, hook):  # q/k of the entered attention: their effect is computed exactly below
            store[hook.name] = act.detach()
            return act.detach()

        def add_delta(act, hook):
            store[hook.name] = act.detach()
            deltas[hook.name] = torch.zeros_like(act, requires_grad=True)
            return act + deltas[hook.name]

        fixed = [f"{p}.hook_k" for p in prefix] + ([f"{p}.hook_q" for p in prefix] if kind == "encoder" else [])
        queries = [f"{p}.hook_q" for p in prefix] if kind == "cross" else []
        save_q = lambda act, hook: store.__setitem__(hook.name, act.detach()) or act  # noqa: E731
        hooks = ([(n, keep_fixed) for n in fixed] + [(n, save_q) for n in queries]
                 + [(f"{p}.hook_pattern", add_delta) for p in prefix] + [(hook, add_delta)])
        with frozen_weights(model):
            run = session.runner.forward(base.inputs, base.readout, (), hooks, grad=True)
            score = session.metric.score(run.outputs).sum()
            wanted = [hook] + [f"{p}.hook_pattern" for p in prefix]
            grads = dict(zip(wanted, torch.autograd.grad(score, [deltas[n] for n in wanted], allow_unused=True)))
        for p in prefix:  # Σ_keys ∂metric/∂A ⊙ A, once per attention: the same for every cell
            g = grads[f"{p}.hook_pattern"]
            store[f"{p}.weighted"] = None if g is None else (g * store[f"{p}.hook_pattern"]).sum(-1)
        delta_x = source.acts[hook] - base.acts[hook]  # [1, frames, d_model]
        grad_x = grads[hook] if grads[hook] is not None else torch.zeros_like(delta_x)
        linear = (delta_x * grad_x).sum(-1)[0]  # [frames]: the first-order part, q/k of the entry held fixed
        layout, shape = HookLayout.of(model.points[hook]), tuple(delta_x.shape)
        for i in index:
            cell = cells[i]
            a, b = cell.start, cell.end
            mask = cell_mask([cell], layout, shape)[0, :, 0]  # [frames]
            total = float(linear[mask.to(linear.device)].sum())
            x_new = source.acts[hook][0, a:b]  # [span, d_model]: the patched frames
            total += _pattern_terms(session, kind, layer, hook, prefix, store, grads, x_new, (a, b))
            values[i] = base_value + total
    return values


def _pattern_terms(session, kind, layer, hook, prefix, store, grads, x_new, span) -> float:
    """Σ ∂metric/∂A ⊙ (A' − A) over the attention(s) a patch of ``x_new`` at ``span`` enters."""
    runner = session.runner
    total = 0.0
    with torch.no_grad():
        if kind == "encoder":
            block = runner.encoder.layers[layer]
            attn = block.self_attn
            h = block.self_attn_layer_norm(x_new)
            heads, d_head = attn.num_heads, attn.head_dim
            q_new = F.linear(h, attn.q_proj.weight, attn.q_proj.bias).view(-1, heads, d_head)
            k_new = F.linear(h, attn.k_proj.weight, attn.k_proj.bias).view(-1, heads, d_head)
            p = prefix[0]
            grad = grads[f"{p}.hook_pattern"]
            if grad is None:
                return 0.0
            total += key_query_change(store[f"{p}.hook_q"][0], store[f"{p}.hook_k"][0], store[f"{p}.hook_pattern"][0],
                                      grad[0], span, k_new, q_new, attn.scaling, store[f"{p}.weighted"][0])
        else:
            memory = runner.encoder.layer_norm(x_new) if hook != "encoder.hook_ln_final" else x_new
            for p, attn in zip(prefix, runner.cross_attns):
                grad = grads[f"{p}.hook_pattern"]
                if grad is None:
                    continue
                heads, d_head = attn.num_heads, attn.head_dim
                k_new = F.linear(memory, attn.k_proj.weight, attn.k_proj.bias).view(-1, heads, d_head)
                q, k, pattern = store[f"{p}.hook_q"], store[f"{p}.hook_k"], store[f"{p}.hook_pattern"]
                for row in range(q.shape[0]):  # each decoder row: its own queries, the same keys
                    total += key_query_change(q[row], k[min(row, k.shape[0] - 1)], pattern[row], grad[row], span,
                                              k_new, None, attn.scaling, store[f"{p}.weighted"][row])
    return total


class _BranchGate(torch.autograd.Function):
    """Identity on a block's output ``out`` in the forward pass. Backward, when ``state["drop"]`` names this
    block, the gradient goes to the block's input ``x`` directly (the residual skip) and none into the block,
    so nothing flows back through its branch: ``out = x + branch(x)`` with the branch's gradient stopped."""

    @staticmethod
    def forward(ctx, out, x, state, key):
        ctx.state, ctx.key = state, key
        return out.clone()

    @staticmethod
    def backward(ctx, grad):
        if ctx.state.get("drop") == ctx.key:
            return None, grad, None, None
        return grad, None, None, None


def _gates(blocks, state: dict) -> tuple[list, list]:
    """Hooks that put a :class:`_BranchGate` on each of ``blocks`` (``(side, layer)``) for one gradient run:
    ``(gates, inputs)``. The gates on the blocks' outputs go before the run's deltas (a cell at a block's
    output keeps its gradient when that block is dropped), the hooks reading the blocks' inputs after them
    (so the skip carries the gradient to a cell at a block's input too)."""
    gates, inputs = [], []
    for side, layer in blocks:
        seen: dict[str, torch.Tensor] = {}

        def remember(act, hook, seen=seen):
            seen["x"] = act
            return act

        def gate(act, hook, seen=seen, key=(side, layer)):
            x = seen.get("x")
            if x is None or x.shape != act.shape:  # the decoder input is per row, like its output; else leave it
                return act
            return _BranchGate.apply(act, x, state, key)

        inputs.append((f"{side}.blocks.{layer}.hook_resid_pre", remember))
        gates.append((f"{side}.blocks.{layer}.hook_resid_post", gate))
    return gates, inputs


_BLOCK_HOOK = re.compile(r"(encoder|decoder)\.blocks\.(\d+)\.(.+)")


def _upstream(hook: str, side: str, layer: int) -> bool:
    """Whether an activation at ``hook`` can feed block ``layer`` of ``side``'s residual branch, so that stopping
    the gradient there can change its gradient. False only where it provably cannot: a decoder activation for an
    encoder block (the encoder runs first), the encoder output, and a block's own output or anything in a later
    block of the same side (their gradient never passes through the branch)."""
    if side == "encoder" and (hook.startswith("decoder.") or hook == "encoder.hook_ln_final"):
        return False
    match = _BLOCK_HOOK.fullmatch(hook)
    if match and match.group(1) == side:
        at, rest = int(match.group(2)), match.group(3)
        return at < layer or (at == layer and rest != "hook_resid_post")
    return True


def atp_star(session: PatchSession, cells: list[Cell], direction: str, graddrop: bool = True) -> np.ndarray:
    """Values ``[cells]`` by attribution with the QK fix and (``graddrop``) GradDrop (see the module docstring).

    Cost: one forward and backward pass for attribution, one per attention entered (QK fix), and with
    GradDrop one forward pass and a backward pass per layer of the model that some cell is upstream of (a drop
    downstream of every cell leaves each estimate as it is, so it needs no pass: encoder block 0 for
    residual-stream cells, every encoder block for decoder cells)."""
    values = qk_fixed(session, cells, direction)
    if not graddrop:
        return values
    model = session.model
    correction = values - session.attribution(cells, direction)  # the QK fix, added to every GradDrop estimate
    base, _ = session.base_and_source(direction, list(dict.fromkeys(c.hook for c in cells)))
    base_value = session._value(base)
    layers = [("encoder", i) for i in range(model.n_layers)]
    if model.has_decoder:
        layers += [("decoder", i) for i in range(model.n_decoder_layers)]
    hooks = {c.hook for c in cells}
    # a drop downstream of every cell changes no gradient: its estimate is the QK-fixed one, with no pass
    needed = [block for block in layers if any(_upstream(h, *block) for h in hooks)]
    state: dict = {}
    settings = [lambda block=block: state.__setitem__("drop", block) for block in needed]
    gates, inputs = _gates(needed, state)
    dropped = session.attribution_backwards(cells, direction, gates, settings, inputs) if needed else []
    magnitude = np.abs(values - base_value) * (len(layers) - len(needed))
    for estimate in dropped:
        magnitude += np.abs(estimate + correction - base_value)
    magnitude /= len(layers)
    sign = np.sign(values - base_value)
    return base_value + np.where(sign == 0, 1.0, sign) * magnitude
