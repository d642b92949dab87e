"""Exact LLM-side patching on an audio-LLM: the prefix-KV engine against one full forward per cell.

A random-weight Qwen2-Audio large enough for the LLM's arithmetic to dominate (8 LLM blocks of width
512, grouped-query attention, a 12 s clip → 300 audio tokens, a 20-token prompt) patches an audio pair
(two clips, one prompt) at every LLM block × {10 windows of 30 audio tokens, the text-prompt tokens, the
readout position}. The baseline is what a user of a hooking library writes: for each cell, one forward of
the whole model with a hook that overwrites the cell's positions of ``llm.blocks.{k}.hook_resid_pre``
with the clean run's values. Both sides start from the same cached clean run (set-up, outside the clocks);
the fast side's clock includes its own target run with the KV cache. The two are timed alternately, in
process CPU time with one torch thread (the work done, whatever else runs on a shared machine; the
wall-clock ratio is printed too) and the best of the repeats is kept.

Last line: one JSON object with "speedup_exact" and "max_abs_diff" (largest difference of a readout logit
between the two engines over every cell).

    .venv/bin/python benchmarks/audio_llm_patching.py [--repeats 2] [--windows 10] [--attribution]

``--attribution`` also times attribution patching of the same cells (one forward and one backward pass,
:mod:`otoscope.listen.attribution`) on the metric logit(a) − logit(b) (a, b: the tokens the clean and corrupt
readouts separate most) and adds ``"attribution_cpu_s"``, ``"speedup_attribution_vs_fast"`` and
``"spearman_attribution"`` (its ranking of the cells against exact) to the JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

LAYERS, WIDTH, HEADS, KV_HEADS, FFN = 8, 512, 8, 4, 1536
SECONDS = 12.0  # → 1200 mel frames → 600 encoder frames → 300 audio tokens (Qwen2-Audio's 2× pooling)
PROMPT_TOKENS = 20  # text tokens around the audio (10 before, 10 after)


def build():
    """A random Qwen2-Audio with the benchmark's sizes, wrapped as a HookedAudioModel."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    from otoscope.models.hooked import HookedAudioModel

    torch.manual_seed(0)
    vocab = 2048
    config = Qwen2AudioConfig(
        audio_config=dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128, num_mel_bins=128,
                          max_source_positions=1500),
        text_config=dict(model_type="qwen2", vocab_size=vocab, hidden_size=WIDTH, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, intermediate_size=FFN,
                         max_position_embeddings=1024, initializer_range=0.1),
        audio_token_index=vocab - 1)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    return HookedAudioModel(model, WhisperFeatureExtractor(feature_size=128), None, name="random-qwen2audio-8x512")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternating timed runs of each engine (default 2)")
    parser.add_argument("--windows", type=int, default=10, help="audio-token windows per block (default 10)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (default 1: on a shared 2-core machine more threads "
                             "make each forward slower, not faster)")
    parser.add_argument("--attribution", action="store_true", help="also time attribution patching of the same cells")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from otoscope.listen.engine import RESID, Cell, fast_patch, naive_patch

    model = build()
    rng = np.random.default_rng(0)
    n = int(SECONDS * 16000)
    clean_audio = (0.3 * rng.standard_normal(n)).astype(np.float32)
    corrupt_audio = (0.3 * rng.standard_normal(n)).astype(np.float32)
    placeholder = model.llm_adapter.placeholder
    half = PROMPT_TOKENS // 2
    ids = list(rng.integers(0, 2000, half)) + [placeholder] + list(rng.integers(0, 2000, half))
    clean = model.prepare(clean_audio, input_ids=ids)
    corrupt = model.prepare(corrupt_audio, input_ids=ids)
    pos = clean.positions[0]
    assert len(pos.audio) == 300 and pos.n_tokens == 320, (len(pos.audio), pos.n_tokens)
    names = [RESID.format(k=k) for k in range(LAYERS)]
    clean_logits, cache = model.run_with_cache(clean, names_filter=names)  # set-up: both engines read the clean run

    width = len(pos.audio) // args.windows
    groups = [("audio", pos.audio[i * width:(i + 1) * width]) for i in range(args.windows)]
    groups += [("text", pos.text), ("readout", [pos.readout])]
    cells = [Cell(name, tuple(g), label) for name in names for label, g in groups]

    wall = {"naive": [], "fast": []}
    cpu = {"naive": [], "fast": []}
    outputs = {}
    for _ in range(args.repeats):
        for engine, fn in (("naive", naive_patch), ("fast", fast_patch)):
            start, start_cpu = time.perf_counter(), time.process_time()
            outputs[engine] = fn(model, corrupt, cache, cells)
            wall[engine].append(time.perf_counter() - start)
            cpu[engine].append(time.process_time() - start_cpu)
    naive, fast = min(cpu["naive"]), min(cpu["fast"])
    diff = float((outputs["naive"] - outputs["fast"]).abs().max())
    spread = float(outputs["naive"].std(0).max())  # how much the cells differ from each other
    extra = {}
    if args.attribution:
        extra = _attribution(model, clean_logits, corrupt, cache, cells, outputs["fast"], min(cpu["fast"]), args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"cells: {len(cells)} ({LAYERS} blocks × {args.windows} audio windows of {width} tokens + text + readout); "
          f"tokens {pos.n_tokens}; torch threads {torch.get_num_threads()}; load {load}")
    print(f"CPU time: naive {naive:.2f} s ({naive / len(cells) * 1000:.0f} ms/cell), fast {fast:.2f} s; "
          f"all CPU timings {cpu}; wall-clock {wall}")
    print(json.dumps({"speedup_exact": round(naive / fast, 2), "max_abs_diff": diff, "naive_cpu_s": round(naive, 3),
                      "fast_cpu_s": round(fast, 3), "speedup_wall": round(min(wall["naive"]) / min(wall["fast"]), 2),
                      "cells": len(cells), "tokens": pos.n_tokens,
                      "audio_tokens": len(pos.audio), "llm_layers": LAYERS, "d_llm": WIDTH,
                      "cell_logit_spread": round(spread, 4), "load_1min": load, **extra}))


def _attribution(model, clean_logits, corrupt, cache, cells, exact_logits, fast_cpu: float, repeats: int) -> dict:
    """Attribution patching of ``cells``: its CPU time (best of ``repeats``) and Spearman against exact."""
    from scipy.stats import spearmanr

    from otoscope.listen.attribution import attribution_patch

    readout = corrupt.positions[0].readout
    with torch.no_grad():
        gap = clean_logits[0, readout] - model(corrupt)[0, readout]
    a, b = int(gap.argmax()), int(gap.argmin())
    score = lambda logits: logits[..., a] - logits[..., b]  # noqa: E731
    times = []
    for _ in range(repeats):
        start = time.process_time()
        estimate = attribution_patch(model, corrupt, cache, cells, score)
        times.append(time.process_time() - start)
    exact = score(exact_logits).numpy()
    best = min(times)
    print(f"attribution: CPU {best:.2f} s; spearman vs exact {spearmanr(exact, estimate).statistic:.3f}")
    return {"attribution_cpu_s": round(best, 3), "speedup_attribution_vs_fast": round(fast_cpu / best, 2),
            "spearman_attribution": round(float(spearmanr(exact, estimate).statistic), 3)}


if __name__ == "__main__":
    main()
