"""Audio minimal pairs: a clean and a corrupt clip that differ in one factor, with word time spans.

* :func:`word_swap` — the same voice says the sentence with one word swapped (espeak-ng);
* :func:`voice_swap` — the same words in another voice;
* :func:`add_noise` — the clip plus white or pink noise at a signal-to-noise ratio;
* :func:`replace_span` — a time span (or a word) replaced by silence or noise.

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
from otoscope.errors import OtoscopeError
from otoscope.patching.inputs import align_clips
from otoscope.patching.speech import Speech, WordSpan, split_words, synthesize

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
                "corrupt_words": [asdict(w) for w in self.corrupt_words], "details": self.details}

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
                           data.get("wrong"), data.get("details", {}))
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise OtoscopeError(f"{path} is not a pair file ({err}); make one with 'otoscope pairs'.") from None


def _find_word(words: list[str], word: str) -> int:
    for i, w in enumerate(words):
        if w == word:
            return i
    lowered = [w.lower() for w in words]
    if word.lower() in lowered:
        return lowered.index(word.lower())
    raise OtoscopeError(f"'{word}' is not a word of the text; its words are {words}.")


def _context_before(text: str, index: int) -> str:
    """Whisper-style decoder context: the text up to word ``index``, with a leading space."""
    tokens = text.split()
    i = _token_of_word(tokens, index)
    if i is None:
        return " " + text
    return " " + " ".join(tokens[:i]) if i else ""


def _token_of_word(tokens: list[str], index: int) -> int | None:
    """Position in whitespace ``tokens`` of word ``index`` (tokens of punctuation alone are not words)."""
    count = -1
    for i, tok in enumerate(tokens):
        if tok.strip(".,;:!?\"'()"):
            count += 1
        if count == index:
            return i
    return None


def _aligned(a: Speech | Clip, b: Speech | Clip, align: str):
    ca, cb = (x.clip if isinstance(x, Speech) else x for x in (a, b))
    return align_clips(ca, cb, align)


def word_swap(text: str, old: str, new: str, *, voice: str = "en-us", speed: int = 130,
              align: str = "pad") -> MinimalPair:
    """The same voice says ``text`` and ``text`` with word ``old`` replaced by ``new``."""
    words = split_words(text)
    index = _find_word(words, old)
    if not new.strip() or len(new.split()) != 1:
        raise OtoscopeError(f"the new word must be one word, got {new!r}.")
    tokens = text.split()
    i = _token_of_word(tokens, index)
    if i is not None:
        tokens[i] = tokens[i].replace(words[index], new, 1)
    corrupt_text = " ".join(tokens)
    clean, corrupt = synthesize(text, voice, speed), synthesize(corrupt_text, voice, speed)
    clip_clean, clip_corrupt, note = _aligned(clean, corrupt, align)
    return MinimalPair(clip_clean, clip_corrupt, "word", f"'{words[index]}' → '{new}' ({voice}, {speed} wpm)",
                       clean.words, corrupt.words, note, _context_before(text, index) or None, " " + words[index],
                       " " + new, {"clean_text": text, "corrupt_text": corrupt_text, "voice": voice, "speed": speed,
                                   "word_index": index, "span": [clean.words[index].start, clean.words[index].end]})


def voice_swap(text: str, voice: str = "en-us", other_voice: str = "en-gb", *, speed: int = 130,
               align: str = "pad") -> MinimalPair:
    """``text`` in ``voice`` (clean) and in ``other_voice`` (corrupt)."""
    if voice == other_voice:
        raise OtoscopeError(f"both voices are '{voice}'; pick another voice (espeak-ng --voices=en).")
    clean, corrupt = synthesize(text, voice, speed), synthesize(text, other_voice, speed)
    clip_clean, clip_corrupt, note = _aligned(clean, corrupt, align)
    words = split_words(text)
    return MinimalPair(clip_clean, clip_corrupt, "voice", f"voice {voice} → {other_voice}", clean.words, corrupt.words,
                       note, _context_before(text, len(words) - 1) or None, " " + words[-1], None,
                       {"text": text, "voice": voice, "other_voice": other_voice, "speed": speed})


def _noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    if kind != "pink":
        raise OtoscopeError(f"noise must be 'white' or 'pink', got {kind!r}.")
    spectrum = np.fft.rfft(white)
    scale = 1 / np.sqrt(np.maximum(np.arange(len(spectrum)), 1))  # 1/f power
    return np.fft.irfft(spectrum * scale, n)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def add_noise(clean: Speech | Clip, snr_db: float, *, noise: str = "white", seed: int = 0,
              words: list[WordSpan] | None = None) -> MinimalPair:
    """``clean`` plus noise scaled to ``snr_db`` (signal and noise power over the whole clip)."""
    clip = clean.clip if isinstance(clean, Speech) else clean
    words = list(clean.words if isinstance(clean, Speech) else (words or []))
    signal = _power(clip.samples)
    if signal == 0:
        raise OtoscopeError(f"{clip.name} is silent: a signal-to-noise ratio needs a signal.")
    raw = _noise(len(clip.samples), noise, np.random.default_rng(seed))
    scaled = raw * np.sqrt(signal / (_power(raw) * 10 ** (snr_db / 10)))
    corrupt = Clip((clip.samples + scaled).astype(np.float32), clip.sample_rate, f"{clip.name}+{noise}@{snr_db:g}dB")
    return MinimalPair(clip, corrupt, "noise", f"{noise} noise at {snr_db:g} dB SNR (seed {seed})", words, words,
                       "equal lengths (noise added in place)", details={"snr_db": snr_db, "noise": noise, "seed": seed})


def replace_span(clean: Speech | Clip, start: float | None = None, end: float | None = None, *,
                 word: str | None = None, fill: str = "silence", snr_db: float = 0.0, seed: int = 0,
                 words: list[WordSpan] | None = None) -> MinimalPair:
    """``clean`` with ``[start, end)`` seconds — or the span of ``word`` — replaced by silence or noise.

    Noise is white, at ``snr_db`` relative to the whole clip's power.
    """
    clip = clean.clip if isinstance(clean, Speech) else clean
    words = list(clean.words if isinstance(clean, Speech) else (words or []))
    if word is not None:
        if start is not None or end is not None:
            raise OtoscopeError("pass a word or a start/end span, not both.")
        match = [w for w in words if w.word == word] or [w for w in words if w.word.lower() == word.lower()]
        if not match:
            raise OtoscopeError(f"'{word}' has no word span; known words: {[w.word for w in words] or 'none'}.")
        start, end = match[0].start, match[0].end
    if start is None or end is None or not 0 <= start < end:
        raise OtoscopeError(f"need 0 <= start < end in seconds (or word=...), got start={start}, end={end}.")
    if end > clip.seconds + 1e-9:
        raise OtoscopeError(f"the span ends at {end:.3f} s but {clip.name} is {clip.seconds:.3f} s long.")
    a, b = int(round(start * clip.sample_rate)), int(round(end * clip.sample_rate))
    samples = clip.samples.copy()
    if fill == "silence":
        samples[a:b] = 0.0
    elif fill == "noise":
        raw = np.random.default_rng(seed).standard_normal(b - a)
        samples[a:b] = raw * np.sqrt(_power(clip.samples) / 10 ** (snr_db / 10))
    else:
        raise OtoscopeError(f"fill must be 'silence' or 'noise', got {fill!r}.")
    what = f"{start:.3f}–{end:.3f} s" + (f" ('{word}')" if word else "")
    corrupt = Clip(samples.astype(np.float32), clip.sample_rate, f"{clip.name}[{what} {fill}]")
    index = next((i for i, w in enumerate(words) if w.start >= start - 1e-6), None)
    text = answer = None
    if word is not None and index is not None:
        text = " " + " ".join(w.word for w in words[:index]) if index else None
        answer = " " + words[index].word
    return MinimalPair(clip, corrupt, "span", f"{what} replaced by {fill}", words, words,
                       "equal lengths (span replaced in place)", text, answer, None,
                       {"start": start, "end": end, "fill": fill, "word": word,
                        **({"snr_db": snr_db, "seed": seed} if fill == "noise" else {})})
