"""Short audio clips shipped inside the package, so ``otoscope demo`` and quick tries work from a wheel.

Copies of four of the test fixtures (``tests/fixtures/audio``, where their README says how they were
made and under which license): three espeak-ng sentences and a CC0 dog bark, 16 kHz mono FLAC.
``manifest.jsonl`` lists each with its transcript (null for non-speech) and kind.
"""

from __future__ import annotations

import json
from pathlib import Path

from otoscope.errors import OtoscopeError, did_you_mean

DATA = Path(__file__).resolve().parent
"""The folder holding the packaged clips and their manifest."""
MANIFEST = DATA / "manifest.jsonl"
"""One JSON object per clip: path (file name), text, kind (speech / nonspeech), source, seconds."""


def manifest() -> list[dict]:
    """The packaged clips' manifest rows, with ``path`` made absolute."""
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = str(DATA / row["path"])
    return rows


def clip_names() -> list[str]:
    """Names of the packaged clips, without extension (e.g. ``speech_door``)."""
    return [Path(row["path"]).stem for row in manifest()]


def clip_path(name: str) -> Path:
    """Path of a packaged clip by name, with or without ``.flac``: ``clip_path("speech_door")``."""
    stem = name[: -len(".flac")] if name.endswith(".flac") else name
    names = clip_names()
    if stem not in names:
        raise OtoscopeError(f"no packaged clip {name!r}; the clips are {', '.join(names)}.{did_you_mean(stem, names)}")
    return DATA / f"{stem}.flac"
