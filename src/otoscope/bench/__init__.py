"""An audio causal benchmark: fixed clean/corrupt tasks, localisation methods scored against exact patching.

* :mod:`otoscope.bench.tasks` — one seeded generator per task (ASR word identity, keyword spotting,
  noise robustness, text context vs audio, speech vs non-speech, CTC word identity);
* :func:`build_suite` / :func:`load_suite` — the versioned task set on disk (audio + ``manifest.json``);
* :func:`run_bench` — every method on every pair of every model, resumable, → ``results.json`` and
  ``leaderboard.html``;
* :mod:`otoscope.bench.loaders` — Speech Commands v2, ESC-50 and Hugging Face datasets as pairs.
"""

from typing import TYPE_CHECKING

from otoscope._lazy import lazy_exports

# loaded on first use: ``otoscope bench --help`` must not import torch
__getattr__, __dir__ = lazy_exports(__name__, {
    "BenchPair": ".pair", "BenchConfig": ".config", "run_bench": ".runner", "SuiteConfig": ".config",
    "build_suite": ".suite", "load_suite": ".suite", "TASKS": ".tasks", "METHODS": ".methods"})

if TYPE_CHECKING:
    from otoscope.bench.config import BenchConfig, SuiteConfig
    from otoscope.bench.methods import METHODS
    from otoscope.bench.pair import BenchPair
    from otoscope.bench.runner import run_bench
    from otoscope.bench.suite import build_suite, load_suite
    from otoscope.bench.tasks import TASKS

__all__ = ["METHODS", "TASKS", "BenchConfig", "BenchPair", "SuiteConfig", "build_suite", "load_suite", "run_bench"]
