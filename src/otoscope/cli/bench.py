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
    from otoscope.bench.config import BenchConfig
    from otoscope.bench.methods import parse_methods
    from otoscope.bench.runner import RUN_FILE, run_bench
    from otoscope.bench.suite import parse_tasks
    from otoscope.cli.from_config import config_from_args

    config = config_from_args(BenchConfig, args, models=_names(args.models), tasks=parse_tasks(args.tasks),
                              methods=tuple(parse_methods(args.methods)))
    check_output_dir(args.out, (RUN_FILE,), "benchmark folder")
    results = run_bench(args.out, config, log=lambda line: print(line, flush=True))
    print(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'leaderboard.html'}")
    print(json.dumps({"overall_spearman": {m: {k: v["spearman"] for k, v in r.items()}
                                           for m, r in results["overall"].items()}, "run": results["run"]}))


def _cmd_build(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.bench.config import SuiteConfig, window_seconds
    from otoscope.bench.runner import encoder_windows
    from otoscope.bench.suite import MANIFEST, build_suite, parse_tasks
    from otoscope.cli.from_config import config_from_args

    config = config_from_args(SuiteConfig, args, tasks=parse_tasks(args.tasks))
    check_output_dir(args.out, (MANIFEST,), "suite folder")
    models = []
    if args.check_models.strip():
        from otoscope.models.loader import load

        models = [load(m, device=args.device) for m in _names(args.check_models)]
    with encoder_windows(models, window_seconds(args.quick, args.encoder_seconds)):  # checked on the model a run sweeps
        suite = build_suite(args.out, config, models, log=lambda line: print(line, flush=True))
    kept = sum(len(t.pairs) for t in suite.tasks.values())
    print(f"wrote {kept} pairs of {len(suite.tasks)} tasks to {args.out} ({MANIFEST} + audio)")


def _names(spec: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in spec.split(",") if s.strip())


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
    """Add ``bench run``, ``bench build`` and ``bench compare`` to the ``otoscope`` parser.

    ``run``'s flags are :class:`~otoscope.bench.config.BenchConfig`'s fields and ``build``'s the task set's
    among them (names, defaults and help from the dataclass; lists are given as comma lists)."""
    from otoscope.bench.config import BenchConfig
    from otoscope.cli.from_config import add_config_flags

    bench = sub.add_parser("bench", help="the audio causal benchmark: tasks, methods scored against exact patching")
    commands = bench.add_subparsers(dest="bench_command", required=True)
    types = {"models": str, "tasks": str, "methods": str, "seed": nonneg_int, "n_pairs": positive_int,
             "window": positive_int, "device": device, "encoder_seconds": positive_float}
    lists = {"models": "whisper-tiny.en,whisper-base", "tasks": "all", "methods": "all"}

    p = commands.add_parser("run", help="run every method on every task and model; resumable (rerun to continue)")
    add_config_flags(p, BenchConfig, types=types, defaults=lists)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=_cmd_run)

    p = commands.add_parser("build", help="write the task set (audio + manifest.json), usable without otoscope")
    add_config_flags(p, BenchConfig, skip=("models", "methods", "window"), types=types, defaults=lists)
    p.add_argument("--check-models", default="whisper-tiny.en",
                   help="comma list of models each pair is checked on (clean run right), '' for none")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=_cmd_build)

    p = commands.add_parser("compare", help="compare two runs unit by unit: exact maps' agreement, methods' scores")
    p.add_argument("a", type=Path, help="a 'bench run' folder (the reference)")
    p.add_argument("b", type=Path, help="another 'bench run' folder over the same pairs (e.g. another --encoder-seconds)")
    p.add_argument("--json", type=Path, default=None, help="also write every unit's comparison to this JSON file")
    p.set_defaults(func=_cmd_compare)
