"""Activation patching on whisper-tiny.en: the exact engine and attribution patching against the
TransformerLens way (one full forward per cell, batch 1, nothing reused but the clean activations).

Run: .venv/bin/python benchmarks/patching.py [PAIR_DIR] [--threads=N]   (default pair:
tests/fixtures/pairs/london_paris, "My name is John and I live in London." vs "... Paris.", 2.95 s, espeak-ng
en-us; default threads: torch's). Both sides always run with the same threads.

Sweep: encoder hook_resid_post, all 4 layers, denoising, logit diff " London" − " Paris" after
" My name is John and I live in".
* exact: the 10-frame-window sweep over the real frames (15 windows × 4 layers), by the per-cell loop and
  by the engine, timed in alternating chunks of 8 cells so both see the same machine load; each side's time
  includes its unpatched clean and corrupt runs (TransformerLens' workflow: run_with_cache on clean, a
  corrupt baseline, then one run_with_hooks per cell). max_abs_diff compares their metric values cell by cell (logit units).
* attribution: the 1-frame sweep (every real frame × 4 layers) by attribution patching (session set-up
  included) against the per-cell loop, whose time is extrapolated from a timed random sample of cells.
* spearman_attribution: attribution vs exact normalised scores on the 10-frame sweep.
* attribution-ig (integrated gradients, ig_steps=5 forward and backward passes on inputs interpolated between
  the corrupt and the clean log-mel features): speedup_attribution_ig is the 1-frame sweep by it (session
  set-up included) against the same extrapolated per-cell loop; spearman_attribution_ig (and per layer) its
  agreement with exact on the 10-frame sweep, as for attribution; pearson_attribution(_ig) and
  max_abs_error_attribution(_ig) the linear agreement and the largest normalised error of both estimates.
* end to end (speedup_end_to_end): the 5-frame-window sweep of speech_park.flac ("The dog is running in the
  park.") against speech_weather.flac ("The weather is nice today.", trimmed to the same 2.01 s), text " The",
  logit diff " dog" − " weather", denoising, exact, all 4 encoder layers (84 cells), run as a user runs it:
  ``otoscope patch ...`` in a fresh process (interpreter start, imports, model load, sweep, patch.json and
  heatmap.png all included), against the per-cell loop in this process, whose model is already loaded
  (reading the clips, the clean cache, the corrupt baseline and one run_with_hooks per cell).
  max_abs_diff_end_to_end compares the CLI's patch.json values with the loop's.
Run only that part with --only=end_to_end.
* methods (--only=methods runs only this part): every method of otoscope.patching.METHODS on one sweep of a
  session whose clean and corrupt runs are cached (set-up outside every clock), exact included (each other
  method runs before and after exact, timed by the mean of its two runs), scored against exact
  (otoscope.patching.scores: Spearman, Pearson, top-5 recall, share of the effect inside the swapped word's
  span, time / exact's time); hybrid at several top_k. Two sweeps of the same pair and hooks, because a
  method's fraction of exact's time depends on the number of cells (a gradient pass costs the same whatever
  the cells, exact patching one run per cell):
  - the issue's sweep, 10-frame windows (15 windows × 4 layers = 60 cells): its figures under the issue's keys,
    best_cheap_method, spearman_best_cheap, time_fraction_best_cheap (time / exact's time on this sweep), and
    best_cheap_within_budget, target_met, exact_s, methods, methods_window, methods_cells;
  - a finer sweep, --fine-window=N-frame windows (default 1: every real frame, 148 × 4 = 592 cells): the same
    figures with the suffix _fine (best_cheap_method_fine, spearman_best_cheap_fine,
    time_fraction_best_cheap_fine, target_met_fine, window_fine, cells_fine, ...); --fine-window=0 skips it.
  On each, best_cheap_method is the method with the highest Spearman among those at <= 10% of exact's time
  (random excluded) — or, when none is, among all faster than exact, with best_cheap_within_budget false;
  target_met says whether it reaches Spearman >= 0.8 within 10% (issue 11 §3). --methods=a,b limits the
  methods run (exact always runs).
--help prints this text.
Last line: one JSON object.
"""

import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import otoscope
from otoscope.patching import METHODS, SweepConfig, agreement, open_session, sweep
from otoscope.patching.api import cell_results
from otoscope.patching.scores import region_mask, score_method
from otoscope.patching.naive import naive_patching, naive_run, source_activations
from otoscope.stimuli.pairs import load_pair
from otoscope.patching.result import PatchResult

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
ONLY = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")), None)
THREADS = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--threads=")), None)
PAIR = Path(ARGS[0]) if ARGS else Path(__file__).parents[1] / "tests/fixtures/pairs/london_paris"
HOOKS = "encoder.blocks.*.hook_resid_post"
SAMPLE = 24  # cells timed for the per-cell loop's extrapolation (>= 20)
AUDIO = Path(__file__).parents[1] / "tests/fixtures/audio"
E2E = dict(clean=AUDIO / "speech_park.flac", corrupt=AUDIO / "speech_weather.flac", text=" The", answer=" dog",
           wrong=" weather", window=5, align="trim")
CLI = "import sys; from otoscope.cli.main import main; sys.argv[0] = 'otoscope'; sys.exit(main())"


def naive(model, session, cells, cache):
    pair = session.pair
    return naive_patching(model, pair.corrupt, pair.clean, session.metric, pair.corrupt_context, pair.clean_context,
                          cells, cache)


def clean_cache(model, session, names):
    pair = session.pair
    return source_activations(model, pair.clean, session.metric, pair.clean_context, names)


def exact_comparison(model, pair, batch_size=8):
    """Both ways, in alternating chunks → (naive_s, engine_s, naive values, engine values, session, cells, cache)."""
    args = dict(text=pair.text, answer=pair.answer, wrong=pair.wrong)
    start = time.perf_counter()
    session = open_session(model, pair.clean, pair.corrupt, batch_size=batch_size, **args)
    names = session.hook_names(HOOKS)
    session.runs(names)  # the engine's clean and corrupt runs, cached once
    engine_s = time.perf_counter() - start
    cells = session.cells(SweepConfig(hooks=HOOKS, window=10), names)
    fast, slow = np.empty(len(cells)), np.empty(len(cells))
    t = time.perf_counter()
    cache = clean_cache(model, session, names)  # the loop's clean run, cached as TransformerLens does, and
    naive_run(model, session.pair.corrupt, session.metric, session.pair.corrupt_context)  # its corrupt baseline
    naive_s = time.perf_counter() - t
    # alternate in small chunks (one engine batch each), each side first in turn, so that load from other
    # processes falls on both sides alike
    chunks = [[i for i, c in enumerate(cells) if c.hook == name] for name in names]
    chunks = [idx[j : j + batch_size] for idx in chunks for j in range(0, len(idx), batch_size)]
    for k, idx in enumerate(chunks):
        group = [cells[i] for i in idx]
        for side in ((0, 1) if k % 2 == 0 else (1, 0)):
            t = time.perf_counter()
            if side == 0:
                slow[idx] = naive(model, session, group, cache)
                naive_s += time.perf_counter() - t
            else:
                fast[idx] = session.exact(group, "denoising")
                engine_s += time.perf_counter() - t
    return naive_s, engine_s, slow, fast, session, cells, cache


def print_agreement(method, agree):
    """One estimate against exact patching on the 10-frame sweep, and its worst cells."""
    print(f"{method} vs exact (10-frame sweep): spearman {agree.spearman:.3f}, pearson {agree.pearson:.3f}, "
          f"max |error| {agree.max_abs_error:.3f} (normalised); per layer: "
          + ", ".join(f"{k.split('.')[2]}: {v:.2f}" for k, v in agree.per_layer.items()))
    for w in agree.worst:
        print(f"  worst: {w['hook']} frames {w['frames']}: exact {w['exact']:.3f}, {method} {w['attribution']:.3f}")


def diagnose(model, session, exact10, attr10, agree):
    """Why attribution misses the cells it misses: the metric along the path from corrupt to patched (attribution
    is its tangent at α = 0), how much layer norm rescales the patched frames, and how concentrated the last
    decoder layer's cross-attention is on them."""
    from otoscope.patching import Cell

    clean_run, corrupt_run = session.runs()
    clean, corrupt = session.clean_value, session.corrupt_value
    alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
    last = model.n_decoder_layers - 1
    pattern = f"decoder.blocks.{last}.cross_attn.hook_pattern"
    mass = {}
    for name, inputs in (("clean", session.pair.clean), ("corrupt", session.pair.corrupt)):
        _, cache = model.run_with_cache(inputs, names_filter=pattern)
        mass[name] = cache[pattern][0, :, -1]  # [heads, frames]: the prediction position's attention
    cells = []
    for w in agree.worst[:3]:
        cell = Cell(w["hook"], w["frames"][0], w["frames"][1], "frames")
        path = (session.path(cell, "denoising", alphas) - corrupt) / (clean - corrupt)
        a, b = cell.start, cell.end
        norm = lambda run: run.acts[cell.hook][0, a:b].norm(dim=-1).mean().item()  # noqa: E731
        x0, x1 = corrupt_run.acts[cell.hook][0, a:b], clean_run.acts[cell.hook][0, a:b]
        # how much the first layer norm after the patch bends the straight path: the mid-path residual's norm
        # against the endpoints' (1 = layer norm scales the path uniformly, i.e. acts linearly on it)
        mid = ((x0 + x1) / 2).norm(dim=-1) / ((x0.norm(dim=-1) + x1.norm(dim=-1)) / 2)
        cells.append({"hook": cell.hook, "frames": [a, b], "exact": round(w["exact"], 3),
                      "attribution": round(w["attribution"], 3), "path_alpha": list(alphas),
                      "path_normalized": [round(float(v), 3) for v in path],
                      "resid_norm_clean_over_corrupt": round(norm(clean_run) / norm(corrupt_run), 3),
                      "mid_path_norm_ratio": round(mid.mean().item(), 3),
                      "cross_attn_mass_clean": round(mass["clean"][:, a:b].sum(-1).mean().item(), 3),
                      "cross_attn_mass_corrupt": round(mass["corrupt"][:, a:b].sum(-1).mean().item(), 3),
                      "cross_attn_max_corrupt": round(mass["corrupt"][:, a:b].max().item(), 3)})
        c = cells[-1]
        print(f"  why {cell.hook} {a}-{b}: metric along corrupt→patched α={list(alphas)}: {c['path_normalized']} "
              f"(attribution = tangent at 0: {c['attribution']}); residual norm clean/corrupt "
              f"{c['resid_norm_clean_over_corrupt']}, mid-path {c['mid_path_norm_ratio']}; last decoder layer's cross-attention on these frames "
              f"{c['cross_attn_mass_corrupt']} (corrupt) → {c['cross_attn_mass_clean']} (clean), max head weight "
              f"{c['cross_attn_max_corrupt']}")
    exact = np.array([c.normalized for c in exact10.cells])
    estimate = np.array([c.normalized for c in attr10.cells])
    small = np.abs(exact) < 0.05
    from otoscope.patching.result import spearman

    groups = {"small_cells": int(small.sum()), "small_max_abs_error": round(float(np.abs(exact - estimate)[small].max()), 4),
              "small_spearman": round(spearman(exact[small], estimate[small]), 3),
              "large_cells": int((~small).sum()), "large_spearman": round(spearman(exact[~small], estimate[~small]), 3)}
    flat = all(c["path_normalized"][1] < 0.25 * c["path_normalized"][-1] for c in cells)
    bend = min(c["mid_path_norm_ratio"] for c in cells)
    attn = cells[0]
    path = (f"a threshold: along the path from the corrupt to the patched activation the metric stays near 0 for "
            f"the first quarter and rises late (e.g. {cells[0]['path_normalized']} at α = 0, .25, .5, .75, 1), so the "
            f"gradient at the corrupt run sees the flat start and" if flat else
            f"a non-linear path from the corrupt to the patched activation (e.g. {cells[0]['path_normalized']} at "
            f"α = 0, .25, .5, .75, 1), whose tangent at the corrupt run")
    saturated = attn["cross_attn_max_corrupt"] > 0.5
    summary = (f"{path} underestimates the {groups['large_cells']} cells with |effect| >= 0.05 (Spearman among them "
               f"{groups['large_spearman']}). Layer norm: the first one after the patch rescales the middle of the "
               f"path by at most {1 / bend - 1:.0%} (mid-path norm / endpoint norm >= {bend}). Attention: the last "
               f"decoder layer's cross-attention on the word's first window is "
               f"{'saturated' if saturated else 'not saturated'} (mass {attn['cross_attn_mass_corrupt']} corrupt -> "
               f"{attn['cross_attn_mass_clean']} clean, max head weight {attn['cross_attn_max_corrupt']}). "
               + ("So neither single unit saturates: the threshold is built up by the layers downstream, the model's "
                  "decision between the two words. " if bend > 0.9 and not saturated else "")
               + f"The other {groups['small_cells']} cells (|effect| < 0.05) agree to within "
               f"{groups['small_max_abs_error']}, with Spearman {groups['small_spearman']} among them: small effects "
               "whose order is partly noise.")
    print(f"  diagnosis: {summary}")
    return {"summary": summary, **groups, "cells": cells}


HYBRID_K = (2, 5)  # hybrid's exact re-measures (5 is its default)
ONLY_METHODS = next((a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--methods=")), None)
FINE_WINDOW = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--fine-window=")), 1)
BUDGET = 0.10  # a cheap method takes at most this share of exact patching's time


def method_sweep(model, pair, window: int) -> dict:
    """Every registered method on the ``window``-frame sweep of one cached session, scored against exact patching."""
    session = open_session(model, pair.clean, pair.corrupt, text=pair.text, answer=pair.answer, wrong=pair.wrong)
    config = SweepConfig(hooks=HOOKS, window=window)
    session.runs(session.hook_names(HOOKS))  # set-up, outside every method's clock
    word = next(w for w in pair.clean_words if w.word.strip(" .").lower() == pair.answer.strip().lower())
    names = [n for n in METHODS if ONLY_METHODS is None or n in ONLY_METHODS or n == "exact"]
    runs = [(name, {}) for name in names if name != "hybrid"] + [("hybrid", {"top_k": k}) for k in HYBRID_K
                                                                 if "hybrid" in names]
    results, seconds = {}, {}
    # every method but exact runs before and after it and is timed by the mean of the two, so that load from
    # other processes, which changes over minutes, falls on both sides alike
    order = [r for r in runs if r[0] != "exact"] + [("exact", {})] + [r for r in runs if r[0] != "exact"]
    for name, options in order:
        label = name + "".join(f"_k{v}" for v in options.values())
        results[label] = METHODS[name](session, dataclasses.replace(config, **options))
        seconds.setdefault(label, []).append(results[label].context["seconds"])
    for label, times in seconds.items():
        results[label].context["seconds"] = float(np.mean(times))
    exact = results["exact"]
    region = region_mask(exact, word.start, word.end)
    scores = {label: score_method(exact, r, region) for label, r in results.items()}
    print(f"{window}-frame sweep, {len(exact.cells)} cells ({window}-frame windows × {model.n_layers} layers), "
          f"exact {exact.context['seconds']:.2f} s:")
    for label, sc in scores.items():
        print(f"  {label:16s} spearman {sc.spearman:6.3f}  pearson {sc.pearson:6.3f}  top-5 recall {sc.top_recall:.1f}  "
              f"in '{word.word}' {sc.region_share:.2f}  time {results[label].context['seconds']:7.2f} s "
              f"({sc.time_fraction:.3f} of exact)")
    candidates = {k: v for k, v in scores.items() if k not in ("exact", "random") and v.time_fraction < 1}
    cheap = {k: v for k, v in candidates.items() if v.time_fraction <= BUDGET}
    within = bool(cheap)
    cheap = cheap or candidates  # none inside the budget: the best of the rest, said so
    best = max(cheap, key=lambda k: cheap[k].spearman) if cheap else None
    met = bool(best) and within and cheap[best].spearman >= 0.8
    print(f"  best cheap method ({'within' if within else 'none within, best outside'} {BUDGET:.0%} of exact's time): "
          f"{best}" + (f", spearman {cheap[best].spearman:.3f} at {cheap[best].time_fraction:.3f} of exact's time"
                       if best else "") + f" — target (spearman >= 0.8 within {BUDGET:.0%}) {'met' if met else 'not met'}")
    return {"window": window, "cells": len(exact.cells), "region": [word.word, word.start, word.end],
            "exact_s": exact.context["seconds"], "methods": {k: v.to_json() for k, v in scores.items()},
            "best_cheap_method": best, "spearman_best_cheap": round(cheap[best].spearman, 3) if best else None,
            "time_fraction_best_cheap": round(cheap[best].time_fraction, 4) if best else None,
            "best_cheap_within_budget": within, "target_met": met}


def methods(model, pair) -> dict:
    """The methods on the issue's 10-frame sweep (its figures under the issue's keys) and on the finer
    ``FINE_WINDOW``-frame sweep of the same pair (the same figures, suffixed ``_fine``)."""
    issue = method_sweep(model, pair, 10)
    out = {"methods_region": issue.pop("region"), "methods_window": issue.pop("window"),
           "methods_cells": issue.pop("cells"), **issue}
    if FINE_WINDOW:
        fine = method_sweep(model, pair, FINE_WINDOW)
        del fine["region"]
        out.update({f"{k}_fine": v for k, v in fine.items()})
    return out


def end_to_end(model) -> dict:
    """``otoscope patch`` in a fresh process against the per-cell loop in this already-loaded model."""
    e = E2E
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", CLI, "patch", "--clean", str(e["clean"]), "--corrupt", str(e["corrupt"]),
               "--text", e["text"], "--answer", e["answer"], "--wrong", e["wrong"], "--window", str(e["window"]),
               "--align", e["align"], "--hooks", HOOKS, "--out", out]
        env = {**os.environ, **({"OMP_NUM_THREADS": str(THREADS)} if THREADS else {})}
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        cli_s = time.perf_counter() - t
        cli_values = np.array([c["value"] for c in json.loads((Path(out) / "patch.json").read_text())["cells"]])
    t = time.perf_counter()
    session = open_session(model, str(e["clean"]), str(e["corrupt"]), text=e["text"], answer=e["answer"],
                           wrong=e["wrong"], align=e["align"])
    names = session.hook_names(HOOKS)
    cells = session.cells(SweepConfig(hooks=HOOKS, window=e["window"]), names)
    cache = clean_cache(model, session, names)
    naive_run(model, session.pair.corrupt, session.metric, session.pair.corrupt_context)
    values = naive(model, session, cells, cache)
    naive_s = time.perf_counter() - t
    assert len(values) == len(cli_values)
    print(f"end to end, {len(cells)} cells (5-frame windows × {model.n_layers} layers, {session.pair.seconds:.2f} s): "
          f"otoscope patch in a fresh process {cli_s:.1f} s, per-cell loop in a loaded model {naive_s:.1f} s "
          f"→ {naive_s / cli_s:.2f}×")
    return {"cells_end_to_end": len(cells), "cli_s": round(cli_s, 2), "naive_end_to_end_s": round(naive_s, 2),
            "speedup_end_to_end": round(naive_s / cli_s, 2),
            "max_abs_diff_end_to_end": float(np.abs(values - cli_values).max())}


def main():
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        print(__doc__)
        return
    torch.manual_seed(0)
    random.seed(0)
    if THREADS:
        torch.set_num_threads(THREADS)
    model = otoscope.load("whisper-tiny.en")
    if ONLY == "end_to_end":
        print(json.dumps({"model": model.name, "hooks": HOOKS, "threads": torch.get_num_threads(), **end_to_end(model)}))
        return
    pair = load_pair(PAIR)
    print(f"pair: {pair.description}, {pair.clean.seconds:.2f} s; text {pair.text!r}; {pair.answer!r} vs {pair.wrong!r}")
    if ONLY == "methods":
        load = list(os.getloadavg())
        figures = methods(model, pair)
        print(json.dumps({"model": model.name, "pair": PAIR.name, "hooks": HOOKS, "threads": torch.get_num_threads(),
                          "load_average": load, "load_average_end": list(os.getloadavg()), **figures}))
        return

    naive_s, engine_s, slow, fast, session, cells, cache = exact_comparison(model, pair)
    clean, corrupt = session.clean_value, session.corrupt_value
    print(f"exact, {len(cells)} cells (10-frame windows × {model.n_layers} layers): per-cell loop {naive_s:.1f} s, "
          f"engine {engine_s:.1f} s → {naive_s / engine_s:.2f}×; clean {clean:.3f}, corrupt {corrupt:.3f}")
    max_abs_diff = float(np.abs(fast - slow).max())

    # attribution: window-1 sweep, session set-up included
    t = time.perf_counter()
    fresh = open_session(model, pair.clean, pair.corrupt, text=pair.text, answer=pair.answer, wrong=pair.wrong)
    attr1 = sweep(fresh, SweepConfig(hooks=HOOKS, window=1, method="attribution"))
    attribution_s = time.perf_counter() - t
    cells1 = fresh.cells(SweepConfig(hooks=HOOKS, window=1), fresh.hook_names(HOOKS))
    sample = random.sample(cells1, SAMPLE)
    t = time.perf_counter()
    naive(model, session, sample, cache)
    per_cell = (time.perf_counter() - t) / SAMPLE
    loop_s = per_cell * len(cells1)
    print(f"attribution, {len(cells1)} cells (1-frame windows): {attribution_s:.2f} s; per-cell loop "
          f"{loop_s:.0f} s extrapolated from a timed random sample of {SAMPLE} cells ({per_cell:.2f} s/cell) "
          f"→ {loop_s / attribution_s:.0f}×")

    # agreement on the 10-frame sweep
    exact10 = PatchResult(model.name, "denoising", "exact", session.metric.name, clean, corrupt,
                          cell_results(model, cells, fast, clean, corrupt))
    attr10 = sweep(fresh, SweepConfig(hooks=HOOKS, window=10, method="attribution"))
    agree = agreement(exact10, attr10)
    print_agreement("attribution", agree)

    # integrated gradients: the same two sweeps, timed the same way (fresh session, set-up included)
    ig = dict(hooks=HOOKS, method="attribution-ig")
    t = time.perf_counter()
    fresh_ig = open_session(model, pair.clean, pair.corrupt, text=pair.text, answer=pair.answer, wrong=pair.wrong)
    ig1 = sweep(fresh_ig, SweepConfig(window=1, **ig))
    ig_s = time.perf_counter() - t
    assert len(ig1.cells) == len(cells1)
    ig_steps = SweepConfig(**ig).ig_steps
    print(f"attribution-ig ({ig_steps} steps), {len(cells1)} cells (1-frame windows): {ig_s:.2f} s → "
          f"{loop_s / ig_s:.0f}× the per-cell loop")
    ig10 = sweep(fresh_ig, SweepConfig(window=10, **ig))
    agree_ig = agreement(exact10, ig10)
    print_agreement("attribution-ig", agree_ig)

    diagnosis = diagnose(model, session, exact10, attr10, agree)
    report = {"model": model.name, "pair": PAIR.name, "seconds": round(pair.clean.seconds, 2), "hooks": HOOKS,
              "direction": "denoising", "metric": "logit_diff", "threads": torch.get_num_threads(),
              "cells_exact": len(cells), "naive_s": round(naive_s, 2), "engine_s": round(engine_s, 2),
              "speedup_exact": round(naive_s / engine_s, 2), "max_abs_diff": max_abs_diff,
              "cells_attribution": len(cells1), "attribution_s": round(attribution_s, 2),
              "per_cell_loop_s": round(loop_s, 1),
              "per_cell_loop_note": f"extrapolated from a timed random sample of {SAMPLE} cells",
              "speedup_attribution": round(loop_s / attribution_s, 1),
              "spearman_attribution": round(agree.spearman, 3),
              "spearman_attribution_per_layer": {k.split(".")[2]: round(v, 3) for k, v in agree.per_layer.items()},
              "pearson_attribution": round(agree.pearson, 3), "max_abs_error_attribution": round(agree.max_abs_error, 3),
              "ig_steps": ig_steps, "attribution_ig_s": round(ig_s, 2),
              "speedup_attribution_ig": round(loop_s / ig_s, 1),
              "spearman_attribution_ig": round(agree_ig.spearman, 3),
              "spearman_attribution_ig_per_layer": {k.split(".")[2]: round(v, 3) for k, v in agree_ig.per_layer.items()},
              "pearson_attribution_ig": round(agree_ig.pearson, 3),
              "max_abs_error_attribution_ig": round(agree_ig.max_abs_error, 3),
              "attribution_diagnosis": diagnosis, **methods(model, pair), **end_to_end(model)}
    if torch.cuda.is_available():
        gpu = otoscope.load("whisper-tiny.en", device="cuda")
        naive_g, engine_g, slow_g, fast_g, *_ = exact_comparison(gpu, pair, batch_size=32)
        report["speedup_exact_gpu"] = round(naive_g / engine_g, 2)
        report["max_abs_diff_gpu"] = float(np.abs(fast_g - slow_g).max())
        print(f"GPU: per-cell loop {naive_g:.2f} s, engine {engine_g:.2f} s → {naive_g / engine_g:.1f}×")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
