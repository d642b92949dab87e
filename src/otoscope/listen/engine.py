"""Activation patching on an audio-LLM: the plain loop, and the prefix-KV engine that reuses work.

A *cell* patches the positions ``positions`` of one hook from the source run into the target run
(denoising: clean into corrupt; noising: corrupt into clean) and reads the next-token logits at the
readout position.

* :func:`naive_patch`: one full forward of the whole model (audio encoder, projector, LLM) per cell, with
  a replacing hook; any hook point. The reference the fast engine is tested against.
* :class:`PrefixPatcher`: for ``llm.blocks.{k}.hook_resid_pre``. The target run is computed once with
  its KV cache. A patch at layer k changes nothing in layers below k, and nothing at positions before its
  first changed position p0 (attention is causal), so a cell runs only layers k.. on positions p0..,
  attending to the cached keys and values of positions < p0. Positions whose source and target values are
  equal are dropped first (replacing a value by itself is a no-op), so p0 is the first position that
  really changes. Exact up to float rounding of different matrix shapes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch
from torch import nn

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.adapters.audio_llm import AudioLLMInputs
    from otoscope.models.hooked import HookedAudioModel

RESID = "llm.blocks.{k}.hook_resid_pre"


@dataclass(frozen=True)
class Cell:
    """One patch: a hook and the positions (on its position axis) to take from the source run."""

    hook: str
    """Hook name, e.g. ``llm.blocks.3.hook_resid_pre``."""
    positions: tuple[int, ...]
    """Positions patched: LLM tokens for ``llm.*``, audio tokens for ``projector.*``, frames for ``audio.encoder.*``."""
    label: str = ""
    """What the positions are (``audio``, ``text``, ``readout``, ``0.00-0.40 s``...)."""


def _replace(positions: Sequence[int], source: torch.Tensor):
    index = torch.tensor(sorted(positions), dtype=torch.long)

    def hook(value: torch.Tensor, point) -> torch.Tensor:
        out = value.clone()
        out[:, index] = source[:, index].to(value.device, value.dtype)
        return out
    return hook


@torch.no_grad()
def naive_patch(model: "HookedAudioModel", target: "AudioLLMInputs", source_cache, cells: Sequence[Cell]) -> torch.Tensor:
    """Readout logits ``[cells, vocab]``: one full forward of ``target`` per cell with the cell's positions
    taken from ``source_cache`` (an :class:`ActivationCache` of the source run holding every cell's hook)."""
    readout = target.positions[0].readout
    rows = []
    for cell in cells:
        logits = model.run_with_hooks(target, fwd_hooks=[(cell.hook, _replace(cell.positions, source_cache[cell.hook]))])
        rows.append(logits[0, readout].float())
    return torch.stack(rows)


@contextlib.contextmanager
def _layers_from(llm: nn.Module, first: int) -> Iterator[None]:
    """While active, the LLM runs only its blocks ``first..`` (each keeps its own ``layer_idx`` for the cache)."""
    layers = llm.layers
    llm.layers = nn.ModuleList(list(layers)[first:])
    try:
        yield
    finally:
        llm.layers = layers


class PrefixPatcher:
    """Exact patching of ``llm.blocks.{k}.hook_resid_pre`` cells with layer skipping and a cached KV prefix.

    ``target`` holds one row; ``source_resid[k]`` is the source run's ``hook_resid_pre`` of block k,
    ``[1, tokens, d_llm]``.
    """

    def __init__(self, model: "HookedAudioModel", target: "AudioLLMInputs", source_resid: list[torch.Tensor]):
        from transformers import DynamicCache

        adapter = model.llm_adapter
        if adapter is None or len(target.clips) != 1:
            raise OtoscopeError("the prefix-KV engine takes one audio-LLM row; use naive_patch otherwise.")
        self.model, self.adapter, self.llm = model, adapter, adapter.llm
        types = getattr(self.llm.config, "layer_types", None) or ["full_attention"]
        if len(set(types)) != 1:
            raise NotImplementedError(f"{type(self.llm).__name__} mixes attention types {sorted(set(types))}; "
                                      "use engine='naive'.")
        self.readout = target.positions[0].readout
        self.n_layers = len(self.llm.layers)
        self.source = source_resid
        names = [RESID.format(k=k) for k in range(self.n_layers)]
        self.cache = DynamicCache(config=self.llm.config)
        with torch.no_grad():
            self.target_logits, self.resid = self._target_run(target, names)  # [vocab], per block [1, tokens, d_llm]
        self.device = self.resid[0].device

    def _target_run(self, target, names):
        """The target run once, keeping its KV cache (in ``self.cache``) and every block's input."""
        acts: dict[str, torch.Tensor] = {}
        save = lambda t, h: acts.__setitem__(h.name, t.detach())  # noqa: E731
        with self.model.hooks([(n, save) for n in names]):
            out = self.model.model(**self.adapter.model_kwargs(target), cache=self.cache, use_cache=True)
        return out.logits[0, self.readout].float(), [acts[n] for n in names]

    def _prefix(self, p0: int, batch: int):
        """A cache holding the target's keys and values of positions ``< p0`` in every block, for ``batch`` rows."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.llm.config)
        for layer, full in zip(cache.layers, self.cache.layers):
            keys = full.keys[:, :, :p0].expand(batch, -1, -1, -1)
            values = full.values[:, :, :p0].expand(batch, -1, -1, -1)
            layer.lazy_initialization(keys, values)
            layer.keys, layer.values = keys, values
        return cache

    @torch.no_grad()
    def run(self, layer: int, groups: Sequence[Sequence[int]]) -> torch.Tensor:
        """Readout logits ``[len(groups), vocab]`` for patching each position group at block ``layer``."""
        base, source = self.resid[layer], self.source[layer].to(self.device, self.resid[layer].dtype)
        changed = (base[0] != source[0]).any(-1)  # [tokens]: where patching changes anything
        out = [None] * len(groups)
        todo: dict[int, list[tuple[int, list[int]]]] = {}
        for i, group in enumerate(groups):
            moved = sorted(p for p in set(group) if bool(changed[p]))
            if not moved or moved[0] > self.readout:
                out[i] = self.target_logits  # nothing the readout can see changes
            else:
                todo.setdefault(moved[0], []).append((i, moved))
        for p0, items in todo.items():
            x = base[:, p0:].expand(len(items), -1, -1).clone()  # [cells, tokens - p0, d_llm]
            for row, (_, moved) in enumerate(items):
                index = torch.tensor(moved, device=self.device)
                x[row, index - p0] = source[0, index]
            positions = torch.arange(p0, base.shape[1], device=self.device)[None].expand(len(items), -1)
            with _layers_from(self.llm, layer):
                hidden = self.llm(inputs_embeds=x, position_ids=positions, cache=self._prefix(p0, len(items)),
                                  use_cache=True).last_hidden_state  # final-normed
            logits = self.model.model.lm_head(hidden[:, self.readout - p0]).float()
            for row, (i, _) in enumerate(items):
                out[i] = logits[row]
        return torch.stack(out)


@torch.no_grad()
def fast_patch(model: "HookedAudioModel", target: "AudioLLMInputs", source_cache, cells: Sequence[Cell]) -> torch.Tensor:
    """Like :func:`naive_patch`, through :class:`PrefixPatcher` for ``llm.blocks.*.hook_resid_pre`` cells (other
    hooks run the naive way)."""
    n = model.n_llm_layers
    names = [RESID.format(k=k) for k in range(n)]
    fast = [i for i, c in enumerate(cells) if c.hook in names]
    out: list[torch.Tensor | None] = [None] * len(cells)
    if fast:
        patcher = PrefixPatcher(model, target, [source_cache[name] for name in names])
        by_layer: dict[int, list[int]] = {}
        for i in fast:
            by_layer.setdefault(names.index(cells[i].hook), []).append(i)
        for layer, idx in by_layer.items():
            for i, logits in zip(idx, patcher.run(layer, [cells[i].positions for i in idx])):
                out[i] = logits
    rest = [i for i in range(len(cells)) if out[i] is None]
    if rest:
        for i, logits in zip(rest, naive_patch(model, target, source_cache, [cells[i] for i in rest])):
            out[i] = logits
    return torch.stack(out)
