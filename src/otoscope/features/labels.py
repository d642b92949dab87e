"""Labels of frames: per-clip manifest keys (``kind``, ``speaker`` …) and per-frame words from word spans.

A key's values become class indices (``-1``: the frame has no value for that key). Word spans come from
``otoscope align FILES --json`` lines ``{"path": ..., "words": [{"word", "start", "end", "probability"}]}``;
a word covers frames ``floor(start · fps)`` to ``max(floor(end · fps), first + 1)`` (exclusive), frames
outside every word have no ``word`` label, and a later word overwrites an overlapping earlier one. Each
span also gets a global id, which the temporal consistency score groups frames by.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from otoscope.audio.frames import FrameGeometry
from otoscope.errors import OtoscopeError

WORD = "word"
OTHER = "<other>"
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)  # leading / trailing non-word characters


@dataclass
class ClipSpans:
    """The word spans of one clip in frames."""

    starts: np.ndarray
    """``[spans]`` first frame of each word."""
    ends: np.ndarray
    """``[spans]`` one past the last frame."""
    words: list[str]
    """The words (:func:`word_label`: no surrounding spaces or punctuation)."""
    first_id: int
    """Global id of this clip's first span."""


@dataclass
class LabelTable:
    """Class indices of every clip-level key and the word spans, for the clips of one corpus."""

    keys: list[str] = field(default_factory=list)
    """Label keys in order (``word`` last when spans are given)."""
    classes: dict[str, list[str]] = field(default_factory=dict)
    """Values per key, most frequent first (class index = position)."""
    clip_class: dict[str, np.ndarray] = field(default_factory=dict)
    """Per clip-level key: ``[clips]`` class index of every corpus clip (-1: none)."""
    spans: dict[int, ClipSpans] = field(default_factory=dict)
    """Word spans by corpus clip index."""
    n_spans: int = 0
    """Spans over all clips."""

    def clip_labels(self, clip: int) -> dict[str, str]:
        """The clip-level labels of corpus clip ``clip``."""
        out = {}
        for key, table in self.clip_class.items():
            if table[clip] >= 0:
                out[key] = self.classes[key][table[clip]]
        return out

    def frame_word(self, clip: int, frame: int) -> str | None:
        """The word spoken at ``frame`` of ``clip``, or None."""
        spans = self.spans.get(clip)
        if spans is None:
            return None
        hit = np.nonzero((spans.starts <= frame) & (frame < spans.ends))[0]
        return spans.words[hit[-1]] if len(hit) else None

    def frame_labels(self, clip: int, frame: int) -> dict[str, str]:
        """Every label of one frame (clip-level keys and the word)."""
        out = self.clip_labels(clip)
        if WORD in self.classes:
            word = self.frame_word(clip, frame)
            if word is not None:
                out[WORD] = word
        return out

    def rows(self, clips: torch.Tensor, frames: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Class index per key (``[rows]`` int64, -1 none) and global span id (``[rows]``, -1 none) of rows
        ``(clip, frame)``."""
        out = {key: torch.as_tensor(table)[clips] for key, table in self.clip_class.items()}
        span_id = torch.full_like(frames, -1)
        if self.spans:
            word_class = torch.full_like(frames, -1)
            index = {w: i for i, w in enumerate(self.classes[WORD])}
            other = index.get(OTHER, -1)
            for clip in torch.unique(clips).tolist():
                spans = self.spans.get(clip)
                if spans is None:
                    continue
                sel = (clips == clip).nonzero().squeeze(1)
                frame = frames[sel].numpy()
                length = int(max(frame.max() + 1, spans.ends.max() if len(spans.ends) else 0))
                lookup = np.full(length, -1, dtype=np.int64)
                for s, (a, b) in enumerate(zip(spans.starts, spans.ends)):
                    lookup[a:b] = s
                local = torch.as_tensor(lookup[frame])
                has = local >= 0
                span_id[sel[has]] = local[has] + spans.first_id
                cls = torch.as_tensor([index.get(spans.words[s], other) for s in local[has].tolist()], dtype=torch.int64)
                word_class[sel[has]] = cls
            out[WORD] = word_class
        return out, span_id


def word_label(word: str) -> str:
    """A word as a label: without surrounding spaces and punctuation (Whisper's ``" door."`` → ``"door"``), so
    one word is one class wherever it falls in a sentence; inner apostrophes and hyphens stay (``"don't"``).
    Empty for a token with no letters or digits (``"..."``, ``"—"``), which is then not a word span."""
    return _EDGE_PUNCTUATION.sub("", word.strip())


def _value(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
        return None
    return str(v)


def _classes(values: Counter, max_classes: int) -> list[str]:
    ordered = sorted(values, key=lambda v: (-values[v], v))
    if len(ordered) > max_classes:
        return ordered[: max_classes - 1] + [OTHER]
    return ordered


def read_spans(path: str | Path) -> dict[str, list[dict]]:
    """Word spans from ``otoscope align --json`` lines: ``{path: [{"word", "start", "end"}, ...]}``."""
    out = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise OtoscopeError(f"{path}:{number} is not valid JSON ({err.msg}); pass `otoscope align --json` output.") from None
        if not isinstance(row, dict) or "path" not in row or not isinstance(row.get("words"), list):
            raise OtoscopeError(f"{path}:{number} lacks 'path' or 'words'; pass `otoscope align --json` output.")
        try:
            out[str(row["path"])] = [{"word": str(w["word"]), "start": float(w["start"]), "end": float(w["end"])}
                                     for w in row["words"]]
        except (KeyError, TypeError, ValueError):
            raise OtoscopeError(f"{path}:{number}: every word needs 'word', 'start' and 'end'; "
                                "pass `otoscope align --json` output.") from None
    return out


def _match_spans(names: list[str], spans: dict[str, list[dict]], source) -> dict[int, list[dict]]:
    """Spans per clip index: matched by the path as given, its resolved form, then its file name."""
    def norm(p: str) -> str:
        return os.path.realpath(os.path.expanduser(p))

    by_full = {norm(p): w for p, w in spans.items()}
    by_name: dict[str, list] = {}
    for p, w in spans.items():
        by_name.setdefault(Path(p).name, []).append(w)
    out = {}
    for i, name in enumerate(names):
        words = spans.get(name) or by_full.get(norm(name))
        if words is None and len(by_name.get(Path(name).name, [])) == 1:
            words = by_name[Path(name).name][0]
        if words is not None:
            out[i] = words
    if spans and not out:
        example = next(iter(spans))
        raise OtoscopeError(f"none of the {len(spans)} paths in {source} (e.g. {example}) is a clip of the corpus; "
                            "align the corpus's own files.")
    return out


def build_labels(names: list[str], clip_labels: list[dict], keys: list[str], spans_file, geometry: FrameGeometry,
                 max_classes: int) -> LabelTable:
    """The :class:`LabelTable` of a corpus: ``names`` and ``clip_labels`` per clip (corpus order)."""
    table = LabelTable()
    for key in keys:
        if key == WORD and spans_file is not None:
            continue
        values = [_value(labels.get(key)) for labels in clip_labels]
        if all(v is None for v in values):
            have = sorted({k for labels in clip_labels for k in labels})
            hint = "word spans come from --spans" if key == WORD else \
                f"the clips have {', '.join(have) if have else 'no labels'}"
            raise OtoscopeError(f"no clip has the label '{key}'; {hint}.")
        classes = _classes(Counter(v for v in values if v is not None), max_classes)
        index = {c: i for i, c in enumerate(classes)}
        other = index.get(OTHER, -1)
        table.keys.append(key)
        table.classes[key] = classes
        table.clip_class[key] = np.array([-1 if v is None else index.get(v, other) for v in values], dtype=np.int64)
    if spans_file is not None:
        matched = _match_spans(names, read_spans(spans_file), spans_file)
        counts: Counter = Counter()
        first = 0
        for clip in sorted(matched):
            words = [w for w in matched[clip] if word_label(str(w.get("word", "")))]
            starts = np.asarray(geometry.convert([float(w["start"]) for w in words], "seconds", "frames"), dtype=np.int64).reshape(-1)
            ends = np.asarray(geometry.convert([float(w["end"]) for w in words], "seconds", "frames"), dtype=np.int64).reshape(-1)
            ends = np.maximum(ends, starts + 1)
            text = [word_label(str(w["word"])) for w in words]
            counts.update(text)
            table.spans[clip] = ClipSpans(starts, ends, text, first)
            first += len(words)
        table.n_spans = first
        table.keys.append(WORD)
        table.classes[WORD] = _classes(counts, max_classes) if counts else []
    return table
