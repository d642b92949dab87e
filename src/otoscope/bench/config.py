"""What a benchmark run and a task set are: :class:`BenchConfig` and :class:`SuiteConfig`, and the suite's sizes.

This module imports nothing heavy (task and method names are checked on first use), so the command line
builds its ``bench run`` / ``bench build`` flags — names, defaults and help — from these dataclasses'
fields without loading torch (:mod:`otoscope.cli.from_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otoscope.errors import OtoscopeError, did_you_mean

SUITE_NAME = "otoscope-audio-causal"
SUITE_VERSION = "2"
"""Bump when a generator, template or metric changes what a seed produces."""
FULL_PAIRS = 40  # pairs per task in the full suite
QUICK_PAIRS = 5  # pairs per task with --quick
FULL_WINDOW = 10  # encoder frames per cell (200 ms) in the full suite
QUICK_WINDOW = 25  # encoder frames per cell (500 ms) with --quick
FULL_IG_STEPS = 5  # interpolation points of attribution-ig in the full suite
QUICK_IG_STEPS = 3  # with --quick (its midpoints 1/6, 1/2, 5/6 include two-point's α = 1/2)
QUICK_ENCODER_SECONDS = 5.0  # Whisper's encoder window with --quick (every quick clip is shorter)
WHOLE_WINDOW_SECONDS = 30.0  # Whisper's own window: --encoder-seconds 30 is no window at all


def _task_names() -> tuple[str, ...]:
    from otoscope.bench.tasks import TASKS

    return tuple(TASKS)


def _method_names() -> tuple[str, ...]:
    from otoscope.bench.methods import METHODS

    return tuple(METHODS)


def check_tasks(names) -> None:
    """Refuse an empty or unknown task list, with did-you-mean."""
    known = _task_names()
    for name in names:
        if name not in known:
            raise OtoscopeError(f"unknown task {name!r}.{did_you_mean(name, known)} Tasks: {', '.join(known)}, all.")
    if not names:
        raise OtoscopeError("no tasks selected; pass --tasks all or a comma list of task names.")


def window_seconds(quick: bool, encoder_seconds: float | None) -> float | None:
    """The encoder window a run or build uses: ``encoder_seconds`` if given (30 or more: the whole window, None),
    else 5 s with ``quick`` and the whole window without."""
    if encoder_seconds is not None:
        return None if encoder_seconds >= WHOLE_WINDOW_SECONDS else float(encoder_seconds)
    return QUICK_ENCODER_SECONDS if quick else None


@dataclass(frozen=True)
class SuiteConfig:
    """Which task set to build."""

    tasks: tuple[str, ...] = field(default_factory=_task_names)
    """Task names, in suite order."""
    quick: bool = False
    """``QUICK_PAIRS`` pairs per task instead of ``FULL_PAIRS``."""
    seed: int = 0
    """Seed of every generator (each task draws from its own stream)."""
    n_pairs: int | None = None
    """Pairs per task; None: from ``quick``."""

    def __post_init__(self):
        check_tasks(self.tasks)
        if self.n_pairs is not None and (int(self.n_pairs) != self.n_pairs or self.n_pairs < 1):
            raise OtoscopeError(f"n_pairs must be a whole number >= 1, got {self.n_pairs}.")

    @property
    def pairs_per_task(self) -> int:
        """How many pairs each task keeps."""
        return self.n_pairs or (QUICK_PAIRS if self.quick else FULL_PAIRS)


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run (``otoscope bench run``'s flags are its fields; ``bench build`` takes the suite's)."""

    models: tuple[str, ...] = ("whisper-tiny.en", "whisper-base")
    """Model names (``otoscope models``); tasks run on the models they apply to. The command line takes a comma
    list."""
    tasks: tuple[str, ...] = field(default_factory=_task_names)
    """Task names; the command line takes a comma list or ``all``: asr-word, keyword, noise, context, nonspeech,
    ctc-word."""
    methods: tuple[str, ...] = field(default_factory=_method_names)
    """Method names; the reference (exact) is always run first. The command line takes a comma list or ``all``:
    exact, attribution, attribution-ig, atp-qk, atp-star, two-point, hybrid, random."""
    quick: bool = False
    """A smoke run of the whole harness: five pairs per task, 500 ms cells, one direction per task (the first:
    denoising), attribution-ig with 3 steps and a 5 s encoder window (docs/benchmark.md says what it trades
    away)."""
    seed: int = 0
    """Seed of the task generators and the random method."""
    n_pairs: int | None = None
    """Pairs per task; None: 40 (5 with ``quick``)."""
    window: int | None = None
    """Encoder frames per cell; None: 10 (25 with ``quick``)."""
    device: str | None = None
    """Torch device for the models: cpu, cuda, cuda:1, … (None: CPU)."""
    encoder_seconds: float | None = None
    """Seconds of Whisper's 30 s window its encoder runs over (``HookedAudioModel.encoder_window``, whisper.cpp's
    ``audio_ctx``); None: the whole window, or 5 s with ``quick``; 30: the whole window always. Every clip of the
    suite must fit. A 5 s window makes each run of a 3 s clip several times cheaper but measures a slightly
    different model (docs/benchmark.md measures how far its maps differ); models without a fixed window
    ignore it."""

    def __post_init__(self):
        from otoscope.bench.methods import REFERENCE, check_methods

        if not self.models:
            raise OtoscopeError("no models given; pass --models whisper-tiny.en,whisper-base (see 'otoscope models').")
        check_methods(self.methods)
        if REFERENCE not in self.methods:
            object.__setattr__(self, "methods", (REFERENCE, *self.methods))
        SuiteConfig(self.tasks, self.quick, self.seed, self.n_pairs)  # checks tasks and n_pairs
        if self.window is not None and (int(self.window) != self.window or self.window < 1):
            raise OtoscopeError(f"window must be a whole number of frames >= 1, got {self.window}.")
        if self.encoder_seconds is not None and not 0 < self.encoder_seconds <= 30:
            raise OtoscopeError(f"encoder_seconds must be in (0, 30], got {self.encoder_seconds}; "
                                "pass e.g. --encoder-seconds 5, or leave it out for Whisper's whole window.")

    @property
    def frames_per_cell(self) -> int:
        """Encoder frames per cell."""
        return self.window or (QUICK_WINDOW if self.quick else FULL_WINDOW)

    @property
    def window_seconds(self) -> float | None:
        """Seconds of Whisper's window its encoder runs over, or None for the whole window."""
        return window_seconds(self.quick, self.encoder_seconds)

    @property
    def ig_steps(self) -> int:
        """Interpolation points of attribution-ig."""
        return QUICK_IG_STEPS if self.quick else FULL_IG_STEPS

    def directions(self, task: str) -> tuple[str, ...]:
        """The directions a task's pairs are swept in: all of the task's, or with ``quick`` only its first."""
        from otoscope.bench.tasks import TASKS

        return TASKS[task].directions[:1] if self.quick else TASKS[task].directions

    def identity(self) -> dict:
        """What must match for a folder to be resumed: the suite (version, seed, size) and the cells."""
        identity = {"suite_version": SUITE_VERSION, "quick": self.quick, "seed": self.seed, "n_pairs": self.n_pairs,
                    "window": self.frames_per_cell}
        if self.window_seconds is not None:  # absent for the whole window, so earlier full runs still resume
            identity["encoder_seconds"] = self.window_seconds
        return identity
