"""The harness: every (model, task, pair, direction) unit swept by every method, resumable.

The run folder holds::

    bench_run.json                 what the run is (models, tasks, methods, quick, seed, suite version)
    suite/                         the task set, built on the first run (audio + manifest.json)
    units/<model>/<task>/<pair>.<direction>.json    one finished unit, written atomically
    results.json, leaderboard.html the summary, rebuilt at the end of every run

A unit file appears only when the unit is complete, so a killed run loses at most the unit it was in:
running the same command again skips every unit that has a file and continues with the rest. The
task set is read back from ``suite/`` on resume, never regenerated, so the pairs cannot change under it.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from otoscope.bench.config import FULL_IG_STEPS, BenchConfig, SuiteConfig
from otoscope.bench.methods import METHODS, REFERENCE, seed_of
from otoscope.bench.pair import BenchPair
from otoscope.bench.suite import Suite, build_suite, check_fits, load_suite
from otoscope.bench.tasks import TASKS
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

RUN_FILE = "bench_run.json"  # marks a folder as a benchmark run (resumable in place)


@dataclass
class UnitResult:
    """One pair of one task on one model in one direction, swept by every method."""

    model: str
    """Model name."""
    task: str
    """Task name."""
    pair: str
    """Pair id."""
    direction: str
    """``denoising`` or ``noising``."""
    status: str
    """``ok``, ``dropped`` (the model gets the clean run wrong) or ``not_applicable``."""
    reason: str = ""
    """Why the unit was dropped."""
    clean: float | None = None
    """Metric on the clean run."""
    corrupt: float | None = None
    """Metric on the corrupt run."""
    cells: list[dict] = field(default_factory=list)
    """Cells of the sweep (hook, layer, frames, seconds, tokens), in sweep order."""
    inside: list[bool] = field(default_factory=list)
    """Per cell: inside the pair's expected region."""
    methods: dict[str, dict] = field(default_factory=dict)
    """Method → ``{"normalized": [cells], "seconds": sweep time}``."""
    scores: dict[str, dict] = field(default_factory=dict)
    """Method → its scores against exact (:class:`otoscope.patching.scores.MethodScores`)."""
    grounding: list[dict] | None = None
    """Grounding coefficient per decoder layer (tasks that ask for it)."""


def unit_path(root: Path, model: str, task: str, pair: str, direction: str) -> Path:
    """Where a unit's result lives."""
    return root / "units" / model.replace("/", "_") / task / f"{pair}.{direction}.json"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def run_unit(model: HookedAudioModel, task_name: str, pair: BenchPair, direction: str, methods, window: int, seed: int,
             ig_steps: int = FULL_IG_STEPS) -> UnitResult:
    """Sweep ``pair`` with every method (exact first, all in one session) and score each against exact."""
    from otoscope.bench.metrics import check_clean, session_options
    from otoscope.patching import open_session
    from otoscope.patching.scores import region_mask, score_method

    task = TASKS[task_name]
    unit = UnitResult(model.name, task_name, pair.id, direction, "ok")
    session = open_session(model, pair.clean, pair.corrupt, **session_options(model, pair))
    # a clip shorter than one window (a lone keyword) is one cell wide
    options = {"hooks": task.hooks, "window": min(window, session.pair.n_frames), "direction": direction,
               "ig_steps": ig_steps}
    unit.clean, unit.corrupt = session.clean_value, session.corrupt_value
    check = check_clean(model, pair, session)
    if not check.ok:
        unit.status, unit.reason = "dropped", check.reason
        return unit
    results = {name: METHODS[name].run(session, options, seed_of(str(seed), model.name, pair.id, direction))
               for name in methods}
    exact = results[REFERENCE]
    unit.cells = [{"hook": c.hook, "layer": c.layer, "frames": c.frames, "seconds": c.seconds, "tokens": c.tokens}
                  for c in exact.cells]
    region = None if pair.region is None else region_mask(exact, *pair.region)
    unit.inside = [False] * len(exact.cells) if region is None else region.tolist()
    for name, result in results.items():
        unit.methods[name] = {"normalized": [_finite(c.normalized) for c in result.cells],
                              "seconds": result.context["seconds"]}
        unit.scores[name] = score_method(exact, result, region).to_json()
    if task.grounding:
        from otoscope.patching.grounding import grounding_coefficient

        result = grounding_coefficient(session, direction).to_json()
        unit.grounding = result["layers"]
    return unit


def _complete(path: Path, methods) -> bool:
    """A unit file exists and holds every requested method (a dropped unit needs none)."""
    if not path.exists():
        return False
    unit = json.loads(path.read_text())
    return unit["status"] != "ok" or set(methods) <= set(unit["methods"])


def _prepare_folder(out: Path, config: BenchConfig) -> None:
    from otoscope._io import check_output_dir, write_text_atomic

    check_output_dir(out, (RUN_FILE,), "benchmark folder")
    run_file = out / RUN_FILE
    if run_file.exists():
        earlier = json.loads(run_file.read_text()).get("identity")
        if earlier != config.identity():
            raise OtoscopeError(f"{out} holds a run of another suite or cell size ({earlier}); resume it with the same "
                                "--quick/--seed/--n-pairs/--window/--encoder-seconds (a --quick run without "
                                "encoder_seconds used the whole window: add --encoder-seconds 30), or pass a new --out folder.")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_file, json.dumps({"identity": config.identity(), "config": asdict(config)}, indent=1))


def _open_suite(out: Path, config: BenchConfig, models: dict, applicable: list[str], log) -> Suite:
    """The run's task set: read back from ``out/suite`` when resuming, else built (and checked on ``models``)."""
    suite_dir = out / "suite"
    if not (suite_dir / "manifest.json").exists():
        return build_suite(suite_dir, SuiteConfig(tuple(applicable), config.quick, config.seed, config.n_pairs),
                           list(models.values()), log)
    suite = load_suite(suite_dir)
    missing = [t for t in applicable if t not in suite.tasks]
    if missing:
        raise OtoscopeError(f"{suite_dir} lacks tasks {missing}; resume with the earlier --tasks or pass a new --out.")
    log(f"resuming: task set read from {suite_dir}")
    return suite


def _publish(out: Path, suite: Suite, config: BenchConfig, run: dict, windowed: tuple[str, ...]) -> dict:
    """Write ``results.json`` and ``leaderboard.html`` from the unit files finished so far."""
    from otoscope._io import write_text_atomic
    from otoscope.bench.leaderboard import write_leaderboard
    from otoscope.bench.results import summarise

    results = summarise(out, suite, config, windowed)
    results["run"] = run
    write_text_atomic(out / "results.json", json.dumps(results, indent=1, allow_nan=False))
    write_leaderboard(out / "leaderboard.html", results)
    return results


def run_bench(out: str | Path, config: BenchConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the benchmark into folder ``out``; returns the ``results.json`` object.

    ``results.json`` and the leaderboard are rewritten after each finished (model, task), so a long run
    shows its figures so far (``run.complete`` is false until every unit is done).
    """
    from otoscope.models.loader import load

    out = Path(out)
    _prepare_folder(out, config)
    models = {name: load(name, device=config.device) for name in config.models}
    applicable = [t for t in config.tasks if any(TASKS[t].applies_to(m) for m in models.values())]
    skipped = sorted(set(config.tasks) - set(applicable))
    if skipped:
        log(f"skipping {', '.join(skipped)}: no model given applies (CTC tasks need an encoder-only CTC model)")
    if not applicable:
        raise OtoscopeError("no task applies to the models given; add a Whisper or a CTC model.")
    with encoder_windows(models.values(), config.window_seconds):
        suite = _open_suite(out, config, models, applicable, log)
        check_fits([p for t in suite.tasks.values() for p in t.pairs], config.window_seconds)
        return _run_units(out, suite, config, models, applicable, log)


def encoder_windows(models, seconds: float | None) -> ExitStack:
    """Every fixed-window model (Whisper) with its encoder over the first ``seconds`` (None: nothing changes)."""
    with ExitStack() as stack:  # if one model refuses, the windows already set are undone
        for model in models:
            if seconds is not None and _fixed_window(model):
                stack.enter_context(model.encoder_window(seconds))
        return stack.pop_all()


def _fixed_window(model) -> bool:
    """A model with a fixed input window (Whisper's 30 s), the kind ``--encoder-seconds`` shortens."""
    return model.geometry.window_frames is not None


def _run_units(out: Path, suite: Suite, config: BenchConfig, models: dict, applicable: list[str], log) -> dict:
    from otoscope._io import write_text_atomic

    started = time.perf_counter()
    run = {"units_run": 0, "units_resumed": 0, "seconds": 0.0, "complete": False}
    windowed = tuple(name for name, m in models.items() if _fixed_window(m))  # what --encoder-seconds applies to
    for model in models.values():
        for task_name in (t for t in applicable if TASKS[t].applies_to(model)):
            for pair in suite.tasks[task_name].pairs:
                for direction in config.directions(task_name):
                    path = unit_path(out, model.name, task_name, pair.id, direction)
                    if _complete(path, config.methods):
                        run["units_resumed"] += 1
                        continue
                    t0 = time.perf_counter()
                    unit = run_unit(model, task_name, pair, direction, config.methods, config.frames_per_cell,
                                    config.seed, config.ig_steps)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(path, json.dumps(asdict(unit), allow_nan=False))
                    run["units_run"] += 1
                    log(f"{model.name} {task_name} {pair.id} {direction}: {unit.status} ({time.perf_counter() - t0:.1f} s)")
            run["seconds"] = round(time.perf_counter() - started, 1)
            _publish(out, suite, config, run, windowed)
    run["complete"] = True
    return _publish(out, suite, config, run, windowed)
