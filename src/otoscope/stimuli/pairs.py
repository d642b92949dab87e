"""Audio minimal pairs: a clean and a corrupt clip that differ in one factor, with word time spans.

The generators live beside this module: :mod:`otoscope.stimuli.swaps` (``word_swap``, ``voice_swap``)
and :mod:`otoscope.stimuli.degrade` (``add_noise``, ``replace_span``). Here: the pair itself, its
folder format and the alignment of unequal lengths.

Pairs of unequal length (a swapped word or another voice changes the duration) are aligned by padding
the shorter clip with trailing silence (``align="pad"``, the default: both start together, so frame i
is the same moment in both up to the first difference) or by trimming the longer (``"trim"``); the pair
records which. A pair saves as ``clean.flac``, ``corrupt.flac`` and ``pair.json`` (words, alignment and
the decoder context, answer and wrong answer to patch with).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from otoscope.audio.io import Clip, to_clip
from otoscope.errors import AudioError, OtoscopeError
from otoscope.stimuli.words import WordSpan

FACTORS = ("word", "voice", "noise", "span")
PAIR_FILES = ("pair.json",)  # marks a folder as an earlier pair, which a new one may replace


@dataclass
class MinimalPair:
    """Two clips that differ in one factor."""

    clean: Clip
    """The reference clip."""
    corrupt: Clip
    """The clip with the factor changed."""
    factor: str
    """``word``, ``voice``, ``noise`` or ``span``."""
    description: str
    """What differs, in words."""
    clean_words: list[WordSpan] = field(default_factory=list)
    """Word spans of the clean clip (empty when unknown)."""
    corrupt_words: list[WordSpan] = field(default_factory=list)
    """Word spans of the corrupt clip."""
    alignment: str = ""
    """How the lengths were made equal."""
    text: str | None = None
    """Suggested teacher-forced decoder context: the words before the changed one (Whisper style, leading space)."""
    answer: str | None = None
    """Suggested answer: the clean word that follows ``text``."""
    wrong: str | None = None
    """Suggested wrong answer: the corrupt word (word swaps only)."""
    details: dict = field(default_factory=dict)
    """The factor's parameters (voices, SNR, span, seed, ...)."""
    prompt: str | None = None
    """An audio-LLM prompt for both runs (``otoscope listen`` reads it; None: its default question)."""

    def patch_args(self) -> dict:
        """Keyword arguments for :func:`otoscope.patching.patch` (clips, text, answer, wrong, words)."""
        out = {"clean": self.clean, "corrupt": self.corrupt, "words": self.clean_words}
        if self.text is not None:
            out["text"] = self.text
        for key in ("answer", "wrong"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def to_json(self, clean_path: str = "clean.flac", corrupt_path: str = "corrupt.flac") -> dict:
        """The ``pair.json`` object."""
        return {"factor": self.factor, "description": self.description, "clean": clean_path, "corrupt": corrupt_path,
                "seconds": round(self.clean.seconds, 4), "sample_rate": self.clean.sample_rate,
                "alignment": self.alignment, "text": self.text, "answer": self.answer, "wrong": self.wrong,
                "clean_words": [asdict(w) for w in self.clean_words],
                "corrupt_words": [asdict(w) for w in self.corrupt_words], "details": self.details,
                **({"prompt": self.prompt} if self.prompt is not None else {})}

    def save(self, out: str | Path) -> list[Path]:
        """Write ``clean.flac``, ``corrupt.flac`` (16-bit) and ``pair.json`` into folder ``out``, which is replaced
        as a whole (an earlier pair's folder, see :data:`PAIR_FILES`)."""
        import soundfile as sf

        from otoscope._io import atomic_dir, check_output_dir, write_text_atomic

        out = check_output_dir(out, PAIR_FILES)
        with atomic_dir(out, markers=PAIR_FILES) as folder:
            for clip, name in ((self.clean, "clean.flac"), (self.corrupt, "corrupt.flac")):
                sf.write(str(folder / name), np.clip(clip.samples, -1, 1), clip.sample_rate, format="FLAC",
                         subtype="PCM_16")
            write_text_atomic(folder / "pair.json", json.dumps(self.to_json(), indent=1))
        return [out / "clean.flac", out / "corrupt.flac", out / "pair.json"]


def load_pair(path: str | Path, sample_rate: int = 16_000) -> MinimalPair:
    """Read a pair saved by :meth:`MinimalPair.save` (``path``: its ``pair.json`` or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "pair.json"
    if not path.exists():
        raise OtoscopeError(f"pair file not found: {path}; make one with 'otoscope pairs'.")
    try:
        data = json.loads(path.read_text())
        words = lambda key: [WordSpan(**w) for w in data.get(key, [])]  # noqa: E731
        clean = to_clip(str(path.parent / data["clean"]), sample_rate)
        corrupt = to_clip(str(path.parent / data["corrupt"]), sample_rate)
        return MinimalPair(clean, corrupt, data["factor"], data.get("description", ""), words("clean_words"),
                           words("corrupt_words"), data.get("alignment", ""), data.get("text"), data.get("answer"),
                           data.get("wrong"), data.get("details", {}), data.get("prompt"))
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise OtoscopeError(f"{path} is not a pair file ({err}); make one with 'otoscope pairs'.") from None


def align_clips(clean: Clip, corrupt: Clip, align: str = "pad") -> tuple[Clip, Clip, str]:
    """Make two clips the same length: ``pad`` the shorter with trailing silence, ``trim`` the longer, or
    ``error`` → ``(clean, corrupt, what was done)``."""
    if align not in ("pad", "trim", "error"):
        raise OtoscopeError(f"align must be 'pad', 'trim' or 'error', got {align!r}.")
    if clean.sample_rate != corrupt.sample_rate:
        raise AudioError(f"clean is {clean.sample_rate} Hz but corrupt is {corrupt.sample_rate} Hz; resample one first.")
    n_clean, n_corrupt = len(clean.samples), len(corrupt.samples)
    rate = clean.sample_rate
    if n_clean == n_corrupt:
        return clean, corrupt, f"equal lengths ({n_clean / rate:.3f} s)"
    longer, shorter = ("clean", "corrupt") if n_clean > n_corrupt else ("corrupt", "clean")
    gap = abs(n_clean - n_corrupt) / rate
    if align == "error":
        raise AudioError(f"clean is {n_clean / rate:.3f} s and corrupt {n_corrupt / rate:.3f} s; make them equal "
                         "or pass align='pad' (trailing silence) or 'trim'.")
    if align == "pad":
        target = max(n_clean, n_corrupt)
        fix = lambda c: Clip(np.pad(c.samples, (0, target - len(c.samples))), rate, c.name)  # noqa: E731
        note = f"padded {shorter} with {gap:.3f} s of trailing silence to {target / rate:.3f} s"
    else:
        target = min(n_clean, n_corrupt)
        fix = lambda c: Clip(c.samples[:target].copy(), rate, c.name)  # noqa: E731
        note = f"trimmed the last {gap:.3f} s of {longer} to {target / rate:.3f} s"
    return fix(clean), fix(corrupt), note
