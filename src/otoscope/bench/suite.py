"""The versioned task set: candidates generated with a seed, checked on models, saved as audio + manifest.

A built suite is a folder that needs no otoscope to read::

    manifest.json                  version, seed, per task: title, metric, directions, hooks, pairs, drops
    <task>/<pair id>.clean.flac    16-bit mono FLAC at 16 kHz
    <task>/<pair id>.corrupt.flac

Each pair is checked on the check models *as saved* (read back from the 16-bit files): a pair a model
gets wrong on the clean run is dropped and counted. Building the same version with the same seed and
check models gives the same pairs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from otoscope.audio.io import to_clip
from otoscope.bench.config import SUITE_NAME, SUITE_VERSION, SuiteConfig, check_tasks
from otoscope.bench.metrics import check_clean, session_options
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks import TASKS
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

CANDIDATE_FACTOR = 5  # at most this many candidates per kept pair before a task stops short (a model in a short
# encoder window gets more clean runs wrong: the quick noise task kept 4 of 15 candidates at 3×)
MANIFEST = "manifest.json"


def parse_tasks(spec: str) -> tuple[str, ...]:
    """``"all"`` or a comma list → task names in suite order."""
    if spec.strip() == "all":
        return tuple(TASKS)
    names = tuple(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    check_tasks(names)
    return names


@dataclass
class TaskSet:
    """One task's kept pairs and what was dropped."""

    task: str
    """Task name."""
    pairs: list[BenchPair] = field(default_factory=list)
    """Kept pairs, in generation order."""
    candidates: int = 0
    """Candidates generated (kept + dropped)."""
    dropped: list[dict] = field(default_factory=list)
    """``{"id", "model", "reason"}`` per dropped candidate."""
    checked_by: list[str] = field(default_factory=list)
    """Models the pairs were checked on (none: the task applies to none of the check models)."""


@dataclass
class Suite:
    """A built task set."""

    config: SuiteConfig
    """How it was built."""
    tasks: dict[str, TaskSet]
    """Task name → its pairs."""
    root: Path | None = None
    """Folder it was read from or written to."""

    def manifest(self) -> dict:
        """The ``manifest.json`` object."""
        tasks = {}
        for name, ts in self.tasks.items():
            task = TASKS[name]
            tasks[name] = {"title": task.title, "question": task.question, "models": task.models,
                           "directions": list(task.directions), "hooks": task.hooks, "candidates": ts.candidates,
                           "kept": len(ts.pairs), "checked_by": ts.checked_by, "dropped": ts.dropped,
                           "pairs": [p.to_json(f"{name}/{p.id}.clean.flac", f"{name}/{p.id}.corrupt.flac")
                                     for p in ts.pairs]}
        return {"suite": SUITE_NAME, "version": SUITE_VERSION, "seed": self.config.seed, "quick": self.config.quick,
                "pairs_per_task": self.config.pairs_per_task, "sample_rate": 16_000, "tasks": tasks}


def _write_clip(path: Path, clip) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(clip.samples, -1, 1), clip.sample_rate, format="FLAC", subtype="PCM_16")


def _saved(folder: Path, pair: BenchPair) -> BenchPair:
    """Write ``pair``'s clips under ``folder/<task>/`` and return the pair with the clips as read back."""
    (folder / pair.task).mkdir(parents=True, exist_ok=True)
    paths = [folder / pair.task / f"{pair.id}.{side}.flac" for side in ("clean", "corrupt")]
    for path, clip in zip(paths, (pair.clean, pair.corrupt)):
        _write_clip(path, clip)
    clean, corrupt = (to_clip(str(p), pair.clean.sample_rate) for p in paths)
    return BenchPair(pair.id, pair.task, clean, corrupt, pair.metric, pair.text, pair.prompt, pair.answer, pair.wrong,
                     pair.region, pair.details)


def check_pair(model: HookedAudioModel, pair: BenchPair):
    """``(CleanCheck, clean value, corrupt value)`` of ``pair`` on ``model`` (one clean and one corrupt run)."""
    from otoscope.patching import open_session

    session = open_session(model, pair.clean, pair.corrupt, **session_options(model, pair))
    return check_clean(model, pair, session), session.clean_value, session.corrupt_value


def check_fits(pairs: Sequence[BenchPair], seconds: float | None) -> None:
    """Refuse pairs with a clip longer than an encoder window of ``seconds`` (None: Whisper's whole window),
    naming the window they need."""
    longest = max((max(p.clean.seconds, p.corrupt.seconds) for p in pairs), default=0.0)
    if seconds is not None and longest > seconds:
        raise OtoscopeError(f"the task set has a {longest:.2f} s clip, longer than the {seconds:g} s encoder window; "
                            f"pass --encoder-seconds {math.ceil(longest)} or more.")


def build_suite(out: str | Path, config: SuiteConfig, check_models: Sequence = (),
                log: Callable[[str], None] = lambda s: None) -> Suite:
    """Generate, check and save the task set into folder ``out`` (replaced as a whole; see the module doc).

    ``check_models``: loaded models; each pair is kept only if every model its task applies to gets the
    clean run right. A task stops at ``pairs_per_task`` kept pairs or ``CANDIDATE_FACTOR`` × that many
    candidates.
    """
    from otoscope._io import atomic_dir, check_output_dir, write_text_atomic

    out = check_output_dir(out, (MANIFEST,), "suite folder")
    want = config.pairs_per_task
    suite = Suite(config, {}, out)
    with atomic_dir(out, markers=(MANIFEST,)) as folder:
        for name in config.tasks:
            task = TASKS[name]
            models = [m for m in check_models if task.applies_to(m)]
            ts = TaskSet(name, checked_by=[m.name if m.encoder_seconds is None
                                           else f"{m.name} ({m.encoder_seconds:g} s encoder window)" for m in models])
            for candidate in task.generate(config.seed):
                if len(ts.pairs) >= want or ts.candidates >= CANDIDATE_FACTOR * want:
                    break
                ts.candidates += 1
                check_fits([candidate], min((m.encoder_seconds for m in models if m.encoder_seconds is not None),
                                            default=None))
                pair = _saved(folder, candidate)
                checks = {}
                for model in models:
                    check, clean, corrupt = check_pair(model, pair)
                    checks[model.name] = {"clean": round(clean, 4), "corrupt": round(corrupt, 4)}
                    if not check.ok:
                        ts.dropped.append({"id": pair.id, "model": model.name, "reason": check.reason})
                        break
                else:
                    pair.details["check"] = checks
                    ts.pairs.append(pair)
                    continue
                for side in ("clean", "corrupt"):
                    (folder / name / f"{pair.id}.{side}.flac").unlink()
            log(f"{name}: kept {len(ts.pairs)} of {ts.candidates} candidates ({len(ts.dropped)} dropped)")
            suite.tasks[name] = ts
        write_text_atomic(folder / MANIFEST, json.dumps(suite.manifest(), indent=1))
    return suite


def load_suite(path: str | Path) -> Suite:
    """Read a suite folder written by :func:`build_suite` (``path``: the folder or its manifest)."""
    path = Path(path)
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise OtoscopeError(f"no {MANIFEST} in {path}; build the task set with 'otoscope bench build --out DIR'.")
    data = json.loads(manifest.read_text())
    if data.get("suite") != SUITE_NAME:
        raise OtoscopeError(f"{manifest} is not an otoscope benchmark manifest; build one with 'otoscope bench build'.")
    if data.get("version") != SUITE_VERSION:
        raise OtoscopeError(f"{manifest} is suite version {data.get('version')}, this otoscope reads version "
                            f"{SUITE_VERSION}; rebuild it with 'otoscope bench build'.")
    root = manifest.parent
    tasks = {}
    for name, entry in data["tasks"].items():
        if name not in TASKS:
            raise OtoscopeError(f"{manifest} has task {name!r}, unknown to this otoscope; rebuild the suite.")
        pairs = [BenchPair.from_json(p, to_clip(str(root / p["clean"]), p["sample_rate"]),
                                     to_clip(str(root / p["corrupt"]), p["sample_rate"])) for p in entry["pairs"]]
        tasks[name] = TaskSet(name, pairs, entry["candidates"], entry["dropped"], entry["checked_by"])
    config = SuiteConfig(tuple(tasks), bool(data["quick"]), int(data["seed"]), int(data["pairs_per_task"]))
    return Suite(config, tasks, root)
