"""Audio snippets around a frame, and the small images the dashboard shows: spectrograms and latent heatmaps.

A snippet is ``2 × SNIPPET_HALF_SECONDS`` of audio centred on the middle of one encoder frame, padded with
silence where it runs past the clip's ends, so every snippet has the same length and its centre is the frame.
Images are PNGs encoded here with a matplotlib colormap (no figure, no axes): a pixel per STFT column or
frame, scaled up by the browser, which keeps thousands of them fast to write and small on disk. A clip's
spectrogram is computed once and each snippet's is a window of it.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from otoscope.audio.frames import FrameGeometry

SNIPPET_HALF_SECONDS = 0.5  # audio kept each side of the frame's centre
SPEC_HOP_SECONDS = 0.01  # STFT hop: 100 spectrogram columns per second
SPEC_WINDOW_SECONDS = 0.025  # STFT window (25 ms, as Whisper's 400 samples at 16 kHz)
SPEC_MELS = 64  # mel bands drawn
SPEC_DYNAMIC_RANGE_DB = 80.0  # quieter than the loudest bin by more than this is drawn black
SPEC_CMAP, HEAT_CMAP = "magma", "Oranges"


@dataclass(frozen=True)
class Snippet:
    """Where one snippet sits in its clip."""

    start: float
    """Clip time (seconds) of the snippet's first sample; negative when it starts in the padding."""
    centre: float
    """Clip time of the frame's centre (the middle of the snippet)."""
    samples: np.ndarray
    """``[2 × half × sample_rate]`` float32 audio."""


def frame_centre(frame: int, geometry: FrameGeometry) -> float:
    """Clip time (seconds) of the middle of encoder frame ``frame``."""
    return float(geometry.convert(frame + 0.5, "frames", "seconds"))


def cut(samples: np.ndarray, frame: int, geometry: FrameGeometry, half: float = SNIPPET_HALF_SECONDS) -> Snippet:
    """The snippet centred on ``frame``: ``half`` seconds each side, zero-padded past the clip's ends."""
    rate = geometry.sample_rate
    centre = frame_centre(frame, geometry)
    width = int(round(half * rate))
    middle = int(round(centre * rate))
    lo, hi = middle - width, middle + width
    out = np.zeros(hi - lo, dtype=np.float32)
    src_lo, src_hi = max(lo, 0), min(hi, len(samples))
    if src_hi > src_lo:
        out[src_lo - lo:src_hi - lo] = samples[src_lo:src_hi]
    return Snippet(lo / rate, centre, out)


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str = "FLAC") -> bytes:
    """Mono audio as 16-bit FLAC (or WAV) bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


def write_audio(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio as 16-bit FLAC (WAV when ``path`` ends in .wav).

    Written in one plain write: the dashboard builds inside a temporary folder that is swapped in whole
    (encoding in memory first halves the time per snippet on a busy disk)."""
    path.write_bytes(encode_audio(samples, sample_rate, "WAV" if path.suffix.lower() == ".wav" else "FLAC"))
    return path


@lru_cache(maxsize=4)
def _mel_basis(n_fft: int, sample_rate: int) -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=SPEC_MELS, min_frequency=0.0,
                           max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm="slaney",
                           mel_scale="slaney").astype(np.float32)  # [freqs, mels]


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[mels, columns]`` log-mel power in dB (one column per 10 ms; silence gives a constant floor)."""
    n_fft = int(round(SPEC_WINDOW_SECONDS * sample_rate))
    hop = int(round(SPEC_HOP_SECONDS * sample_rate))
    padded = np.pad(samples.astype(np.float32), (n_fft // 2, n_fft // 2))
    n_cols = max(1, 1 + (len(padded) - n_fft) // hop)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_cols)[:, None]  # [columns, n_fft]
    frames = padded[idx] * np.hanning(n_fft).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # [columns, freqs]
    mel = power @ _mel_basis(n_fft, sample_rate)  # [columns, mels]
    return (10.0 * np.log10(np.maximum(mel, 1e-10))).T


@lru_cache(maxsize=8)
def _lut(cmap: str) -> np.ndarray:
    """``[256, 3]`` uint8 colours of a matplotlib colormap."""
    from matplotlib import colormaps

    return (colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(matrix: np.ndarray, cmap: str, vmin: float, vmax: float) -> bytes:
    """``[rows, columns]`` as colour-mapped PNG bytes, row 0 at the top, one pixel per cell.

    The PNG is encoded here (8-bit RGB, no filter, zlib) rather than through a figure: a few kB and about a
    millisecond per image, which matters when a dashboard writes one per snippet.
    """
    scaled = (np.asarray(matrix, dtype=np.float32) - vmin) / max(vmax - vmin, 1e-9)
    index = np.clip(np.nan_to_num(scaled) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = _lut(cmap)[index]  # [rows, columns, 3]
    height, width = index.shape
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rgb.reshape(height, width * 3)], axis=1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def write_image(path: Path, matrix: np.ndarray, cmap: str, vmin: float, vmax: float) -> Path:
    """Write :func:`encode_png`'s PNG to ``path`` (one plain write, as :func:`write_audio`)."""
    path.write_bytes(encode_png(matrix, cmap, vmin, vmax))
    return path


def write_spectrogram(path: Path, db: np.ndarray, floor_top: float | None = None) -> Path:
    """A log-mel spectrogram ``[mels, columns]`` (dB, from :func:`log_mel`) as a PNG, low frequencies at the bottom.

    ``floor_top``: the loudest level the colour scale is anchored to (default: this spectrogram's own)."""
    top = float(db.max()) if floor_top is None else floor_top
    return write_image(path, db[::-1], SPEC_CMAP, top - SPEC_DYNAMIC_RANGE_DB, top)


def window(db: np.ndarray, start: float, seconds: float = 2 * SNIPPET_HALF_SECONDS) -> np.ndarray:
    """Columns of a clip's log-mel ``[mels, columns]`` from clip time ``start`` for ``seconds``, padded with its floor."""
    first = int(round(start / SPEC_HOP_SECONDS))
    n = int(round(seconds / SPEC_HOP_SECONDS))
    out = np.full((db.shape[0], n), float(db.min()), dtype=np.float32)
    lo, hi = max(first, 0), min(first + n, db.shape[1])
    if hi > lo:
        out[:, lo - first:hi - first] = db[:, lo:hi]
    return out


def write_heatmap(path: Path, rows: np.ndarray, scale: np.ndarray) -> Path:
    """``[latents, frames]`` activations as a PNG, each row divided by its ``scale`` (e.g. the latent's max)."""
    norm = rows / np.maximum(np.asarray(scale, dtype=np.float32)[:, None], 1e-12)
    return write_image(path, np.clip(norm, 0.0, 1.0), HEAT_CMAP, 0.0, 1.0)
