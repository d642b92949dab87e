"""Bad input gives one clear line: an OtoscopeError whose message names the problem and the fix."""

import numpy as np
import pytest
import soundfile as sf

from otoscope.errors import OtoscopeError
from otoscope.patching import PatchConfig, open_session, patch


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    t16, t22 = np.arange(16000) / 16000, np.arange(22050) / 22050
    sf.write(folder / "a16.wav", 0.1 * np.sin(2 * np.pi * 220 * t16), 16000)
    sf.write(folder / "b16.wav", 0.1 * np.sin(2 * np.pi * 330 * t16), 16000)
    sf.write(folder / "b22.wav", 0.1 * np.sin(2 * np.pi * 330 * t22), 22050)
    sf.write(folder / "short.wav", 0.1 * np.sin(2 * np.pi * 330 * t16[:8000]), 16000)
    return folder


ARGS = dict(text=" My", answer="a", wrong="b")


def test_different_sample_rates(tiny_whisper, clips):
    with pytest.raises(OtoscopeError) as err:
        open_session(tiny_whisper, clips / "a16.wav", clips / "b22.wav", **ARGS)
    assert "16000 Hz" in one_line(err) and "22050 Hz" in one_line(err)
    with pytest.raises(OtoscopeError, match="share a rate"):
        open_session(tiny_whisper, np.zeros(16000), np.zeros(22050), sample_rate=(16000, 22050), **ARGS)


def test_longer_than_the_window(tiny_whisper, clips):
    with pytest.raises(OtoscopeError) as err:
        open_session(tiny_whisper, clips / "a16.wav", np.zeros(31 * 16000, dtype=np.float32), **ARGS)
    assert "30 s window" in one_line(err) and "trim" in one_line(err)


def test_window_larger_than_the_clip(tiny_whisper, clips):
    with pytest.raises(OtoscopeError) as err:
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", window=2, window_unit="seconds", **ARGS)
    assert "larger than the clip's 50 real frames (1.00 s)" in one_line(err)
    with pytest.raises(OtoscopeError, match="shorter than one frame"):
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", window=0.005, window_unit="seconds", **ARGS)


def test_hooks_that_match_nothing(tiny_whisper, clips):
    with pytest.raises(OtoscopeError) as err:
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", hooks="encoder.blocks.*.hook_resid_pots", **ARGS)
    assert "matches no hook point" in one_line(err) and "hook_resid_post" in one_line(err)


def test_answer_not_one_token(tiny_whisper, clips):
    with pytest.raises(OtoscopeError) as err:
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", text=" My", answer="ab", wrong="b")
    assert "2 tokens" in one_line(err) and "['a', 'b']" in one_line(err)


def test_unequal_lengths_align_or_refuse(tiny_whisper, clips):
    session = open_session(tiny_whisper, clips / "a16.wav", clips / "short.wav", **ARGS)
    assert session.pair.alignment == "padded corrupt with 0.500 s of trailing silence to 1.000 s"
    trimmed = open_session(tiny_whisper, clips / "a16.wav", clips / "short.wav", align="trim", **ARGS)
    assert trimmed.pair.alignment.startswith("trimmed the last 0.500 s of clean") and trimmed.pair.n_frames == 25
    with pytest.raises(OtoscopeError) as err:
        open_session(tiny_whisper, clips / "a16.wav", clips / "short.wav", align="error", **ARGS)
    assert "1.000 s" in one_line(err) and "align='pad'" in one_line(err)


def test_decoder_hooks_need_equal_token_lengths(tiny_whisper, clips):
    with pytest.raises(OtoscopeError) as err:
        patch(tiny_whisper, clips / "a16.wav", clips / "a16.wav", prompt=("xy", "xyz"), hooks="decoder.blocks.0.hook_attn_out",
              **ARGS)
    assert "tokenises to the same length" in one_line(err)


def test_unit_mismatches(tiny_whisper, clips):
    with pytest.raises(OtoscopeError, match="heads axis"):
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", hooks="encoder.blocks.0.hook_attn_out", heads=True, **ARGS)
    with pytest.raises(OtoscopeError, match="out of range"):
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", hooks="encoder.blocks.0.mlp.hook_post", neurons=[999],
              **ARGS)
    with pytest.raises(OtoscopeError, match="encoder-only"):
        import otoscope

        open_session(otoscope.load("tiny-random-hubert"), clips / "a16.wav", clips / "b16.wav", **ARGS)


@pytest.mark.parametrize("options,match", [
    (dict(window=0), "window must be a positive finite number, got 0"),
    (dict(window=float("inf")), "window must be a positive finite number, got inf"),
    (dict(window=2.5), "whole number of frames"),
    (dict(stride=3, window=None), "stride needs a window"),
    (dict(direction="forwards"), "denoising"),
    (dict(method="exhaustive"), "exact"),
    (dict(metric="f1"), "unknown metric"),
    (dict(metric="accuracy", method="attribution"), "no gradient"),
    (dict(metric="accuracy", method="attribution-ig"), "no gradient"),
    (dict(method="attribution-ig", ig_steps=0), "ig_steps must be a whole number >= 1, got 0"),
    (dict(ig_steps=2.5), "ig_steps"),
    (dict(ig_steps=None), "ig_steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(neurons=[]), "neurons"),
    (dict(answer=" x", wrong=" x"), "the same"),
    (dict(align="stretch"), "align"),
])
def test_config_validation(options, match):
    with pytest.raises(OtoscopeError, match=match):
        PatchConfig(**options)


def test_unknown_option(tiny_whisper, clips):
    with pytest.raises(OtoscopeError, match="Did you mean 'window'"):
        patch(tiny_whisper, clips / "a16.wav", clips / "b16.wav", windw=10, **ARGS)
