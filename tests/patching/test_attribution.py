"""Attribution patching against the plain computation, and against exact patching where it must agree."""

import numpy as np
import pytest
import torch

from otoscope.patching import PatchConfig, agreement, open_session, sweep
from otoscope.patching.naive import inputs_with_rows
from otoscope.patching.runner import read_logits


def plain_attribution(session, cells, hook, direction):
    """(source − base) · ∂metric/∂activation at the base run, from run_with_cache(grad=True), cell by cell."""
    model, pair, metric = session.model, session.pair, session.metric
    runs = [(pair.corrupt, pair.corrupt_context), (pair.clean, pair.clean_context)]
    (base, base_ctx), (source, source_ctx) = runs if direction == "denoising" else runs[::-1]
    readout = metric.readout(base_ctx)
    logits, cache = model.run_with_cache(inputs_with_rows(base, readout.rows), names_filter=hook, grad=True)
    act = cache[hook]
    value = metric.score(read_logits(logits, readout, 1)).sum()
    (grad,) = torch.autograd.grad(value, act)
    _, source_cache = model.run_with_cache(inputs_with_rows(source, metric.readout(source_ctx).rows), names_filter=hook)
    contrib = ((source_cache[hook] - act.detach()) * grad).sum(0)  # rows summed: [frames, ...]
    return np.array([value.item() + contrib[c.start : c.end].sum().item() for c in cells])


@pytest.mark.parametrize("direction,hook", [("denoising", "encoder.blocks.0.hook_resid_post"),
                                            ("noising", "encoder.blocks.1.hook_mlp_out")])
def test_attribution_equals_plain_gradient_computation(tiny_session, direction, hook):
    tiny_session.runs([hook])
    cells = tiny_session.cells(PatchConfig(hooks=hook, window=7), [hook])
    fast = tiny_session.attribution(cells, direction)
    np.testing.assert_allclose(fast, plain_attribution(tiny_session, cells, hook, direction), atol=1e-5)


def test_attribution_per_frame_sums_to_window(tiny_session):
    """The estimate is linear in the cells: ten 1-frame cells add up to their 10-frame window."""
    ones = sweep(tiny_session, hooks="encoder.blocks.1.hook_resid_post", window=1, method="attribution")
    tens = sweep(tiny_session, hooks="encoder.blocks.1.hook_resid_post", window=10, method="attribution")
    base = tens.corrupt
    per_frame = np.array([c.value - base for c in ones.cells])
    np.testing.assert_allclose([c.value - base for c in tens.cells][:5],
                               [per_frame[i * 10 : (i + 1) * 10].sum() for i in range(5)], atol=1e-7)


def test_attribution_is_exact_at_the_logits(tiny_whisper, door, park):
    """logit_diff is linear in the logits: patching decoder.hook_logits, attribution equals exact."""
    session = open_session(tiny_whisper, door, park, text=" My", answer="a", wrong="b")
    exact = sweep(session, hooks="decoder.hook_logits", token_window=2)
    estimate = sweep(session, hooks="decoder.hook_logits", token_window=2, method="attribution")
    np.testing.assert_allclose([c.value for c in estimate.cells], [c.value for c in exact.cells], atol=1e-5)


def test_attribution_tracks_exact_for_small_differences(tiny_whisper, door):
    """A corrupt clip 40 dB below the clean one in noise: the first-order estimate is close to exact."""
    from otoscope.patching.pairs import add_noise

    clip = tiny_whisper.clips(door)[0]
    pair = add_noise(clip, 40.0, seed=1)
    session = open_session(tiny_whisper, pair.clean, pair.corrupt, text=" My", answer="a", wrong="b")
    config = dict(hooks="encoder.blocks.*.hook_resid_post", window=20)
    exact, estimate = sweep(session, **config), sweep(session, **config, method="attribution")
    diff = [e.value - c.value for e, c in zip(exact.cells, estimate.cells)]
    span = max(abs(e.value - exact.corrupt) for e in exact.cells)
    assert max(abs(d) for d in diff) < 0.05 * span
    assert agreement(exact, estimate).spearman > 0.9
