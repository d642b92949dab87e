"""CC0 animal sounds bundled with the package (see ``sounds/README.md`` for sources and licence)."""

from __future__ import annotations

from pathlib import Path

SOUNDS = Path(__file__).parent / "sounds"


def animal_clips() -> dict[str, Path]:
    """Name → path of every bundled animal clip (16 kHz mono FLAC), sorted by name."""
    return {p.stem: p for p in sorted(SOUNDS.glob("*.flac"))}
