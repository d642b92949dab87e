"""Fuzzing the audio loader: whatever the bytes or array, the result is a valid clip or one AudioError line.

Deterministic (``derandomize``) and small, so CI runs the same cases every time in a few seconds.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otoscope.audio.io import Clip, read_file, to_clip
from otoscope.errors import AudioError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "audio"
RATE = 16_000
FUZZ = settings(max_examples=60, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _valid(clip: Clip) -> None:
    """A usable clip: mono float32 at the asked rate, finite, not empty."""
    assert clip.sample_rate == RATE and clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert clip.samples.size > 0 and np.isfinite(clip.samples).all()


def _read(path: Path) -> None:
    try:
        clip = read_file(path, RATE)
    except AudioError as err:
        message = str(err)
        assert message and "\n" not in message and str(path.name) in message
        return
    _valid(clip)


def _wav_header(channels: int, rate: int, bits: int, data_bytes: int, riff_bytes: int) -> bytes:
    block = max(channels * bits // 8, 0)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    return (b"RIFF" + struct.pack("<I", riff_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_bytes))


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096), suffix=st.sampled_from([".wav", ".flac", ".mp3", ".ogg", ".bin"]))
def test_random_bytes(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    _read(path)


@FUZZ
@given(name=st.sampled_from(sorted(p.name for p in FIXTURES.glob("*.flac"))), fraction=st.floats(0, 1),
       flip=st.one_of(st.none(), st.integers(0, 10_000)))
def test_truncated_and_damaged_fixtures(tmp_path, name, fraction, flip):
    data = bytearray((FIXTURES / name).read_bytes())
    data = data[: int(len(data) * fraction)]
    if flip is not None and data:
        data[flip % len(data)] ^= 0xFF
    path = tmp_path / name
    path.write_bytes(bytes(data))
    _read(path)


@FUZZ
@given(channels=st.integers(0, 70_000), rate=st.integers(0, 2**32 - 1), bits=st.sampled_from([0, 1, 8, 16, 24, 32, 64]),
       data_bytes=st.integers(0, 2**32 - 1), riff_bytes=st.integers(0, 2**32 - 1), payload=st.integers(0, 2000))
def test_forged_wav_headers(tmp_path, channels, rate, bits, data_bytes, riff_bytes, payload):
    path = tmp_path / "forged.wav"
    path.write_bytes(_wav_header(channels & 0xFFFF, rate, bits, data_bytes, riff_bytes) + bytes(range(256)) * (payload // 256)
                     + bytes(payload % 256))
    _read(path)


@pytest.mark.parametrize("rate", [1, 8_000, 192_000, 1_000_000])
@pytest.mark.parametrize("channels", [1, 2, 16])
def test_odd_rates_and_channel_counts_read_correctly(tmp_path, rate, channels):
    seconds = 0.05 if rate < 1_000_000 else 0.01
    n = max(int(rate * seconds), 1)
    samples = np.tile(np.linspace(-0.5, 0.5, n, dtype=np.float32)[:, None], (1, channels))
    sf.write(tmp_path / "a.wav", samples, rate, subtype="FLOAT")
    clip = read_file(tmp_path / "a.wav", RATE)
    _valid(clip)
    assert abs(len(clip.samples) - n * RATE / rate) <= 2  # the duration survives resampling


def test_zero_length_and_non_finite_files(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0, 3), np.float32), RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="empty"):
        read_file(tmp_path / "empty.wav", RATE)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        read_file(tmp_path / "zero.wav", RATE)
    for bad in (np.nan, np.inf, -np.inf):
        samples = np.zeros((1600, 2), np.float32)
        samples[100, 1] = bad
        sf.write(tmp_path / "bad.wav", samples, RATE, subtype="FLOAT")
        with pytest.raises(AudioError, match="NaN/inf"):
            read_file(tmp_path / "bad.wav", RATE)


def test_random_bytes_named_mp3_say_corrupt_not_missing(tmp_path):
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(AudioError) as err:
        read_file(path, RATE)
    assert "not found" not in str(err.value) and "does not exist" not in str(err.value)
    assert "corrupt" in str(err.value)


finite = st.floats(-1, 1, width=32)
anything = st.floats(width=32, allow_nan=True, allow_infinity=True)


@FUZZ
@given(shape=st.one_of(st.tuples(st.integers(0, 400)), st.tuples(st.integers(0, 17), st.integers(0, 100)),
                       st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))),
       rate=st.one_of(st.none(), st.sampled_from([1, 8_000, 16_000, 192_000, 1_000_000, 0, -5, 2**40, 0.5,
                                                  float("nan"), float("inf"), 1e300])),
       fill=st.one_of(finite, anything), seed=st.integers(0, 2**16))
def test_arrays(shape, rate, fill, seed):
    array = np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)
    if array.size:
        array.flat[seed % array.size] = fill
    try:
        clip = to_clip(array, RATE, input_rate=rate)
    except AudioError as err:
        assert str(err) and "\n" not in str(err)
        return
    _valid(clip)


@pytest.mark.parametrize("rate", [0, -5, 0.5, 16_000.5, float("nan"), float("inf"), 1e300, True, "16k"])
def test_bad_input_rates_are_rejected_not_hung(rate):
    # a NaN rate used to reach soxr, which never returned
    with pytest.raises(AudioError, match="whole number of Hz from 1"):
        to_clip(np.ones(100, np.float32) * 0.1, RATE, input_rate=rate)


@pytest.mark.parametrize("array", [np.zeros((0, 5), np.float32), np.zeros((3, 0), np.float32),
                                   np.ones(10, np.complex64), np.array(["a", "b"])])
def test_empty_and_non_real_arrays(array):
    with pytest.raises(AudioError):
        to_clip(array, RATE)
