"""``otoscope bench run | build | compare``: parse, call :mod:`otoscope.bench`, print.

The library is imported inside the command functions so ``otoscope --help`` stays instant; task and
method names are checked (with did-you-mean) before any model loads.
"""

from __future__ import annotations

import json
from pathlib import Path

from otoscope.cli.args import device, nonneg_int, positive_float, positive_int


def _cmd_run(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.bench.methods import parse_methods
    from otoscope.bench.runner import RUN_FILE, BenchConfig, run_bench
    from otoscope.bench.suite import parse_tasks

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    config = BenchConfig(models, parse_tasks(args.tasks), tuple(parse_methods(args.methods)), args.quick, args.seed,
                         args.n_pairs, args.window, args.device, args.encoder_seconds)
    check_output_dir(args.out, (RUN_FILE,), "benchmark folder")
    results = run_bench(args.out, config, log=lambda line: print(line, flush=True))
    print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'leaderboard.html'}")
    print(json.dumps({"overall_spearman": {m: {k: v["spearman"] for k, v in r.items()}
                                           for m, r in results["overall"].items()}, "run": results["run"]}))


def _cmd_build(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.bench.suite import MANIFEST, SuiteConfig, build_suite, parse_tasks

    config = SuiteConfig(parse_tasks(args.tasks), args.quick, args.seed, args.n_pairs)
    check_output_dir(args.out, (MANIFEST,), "suite folder")
    models = []
    if args.check_models.strip():
        from otoscope.models.loader import load

        models = [load(m.strip(), device=args.device) for m in args.check_models.split(",") if m.strip()]
    from otoscope.bench.runner import encoder_windows, window_seconds

    with encoder_windows(models, window_seconds(args.quick, args.encoder_seconds)):  # pairs are checked on the model the run will sweep
        suite = build_suite(args.out, config, models, log=lambda line: print(line, flush=True))
    kept = sum(len(t.pairs) for t in suite.tasks.values())
    print(f"wrote {kept} pairs of {len(suite.tasks)} tasks to {args.out} ({MANIFEST} + audio)")


def _cmd_compare(args) -> None:
    from otoscope.bench.compare import TOP, compare_runs

    comparison = compare_runs(args.a, args.b)
    maps, methods = comparison.maps(), comparison.methods()
    print(f"{len(comparison.units)} units compared ({len(comparison.skipped)} not: see --json); b = {args.b} against "
          f"a = {args.a}")
    print("\nexact maps, b against a (means over units; Spearman min in brackets):")
    for row in maps.itertuples():
        print(f"  {row.model:<20} {row.task:<10} {row.units:>3} units  Spearman {row.exact_spearman:.2f} "
              f"({row.exact_spearman_min:.2f})  Pearson {row.exact_pearson:.2f}  top-{TOP} overlap "
              f"{row.exact_top_overlap:.2f}")
    print("\neach method's Spearman against exact, a -> b (means over units):")
    for (model, task), group in methods.groupby(["model", "task"], sort=False):
        cells = "  ".join(f"{r.method} {r.spearman_a:.2f}->{r.spearman_b:.2f}" for r in group.itertuples())
        print(f"  {model:<20} {task:<10} {cells}")
    if args.json:
        from otoscope._io import write_text_atomic

        write_text_atomic(args.json, json.dumps(comparison.to_json(), indent=1, allow_nan=False))
        print(f"\nwrote {args.json}")


def register(sub) -> None:
    """Add ``bench run``, ``bench build`` and ``bench compare`` to the ``otoscope`` parser."""
    bench = sub.add_parser("bench", help="the audio causal benchmark: tasks, methods scored against exact patching")
    commands = bench.add_subparsers(dest="bench_command", required=True)

    def suite_args(p):
        p.add_argument("--tasks", default="all",
                       help="comma list of tasks or 'all': asr-word, keyword, noise, context, nonspeech, ctc-word")
        p.add_argument("--quick", action="store_true", help="a smoke run: 5 pairs per task (40 in the full suite), 500 ms cells, one direction per task, "
                            "attribution-ig with 3 steps, a 5 s encoder window (docs/benchmark.md, Quick)")
        p.add_argument("--n-pairs", type=positive_int, default=None, help="pairs per task (overrides --quick's 5 / 40)")
        p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the task generators (default 0)")
        p.add_argument("--encoder-seconds", type=positive_float, default=None,
                       help="run Whisper's encoder over only the first SECONDS of its 30 s window (like whisper.cpp's "
                            "audio_ctx): several times faster, a slightly different model (docs/benchmark.md); "
                            "default: the whole window, 5 with --quick; 30 for the whole window with --quick")
        p.add_argument("--device", default=None, type=device, help="cpu, cuda, cuda:1, … (default cpu)")
        p.add_argument("--out", required=True, type=Path, help="output folder")

    p = commands.add_parser("run", help="run every method on every task and model; resumable (rerun to continue)")
    p.add_argument("--models", default="whisper-tiny.en,whisper-base", help="comma list of model names")
    p.add_argument("--methods", default="all",
                   help="comma list of methods or 'all': exact, attribution, attribution-ig, atp-qk, atp-star, two-point, "
                        "hybrid, random (exact always runs)")
    p.add_argument("--window", type=positive_int, default=None, help="encoder frames per cell (default 10; 25 with --quick)")
    suite_args(p)
    p.set_defaults(func=_cmd_run)

    p = commands.add_parser("build", help="write the task set (audio + manifest.json), usable without otoscope")
    p.add_argument("--check-models", default="whisper-tiny.en",
                   help="comma list of models each pair is checked on (clean run right), '' for none")
    suite_args(p)
    p.set_defaults(func=_cmd_build)

    p = commands.add_parser("compare", help="compare two runs unit by unit: exact maps' agreement, methods' scores")
    p.add_argument("a", type=Path, help="a 'bench run' folder (the reference)")
    p.add_argument("b", type=Path, help="another 'bench run' folder over the same pairs (e.g. another --encoder-seconds)")
    p.add_argument("--json", type=Path, default=None, help="also write every unit's comparison to this JSON file")
    p.set_defaults(func=_cmd_compare)
