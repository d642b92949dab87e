"""The one place that converts between samples, seconds and model frames.

Whisper turns 16 kHz audio into log-mel frames every 160 samples (10 ms) and its encoder's second
convolution halves that rate: one encoder frame per 320 samples (20 ms), 1500 frames per 30-second
window. Every clip is padded (with zeros, as Whisper was trained) to the full window, so only the
first ``ceil(mel_frames / 2)`` encoder frames carry real audio; the rest is Whisper's padding.

wav2vec2, HuBERT and WavLM run a strided CNN directly on the waveform (kernels 10,3,3,3,3,2,2 and
strides 5,2,2,2,2,2,2 in the base models): 320 samples per frame, no fixed window. Their frame count
follows the conv arithmetic ``L -> (L - kernel) // stride + 1`` layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

Unit = Literal["samples", "seconds", "frames"]

WHISPER_SAMPLE_RATE = 16_000  # Hz
WHISPER_MEL_HOP = 160  # samples between log-mel frames (10 ms)
WHISPER_WINDOW_SECONDS = 30  # one encoder pass sees 30 s
WHISPER_WINDOW_SAMPLES = WHISPER_SAMPLE_RATE * WHISPER_WINDOW_SECONDS  # 480000 samples


@dataclass(frozen=True)
class FrameGeometry:
    """How a model's encoder frames sit on the audio timeline."""

    sample_rate: int
    """Samples per second the model expects (16000 for every supported model)."""
    samples_per_frame: int
    """Hop between consecutive encoder frames, in samples (320 → 50 frames/s)."""
    window_frames: int | None = None
    """Frames in one fixed input window (Whisper: 1500), or None when input length is free."""
    conv_kernels: tuple[int, ...] = ()
    """Kernel sizes of a waveform CNN front end (wav2vec2 family); empty for Whisper."""
    conv_strides: tuple[int, ...] = ()
    """Strides of that CNN, same length as ``conv_kernels``."""

    @property
    def frame_rate(self) -> float:
        """Encoder frames per second."""
        return self.sample_rate / self.samples_per_frame

    @property
    def window_samples(self) -> int | None:
        """Samples in one fixed window (Whisper: 480000), or None."""
        return None if self.window_frames is None else self.window_frames * self.samples_per_frame

    def convert(self, value, src: Unit, dst: Unit):
        """Convert a position (scalar or array) between ``samples``, ``seconds`` and ``frames``.

        Frames are frame *starts*: frame ``i`` begins at sample ``i * samples_per_frame``. Converting to
        frames floors (the frame that contains the position); converting to samples rounds.
        """
        units = ("samples", "seconds", "frames")
        if src not in units or dst not in units:
            raise ValueError(f"unit must be one of {units}, got {src!r} → {dst!r}")
        scale = {"samples": 1.0, "seconds": float(self.sample_rate), "frames": float(self.samples_per_frame)}
        samples = np.asarray(value, dtype=np.float64) * scale[src]
        out = samples / scale[dst]
        if dst == "frames":
            out = np.floor(out + 1e-9).astype(np.int64)
        elif dst == "samples":
            out = np.rint(out).astype(np.int64)
        return out.item() if out.ndim == 0 else out

    def n_frames(self, n_samples: int) -> int:
        """Encoder frames that carry real audio for a clip of ``n_samples`` samples."""
        if self.conv_kernels:
            length = int(n_samples)
            for kernel, stride in zip(self.conv_kernels, self.conv_strides):
                length = (length - kernel) // stride + 1
            return max(length, 0)
        # Whisper: n // hop log-mel frames (the last STFT frame is dropped), halved by conv2 (stride 2, pad 1)
        mel_frames = max(int(n_samples) // WHISPER_MEL_HOP, 1)
        frames = -(-mel_frames // (self.samples_per_frame // WHISPER_MEL_HOP))
        return min(frames, self.window_frames) if self.window_frames else frames

    def frame_mask(self, lengths: Sequence[int], total_frames: int) -> torch.Tensor:
        """Real-audio mask ``[batch, frames]`` (True = real) for clips of ``lengths`` samples."""
        mask = torch.zeros(len(lengths), total_frames, dtype=torch.bool)
        for i, n in enumerate(lengths):
            mask[i, : min(self.n_frames(n), total_frames)] = True
        return mask

    def frame_times(self, n_frames: int) -> np.ndarray:
        """Start time in seconds of each of the first ``n_frames`` frames."""
        return self.convert(np.arange(n_frames), "frames", "seconds")


def whisper_geometry(max_source_positions: int = 1500) -> FrameGeometry:
    """Frame geometry of a Whisper encoder (320 samples/frame, a fixed 30 s window)."""
    return FrameGeometry(WHISPER_SAMPLE_RATE, 2 * WHISPER_MEL_HOP, window_frames=max_source_positions)


def cnn_geometry(kernels: Sequence[int], strides: Sequence[int], sample_rate: int = 16_000) -> FrameGeometry:
    """Frame geometry of a waveform CNN front end (wav2vec2, HuBERT, WavLM)."""
    hop = int(np.prod(strides))
    return FrameGeometry(sample_rate, hop, None, tuple(int(k) for k in kernels), tuple(int(s) for s in strides))
