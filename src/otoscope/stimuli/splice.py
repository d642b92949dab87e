"""Splice a stretch of one rendering into another: the word-swap pair's corrupt clip from the clean one.

espeak-ng plans a sentence's prosody as a whole, so two renderings that differ in one word differ
everywhere (in pitch and timing before the word too). A true minimal pair keeps the clean samples
and replaces only the word: the corrupt clip is

    clean[:a - X] · fade(clean[a - X:a] → other[a' - X:a']) · other[a':b']
                  · fade(other[b':b' + X] → clean[b:b + X]) · clean[b + X:]

with ``[a, b)`` the word in the clean clip, ``[a', b')`` the new word in the other rendering and ``X``
the crossfade. The crossfades lie *outside* the word, in the neighbouring words' audio that both
renderings say alike, so neither word's sound leaks into the other. ``a'`` and ``b'`` are each moved
by at most ``search`` samples to where the two renderings line up best (normalised cross-correlation
over the crossfade), so the fade mixes waveforms in phase. Everything after the word is the clean
audio shifted by ``shift = (b' - a') - (b - a)`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Splice:
    """A spliced clip and where it differs from the clip it was made from (all in samples)."""

    samples: np.ndarray
    """``[samples]`` float32: the clean clip with the word replaced."""
    clean_span: tuple[int, int]
    """``[a, b)``: the replaced word in the clean clip."""
    span: tuple[int, int]
    """``[a, a + b' - a')``: the new word in the spliced clip."""
    source_span: tuple[int, int]
    """``[a', b')``: the new word in the rendering it was taken from (after the in-phase search)."""
    crossfade: int
    """``X``: samples of crossfade on each side, outside the word."""
    shift: int
    """Samples the audio after the word moved (positive: later)."""

    @property
    def same_before(self) -> int:
        """``samples[:same_before]`` equals the clean clip's first samples."""
        return self.clean_span[0] - self.crossfade

    @property
    def same_after(self) -> tuple[int, int]:
        """``(clean index, spliced index)`` from which the two are equal to their ends (offset by ``shift``)."""
        return self.clean_span[1] + self.crossfade, self.span[1] + self.crossfade

    def to_json(self, sample_rate: int) -> dict:
        """The alignment for a pair's manifest, in samples and seconds."""
        seconds = lambda n: round(n / sample_rate, 4)  # noqa: E731
        return {"clean_span": list(self.clean_span), "corrupt_span": list(self.span),
                "source_span": list(self.source_span), "crossfade": self.crossfade, "shift": self.shift,
                "same_before": self.same_before, "same_after": list(self.same_after), "unit": "samples",
                "sample_rate": sample_rate, "clean_span_s": [seconds(n) for n in self.clean_span],
                "corrupt_span_s": [seconds(n) for n in self.span], "crossfade_s": seconds(self.crossfade),
                "shift_s": seconds(self.shift)}


def _best_lag(reference: np.ndarray, other: np.ndarray, start: int, search: int) -> int:
    """The lag in ``[-search, search]`` for which ``other[start + lag:][:len(reference)]`` best matches
    ``reference`` (normalised cross-correlation; the smaller lag on ties); 0 when either is silent."""
    width = len(reference)
    ref = reference.astype(np.float64)
    if search <= 0 or width == 0 or not np.any(ref):
        return 0
    best, best_lag = 0.0, 0
    for lag in sorted(range(-search, search + 1), key=abs):
        lo = start + lag
        if lo < 0 or lo + width > len(other):
            continue
        window = other[lo:lo + width].astype(np.float64)
        norm = np.sqrt(np.dot(window, window) * np.dot(ref, ref))
        score = np.dot(window, ref) / norm if norm > 0 else 0.0
        if score > best + 1e-9:
            best, best_lag = score, lag
    return best_lag


def splice(clean: np.ndarray, other: np.ndarray, clean_span: tuple[int, int], other_span: tuple[int, int],
           crossfade: int, search: int = 0) -> Splice:
    """Replace ``clean[a:b]`` by ``other[a':b']`` with raised-cosine crossfades of ``crossfade`` samples
    outside the word (see the module) → :class:`Splice`. ``clean`` and ``other``: ``[samples]`` at one rate.

    The crossfade is shortened where a clip has too little audio around the word.
    """
    a, b = clean_span
    a2, b2 = other_span
    if not (0 <= a < b <= len(clean) and 0 <= a2 < b2 <= len(other)):
        raise ValueError(f"spans {clean_span} / {other_span} do not fit clips of {len(clean)} / {len(other)} samples.")
    x = max(0, min(crossfade, a, a2, len(clean) - b, len(other) - b2))
    a2 += _best_lag(clean[a - x:a], other, a2 - x, search)
    b2 += _best_lag(clean[b:b + x], other, b2, search)
    if b2 <= a2:  # the search crossed the word over (a very short word): keep the spans as given
        a2, b2 = other_span
    rise = (0.5 - 0.5 * np.cos(np.pi * (np.arange(x) + 0.5) / x)).astype(np.float32) if x else np.zeros(0, np.float32)
    fall = 1.0 - rise
    head = clean[a - x:a] * fall + other[a2 - x:a2] * rise
    tail = other[b2:b2 + x] * fall + clean[b:b + x] * rise
    samples = np.concatenate([clean[:a - x], head, other[a2:b2], tail, clean[b + x:]]).astype(np.float32)
    return Splice(samples, (a, b), (a, a + b2 - a2), (a2, b2), x, (b2 - a2) - (b - a))
