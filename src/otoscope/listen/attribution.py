"""Attribution patching on an audio-LLM: every cell's effect estimated from one forward and one backward pass.

A cell patches the positions ``P`` of hook ``h`` from the source run into the target run (see
:mod:`otoscope.listen.engine`). To first order in the patch (attribution patching, Nanda 2023; the same
estimate as :meth:`otoscope.patching.session.PatchSession.attribution` for Whisper):

    m(patched) ≈ m(target) + Σ_{p ∈ P} ∂m/∂h[p] · (h_source[p] − h_target[p])

One backward pass of the target run gives ∂m/∂h at every hook the cells name, so each position's share
``∂m/∂h[p] · Δh[p]`` is computed once and a cell is the sum of its positions' shares: an LLM block × audio
window sweep or a gc(k) curve costs one forward and one backward pass per pair instead of one run per cell.
The position axis is axis 1 of every hook the exact engine patches: LLM tokens (``llm.*``), audio tokens
(``projector.hook_out``) or 20 ms frames (``audio.encoder.*``); the other axes are summed. Exact where the
metric is linear in the patched activation, an estimate elsewhere (it misses saturation and thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch

from otoscope.errors import OtoscopeError
from otoscope.listen.engine import Cell
from otoscope.patching.session import frozen_weights

if TYPE_CHECKING:
    from otoscope.models.adapters.audio_llm import AudioLLMInputs
    from otoscope.models.hooked import HookedAudioModel

Score = Callable[[torch.Tensor], torch.Tensor]  # readout logits [..., vocab] → metric [...]


@dataclass
class PositionShares:
    """Each position's first-order share of a patch: ``∂m/∂h[p] · (h_source[p] − h_target[p])`` per hook."""

    base: float
    """The metric on the target run (what every estimate starts from)."""
    shares: dict[str, np.ndarray]
    """Hook → ``[positions]`` (float64), the share of each position on the hook's axis 1."""

    def values(self, cells: Sequence[Cell]) -> np.ndarray:
        """Estimated metric after patching each cell, ``[cells]``: the base plus its positions' shares."""
        out = np.empty(len(cells), dtype=np.float64)
        for i, cell in enumerate(cells):
            share = self.shares[cell.hook]
            out[i] = self.base + float(share[sorted(set(cell.positions))].sum()) if cell.positions else self.base
        return out


def position_shares(model: "HookedAudioModel", target: "AudioLLMInputs", source: Mapping[str, torch.Tensor],
                    hooks: Sequence[str], score: Score) -> PositionShares:
    """One forward and one backward pass of ``target`` (one row) → each position's share at every hook of ``hooks``.

    ``source[hook]`` is the source run's activation, the shape the hook has on the target run
    (``[1, positions, ...]``, e.g. ``[1, tokens, d_llm]``); ``score`` maps readout logits ``[vocab]`` to the metric.
    """
    if len(target.clips) != 1:
        raise OtoscopeError(f"attribution patching takes one row at a time, got {len(target.clips)}; pass one pair.")
    hooks = list(dict.fromkeys(hooks))
    readout = target.positions[0].readout
    deltas: dict[str, torch.Tensor] = {}
    acts: dict[str, torch.Tensor] = {}

    def add_delta(act: torch.Tensor, hook) -> torch.Tensor:  # a zero the gradient flows into
        acts[hook.name] = act.detach()
        deltas[hook.name] = torch.zeros_like(act, requires_grad=True)
        return act + deltas[hook.name]

    with frozen_weights(model), torch.enable_grad(), model.hooks([(h, add_delta) for h in hooks]):
        logits = model.forward_inputs(target)  # [1, tokens, vocab]
        value = score(logits[0, readout])
        missing = [h for h in hooks if h not in deltas]
        if missing:
            raise OtoscopeError(f"hooks {missing} did not run on this input; pick hooks the model passes through.")
        grads = torch.autograd.grad(value, [deltas[h] for h in hooks], allow_unused=True)
    shares = {}
    for hook, grad in zip(hooks, grads):
        base = acts[hook]
        src = source[hook].to(base.device)
        if src.shape != base.shape:
            raise OtoscopeError(f"{hook}: the source activation is {tuple(src.shape)} but the target's is "
                                f"{tuple(base.shape)}; the two runs must line up position by position.")
        if grad is None:  # the metric does not depend on this hook at all
            shares[hook] = np.zeros(base.shape[1])
            continue
        share = (grad.double() * (src.double() - base.double()))[0]  # [positions, ...]
        shares[hook] = share.reshape(share.shape[0], -1).sum(-1).cpu().numpy()  # [positions]
    return PositionShares(float(value.detach()), shares)


def attribution_patch(model: "HookedAudioModel", target: "AudioLLMInputs", source: Mapping[str, torch.Tensor],
                      cells: Sequence[Cell], score: Score) -> np.ndarray:
    """Estimated metric after patching each cell ``[cells]``: the attribution counterpart of
    ``score(naive_patch(model, target, source, cells))`` (:func:`otoscope.listen.engine.naive_patch`)."""
    shares = position_shares(model, target, source, [c.hook for c in cells], score)
    return shares.values(cells)
