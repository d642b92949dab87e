"""The labelled inputs of a study: text prompts (for text-conditioned models) or audio clips (for audio models).

Prompts come from a JSONL (or CSV) file with a ``text`` field and a label field (``{"text": ..., "label": ...}``);
clips from a ``.jsonl`` / ``.csv`` manifest with ``path`` and label columns (as ``otoscope sae extract`` and
``otoscope report`` read them), or a folder of audio whose first-level sub-folders name the labels
(``DIR/happy/a.wav``), or a folder holding a ``manifest.jsonl``. Every label must have at least two
examples: the within-group similarity and its permutation test need a pair.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from otoscope.errors import OtoscopeError

EMOTION_PROMPTS = "emotion_prompts.jsonl"  # 25 prompts each of happy, sad, calm, energetic (package data)
BUNDLED_NAME = "emotions"  # --data emotions: the bundled set


@dataclass
class LabelledData:
    """The inputs of a study, one label each."""

    kind: str
    """``prompts`` (text) or ``clips`` (audio)."""
    items: list[Any]
    """Prompt texts, or audio (paths or 16 kHz arrays)."""
    names: list[str]
    """A readable id per item (the prompt text, or the clip's path)."""
    labels: list[str]
    """The label of each item."""
    source: str = "<memory>"
    """Where the items came from."""

    def __post_init__(self):
        if self.kind not in ("prompts", "clips"):
            raise OtoscopeError(f"unknown data kind '{self.kind}'; use 'prompts' or 'clips'.")
        if not (len(self.items) == len(self.names) == len(self.labels)):
            raise OtoscopeError(f"got {len(self.items)} items, {len(self.names)} names and {len(self.labels)} labels; "
                                "give one name and one label per item.")
        self.labels = [str(label) for label in self.labels]
        check_labels(self.labels, self.names, self.source)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))


def check_labels(labels: Sequence[str], names: Sequence[str], source: str = "the data") -> None:
    """Refuse labels a study cannot use: fewer than two labels, or a label with fewer than two examples."""
    counts = Counter(labels)
    if len(counts) < 2:
        found = f"only '{next(iter(counts))}'" if counts else "none"
        raise OtoscopeError(f"{source} has {found} as label; a study compares groups, so give items of at least two labels.")
    lonely = sorted(label for label, n in counts.items() if n < 2)
    if lonely:
        example = names[list(labels).index(lonely[0])]
        raise OtoscopeError(f"label '{lonely[0]}' has only 1 example ({example[:60]!r}) in {source}; within-group "
                            "similarity and its permutation test need at least 2 per label: add examples or drop "
                            f"{'it' if len(lonely) == 1 else 'them (' + ', '.join(lonely) + ')'}.")


def emotion_prompts_path() -> Path:
    """Path of the bundled emotion prompt set (100 music prompts, 25 each of happy, sad, calm, energetic)."""
    return Path(str(resources.files("otoscope.study") / "data" / EMOTION_PROMPTS))


def read_labelled_prompts(source: str | Path | Sequence, label_key: str = "label") -> LabelledData:
    """Prompts with labels from a ``.jsonl`` / ``.csv`` file, or a list of ``{"text": ..., label_key: ...}`` dicts;
    ``"emotions"`` is the bundled emotion set (:func:`emotion_prompts_path`)."""
    from otoscope.sae.text_encoder import read_prompts

    if isinstance(source, str) and source == BUNDLED_NAME and not Path(source).exists():
        source = emotion_prompts_path()
    where = str(source) if isinstance(source, (str, Path)) else "the prompts"
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise OtoscopeError(f"prompts file not found: {source}; pass a JSONL file of {{\"text\": ..., \"{label_key}\": ...}} lines.")
    try:
        rows = read_prompts(source)
    except ValueError as err:  # json.JSONDecodeError included
        if isinstance(err, OtoscopeError):
            raise OtoscopeError(f"{where}: {err}") from None
        raise OtoscopeError(f"{where} is not JSONL (one JSON object per line): {err}.") from None
    for i, row in enumerate(rows):
        if label_key not in row["labels"] or row["labels"][label_key] in (None, ""):
            keys = sorted(row["labels"])
            fix = f"choose --label-key from: {', '.join(keys)}" if keys else f"add a '{label_key}' field to every line"
            raise OtoscopeError(f"{where}: prompt {i + 1} ({row['text'][:40]!r}) has no '{label_key}' label; {fix}.")
    texts = [row["text"] for row in rows]
    return LabelledData("prompts", texts, texts, [str(row["labels"][label_key]) for row in rows], where)


def read_labelled_clips(source: str | Path, label_key: str = "label") -> LabelledData:
    """Clips with labels from a manifest (``path`` + ``label_key`` columns) or a folder of label sub-folders.

    (Clips in memory: build :class:`LabelledData` directly, ``LabelledData("clips", arrays, names, labels)``.)"""
    from otoscope.sae.corpus import AUDIO_SUFFIXES, open_corpus

    path = Path(source)
    if path.is_dir():
        if (path / "manifest.jsonl").is_file():
            return read_labelled_clips(path / "manifest.jsonl", label_key)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise OtoscopeError(f"no audio files under {path}; pass a folder of label sub-folders or a manifest.")
        loose = [f for f in files if f.parent == path]
        if loose:
            raise OtoscopeError(f"{loose[0]} is not in a label sub-folder of {path}; put each clip in a folder named "
                                "after its label (DIR/LABEL/clip.wav) or pass a manifest with a label column.")
        return LabelledData("clips", [str(f) for f in files], [str(f) for f in files],
                            [f.relative_to(path).parts[0] for f in files], str(path))
    corpus = open_corpus(source)
    items = [item.audio for item in corpus]
    where = str(source)
    labels = []
    for i, item in enumerate(corpus):
        value = item.labels.get(label_key)
        if value in (None, ""):
            keys = sorted(item.labels)
            fix = f"choose --label-key from: {', '.join(keys)}" if keys else f"add a '{label_key}' column"
            raise OtoscopeError(f"{where}: clip {i + 1} ({item.name}) has no '{label_key}' label; {fix}.")
        labels.append(str(value))
    return LabelledData("clips", items, [item.name for item in corpus], labels, where)
