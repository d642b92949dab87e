"""Gradient runs of attribution patching on the fast Whisper runner against the plain runner's whole forward
pass: the tangent (α = 0) started from the cached run at the first hook (``WhisperRunner.forward_from``), the
other points of the path with the decoder attending to the encoder output directly (factored)."""

import numpy as np
import pytest

from otoscope.patching import METHODS, open_session
from tests.patching.graddrop_reference import drop_layer
from otoscope.patching.config import SweepConfig
from otoscope.patching.runner import FullForwardRunner, WhisperRunner

START_POINTS = {
    "block 0's output, added by hand to block 1's input": ["encoder.blocks.0.hook_resid_post",
                                                           "encoder.blocks.1.hook_mlp_out"],
    "block 0's input": ["encoder.hook_embed"],
    "inside block 1": ["encoder.blocks.1.attn.hook_v"],
    "the last block's output": ["encoder.blocks.1.hook_resid_post"],
    "the encoder output": ["encoder.hook_ln_final", "decoder.blocks.0.hook_resid_post"],
    "the decoder, on the cached keys and values": ["decoder.blocks.0.hook_cross_attn_out",
                                                   "decoder.blocks.1.hook_mlp_out"],
}


@pytest.fixture(scope="module")
def sessions(tiny_whisper, door, park):
    """The same pair on the fast runner and on the plain one (tiny-random-whisper, init_std 0.1)."""
    args = dict(text=" My", answer="a", wrong="b")
    fast, plain = (open_session(tiny_whisper, door, park, engine=e, **args) for e in ("auto", "full"))
    assert isinstance(fast.runner, WhisperRunner) and isinstance(plain.runner, FullForwardRunner)
    return fast, plain


def _cells(session, names):
    return session.cells(SweepConfig(hooks=names, window=7, token_window=1), names)


def _no_full_forward(session, monkeypatch):
    """Make the fast runner's whole gradient forward fail, to prove a gradient run started from the cache."""
    def refuse(*args, **kwargs):
        raise AssertionError("the whole forward pass ran")
    monkeypatch.setattr(session.runner, "forward", refuse)


@pytest.mark.parametrize("where", list(START_POINTS))
@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_tangent_from_the_cache_equals_the_whole_forward(sessions, where, direction, monkeypatch):
    fast, plain = sessions
    names = START_POINTS[where]
    fast.runs(names), plain.runs(names)
    cells = _cells(fast, names)
    expected = plain.attribution(cells, direction)
    _no_full_forward(fast, monkeypatch)
    got = fast.attribution(cells, direction)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.ptp(got) > 20 * 1e-5  # the cells' estimates differ far beyond the tolerance: not vacuous


def test_graddrop_hooks_run_from_the_cache_or_fall_back(sessions, monkeypatch):
    """Extra hooks at or after the start run in the shorter pass; one before it (block 0's input, when the pass
    starts at block 1) sends the run back to the whole forward. Both equal the plain runner's."""
    fast, plain = sessions
    names = START_POINTS["block 0's output, added by hand to block 1's input"]
    fast.runs(names), plain.runs(names)
    cells = _cells(fast, names)
    for layer in (0, 1):
        hooks = drop_layer("encoder", layer)
        expected = plain.attribution(cells, "denoising", hooks=hooks)
        with monkeypatch.context() as m:
            if layer == 1:
                _no_full_forward(fast, m)
            got = fast.attribution(cells, "denoising", hooks=hooks)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    dropped = plain.attribution(cells, "denoising", hooks=drop_layer("encoder", 1))
    assert np.abs(dropped - plain.attribution(cells, "denoising")).max() > 20 * 1e-5  # the hooks do change it


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_points_along_the_path_equal_the_whole_forward(sessions, alpha):
    fast, plain = sessions
    names = START_POINTS["block 0's output, added by hand to block 1's input"] + ["encoder.hook_ln_final"]
    fast.runs(names), plain.runs(names)
    cells = _cells(fast, names)
    got = fast.attribution(cells, "denoising", [alpha])
    np.testing.assert_allclose(got, plain.attribution(cells, "denoising", [alpha]), atol=1e-5)
    assert np.ptp(got) > 20 * 1e-5


def test_two_point_on_real_weights_equals_the_plain_runner(tiny_en, london_pair, london_session):
    """whisper-tiny.en on London/Paris (effects of up to ~30 logits): the benchmark's sweep, fast against plain."""
    p = london_pair
    plain = open_session(tiny_en, p.clean, p.corrupt, text=p.text, answer=p.answer, wrong=p.wrong, engine="full")
    config = SweepConfig(hooks="encoder.blocks.*.hook_resid_post", window=10, method="two-point")
    fast_values = np.array([c.value for c in METHODS["two-point"](london_session, config).cells])
    plain_values = np.array([c.value for c in METHODS["two-point"](plain, config).cells])
    span = np.ptp(plain_values)
    assert span > 5.0
    np.testing.assert_allclose(fast_values, plain_values, atol=1e-4 * span)
