"""Pairs made by editing one clip: noise added at a signal-to-noise ratio, or a span replaced.

The clean clip of each pair is the clip given, unchanged; the corrupt clip differs from it only by the
noise added (:func:`add_noise`) or only inside the span (:func:`replace_span`).
"""

from __future__ import annotations

import numpy as np

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.stimuli import noise as noise_kinds
from otoscope.stimuli.pairs import MinimalPair
from otoscope.stimuli.speech import Speech
from otoscope.stimuli.words import WordSpan


def _noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind not in ("white", "pink", "brown"):
        raise OtoscopeError(f"noise must be 'white', 'pink' or 'brown', got {kind!r}.")
    return noise_kinds.GENERATORS[kind](rng, n)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def add_noise(clean: Speech | Clip, snr_db: float, *, noise: str = "white", seed: int = 0,
              words: list[WordSpan] | None = None) -> MinimalPair:
    """``clean`` plus ``noise`` (white, pink or brown; seeded) scaled to ``snr_db`` (signal and noise power over
    the whole clip)."""
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
