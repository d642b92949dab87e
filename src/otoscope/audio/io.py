"""Audio input: files, numpy arrays and torch tensors → validated mono float32 at the model's rate.

Files are read with soundfile (wav, flac, ogg, mp3 with libsndfile >= 1.1) and, failing that, with the
``ffmpeg`` program when it is installed. Multi-channel audio is mixed to mono by averaging channels;
resampling uses soxr (high quality), never naive interpolation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from otoscope.errors import AudioError

MAX_RATE = 2**31 - 1  # Hz: the largest rate an audio file header (int32) can hold

AudioLike = Union[str, os.PathLike, np.ndarray, torch.Tensor, "Clip"]


@dataclass
class Clip:
    """One mono clip at a known sample rate."""

    samples: np.ndarray
    """Waveform, float32, shape ``[samples]``."""
    sample_rate: int
    """Samples per second of ``samples``."""
    name: str = "<array>"
    """Where it came from (a path, or ``<array>``), for messages and metadata."""

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / self.sample_rate


def _read_with_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
           "-ar", str(sample_rate), "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"cannot decode {path}: {reason[-1] if reason else 'ffmpeg failed'}; "
                         "check that it is an audio file that is not truncated.")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def _reason(error: Exception, path: Path) -> str:
    """libsndfile's complaint without its ``Error opening 'PATH':`` prefix, in words that fit an existing file."""
    text = " ".join(str(error).split())
    text = text.replace(f"Error opening {str(path)!r}: ", "").strip().rstrip(".")
    if "does not exist" in text or "not a regular file" in text:  # what libsndfile says of unrecognised data
        return "not a recognised audio format"
    return text.replace("Error : ", "") or type(error).__name__


@contextlib.contextmanager
def _quiet_stderr(enabled: bool):
    """Silence the C-level stderr (file descriptor 2) while a decoder that prints to it runs."""
    if not enabled:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_file(path: str | os.PathLike, sample_rate: int | None = None) -> Clip:
    """Read an audio file as a mono :class:`Clip`, resampled to ``sample_rate`` when given."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}; check the path.")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file; pass the files inside it.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is an empty file (0 bytes), not audio; check how it was written.")
    try:
        with _quiet_stderr(path.suffix.lower() == ".mp3"):  # libmpg123 prints "Note: ..." lines on bad frames
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    except Exception as sf_error:  # soundfile raises several types for unreadable input
        if shutil.which("ffmpeg") is None:
            raise AudioError(f"cannot read {path}: {_reason(sf_error, path)}; the file is corrupt, truncated or not "
                             "audio (wav, flac, ogg and mp3 are read; install ffmpeg for other formats).") from None
        rate = sample_rate or 16000
        samples = _read_with_ffmpeg(path, rate)
    return check_clip(resample(Clip(np.ascontiguousarray(samples, dtype=np.float32), int(rate), str(path)),
                               sample_rate))


def check_rate(rate, what: str = "sample rate") -> int:
    """``rate`` as an int, or an AudioError unless it is a whole number of Hz >= 1 (not NaN, inf or 0)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not np.isfinite(rate) or not 1 <= rate <= MAX_RATE or int(rate) != rate:
        raise AudioError(f"{what} must be a whole number of Hz from 1 to {MAX_RATE}, got {rate!r}; "
                         "pass e.g. input_rate=16000.")
    return int(rate)


def resample(clip: Clip, sample_rate: int | None) -> Clip:
    """Resample ``clip`` to ``sample_rate`` with soxr (no-op when rates match or ``sample_rate`` is None)."""
    if sample_rate is None or clip.sample_rate == sample_rate:
        return clip
    check_rate(clip.sample_rate, f"{clip.name}: sample rate")
    check_rate(sample_rate, "target sample rate")
    import soxr

    out = soxr.resample(clip.samples, clip.sample_rate, sample_rate, quality="HQ")
    return Clip(np.ascontiguousarray(out, dtype=np.float32), sample_rate, clip.name)


def check_clip(clip: Clip) -> Clip:
    """Reject clips a model cannot use: empty, or with NaN/inf samples."""
    if clip.samples.ndim != 1:
        raise AudioError(f"{clip.name}: expected a 1-D waveform, got shape {tuple(clip.samples.shape)}.")
    if clip.samples.size == 0:
        raise AudioError(f"{clip.name} is empty (0 samples); pass a clip with audio in it.")
    bad = ~np.isfinite(clip.samples)
    if bad.any():
        first = int(np.argmax(bad))
        raise AudioError(f"{clip.name} has {int(bad.sum())} NaN/inf samples (first at "
                         f"{first / clip.sample_rate:.3f} s); clean the audio, e.g. np.nan_to_num.")
    return clip


def to_clip(audio: AudioLike, sample_rate: int, input_rate: int | None = None) -> Clip:
    """Turn a path, array or tensor into a validated mono :class:`Clip` at ``sample_rate``.

    Arrays and tensors are taken to be at ``input_rate`` (default: ``sample_rate``); a 2-D array is
    ``[channels, samples]`` when its first axis is the shorter one, else ``[samples, channels]``.
    """
    if isinstance(audio, Clip):
        return check_clip(resample(audio, sample_rate))
    if isinstance(audio, (str, os.PathLike)):
        return read_file(audio, sample_rate)
    if input_rate is not None:
        input_rate = check_rate(input_rate, "input_rate")
    if isinstance(audio, torch.Tensor):
        if audio.is_complex():
            raise AudioError("audio tensor is complex; pass real samples (e.g. tensor.real).")
        audio = audio.detach().to("cpu", torch.float32).numpy()
    if not isinstance(audio, np.ndarray):
        raise AudioError(f"cannot use {type(audio).__name__} as audio; pass a path, numpy array or torch tensor.")
    if audio.dtype.kind not in "biuf":
        raise AudioError(f"audio array has dtype {audio.dtype}; pass real numbers (float32 in [-1, 1]).")
    array = np.asarray(audio, dtype=np.float32)
    if array.size == 0:
        raise AudioError(f"audio array of shape {array.shape} is empty; pass a clip with audio in it.")
    if array.ndim == 2:
        array = array.mean(axis=0) if array.shape[0] <= array.shape[1] else array.mean(axis=1)
    elif array.ndim != 1:
        raise AudioError(f"audio array must be [samples] or [channels, samples], got shape {array.shape}.")
    clip = Clip(np.ascontiguousarray(array), input_rate or sample_rate)
    return check_clip(resample(check_clip(clip), sample_rate))


def to_clips(audio: AudioLike | Sequence[AudioLike], sample_rate: int, input_rate: int | None = None) -> list[Clip]:
    """Normalise one clip or a batch of clips (paths, arrays, tensors) to a list of :class:`Clip`."""
    if isinstance(audio, (list, tuple)):
        if not audio:
            raise AudioError("no audio given; pass at least one file, array or tensor.")
        return [to_clip(a, sample_rate, input_rate) for a in audio]
    if isinstance(audio, (np.ndarray, torch.Tensor)) and audio.ndim == 2 and audio.shape[0] > 2 and audio.shape[1] > 2:
        # [batch, samples]: several equal-length clips
        return [to_clip(a, sample_rate, input_rate) for a in audio]
    return [to_clip(audio, sample_rate, input_rate)]


def split_windows(clip: Clip, window_samples: int) -> list[Clip]:
    """Cut ``clip`` into consecutive windows of at most ``window_samples`` (the last may be shorter)."""
    return [Clip(clip.samples[s : s + window_samples], clip.sample_rate, f"{clip.name}@{s / clip.sample_rate:g}s")
            for s in range(0, len(clip.samples), window_samples)]
