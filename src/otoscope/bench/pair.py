"""The benchmark's pair format: one clean/corrupt pair of a task, with what to score and where to look.

Every task generator and every dataset loader produces :class:`BenchPair` objects; the suite saves them
as ``<task>/<id>.clean.flac``, ``<task>/<id>.corrupt.flac`` and one entry of ``manifest.json`` (see
:mod:`otoscope.bench.suite`), readable without otoscope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otoscope.audio.io import Clip

METRICS = ("logit_diff", "logprob", "speech_odds", "ctc_chars")
"""How a pair is scored (see :mod:`otoscope.bench.metrics`)."""


@dataclass
class BenchPair:
    """One clean/corrupt pair of a benchmark task."""

    id: str
    """Unique within its task, stable across builds of the same suite version (``asr-word-007``)."""
    task: str
    """The task's name."""
    clean: Clip
    """The clip the model should get right."""
    corrupt: Clip
    """The clip with the task's factor changed (same length as ``clean``)."""
    metric: str
    """One of :data:`METRICS`."""
    text: str | None = None
    """Teacher-forced decoder context before the scored token(s) (Whisper, leading space), or None."""
    prompt: tuple[str, str] | None = None
    """Whisper previous-text prompts ``(clean, corrupt)`` (text-context pairs), or None."""
    answer: str | None = None
    """What the clean run should say next (``" London"``; the whole transcript for ``logprob``)."""
    wrong: str | None = None
    """What the corrupt run says instead (``logit_diff``); for ``ctc_chars`` the corrupt word."""
    region: tuple[float, float] | None = None
    """Expected region in seconds of the clean clip (the swapped word's span), or None."""
    details: dict = field(default_factory=dict)
    """How the pair was made (texts, voices, SNR, seed, source files)."""

    def to_json(self, clean_path: str, corrupt_path: str) -> dict:
        """The manifest entry (audio paths relative to the manifest)."""
        return {"id": self.id, "task": self.task, "clean": clean_path, "corrupt": corrupt_path, "metric": self.metric,
                "text": self.text, "prompt": list(self.prompt) if self.prompt else None, "answer": self.answer,
                "wrong": self.wrong, "region": list(self.region) if self.region else None,
                "seconds": round(self.clean.seconds, 4), "sample_rate": self.clean.sample_rate,
                "details": self.details}

    @classmethod
    def from_json(cls, data: dict, clean: Clip, corrupt: Clip) -> "BenchPair":
        """Inverse of :meth:`to_json`, given the two clips read from disk."""
        prompt, region = data.get("prompt"), data.get("region")
        return cls(data["id"], data["task"], clean, corrupt, data["metric"], data.get("text"),
                   tuple(prompt) if prompt else None, data.get("answer"), data.get("wrong"),
                   tuple(region) if region else None, data.get("details", {}))


def equal_length(clean: Clip, corrupt: Clip) -> tuple[Clip, Clip]:
    """Pad the shorter clip with trailing silence so both have the same number of samples (starts aligned)."""
    import numpy as np

    n = max(len(clean.samples), len(corrupt.samples))
    pad = lambda c: c if len(c.samples) == n else Clip(  # noqa: E731
        np.concatenate([c.samples, np.zeros(n - len(c.samples), np.float32)]), c.sample_rate, c.name)
    return pad(clean), pad(corrupt)
