"""A clean/corrupt pair made ready for patching: same sample rate, aligned lengths, decoder context.

Patching swaps activations position by position, so the two runs must line up: the clips are checked
to come from the same sample rate (resampling one would change more than the factor under test), to fit
the model's window, and are made the same length (``align``: pad the shorter with trailing silence —
for Whisper exactly what its feature extractor does up to 30 s anyway — trim the longer, or refuse).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from otoscope.audio.io import Clip
from otoscope.errors import AudioError, OtoscopeError
from otoscope.models.inputs import ModelInputs
from otoscope.stimuli.pairs import align_clips


@dataclass
class PreparedPair:
    """The two runs of a patching experiment."""

    clean: ModelInputs
    """Clean clip (batch 1) with its decoder context."""
    corrupt: ModelInputs
    """Corrupt clip (batch 1) with its decoder context."""
    n_frames: int
    """Encoder frames carrying real audio in the aligned clips."""
    alignment: str
    """What was done to make the lengths equal, in words."""
    clean_context: list[int] | None
    """Clean decoder tokens: prompt + task prefix + teacher-forced text (None for encoder-only models)."""
    corrupt_context: list[int] | None
    """Corrupt decoder tokens."""

    @property
    def seconds(self) -> float:
        """Duration of the aligned clips."""
        clip = self.clean.clips[0]
        return len(clip.samples) / clip.sample_rate


def _pair(value, what: str) -> tuple:
    """One value for both runs, or a (clean, corrupt) pair."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise OtoscopeError(f"{what} must be one value or a (clean, corrupt) pair, got {len(value)} values.")
        return value
    return value, value


def native_rate(audio, sample_rate: int | None) -> int | None:
    """The sample rate ``audio`` comes at (files: from their header), before any resampling."""
    if isinstance(audio, Clip):
        return audio.sample_rate
    if isinstance(audio, (str, os.PathLike)):
        import soundfile as sf

        try:
            return int(sf.info(str(audio)).samplerate)
        except Exception:  # unreadable by soundfile: read_file reports the real problem (or decodes with ffmpeg)
            return None
    return sample_rate


def prepare_pair(model, clean, corrupt, *, text=None, prompt=None, sample_rate: int | Sequence[int] | None = None,
                 align: str = "pad") -> PreparedPair:
    """Load, check and align a clean/corrupt pair and build both runs' model inputs.

    ``text`` and ``prompt`` (Whisper) are one value for both runs or a ``(clean, corrupt)`` tuple: a
    text-context pair is the same audio with two prompts. ``sample_rate`` is the rate of array inputs
    (one, or a pair). Raises :class:`OtoscopeError` for mismatched rates and clips beyond the window.
    """
    rate_clean, rate_corrupt = _pair(tuple(sample_rate) if isinstance(sample_rate, (list, tuple)) else sample_rate,
                                     "sample_rate")
    native = native_rate(clean, rate_clean), native_rate(corrupt, rate_corrupt)
    if None not in native and native[0] != native[1]:
        raise AudioError(f"clean is {native[0]} Hz but corrupt is {native[1]} Hz; resample one so both share a rate "
                         "(e.g. sox in.wav -r 16000 out.wav) so the pair differs only in the factor under test.")
    for audio, what in ((clean, "clean"), (corrupt, "corrupt")):
        if isinstance(audio, (list, tuple)) and not isinstance(audio, Clip):
            raise OtoscopeError(f"{what} must be one clip (a path, array, tensor or Clip), got a list of {len(audio)}.")
    clip_clean = model.clips(clean, rate_clean)[0]
    clip_corrupt = model.clips(corrupt, rate_corrupt)[0]
    window = model.geometry.window_samples
    for clip, what in ((clip_clean, "clean"), (clip_corrupt, "corrupt")):
        if window is not None and len(clip.samples) > window:
            raise AudioError(f"{what} clip {clip.name} is {clip.seconds:.1f} s but {model.name} sees one "
                             f"{window / model.geometry.sample_rate:g} s window; trim both clips to the part "
                             "that differs (sox in.flac out.flac trim START LENGTH).")
    clip_clean, clip_corrupt, note = align_clips(clip_clean, clip_corrupt, align)
    text_clean, text_corrupt = _pair(text, "text")
    prompt_clean, prompt_corrupt = _pair(prompt, "prompt")
    if model.has_decoder:
        inputs_clean = model.prepare([clip_clean], text=text_clean, prompt=prompt_clean)
        inputs_corrupt = model.prepare([clip_corrupt], text=text_corrupt, prompt=prompt_corrupt)
        ctx_clean = inputs_clean.decoder_input_ids[0].tolist()
        ctx_corrupt = inputs_corrupt.decoder_input_ids[0].tolist()
    else:
        if any(v is not None for v in (text_clean, text_corrupt, prompt_clean, prompt_corrupt)):
            raise OtoscopeError(f"{model.name} is encoder-only: it takes no text or prompt; drop them.")
        inputs_clean, inputs_corrupt = model.prepare([clip_clean]), model.prepare([clip_corrupt])
        ctx_clean = ctx_corrupt = None
    n_frames = int(inputs_clean.frame_mask[0].sum())
    if n_frames < 1:
        raise AudioError(f"{clip_clean.name} is shorter than one encoder frame; use a longer clip.")
    return PreparedPair(inputs_clean, inputs_corrupt, n_frames, note, ctx_clean, ctx_corrupt)
