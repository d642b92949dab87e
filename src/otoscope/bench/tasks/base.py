"""What a benchmark task is: a seeded generator of candidate pairs and how the methods sweep them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Literal

from otoscope.bench.pair import BenchPair


@dataclass(frozen=True)
class Task:
    """One task of the suite."""

    name: str
    """Short id used in files and on the command line (``asr-word``)."""
    title: str
    """Heading in the leaderboard."""
    question: str
    """What a localisation on this task answers, in one sentence."""
    models: Literal["whisper", "ctc"]
    """The model family the task applies to (``model.family``): Whisper (decoder metrics) or CTC encoders."""
    directions: tuple[str, ...]
    """Patching directions each pair is swept in (``denoising``, ``noising``)."""
    hooks: str
    """Hook points the methods sweep (a glob)."""
    generate: Callable[[int], Iterator[BenchPair]]
    """``generate(seed)`` → candidate pairs in a fixed order (more than the suite keeps: some are dropped)."""
    grounding: bool = False
    """Also compute the grounding coefficient per decoder layer (exact patching) for each pair."""

    def applies_to(self, model) -> bool:
        """True when ``model`` can run this task."""
        return model.family == self.models
