"""Running the model for patching: cache an unpatched run once, then run many patched cells from it.

:class:`WhisperRunner` recomputes only what a patch can change. A patch of the residual stream at
encoder block L (``hook_resid_post``; ``hook_resid_pre``/``hook_embed`` at L) starts from the cached
residual and runs the HF encoder layers L+1.. (resp. L..), the final layer norm and the decoder; a patch
of another hook inside block L runs from that block's cached input with the patch installed as a hook.
In the first block it re-enters, q/k/v are recomputed only on the frames the patch changed
(:mod:`otoscope.patching.rows`); decoder patches reuse the cached encoder output and its cross-attention
keys/values; a window at the last encoder layer recomputes the keys/values of its own frames only
(:mod:`otoscope.patching.kv`); and a patch that changes the whole encoder output (one below the last
layer) never projects it to keys and values: the decoder's cross-attention scores its queries against the
encoder output directly (:mod:`otoscope.patching.factored`), when the readout is short enough for that to
be cheaper and no hook needs the keys, values or probabilities. Cells are batched (the encoder one cell at
a time on CPU, where batching slows its attention). The HF modules do all the work; the shortcuts are
hooks on their projections and, for the factored cross-attention, a forward computed with the module's
own weights.

Gradient runs (attribution patching) take the same shortcuts where they are exact: the run patched into itself
(the tangent) starts from the cached state at the first hooked point (:meth:`WhisperRunner.forward_from`: the
front end and the blocks before it are the cached run's), and every gradient run attends to the encoder output
in the factored form, so no keys or values over 1500 frames are projected or back-propagated through.

:class:`FullForwardRunner` runs the whole model per batch of cells with the patch as a hook: the plain
computation, used for encoder-only models (wav2vec2, HuBERT, WavLM) and to check the fast path.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from otoscope.models.inputs import ModelInputs
from otoscope.patching.factored import applicable, cross_attention_modules, factored_cross_attention
from otoscope.patching.kv import KV, cross_kv, cross_kv_rows, kv_modules, repeat_rows, substituted
from otoscope.patching.metrics import Readout
from otoscope.patching.rows import changed_frames_only, changed_index

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class CachedRun:
    """One unpatched run (batch 1) and everything a patched run may start from."""

    inputs: ModelInputs
    """The run's model inputs."""
    readout: Readout
    """Decoder rows run and positions read."""
    outputs: torch.Tensor
    """What the metric reads: ``[1, rows, positions, vocab]``, or the full outputs."""
    acts: dict[str, torch.Tensor] = field(default_factory=dict)
    """Cached activations by hook name: one row, or one per decoder row for hooks that run per row (the
    decoder; every hook under :class:`FullForwardRunner`)."""
    kv: KV | None = None
    """Whisper: cross-attention keys and values of the encoder output."""


def _where(mask: torch.Tensor, source: torch.Tensor, repeats: int):
    """A hook fn writing ``source`` where ``mask`` is True, for ``[batch * repeats, ...]`` activations."""
    if repeats > 1:
        mask = mask.repeat_interleave(repeats, dim=0)
        if source.shape[0] == repeats:
            source = source.repeat(mask.shape[0] // repeats, *([1] * (source.ndim - 1)))
    return lambda act, hook: torch.where(mask, source.to(act.dtype), act)


def _rows(readout: Readout) -> int:
    return 1 if readout.rows is None else int(readout.rows.shape[0])


def read_logits(logits: torch.Tensor, readout: Readout, batch: int) -> torch.Tensor:
    """``[batch * rows, tokens, vocab]`` logits → what the metric reads (``[batch, rows, positions, vocab]``)."""
    if readout.positions is None:
        return logits
    rows = _rows(readout)
    pos = readout.positions.to(logits.device).repeat(batch, 1)  # [batch * rows, positions]
    picked = logits.gather(1, pos[..., None].expand(-1, -1, logits.shape[-1]))
    return picked.view(batch, rows, pos.shape[1], -1)


class FullForwardRunner:
    """Every patched batch runs the whole model, with the patch installed as a hook."""

    def __init__(self, model: HookedAudioModel):
        self.model = model

    def _inputs(self, inputs: ModelInputs, readout: Readout, batch: int) -> ModelInputs:
        rows = _rows(readout)
        n = batch * rows
        features = inputs.features.expand(n, *inputs.features.shape[1:])
        attention = None if inputs.attention_mask is None else inputs.attention_mask.expand(n, -1)
        ids = None if readout.rows is None else readout.rows.repeat(batch, 1)
        return ModelInputs(inputs.clips * n, features, inputs.frame_mask.expand(n, -1), attention, ids)

    def _read(self, out: torch.Tensor, readout: Readout, batch: int) -> torch.Tensor:
        return read_logits(out, readout, batch) if readout.rows is not None else out

    def forward(self, inputs, readout, names=(), hooks=(), grad=False, full_logits=False) -> CachedRun:
        """One run (batch 1) caching ``names``; ``hooks`` are extra ``(name, fn)`` pairs (attribution)."""
        store: dict[str, torch.Tensor] = {}
        save = lambda t, hook: store.__setitem__(hook.name, t if grad else t.detach())  # noqa: E731
        with torch.set_grad_enabled(grad), self.model.hooks([(n, save) for n in names] + list(hooks)):
            out = self.model.forward_inputs(self._inputs(inputs, readout, 1))
        return CachedRun(inputs, readout, self._read(out, readout, 1), store)

    def forward_from(self, base: CachedRun, names, hooks=(), full_logits: bool = False) -> None:
        """None: the plain runner keeps no states to start a gradient run from (the caller runs :meth:`forward`)."""
        return None

    @torch.no_grad()
    def run_patched(self, base: CachedRun, hook: str, mask: torch.Tensor, source: torch.Tensor,
                    full_logits: bool = False) -> torch.Tensor:
        """Outputs of ``base`` with ``source`` written where ``mask`` ``[cells, ...]`` is True, one row per cell."""
        device = self.model.device
        batch = mask.shape[0]
        fn = _where(mask.to(device), source.to(device), _rows(base.readout))
        with self.model.hooks([(hook, fn)]):
            out = self.model.forward_inputs(self._inputs(base.inputs, base.readout, batch))
        return self._read(out, base.readout, batch)


class WhisperRunner:
    """Whisper: each patched cell recomputes only the layers after the patch (see the module docstring)."""

    sparse_fraction = 0.5  # recompute keys/values frame by frame when at most this share of frames changed

    def __init__(self, model: HookedAudioModel):
        self.model = model
        # On CPU the encoder is fastest one cell at a time (batched, its attention runs 20-30% slower per row on
        # 2 cores); the decoder, small per row, is batched everywhere. On a GPU everything is batched.
        self.encoder_batch: int | None = 1 if model.device.type == "cpu" else None
        hf = model.model
        base = getattr(hf, hf.base_model_prefix, hf)
        self.encoder, self.decoder = base.encoder, base.decoder
        self.proj_out = hf.proj_out
        self.n_layers = model.n_layers
        self.kv_mods = kv_modules(model)
        self.cross_attns = cross_attention_modules(model)

    def state_names(self) -> list[str]:
        """The hooks a patched run starts from: every encoder block's input, the last block's output, the
        encoder output."""
        last = self.n_layers - 1
        return ([f"encoder.blocks.{i}.hook_resid_pre" for i in range(self.n_layers)]
                + [f"encoder.blocks.{last}.hook_resid_post", "encoder.hook_ln_final"])

    def stage(self, hook: str) -> tuple[str, int | None]:
        """Where a patch of ``hook`` enters: ``(kind, block)``."""
        if hook == "encoder.hook_embed":
            return "block_input", 0
        if hook == "encoder.hook_ln_final":
            return "encoder_out", None
        match = re.fullmatch(r"encoder\.blocks\.(\d+)\.(.+)", hook)
        if match:
            layer, rest = int(match.group(1)), match.group(2)
            if rest == "hook_resid_pre":
                return "block_input", layer
            if rest == "hook_resid_post":
                return ("block_input", layer + 1) if layer + 1 < self.n_layers else ("encoder_last", layer)
            return "block_hook", layer
        if hook.startswith("decoder."):
            return "decoder", None
        raise AssertionError(f"no stage for {hook}")

    # ------------------------------------------------------------------ pieces
    def encode_from(self, state: torch.Tensor, start: int) -> torch.Tensor:
        """Run encoder blocks ``start..`` and the final layer norm on ``state`` ``[batch, frames, d_model]``."""
        for layer in self.encoder.layers[start:]:
            state = layer(state, None)  # exactly the call WhisperEncoder.forward makes
        return self.encoder.layer_norm(state)

    def decode(self, memory: KV | torch.Tensor, readout: Readout, batch: int, full_logits: bool = False,
               factored: bool | None = None) -> torch.Tensor:
        """Decoder on ``readout.rows`` for ``batch`` encoder outputs → logits read.

        ``memory`` is the encoder outputs ``[batch or 1, frames, d_model]`` (after the final layer norm) or their
        cross-attention keys/values. Given outputs, the cross-attention runs in the factored form
        (:mod:`otoscope.patching.factored`) when no hook needs its keys/values/probabilities and — unless
        ``factored`` says — when that is cheaper; otherwise the keys/values are computed here.
        """
        device = self.model.device
        rows = readout.rows.to(device)  # [rows, tokens]
        n_rows = rows.shape[0]
        ids = rows.repeat(batch, 1)  # row b * n_rows + r uses cell b
        if isinstance(memory, torch.Tensor):
            if applicable(self.cross_attns, n_rows * rows.shape[1], factored):
                memory = memory.expand(batch, -1, -1) if memory.shape[0] == 1 else memory
                # the decoder passes this on to the cross-attention, which (factored) reads memory instead
                stub = memory.new_zeros(()).expand(batch * n_rows, *memory.shape[1:])
                with factored_cross_attention(self.cross_attns, memory):
                    hidden = self.decoder(input_ids=ids, encoder_hidden_states=stub, use_cache=False).last_hidden_state
                return self._logits(hidden, readout, batch, full_logits)
            memory = cross_kv(self.kv_mods, memory)
        kv_rows = repeat_rows(memory, batch, n_rows)
        frames, d_model = kv_rows[0][0].shape[1:]
        # the projections of this are never computed: kv.substituted hands the decoder kv_rows instead
        stub = kv_rows[0][0].new_zeros(()).expand(batch * n_rows, frames, d_model)
        with substituted(self.kv_mods, kv_rows):
            hidden = self.decoder(input_ids=ids, encoder_hidden_states=stub,
                                  use_cache=False).last_hidden_state  # [batch * rows, tokens, d_model]
        return self._logits(hidden, readout, batch, full_logits)

    def _logits(self, hidden: torch.Tensor, readout: Readout, batch: int, full_logits: bool) -> torch.Tensor:
        """Decoder output ``[batch * rows, tokens, d_model]`` → logits read (only at the read positions)."""
        if readout.positions is None or full_logits:
            return read_logits(self.proj_out(hidden), readout, batch)
        pos = readout.positions.to(hidden.device).repeat(batch, 1)  # [batch * rows, positions]
        picked = hidden.gather(1, pos[..., None].expand(-1, -1, hidden.shape[-1]))
        return self.proj_out(picked).view(batch, _rows(readout), pos.shape[1], -1)  # [batch, rows, positions, vocab]

    def _qkv_names(self, block: int) -> list[str]:
        return [f"encoder.blocks.{block}.attn.hook_{x}" for x in "qkv"]

    def _first_blocks(self, names) -> set[int]:
        """Encoder blocks a patch of ``names`` re-enters first (their q/k/v are reused frame by frame)."""
        stages = [self.stage(n) for n in names]
        return {block for kind, block in stages if kind in ("block_input", "block_hook") and block < self.n_layers}

    # ------------------------------------------------------------------ runs
    def forward(self, inputs, readout, names=(), hooks=(), grad=False, full_logits=False) -> CachedRun:
        """One run (batch 1), caching ``names`` plus the states patched runs start from."""
        store: dict[str, torch.Tensor] = {}
        save = lambda t, hook: store.__setitem__(hook.name, t if grad else t.detach())  # noqa: E731
        qkv = [n for b in sorted(self._first_blocks(names)) for n in self._qkv_names(b)] if not grad else []
        wanted = list(dict.fromkeys(list(names) + self.state_names() + qkv))
        device, dtype = self.model.device, self.model.dtype
        with torch.set_grad_enabled(grad), self.model.hooks([(n, save) for n in wanted] + list(hooks)):
            encoder_out = self.encoder(inputs.features.to(device, dtype)).last_hidden_state  # [1, frames, d_model]
            if grad:  # a gradient run keeps no keys/values: the decoder may attend to encoder_out directly (factored)
                return CachedRun(inputs, readout, self.decode(encoder_out, readout, 1, full_logits), store)
            kv = cross_kv(self.kv_mods, encoder_out)
            outputs = self.decode(kv, readout, 1, full_logits)
        return CachedRun(inputs, readout, outputs, store, kv)

    def _position(self, name: str) -> float:
        """Where ``name``'s value is fixed in the forward pass: at block L (its input or inside it) → L, the last
        block's output → n_layers − ½, the encoder output → n_layers, the decoder → n_layers + 1."""
        kind, block = self.stage(name)
        if kind in ("block_input", "block_hook"):
            return float(block)
        return {"encoder_last": self.n_layers - 0.5, "encoder_out": float(self.n_layers)}.get(kind, self.n_layers + 1.0)

    def _role(self, name: str, start: float) -> str | None:
        """How a hook on ``name`` runs in a forward pass started from the cached state at ``start``: "start" (its
        value is that state, its module does not run: applied by hand), "runs" (its module runs), or None."""
        n = self.n_layers
        if name.startswith("decoder."):
            return "runs"
        if name == "encoder.hook_ln_final":
            return "start" if start == n else ("runs" if start < n else None)
        if name == "encoder.hook_embed":  # a pre-hook on block 0, like its hook_resid_pre
            return "runs" if start == 0 else None
        match = re.fullmatch(r"encoder\.blocks\.(\d+)\.(.+)", name)
        if match is None:
            return None
        layer, end = int(match.group(1)), match.group(2) == "hook_resid_post"
        if start < n - 0.5:
            return "runs" if layer >= start else ("start" if end and layer == start - 1 else None)
        return "start" if start == n - 0.5 and end and layer == n - 1 else None

    def forward_from(self, base: CachedRun, names: Sequence[str], hooks=(), full_logits: bool = False
                     ) -> torch.Tensor | None:
        """What :meth:`forward` on ``base.inputs`` with ``hooks`` and grad outputs, computed from ``base``'s cached
        state at the earliest of ``names`` instead of from the features, or None when a hook sits before that
        point (the caller runs :meth:`forward`).

        Before the first of ``names`` the run is the cached one, so the outputs and their gradients with respect
        to anything a hook adds at ``names`` are the same; the front end and the blocks before it are neither
        recomputed nor kept for the backward pass. Hooks on the starting state itself (``hook_resid_post`` of
        the block before, ``hook_ln_final``), whose modules do not run, are applied to it in the order given.
        """
        start = min(self._position(n) for n in names)
        by_hand, installed = [], []
        for name, fn in hooks:
            role = self._role(name, start) if isinstance(name, str) else None
            if role is None:
                return None
            (by_hand if role == "start" else installed).append((name, fn))

        def state(name: str) -> torch.Tensor:
            value = base.acts[name]
            for hook, fn in by_hand:
                out = fn(value, self.model.points[hook])
                value = value if out is None else out
            return value

        last = self.n_layers - 1
        with torch.enable_grad(), self.model.hooks(installed):
            if start > self.n_layers:  # decoder hooks only: the cached keys and values
                return self.decode(base.kv, base.readout, 1, full_logits)
            if start == self.n_layers:
                memory = state("encoder.hook_ln_final")
            elif start == last + 0.5:
                memory = self.encoder.layer_norm(state(f"encoder.blocks.{last}.hook_resid_post"))
            else:
                layer = int(start)
                memory = self.encode_from(state(f"encoder.blocks.{layer}.hook_resid_pre"), layer)
            return self.decode(memory, base.readout, 1, full_logits)

    def _last_layer_memory(self, base: CachedRun, mask: torch.Tensor, source: torch.Tensor, kind: str) -> KV | torch.Tensor:
        """Keys/values when only the frames ``mask`` touches change at the encoder's last block or output (the
        patched encoder outputs instead when more than :attr:`sparse_fraction` of the frames change)."""
        name = f"encoder.blocks.{self.n_layers - 1}.hook_resid_post" if kind == "encoder_last" else "encoder.hook_ln_final"
        patched = torch.where(mask, source, base.acts[name])  # [batch, frames, d_model]
        index = changed_index(mask, self.sparse_fraction)
        if index is None:
            return self.encoder.layer_norm(patched) if kind == "encoder_last" else patched
        if index.shape[1] == 0:
            index = torch.zeros(mask.shape[0], 1, dtype=torch.long, device=mask.device)  # nothing changed: any frame
        rows = patched.gather(1, index[..., None].expand(-1, -1, patched.shape[-1]))  # [batch, m, d_model]
        if kind == "encoder_last":
            rows = self.encoder.layer_norm(rows)  # layer norm acts frame by frame
        return cross_kv_rows(self.kv_mods, base.kv, rows, index)

    def _reuse_qkv(self, base: CachedRun, block: int, index: torch.Tensor | None):
        """Block ``block``'s q/k/v from the cached run except at frames ``index`` (no-op when not cached)."""
        names = self._qkv_names(block)
        if index is None or any(n not in base.acts for n in names):
            return contextlib.nullcontext()
        cached = [(self.model.points[n].module, base.acts[n].flatten(-2)) for n in names]  # [1, frames, d_model]
        return changed_frames_only(cached, index)

    @torch.no_grad()
    def run_patched(self, base: CachedRun, hook: str, mask: torch.Tensor, source: torch.Tensor,
                    full_logits: bool = False) -> torch.Tensor:
        """Outputs of ``base`` with ``source`` written where ``mask`` ``[cells, ...]`` is True, one row per cell."""
        device = self.model.device
        mask, source = mask.to(device), source.to(device)
        batch = mask.shape[0]
        kind, layer = self.stage(hook)
        if kind == "decoder":
            with self.model.hooks([(hook, _where(mask, source, _rows(base.readout)))]):
                return self.decode(base.kv, base.readout, batch, full_logits)
        if kind in ("block_input", "block_hook"):
            start = base.acts[f"encoder.blocks.{layer}.hook_resid_pre"]
            step = self.encoder_batch or batch
            outs = []
            for i in range(0, batch, step):
                rows = slice(i, i + step)
                n = mask[rows].shape[0]
                src = source[rows] if source.shape[0] == batch and batch > 1 else source  # one source per cell
                if kind == "block_input":  # the block's input changes where the mask does
                    state, patch_hooks = torch.where(mask[rows], src, start), []
                    index = changed_index(mask[rows], self.sparse_fraction)
                else:  # the patch is inside the block: its input, hence q/k/v, are the cached ones
                    state, patch_hooks = start.expand(n, -1, -1).contiguous(), [(hook, _where(mask[rows], src, 1))]
                    index = torch.zeros(n, 0, dtype=torch.long, device=device)
                with self._reuse_qkv(base, layer, index), self.model.hooks(patch_hooks):
                    outs.append(self.encode_from(state, layer))
            memory = torch.cat(outs) if len(outs) > 1 else outs[0]  # encoder outputs: decode picks the cheaper way
        else:
            memory = self._last_layer_memory(base, mask, source, kind)
        return self.decode(memory, base.readout, batch, full_logits)


def make_runner(model: HookedAudioModel, engine: str = "auto"):
    """The fastest exact runner for ``model`` (``engine='full'`` forces the plain full forward)."""
    if engine not in ("auto", "full"):
        from otoscope.errors import OtoscopeError

        raise OtoscopeError(f"engine must be 'auto' or 'full', got {engine!r}.")
    fast = model.adapter.fast_patch_runner(model) if engine == "auto" else None
    return fast or FullForwardRunner(model)
