import numpy as np
import pytest
import soundfile as sf
import torch

from otoscope.audio.io import Clip, read_file, split_windows, to_clip, to_clips
from otoscope.errors import AudioError


def _tone(freq, rate, seconds=1.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples))
    return np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_reads_formats_and_resamples(tmp_path, fmt):
    path = tmp_path / f"tone.{fmt}"
    sf.write(path, _tone(440, 44_100), 44_100)
    clip = read_file(path, 16_000)
    assert clip.sample_rate == 16_000
    assert abs(len(clip.samples) - 16_000) <= 2
    assert abs(_peak_hz(clip.samples, 16_000) - 440) < 3


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = _tone(300, 16_000), np.zeros(16_000, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16_000)
    clip = read_file(tmp_path / "s.wav", 16_000)
    np.testing.assert_allclose(clip.samples, left / 2, atol=1e-4)
    # a [channels, samples] array mixes the same way
    np.testing.assert_allclose(to_clip(np.stack([left, right]), 16_000).samples, left / 2, atol=1e-7)


def test_arrays_and_tensors(manifest):
    tone = _tone(200, 8_000)
    clip = to_clip(torch.from_numpy(tone), 16_000, input_rate=8_000)
    assert len(clip.samples) == 16_000
    batch = to_clips(np.stack([tone, tone, tone]), 16_000, input_rate=8_000)  # [batch, samples]
    assert len(batch) == 3
    assert len(to_clips(np.stack([tone, tone]), 16_000)) == 1  # [2, samples] is one stereo clip
    mixed = to_clips([manifest[0]["path"], tone], 16_000)
    assert [c.sample_rate for c in mixed] == [16_000, 16_000]


def test_bad_audio_is_rejected(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        read_file(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="folder"):
        read_file(tmp_path)
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(AudioError, match="junk.wav"):
        read_file(tmp_path / "junk.wav")
    with pytest.raises(AudioError, match="empty"):
        to_clip(np.zeros(0, np.float32), 16_000)
    bad = np.zeros(16_000, np.float32)
    bad[8_000] = np.nan
    with pytest.raises(AudioError, match="NaN/inf samples .*0.500 s"):
        to_clip(bad, 16_000)
    with pytest.raises(AudioError, match="inf"):
        to_clip(np.full(10, np.inf, np.float32), 16_000)
    with pytest.raises(AudioError, match="no audio"):
        to_clips([], 16_000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    with pytest.raises(AudioError, match="empty"):
        read_file(tmp_path / "empty.wav")


def test_split_windows():
    clip = Clip(np.arange(100, dtype=np.float32), 10, "x")
    parts = split_windows(clip, 30)
    assert [len(p.samples) for p in parts] == [30, 30, 30, 10]
    np.testing.assert_array_equal(np.concatenate([p.samples for p in parts]), clip.samples)
