"""Synthetic non-speech: coloured noise, tones, chirps, clicks and mains hum at chosen levels.

Every generator takes a seeded ``numpy.random.Generator`` and returns float32 samples at 16 kHz whose
RMS is ``level_db`` dBFS (0 dBFS = RMS 1; lower when that level would push the peak past 0.99, as
for loud click trains), so a set of clips is reproducible from its seed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

SAMPLE_RATE = 16_000  # Hz
PEAK = 0.99  # largest sample magnitude a clip may reach
KINDS = ("white", "pink", "brown", "tone", "chirp", "clicks", "hum")


def _at_level(x: np.ndarray, level_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    y = x * (10 ** (level_db / 20) / rms)
    peak = float(np.abs(y).max())
    if peak > PEAK:  # sparse sounds (clicks) at a high RMS would clip: lower them instead
        y *= PEAK / peak
    return y.astype(np.float32)


def _coloured(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ∝ 1/f^exponent (0 white, 1 pink, 2 brown), shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    freqs[0] = freqs[1]
    return np.fft.irfft(spectrum / freqs ** (exponent / 2), n)


def white(rng, n):
    """White noise."""
    return _coloured(rng, n, 0.0)


def pink(rng, n):
    """Pink (1/f) noise."""
    return _coloured(rng, n, 1.0)


def brown(rng, n):
    """Brown (1/f²) noise."""
    return _coloured(rng, n, 2.0)


def tone(rng, n):
    """A steady sine between 150 Hz and 4 kHz (log-uniform), sometimes with two harmonics."""
    t = np.arange(n) / SAMPLE_RATE
    f = float(np.exp(rng.uniform(np.log(150), np.log(4000))))
    x = np.sin(2 * np.pi * f * t)
    if rng.random() < 0.5:
        x += 0.5 * np.sin(4 * np.pi * f * t) + 0.25 * np.sin(6 * np.pi * f * t)
    return x


def chirp(rng, n):
    """A sine sweeping exponentially between two frequencies in 100 Hz – 6 kHz."""
    t = np.arange(n) / SAMPLE_RATE
    f0, f1 = np.exp(rng.uniform(np.log(100), np.log(6000), size=2))
    duration = n / SAMPLE_RATE
    k = np.log(f1 / f0) / duration
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k if abs(k) > 1e-9 else 2 * np.pi * f0 * t
    return np.sin(phase)


def clicks(rng, n):
    """A train of short decaying clicks, 2–20 per second, regular or random."""
    x = np.zeros(n)
    rate = rng.uniform(2, 20)
    count = max(1, int(rate * n / SAMPLE_RATE))
    at = (np.sort(rng.integers(0, n, count)) if rng.random() < 0.5
          else (np.arange(count) * (n // count)).astype(int))
    burst = rng.standard_normal(80) * np.exp(-np.arange(80) / 12)  # 5 ms
    for i in at:
        x[i : i + 80] += burst[: n - i]
    return x


def hum(rng, n):
    """Mains hum: 50 or 60 Hz with decaying odd and even harmonics, plus a little noise."""
    t = np.arange(n) / SAMPLE_RATE
    f = 50.0 if rng.random() < 0.5 else 60.0
    x = sum(np.sin(2 * np.pi * f * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 8))
    return x + 0.02 * rng.standard_normal(n)


GENERATORS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "white": white, "pink": pink, "brown": brown, "tone": tone, "chirp": chirp, "clicks": clicks, "hum": hum}


def synth(kind: str, rng: np.random.Generator, seconds: float, level_db: float) -> np.ndarray:
    """``seconds`` of ``kind`` noise at ``level_db`` dBFS RMS, with 20 ms fades → ``[samples]`` float32."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown noise kind '{kind}'; choose one of {', '.join(KINDS)}.")
    n = int(round(seconds * SAMPLE_RATE))
    x = GENERATORS[kind](rng, n)
    ramp = min(n // 2, SAMPLE_RATE // 50)
    fade = np.ones(n)
    fade[:ramp] = np.linspace(0, 1, ramp)
    fade[n - ramp :] = np.linspace(1, 0, ramp)
    return _at_level(x * fade, level_db)
