"""A patching session: one prepared pair, one metric, the clean and corrupt runs cached once.

Every sweep on the pair — exact or attribution, denoising or noising, any hooks — starts from the two
cached runs; they are recomputed only when a sweep needs activations at hooks not cached yet. Work that
several methods share — the gradient pass at one point of the input path, an exact cell, the QK-fixed
estimate — is memoised per session (:meth:`PatchSession.memo`): computed once, and charged at its own
cost to every method that reuses it, so a method's time stays what it costs alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from otoscope.errors import OtoscopeError
from otoscope.hooks.select import select
from otoscope.patching.cells import Cell, HookLayout, cell_mask, check_units, make_cells
from otoscope.patching.config import check_ig_steps
from otoscope.patching.inputs import PreparedPair
from otoscope.patching.metrics import Metric, describe_tokens
from otoscope.patching.runner import CachedRun, make_runner


@contextlib.contextmanager
def frozen_weights(model) -> Iterator[None]:
    """Weights stop requiring grad for the block, so a backward pass computes activation gradients only."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def ig_alphas(steps: int) -> list[float]:
    """The midpoints of ``steps`` equal intervals of [0, 1]: where integrated gradients takes its gradients."""
    steps = check_ig_steps(steps)
    return [(i + 0.5) / steps for i in range(steps)]


def _delta_hook(deltas: dict[str, torch.Tensor]):
    """A hook adding a zero tensor that requires grad to the activation (its gradient is the activation's),
    kept in ``deltas`` under the hook's name."""
    def add_delta(act, hook):
        delta = torch.zeros_like(act, requires_grad=True)
        deltas[hook.name] = delta
        return act + delta

    return add_delta


def _groups(cells: list[Cell]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        out.setdefault(cell.hook, []).append(i)
    return out


class PatchSession:
    """Clean and corrupt runs of one pair under one metric, cached for any number of sweeps."""

    def __init__(self, model, pair: PreparedPair, metric: Metric, *, batch_size: int = 8, engine: str = "auto",
                 progress: bool = False):
        self.model = model
        self.pair = pair
        self.metric = metric
        self.batch_size = batch_size
        self.progress = progress
        self.runner = make_runner(model, engine)
        self._names: list[str] = []
        self._clean: CachedRun | None = None
        self._corrupt: CachedRun | None = None
        self._memo: dict = {}
        self.charged = 0.0
        """Seconds of memoised work reused so far (a method's time adds what it reused: :meth:`memo`)."""
        self.context: dict = {}  # how the pair was set up (clips, text, answer, alignment), for results

    def memo(self, key, compute: Callable[[], object]):
        """``compute()`` once per ``key`` in this session; a later call returns the stored value and adds the
        seconds it took (memoised work it reused included) to :attr:`charged`, so that the time of a method that
        reuses it (``charged`` before and after, added to its clock) is the time it would take alone."""
        hit = self._recall(key)
        if hit is None:
            before, start = self.charged, time.perf_counter()
            value = compute()
            hit = self._memo[key] = (value, time.perf_counter() - start + self.charged - before)
        return hit[0]

    def _recall(self, key) -> tuple | None:
        """The stored ``(value, seconds)`` of ``key``, its seconds added to :attr:`charged`; None if not stored."""
        hit = self._memo.get(key)
        if hit is not None:
            self.charged += hit[1]
        return hit

    # ------------------------------------------------------------------ runs
    def hook_names(self, hooks) -> list[str]:
        """Hook names a filter selects (raises a one-line error when it matches nothing)."""
        return select(self.model.points, hooks)

    def runs(self, names: list[str] = ()) -> tuple[CachedRun, CachedRun]:
        """The cached ``(clean, corrupt)`` runs, with activations at least at ``names``."""
        missing = [n for n in names if n not in self._names]
        if self._clean is None or missing:
            self._names = [n for n in self.model.points if n in set(self._names) | set(names)]
            if any(n.startswith("decoder.") for n in self._names):
                self._check_decoder_lengths()
            full = "decoder.hook_logits" in self._names
            pair, metric = self.pair, self.metric
            with torch.no_grad():
                self._clean = self.runner.forward(pair.clean, metric.readout(pair.clean_context), self._names,
                                                  full_logits=full)
                metric.bind_clean(self._clean.outputs)
                self._corrupt = self.runner.forward(pair.corrupt, metric.readout(pair.corrupt_context), self._names,
                                                    full_logits=full)
        return self._clean, self._corrupt

    def _check_decoder_lengths(self) -> None:
        a, b = self.pair.clean_context, self.pair.corrupt_context
        if len(a) != len(b):
            raise OtoscopeError(f"decoder hooks are patched token by token, but the clean decoder input is {len(a)} "
                                f"tokens and the corrupt one {len(b)} ({describe_tokens(self.model, a)} vs "
                                f"{describe_tokens(self.model, b)}); use a text/prompt pair that tokenises to the "
                                "same length.")

    def _tokens_differ(self) -> bool:
        """Whether the two runs' decoder tokens differ (a text-context pair); raises where their lengths do,
        since integrated gradients interpolates the token embeddings position by position."""
        a, b = self.pair.clean_context, self.pair.corrupt_context
        if a is None or a == b:
            return False
        if len(a) != len(b):
            raise OtoscopeError(f"attribution-ig interpolates the decoder's token embeddings position by position, "
                                f"but the clean decoder input is {len(a)} tokens and the corrupt one {len(b)}; use "
                                "a text/prompt pair that tokenises to the same length, or method='attribution'.")
        return True

    def _value(self, run: CachedRun) -> float:
        with torch.no_grad():
            return float(self.metric.score(run.outputs)[0])

    @property
    def clean_value(self) -> float:
        """The metric on the unpatched clean run."""
        return self._value(self.runs()[0])

    @property
    def corrupt_value(self) -> float:
        """The metric on the unpatched corrupt run."""
        return self._value(self.runs()[1])

    def base_and_source(self, direction: str, names: list[str]) -> tuple[CachedRun, CachedRun]:
        """``(run patched into, run patched from)``: denoising patches clean into corrupt, noising the reverse."""
        clean, corrupt = self.runs(names)
        return (corrupt, clean) if direction == "denoising" else (clean, corrupt)

    # ------------------------------------------------------------------ cells
    def cells(self, config, names: list[str]) -> list[Cell]:
        """The cells of a sweep over ``names``."""
        check_units(self.model, names, config, self.pair.n_frames)  # fail before any forward pass
        clean, _ = self.runs(names)
        shapes = {n: tuple(clean.acts[n].shape) for n in names}
        n_tokens = None if self.pair.corrupt_context is None else len(self.pair.corrupt_context)
        return make_cells(self.model, names, config, self.pair.n_frames, n_tokens, shapes)

    # ------------------------------------------------------------------ sweeps
    def exact(self, cells: list[Cell], direction: str, batch_size: int | None = None) -> np.ndarray:
        """Metric of the patched run for each cell, ``[cells]``, batching cells of one hook together
        (``batch_size`` cells per forward; default: the session's). A cell measured before in this session
        and direction is not run again (:meth:`memo`: charged its share of the batch it was run in)."""
        from tqdm.auto import tqdm

        batch_size = batch_size or self.batch_size
        values = np.empty(len(cells), dtype=np.float64)
        todo = []
        for i, cell in enumerate(cells):
            hit = self._recall(("exact", direction, cell))
            if hit is None:
                todo.append(i)
            else:
                values[i] = hit[0]
        if not todo:
            return values
        names = list(dict.fromkeys(cells[i].hook for i in todo))
        base, source = self.base_and_source(direction, names)
        full = "decoder.hook_logits" in self._names
        bar = tqdm(total=len(todo), desc=f"patch ({direction})", unit="cell", disable=not self.progress)
        for hook, index in _groups([cells[i] for i in todo]).items():
            index = [todo[j] for j in index]
            layout, shape = HookLayout.of(self.model.points[hook]), tuple(base.acts[hook].shape)
            for start in range(0, len(index), batch_size):
                chunk = index[start : start + batch_size]
                started = time.perf_counter()
                mask = cell_mask([cells[i] for i in chunk], layout, shape)
                out = self.runner.run_patched(base, hook, mask, source.acts[hook], full)
                values[chunk] = self.metric.score(out).double().cpu().numpy()
                share = (time.perf_counter() - started) / len(chunk)
                for i in chunk:
                    self._memo[("exact", direction, cells[i])] = (float(values[i]), share)
                bar.update(len(chunk))
        bar.close()
        return values

    def path(self, cell: Cell, direction: str, alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> np.ndarray:
        """Metric along the straight path from the base to the patched run in one cell: the activation there
        is ``base + α (source − base)`` for each α. Attribution patching is the tangent at α = 0, so a flat
        start and a late rise (a threshold) is where it underestimates."""
        base, source = self.base_and_source(direction, [cell.hook])
        hook = cell.hook
        layout, shape = HookLayout.of(self.model.points[hook]), tuple(base.acts[hook].shape)
        if shape[0] != 1:
            raise OtoscopeError("path() needs one row per run: encoder hooks, or decoder hooks with one-token answers.")
        a = torch.tensor(list(alphas), dtype=base.acts[hook].dtype, device=base.acts[hook].device)
        a = a.view(-1, *([1] * (len(shape) - 1)))
        mixed = base.acts[hook] + a * (source.acts[hook] - base.acts[hook])  # [alphas, ...]
        mask = cell_mask([cell] * len(alphas), layout, shape)
        out = self.runner.run_patched(base, hook, mask, mixed, "decoder.hook_logits" in self._names)
        return self.metric.score(out).double().cpu().numpy()

    def attribution(self, cells: list[Cell], direction: str, alphas: Sequence[float] = (0.0,),
                    hooks: Sequence = ()) -> np.ndarray:
        """First-order estimate of each cell's patched metric from a forward and a backward pass per point of
        ``alphas``, for all cells at once.

        value ≈ metric(base) + Σ_cell (source − base) · mean_α ∂metric/∂activation, the gradient taken on the
        model run on the *inputs* ``base + α (source − base)`` (the features, and the decoder's token
        embeddings where the two runs' decoder tokens differ). ``alphas=(0,)``: the run patched into itself,
        Nanda's attribution patching (exact for a metric linear in the activation); :func:`ig_alphas`:
        integrated gradients (EAP-IG with input interpolation, Hanna et al. 2024), whose average gradient
        along the path sees a threshold the tangent at the base run misses. ``hooks``: extra ``(name, fn)``
        hooks on the gradient runs, run before the deltas on a shared hook (a pass with them is never shared;
        AtP*'s GradDrop uses :meth:`attribution_backwards` instead).
        """
        self._require_gradient()
        alphas = [float(a) for a in alphas]
        if not alphas or not all(0.0 <= a <= 1.0 for a in alphas):
            raise OtoscopeError(f"alphas must be one or more points in [0, 1], got {alphas}.")
        names = list(dict.fromkeys(c.hook for c in cells))
        embed = any(alphas) and self._tokens_differ()  # interpolate the decoder's token embeddings too
        base, source = self.base_and_source(direction, names + (["decoder.hook_embed"] if embed else []))
        if any(alphas) and base.inputs.features.shape != source.inputs.features.shape:
            raise AssertionError("the pair's inputs differ in shape after alignment")
        deltas: dict[str, torch.Tensor] = {}
        add_delta = _delta_hook(deltas)

        def mix(alpha: float):  # base token embeddings (the activation) moved α of the way to the source's
            target = source.acts["decoder.hook_embed"]
            return lambda act, hook: act + alpha * (target.to(act) - act)

        from tqdm.auto import tqdm

        def gradients(alpha: float) -> tuple:
            inputs, run_hooks = base.inputs, list(hooks) + [(n, add_delta) for n in names]  # extra hooks first
            if alpha:
                x0, x1 = base.inputs.features, source.inputs.features
                inputs = dataclasses.replace(base.inputs, features=x0 + alpha * (x1 - x0))
                if embed:
                    run_hooks.insert(0, ("decoder.hook_embed", mix(alpha)))  # before a delta on the same hook
            with frozen_weights(self.model):
                value = self._gradient_run(base, inputs, names, run_hooks, from_cache=not alpha)
                return torch.autograd.grad(value, [deltas[n] for n in names], allow_unused=True)

        total: list[torch.Tensor | None] = [None] * len(names)
        for alpha in tqdm(alphas, desc=f"gradients ({direction})", unit="step",
                          disable=not self.progress or len(alphas) == 1):
            # the pass at one point of the path is shared by the methods that take it (attribution, the
            # two-point/hybrid midpoint, integrated gradients' steps); extra hooks change it: never shared
            grads = (gradients(alpha) if hooks else
                     self.memo(("gradients", direction, tuple(names), alpha), lambda: gradients(alpha)))
            total = [g if t is None else (t if g is None else t + g) for t, g in zip(total, grads)]
        grads = [None if t is None else t / len(alphas) for t in total]
        return self._first_order(cells, names, grads, base, source)

    def _require_gradient(self) -> None:
        if not self.metric.differentiable:
            raise OtoscopeError(f"metric '{self.metric.name}' has no gradient; attribution patching needs a smooth "
                                "metric such as logit_diff.")

    def _gradient_run(self, base: CachedRun, inputs, names: list[str], run_hooks, from_cache: bool) -> torch.Tensor:
        """The summed metric of a run on ``inputs`` with ``run_hooks``, with its graph (the caller differentiates).
        ``from_cache``: the run is ``base``'s up to the first hook of ``names``, so the runner may start there."""
        full = "decoder.hook_logits" in self._names
        outputs = self.runner.forward_from(base, names, run_hooks, full) if from_cache else None
        if outputs is None:
            outputs = self.runner.forward(inputs, base.readout, (), run_hooks, grad=True, full_logits=full).outputs
        return self.metric.score(outputs).sum()

    def _first_order(self, cells: list[Cell], names: list[str], grads, base: CachedRun, source: CachedRun) -> np.ndarray:
        """metric(base) + Σ_cell (source − base) · grad per cell, ``grads`` one per hook of ``names`` (None: 0)."""
        base_value = self._value(base)  # the cached run's score, so an empty cell reads exactly as unpatched
        values = np.full(len(cells), base_value, dtype=np.float64)
        groups = _groups(cells)
        for hook, grad in zip(names, grads):
            if grad is None:  # the metric does not depend on this hook at all
                continue
            contrib = ((source.acts[hook] - base.acts[hook]) * grad).sum(0, keepdim=True)  # [1, ...]
            layout, shape = HookLayout.of(self.model.points[hook]), tuple(contrib.shape)
            index = groups[hook]
            for start in range(0, len(index), 256):
                chunk = index[start : start + 256]
                mask = cell_mask([cells[i] for i in chunk], layout, shape).to(contrib.device)
                summed = contrib.sum([d for d in range(1, contrib.ndim) if mask.shape[d] == 1], keepdim=True)
                est = (mask * summed).sum(list(range(1, contrib.ndim)))  # [chunk]
                values[chunk] += est.double().cpu().numpy()
        return values

    def attribution_backwards(self, cells: list[Cell], direction: str, hooks: Sequence,
                              settings: Sequence[Callable[[], None]], after: Sequence = ()) -> list[np.ndarray]:
        """Attribution at the base run (α = 0) with several backward passes over one forward pass: before pass
        i, ``settings[i]()`` runs, and ``hooks`` (whose autograd functions read what it set) shape that pass's
        gradient. One estimate ``[cells]`` per setting; AtP*'s GradDrop stops a different layer's gradient in
        each, for one forward instead of one per layer. ``after``: hooks run after the deltas on a shared hook
        point (``hooks`` run before them)."""
        self._require_gradient()
        names = list(dict.fromkeys(c.hook for c in cells))
        base, source = self.base_and_source(direction, names)
        deltas: dict[str, torch.Tensor] = {}
        add_delta = _delta_hook(deltas)

        run_hooks = list(hooks) + [(n, add_delta) for n in names] + list(after)
        out = []
        with frozen_weights(self.model):
            value = self._gradient_run(base, base.inputs, names, run_hooks, from_cache=True)
            for i, setting in enumerate(settings):
                setting()
                grads = torch.autograd.grad(value, [deltas[n] for n in names], allow_unused=True,
                                            retain_graph=i < len(settings) - 1)
                out.append(self._first_order(cells, names, grads, base, source))
        return out
