"""Audio corpora for activation extraction: a folder, a CSV or JSONL manifest, a Hugging Face dataset, a list.

Every source becomes a :class:`Corpus`: a sized, ordered sequence of :class:`CorpusItem` (audio, optional
transcript and labels). The order is fixed (folders are sorted), so an extraction can be resumed and a
shard always holds the same clips. Manifest rows name the audio in a ``path`` column (``audio`` or
``file`` also work), relative paths being relative to the manifest; ``text`` is the transcript and every
other column is kept as a label.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from otoscope.errors import OtoscopeError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".webm")
_PATH_COLUMNS = ("path", "audio", "file", "filename", "audio_path")


@dataclass
class CorpusItem:
    """One clip of a corpus."""

    index: int
    """Position in the corpus: the clip id used in the activation index."""
    audio: Any
    """A path, or a waveform array at ``sample_rate``."""
    name: str
    """A path or an id, for messages and the index."""
    sample_rate: int | None = None
    """Rate of an array ``audio`` (None for paths: read from the file)."""
    text: str | None = None
    """Transcript (teacher-forced for decoder hooks; the reference for WER)."""
    labels: dict[str, Any] = field(default_factory=dict)
    """Every other manifest column."""


class Corpus(Sequence[CorpusItem]):
    """An ordered, sized sequence of clips."""

    def __init__(self, rows: list[dict], description: str, fingerprint: str | None = None, dataset=None,
                 audio_column: str = "audio"):
        self._rows = rows
        self._dataset = dataset
        self._audio_column = audio_column
        self.description = description
        """Where the corpus came from (recorded in the store)."""
        self.fingerprint = fingerprint or _fingerprint(r.get("name", "") for r in rows)
        """A hash of the clip list: a resumed extraction checks it is the same corpus."""

    def __len__(self) -> int:
        return len(self._dataset) if self._dataset is not None else len(self._rows)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if self._dataset is not None:
            return _hf_item(i, self._dataset[i], self._audio_column)
        row = self._rows[i]
        return CorpusItem(i, row["audio"], row["name"], row.get("sample_rate"), row.get("text"), row.get("labels", {}))


def _fingerprint(names: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()[:16]


def _manifest_row(row: dict, base: Path, where: str) -> dict:
    column = next((c for c in _PATH_COLUMNS if row.get(c) not in (None, "")), None)
    if column is None:
        raise OtoscopeError(f"{where} has no audio path; give each row a 'path' column.")
    path = Path(os.path.expanduser(str(row[column])))
    if not path.is_absolute():
        path = base / path
    text = row.get("text")
    labels = {k: v for k, v in row.items() if k not in (column, "text")}
    return {"audio": str(path), "name": str(path), "text": text if text not in ("", None) else None, "labels": labels}


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise OtoscopeError(f"{path}:{number} is not valid JSON ({err.msg}); one JSON object per line.") from None
        if not isinstance(row, dict):
            raise OtoscopeError(f"{path}:{number} is not a JSON object; write one {{\"path\": ...}} object per line.")
        rows.append(_manifest_row(row, path.parent.resolve(), f"{path}:{number}"))
    return rows


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [_manifest_row(row, path.parent.resolve(), f"{path}:{number}")
                for number, row in enumerate(csv.DictReader(handle), 2)]


def _hf_item(i: int, row: dict, audio_column: str) -> CorpusItem:
    audio = row[audio_column]
    text = row.get("text") or row.get("sentence") or row.get("transcription")
    labels = {k: v for k, v in row.items() if k != audio_column and isinstance(v, (str, int, float, bool))}
    if isinstance(audio, dict):
        array = np.asarray(audio["array"], dtype=np.float32)
        return CorpusItem(i, array, str(audio.get("path") or f"#{i}"), int(audio["sampling_rate"]), text, labels)
    if hasattr(audio, "get_all_samples"):  # torchcodec AudioDecoder (datasets >= 4)
        samples = audio.get_all_samples()
        return CorpusItem(i, samples.data.mean(0).numpy(), f"#{i}", int(samples.sample_rate), text, labels)
    return CorpusItem(i, audio, str(audio), None, text, labels)


def _hf_dataset(spec: str):
    """``hf:NAME[:CONFIG][:SPLIT]`` → a datasets.Dataset (needs the network or the HF cache)."""
    try:
        import datasets
    except ImportError:
        raise OtoscopeError("Hugging Face corpora need the datasets package: pip install datasets") from None
    parts = spec.removeprefix("hf:").split(":")
    name, config, split = parts[0], (parts[1] or None) if len(parts) > 1 else None, parts[2] if len(parts) > 2 else "train"
    return datasets.load_dataset(name, config, split=split)


def open_corpus(source, *, audio_column: str = "audio", limit: int | None = None) -> Corpus:
    """A :class:`Corpus` from a folder, a ``.csv`` / ``.jsonl`` manifest, ``hf:NAME[:CONFIG][:SPLIT]``,
    a ``datasets.Dataset`` (``audio_column`` holds the audio), a :class:`Corpus`, or a list of paths,
    arrays (16 kHz) or manifest-style dicts. ``limit`` keeps the first clips only."""
    if isinstance(source, Corpus):
        corpus = source
    elif isinstance(source, (str, os.PathLike)) and str(source).startswith("hf:"):
        dataset = _hf_dataset(str(source))
        corpus = Corpus([], str(source), getattr(dataset, "_fingerprint", None) or str(source), dataset, audio_column)
    elif hasattr(source, "features") and hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        corpus = Corpus([], f"datasets:{getattr(source, 'info', None) and source.info.dataset_name}",
                        getattr(source, "_fingerprint", None), source, audio_column)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise OtoscopeError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {path}.")
            rows = [{"audio": str(p.resolve()), "name": str(p.resolve())} for p in files]
        elif not path.exists():
            raise OtoscopeError(f"corpus not found: {path}; pass a folder of audio, a .csv/.jsonl manifest or hf:NAME.")
        elif path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            rows = _read_jsonl(path)
        elif path.suffix.lower() in (".csv", ".tsv"):
            rows = _read_csv(path)
        elif path.suffix.lower() in AUDIO_SUFFIXES:
            rows = [{"audio": str(path), "name": str(path)}]
        else:
            raise OtoscopeError(f"cannot tell what {path} is; pass a folder of audio or a .csv/.jsonl manifest.")
        corpus = Corpus(rows, str(path))
    elif isinstance(source, (list, tuple)):
        rows = []
        for i, item in enumerate(source):
            if isinstance(item, dict):
                rows.append(_manifest_row(item, Path.cwd(), f"item {i}"))
            elif isinstance(item, (str, os.PathLike)):
                rows.append({"audio": str(item), "name": str(item)})
            else:
                rows.append({"audio": item, "name": f"<array {i}>"})
        if not rows:
            raise OtoscopeError("the corpus is empty; pass at least one clip.")
        corpus = Corpus(rows, "<list>")
    else:
        raise OtoscopeError(f"cannot use {type(source).__name__} as a corpus; pass a folder, a manifest or a list.")
    if limit is not None and limit < len(corpus):
        if corpus._dataset is not None:
            raise OtoscopeError("limit is not supported for Hugging Face datasets; select rows with dataset.select().")
        corpus = Corpus(corpus._rows[:limit], f"{corpus.description}[:{limit}]")
    return corpus
