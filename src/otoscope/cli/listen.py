"""``otoscope listen --model M --pairs DIR --out DIR``: gc(k) per LLM block of an audio-LLM (exact or by attribution),
the logit lens, and with ``--window-tokens`` / ``--window-seconds`` the LLM block × audio window sweep; parse, call,
print."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from otoscope.cli.args import device, nonneg_int, positive_float, positive_int


def _cmd_listen(args) -> None:
    # imports stay inside the command: `otoscope --help` must not load torch
    from otoscope.listen.output import run_listen
    from otoscope.models.loader import load

    model = load(args.model, device=args.device, dtype=args.dtype)
    result, lens, windows = run_listen(model, args.pairs, args.out, direction=args.direction, engine=args.engine,
                                       n_boot=args.boot, seed=args.seed, lens=not args.no_lens, method=args.method,
                                       window_tokens=args.window_tokens, window_seconds=args.window_seconds)
    kept = len(result.pairs) - len(result.dropped)
    estimate = " (attribution: every Δ and gc a first-order estimate)" if args.method != "exact" else ""
    print(f"{result.model}: gc(k) over {kept} pair(s), {result.direction}, metric {result.metric}{estimate}")
    print(f"  {'block':>5}  {'gc':>6}  {'interval':>15}  {'Δaudio':>7}  {'Δtext':>7}  {'Δreadout':>8}")
    fmt = lambda x: "   nan" if not math.isfinite(x) else f"{x:6.3f}"  # noqa: E731
    for layer in result.layers:
        interval = f"[{fmt(layer.gc_low)}, {fmt(layer.gc_high)}]" if math.isfinite(layer.gc_low) else ""
        print(f"  {layer.layer:5d}  {fmt(layer.gc)}  {interval:>15}  {layer.delta_audio:7.3f}  {layer.delta_text:7.3f}  "
              f"{layer.delta_readout:8.3f}  {layer.note}")
    if result.dropped:
        print(f"left out (clean and corrupt score the same): {', '.join(result.dropped)}")
    if windows is not None:
        size = f"{args.window_tokens} token(s)" if args.window_tokens else f"{args.window_seconds:g} s"
        top = windows.strongest()
        print(f"audio windows of {size}: " + ("no pair with an effect" if top is None else
              f"strongest mean effect {top[0]:.3f} at block {top[1]}, window from {top[2]:.2f} s"))
    print(f"wrote {Path(args.out) / 'listen.json'}, listen.csv, listen.png" + (", lens.json" if lens else "")
          + (", windows.json, windows.csv, windows.png" if windows is not None else ""))


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``listen`` command to the main command's subparsers."""
    p = subparsers.add_parser("listen", help="audio-LLMs: grounding coefficient gc(k) per LLM block over minimal pairs "
                                             "(listen vs guess), plus the logit lens")
    p.add_argument("--model", "-m", required=True, help="audio-LLM name, HF id or folder (e.g. tiny-random-qwen2audio, "
                                                        "Qwen/Qwen2-Audio-7B-Instruct)")
    p.add_argument("--pairs", required=True, type=Path, help="a pair folder (pair.json) or a folder of them")
    p.add_argument("--out", required=True, type=Path, help="output folder (listen.json, listen.csv, listen.png, lens.json)")
    p.add_argument("--direction", choices=("denoising", "noising"), default="denoising",
                   help="denoising: clean into corrupt (default); noising: corrupt into clean")
    p.add_argument("--engine", choices=("fast", "naive"), default="fast",
                   help="fast: prefix-KV reuse (default); naive: one full forward per cell")
    p.add_argument("--method", choices=("exact", "attribution"), default="exact",
                   help="exact: every patch measured (default); attribution: first-order estimates from one backward "
                        "pass per pair (gc and windows are then estimates; the JSON says so)")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--window-tokens", type=positive_int, default=None, metavar="N",
                        help="also sweep LLM block × audio windows of N audio tokens (windows.json/.csv/.png)")
    window.add_argument("--window-seconds", type=positive_float, default=None, metavar="S",
                        help="also sweep LLM block × audio windows of S seconds")
    p.add_argument("--boot", type=nonneg_int, default=1000, help="bootstrap resamples over pairs (default 1000; 0: none)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--no-lens", action="store_true", help="skip the logit lens")
    p.add_argument("--device", default=None, type=device, help="cpu, cuda, cuda:1, … (default cpu)")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                   help="weights dtype (default float32; bfloat16 for 7B models on a GPU)")
    p.set_defaults(func=_cmd_listen)
    return p
