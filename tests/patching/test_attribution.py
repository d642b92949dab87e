"""Attribution patching against the plain computation, and against exact patching where it must agree; its
integrated-gradients form (``attribution-ig``) against plain attribution where the path collapses, and against
exact patching where the patched activation moves on a straight line (completeness)."""

import numpy as np
import pytest
import torch

import otoscope
from otoscope.errors import OtoscopeError
from otoscope.patching import PatchConfig, agreement, open_session, sweep
from otoscope.patching.naive import inputs_with_rows
from otoscope.patching.runner import read_logits
from otoscope.patching.session import ig_alphas


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
    assert np.ptp(fast) > 20 * 1e-5  # the cells' estimates differ far beyond the tolerance: not vacuous


def test_attribution_per_frame_sums_to_window(tiny_session):
    """The estimate is linear in the cells: ten 1-frame cells add up to their 10-frame window."""
    ones = sweep(tiny_session, hooks="encoder.blocks.1.hook_resid_post", window=1, method="attribution")
    tens = sweep(tiny_session, hooks="encoder.blocks.1.hook_resid_post", window=10, method="attribution")
    base = tens.corrupt
    per_frame = np.array([c.value - base for c in ones.cells])
    np.testing.assert_allclose([c.value - base for c in tens.cells][:5],
                               [per_frame[i * 10 : (i + 1) * 10].sum() for i in range(5)], atol=1e-6)
    assert np.abs(per_frame[:50]).max() > 1e-4  # per-frame estimates far above the tolerance


def test_attribution_is_exact_at_the_logits(tiny_whisper, door, park):
    """logit_diff is linear in the logits: patching decoder.hook_logits, attribution equals exact."""
    session = open_session(tiny_whisper, door, park, text=" My", answer="a", wrong="b")
    exact = sweep(session, hooks="decoder.hook_logits", token_window=2)
    estimate = sweep(session, hooks="decoder.hook_logits", token_window=2, method="attribution")
    np.testing.assert_allclose([c.value for c in estimate.cells], [c.value for c in exact.cells], atol=1e-5)


def test_attribution_tracks_exact_for_small_differences(tiny_whisper, door):
    """A corrupt clip 60 dB below the clean one in noise: the first-order estimate is close to exact."""
    from otoscope.stimuli.degrade import add_noise

    clip = tiny_whisper.clips(door)[0]
    pair = add_noise(clip, 60.0, seed=1)
    session = open_session(tiny_whisper, pair.clean, pair.corrupt, text=" My", answer="a", wrong="b")
    config = dict(hooks="encoder.blocks.*.hook_resid_post", window=20)
    exact, estimate = sweep(session, **config), sweep(session, **config, method="attribution")
    diff = [e.value - c.value for e, c in zip(exact.cells, estimate.cells)]
    span = max(abs(e.value - exact.corrupt) for e in exact.cells)
    assert max(abs(d) for d in diff) < 0.05 * span
    assert agreement(exact, estimate).spearman > 0.9


# ---------------------------------------------------------------- integrated gradients (attribution-ig)

@pytest.mark.parametrize("direction,hook", [("denoising", "encoder.blocks.0.hook_resid_post"),
                                            ("noising", "encoder.blocks.1.hook_mlp_out")])
def test_ig_with_the_path_collapsed_is_plain_attribution(tiny_session, direction, hook):
    """One point at α = 0 is the run patched into itself: the plain gradient computation, cell by cell."""
    tiny_session.runs([hook])
    cells = tiny_session.cells(PatchConfig(hooks=hook, window=7), [hook])
    collapsed = tiny_session.attribution(cells, direction, alphas=[0.0])
    np.testing.assert_allclose(collapsed, plain_attribution(tiny_session, cells, hook, direction), atol=1e-5)
    assert np.ptp(collapsed) > 20 * 1e-5  # not vacuous
    np.testing.assert_array_equal(collapsed, tiny_session.attribution(cells, direction))


def test_ig_at_the_far_end_is_the_other_directions_gradient(tiny_session):
    """One point at α = 1 takes the gradient on the interpolated input that *is* the source run's: denoising
    from there is minus noising's plain attribution (the same gradient, the opposite difference)."""
    hook = "encoder.blocks.0.hook_resid_post"
    cells = tiny_session.cells(PatchConfig(hooks=hook, window=7), [hook])
    far = tiny_session.attribution(cells, "denoising", alphas=[1.0]) - tiny_session.corrupt_value
    noising = tiny_session.attribution(cells, "noising") - tiny_session.clean_value
    scale = np.abs(far).max()
    assert scale > 1e-3  # not vacuous: far above float32 rounding of values ~3
    np.testing.assert_allclose(far, -noising, atol=1e-4 * scale)


def test_ig_sweep_averages_the_gradients_at_the_midpoints(tiny_session):
    """``method='attribution-ig', ig_steps=2`` is the mean of the one-point estimates at α = ¼ and ¾."""
    hook = "encoder.blocks.1.hook_resid_post"
    result = sweep(tiny_session, hooks=hook, window=20, method="attribution-ig", ig_steps=2)
    assert result.method == "attribution-ig" and result.context["config"]["ig_steps"] == 2
    assert ig_alphas(2) == [0.25, 0.75] and ig_alphas(5) == [0.1, 0.3, 0.5, 0.7, 0.9]
    cells = tiny_session.cells(PatchConfig(hooks=hook, window=20), [hook])
    base = tiny_session.corrupt_value
    quarter, three = (tiny_session.attribution(cells, "denoising", alphas=[a]) - base for a in (0.25, 0.75))
    np.testing.assert_allclose([c.value - base for c in result.cells], (quarter + three) / 2, atol=1e-6)


def test_ig_is_exact_at_the_logits(tiny_whisper, door, park):
    """logit_diff is linear in the logits, so every gradient on the path is the same: IG equals exact."""
    session = open_session(tiny_whisper, door, park, text=" My", answer="a", wrong="b")
    exact = sweep(session, hooks="decoder.hook_logits", token_window=2)
    estimate = sweep(session, hooks="decoder.hook_logits", token_window=2, method="attribution-ig", ig_steps=3)
    np.testing.assert_allclose([c.value for c in estimate.cells], [c.value for c in exact.cells], atol=1e-5)


def completeness(session, hook, cell_options):
    """(exact, IG with 1 / 4 / 16 steps, plain attribution) for the one cell patching all of ``hook``."""
    exact = sweep(session, hooks=hook, **cell_options).cells
    assert len(exact) == 1
    ig = [sweep(session, hooks=hook, **cell_options, method="attribution-ig", ig_steps=n).cells[0].value
          for n in (1, 4, 16)]
    plain = sweep(session, hooks=hook, **cell_options, method="attribution").cells[0].value
    return exact[0].value, ig, plain


def test_ig_completeness_at_the_decoder_embeddings(tiny_whisper, door):
    """A text-context pair (same audio, two prompts of one token length): IG interpolates the token
    embeddings, so decoder.hook_embed moves on the straight line from corrupt to clean and, patched at every
    position, IG's estimate converges to the exact effect (the integral of the gradient along that line)."""
    session = open_session(tiny_whisper, door, door, text=" My", prompt=(" The cat sat.", " The dog ran."),
                           answer="a", wrong="b")
    assert len(session.pair.clean_context) == len(session.pair.corrupt_context)
    assert session.pair.clean_context != session.pair.corrupt_context
    exact, (ig1, ig4, ig16), plain = completeness(session, "decoder.hook_embed", dict(token_window=None))
    effect = session.clean_value - session.corrupt_value
    assert exact == pytest.approx(session.clean_value, abs=1e-6) and abs(effect) > 1e-3
    assert abs(ig16 - exact) < 0.01 * abs(effect)
    assert abs(ig16 - exact) < abs(ig4 - exact) < abs(ig1 - exact)  # the midpoint rule converging
    assert abs(plain - exact) > 0.2 * abs(effect)  # where the tangent at the corrupt run is off


@pytest.fixture(scope="module")
def linear_front_end():
    """tiny-random-whisper whose conv stem is affine in the log-mel features: both convs' biases push their
    outputs far into GELU's linear range (GELU(z) = z to float precision for z > 10), so encoder.hook_embed
    moves on a straight line as the features do. Everything after it is the model's own non-linear blocks."""
    model = otoscope.load("tiny-random-whisper")  # a fresh instance: the shared one stays untouched
    enc = model.model.model.encoder
    with torch.no_grad():
        enc.conv1.weight.mul_(0.2 / enc.conv1.weight.std())  # weights of std 0.2, whatever the model's init
        enc.conv1.bias.fill_(30.0)
        enc.conv2.weight.mul_(0.2 / enc.conv2.weight.std())
        enc.conv2.bias.copy_(200.0 - 30.0 * enc.conv2.weight.sum((1, 2)))
    return model


def test_ig_completeness_at_the_encoder_embeddings(linear_front_end, door, park):
    """Audio pair, features interpolated: patching all 1500 frames of encoder.hook_embed (an affine function
    of the features here) restores the clean run exactly, and IG's estimate converges to that effect."""
    model = linear_front_end
    session = open_session(model, door, park, text=" My", answer="a", wrong="b")
    hook = "encoder.hook_embed"
    x0, x1 = session.pair.corrupt.features, session.pair.clean.features
    embeds = []
    for x in (x0, x1, (x0 + x1) / 2):
        inputs = inputs_with_rows(session.pair.corrupt, None)
        inputs = type(inputs)(inputs.clips, x, inputs.frame_mask, None, inputs.decoder_input_ids)
        embeds.append(model.run_with_cache(inputs, names_filter=hook)[1][hook])
    bend = (embeds[2] - (embeds[0] + embeds[1]) / 2).abs().max() / (embeds[1] - embeds[0]).abs().max()
    assert bend < 1e-4  # the activation is affine in the interpolated input
    exact, (ig1, ig4, ig16), plain = completeness(session, hook, dict(window=None))
    effect = session.clean_value - session.corrupt_value
    assert exact == pytest.approx(session.clean_value, abs=1e-6) and abs(effect) > 5e-4
    assert abs(ig16 - exact) < 0.01 * abs(effect)
    assert abs(ig16 - exact) < abs(ig1 - exact)
    assert abs(plain - exact) > 0.2 * abs(effect)


def test_ig_refuses_text_pairs_of_different_token_lengths(tiny_whisper, door):
    session = open_session(tiny_whisper, door, door, text=" My", prompt=(" The cat sat.", " London"),
                           answer="a", wrong="b")
    with pytest.raises(OtoscopeError, match="token embeddings position by position") as err:
        sweep(session, hooks="encoder.blocks.0.hook_resid_post", method="attribution-ig")
    assert "\n" not in str(err.value)
    with pytest.raises(OtoscopeError, match="ig_steps must be a whole number >= 1, got 0"):
        sweep(session, hooks="encoder.blocks.0.hook_resid_post", method="attribution-ig", ig_steps=0)
