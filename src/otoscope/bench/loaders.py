"""Real datasets the user has on disk, as benchmark pairs in the same format as the generated tasks.

* :func:`speech_commands_pairs` — a Speech Commands v2 folder (``<word>/<speaker>_nohash_<n>.wav``):
  keyword pairs of two command words *from the same speaker*, so the voice is not the factor;
* :func:`esc50_pairs` — an ESC-50 folder (``audio/*.wav`` + ``meta/esc50.csv``): speech vs non-speech
  pairs, each environmental sound against a speech clip cut or padded to the same length;
* :func:`hf_keyword_pairs` — a Hugging Face ``datasets`` split (or any sequence of rows shaped like one:
  ``{"audio": {"array", "sampling_rate"}, "label": ...}``) of labelled command words.

Nothing is downloaded; the pairs are drawn with a seed, so a folder and a seed give the same pairs.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from otoscope.audio.io import Clip, to_clip
from otoscope.bench.pair import BenchPair
from otoscope.bench.tasks.keyword import KEYWORDS, keyword_pair
from otoscope.bench.tasks.nonspeech import nonspeech_pair
from otoscope.errors import OtoscopeError

SAMPLE_RATE = 16_000  # Hz: clips are resampled to this


def _draw_pairs(groups: dict[str, dict[str, list]], n: int, seed: int):
    """``n`` (speaker, word, other) draws with both words spoken by the speaker, in a seeded order."""
    rng = np.random.default_rng(seed)
    options = [(s, a, b) for s, words in sorted(groups.items()) for a in sorted(words) for b in sorted(words) if a != b]
    if not options:
        raise OtoscopeError("no speaker says two different command words; pass a folder with more speakers or words.")
    order = rng.permutation(len(options))[:n]
    return [options[int(i)] for i in order]


def speech_commands_pairs(root: str | Path, n: int = 40, seed: int = 0,
                          words: Sequence[str] = KEYWORDS) -> list[BenchPair]:
    """Keyword pairs from a Speech Commands v2 folder: ``root/<word>/<speaker>_nohash_<k>.wav``."""
    root = Path(root)
    if not root.is_dir():
        raise OtoscopeError(f"{root} is not a folder; pass the Speech Commands v2 root (it holds yes/, no/, ...).")
    groups: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for word in words:
        for path in sorted((root / word).glob("*.wav")):
            speaker = path.stem.split("_nohash_")[0]
            groups[speaker][word].append(path)
    if not groups:
        raise OtoscopeError(f"no <word>/*.wav files for {', '.join(words)} under {root}; is it a Speech Commands folder?")
    pairs = []
    for i, (speaker, word, other) in enumerate(_draw_pairs(groups, n, seed)):
        a, b = groups[speaker][word][0], groups[speaker][other][0]
        clean, corrupt = to_clip(str(a), SAMPLE_RATE), to_clip(str(b), SAMPLE_RATE)
        pairs.append(keyword_pair(f"keyword-sc-{i:03d}", clean, corrupt, word, other, None,
                                  {"source": "speech_commands", "speaker": speaker, "clean_file": str(a.relative_to(root)),
                                   "corrupt_file": str(b.relative_to(root))}))
    return pairs


def hf_keyword_pairs(dataset: Iterable[dict], n: int = 40, seed: int = 0, label_names: Sequence[str] | None = None,
                     audio_column: str = "audio", label_column: str = "label",
                     speaker_column: str | None = "speaker_id") -> list[BenchPair]:
    """Keyword pairs from a Hugging Face ``datasets`` split of command words (e.g. ``speech_commands`` v0.02).

    Labels may be names or class indices (``label_names`` maps indices to names; a ``datasets`` split
    supplies it from its features). Rows with a speaker column are paired within a speaker.
    """
    if label_names is None:
        feature = getattr(getattr(dataset, "features", None), "get", lambda _: None)(label_column)
        label_names = getattr(feature, "names", None)
    groups: dict[str, dict[str, list[Clip]]] = defaultdict(lambda: defaultdict(list))
    for k, row in enumerate(dataset):
        label = row[label_column]
        name = label_names[label] if label_names is not None and not isinstance(label, str) else str(label)
        if name not in KEYWORDS:
            continue
        audio = row[audio_column]
        clip = to_clip(np.asarray(audio["array"], dtype=np.float32), SAMPLE_RATE, int(audio["sampling_rate"]))
        speaker = str(row.get(speaker_column, "")) if speaker_column else ""
        groups[speaker][name].append(clip)
    if not groups:
        raise OtoscopeError(f"no rows labelled with a command word ({', '.join(KEYWORDS)}) in column {label_column!r}.")
    pairs = []
    for i, (speaker, word, other) in enumerate(_draw_pairs(groups, n, seed)):
        pairs.append(keyword_pair(f"keyword-hf-{i:03d}", groups[speaker][word][0], groups[speaker][other][0], word,
                                  other, None, {"source": "huggingface", "speaker": speaker}))
    return pairs


def esc50_pairs(root: str | Path, speech: Sequence[Clip], n: int = 40, seed: int = 0) -> list[BenchPair]:
    """Speech vs non-speech pairs: each drawn ESC-50 clip (corrupt) against a speech clip (clean) of its length.

    ``speech``: clean clips at 16 kHz (e.g. synthesised sentences); each is padded with silence or cut to
    the environmental clip's length, so the two clips of a pair have the same length.
    """
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise OtoscopeError(f"no meta/esc50.csv under {root}; pass the ESC-50 root (it holds audio/ and meta/).")
    if not speech:
        raise OtoscopeError("no speech clips given; pass clean speech clips to pair the sounds with.")
    with meta.open(newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["filename"])
    if not rows:
        raise OtoscopeError(f"{meta} lists no clips.")
    rng = np.random.default_rng(seed)
    pairs = []
    for i, j in enumerate(rng.permutation(len(rows))[:n]):
        row = rows[int(j)]
        sound = to_clip(str(root / "audio" / row["filename"]), SAMPLE_RATE)
        base = speech[i % len(speech)]
        samples = np.zeros(len(sound.samples), np.float32)
        samples[: min(len(samples), len(base.samples))] = base.samples[: len(samples)]
        clean = Clip(samples, SAMPLE_RATE, base.name)
        pairs.append(nonspeech_pair(f"nonspeech-esc-{i:03d}", clean, sound.samples, None,
                                    {"source": "esc50", "nonspeech": f"esc50:{row['category']}",
                                     "file": row["filename"], "speech": base.name}))
    return pairs
