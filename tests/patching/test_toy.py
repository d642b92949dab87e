"""Denoising, noising and attribution on a toy model built so that the theory gives exact answers.

The toy: tiny-random-wav2vec2-stable with every block's attention and MLP output zeroed, so each block is
the identity on the residual stream and frame i of the output depends on frame i of the residual only.
Its "head" reads two windows, A and B: pA and pB go linearly from 0 (corrupt output there) to 1 (clean
output there), and the metric is pA AND pB (product), pA OR pB (pA + pB − pA·pB) or pA + pB (ADD).
Heimersheim & Nanda (2024): denoising tests sufficiency, noising necessity; for AND each input is
necessary and neither sufficient, for OR each is sufficient and neither necessary, ADD is additive.
"""

import numpy as np
import pytest
import torch

import otoscope
from otoscope.patching import Cell, open_session
from otoscope.patching.session import ig_alphas

A, B = (4, 8), (12, 16)
HOOK = "encoder.blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def toy():
    model = otoscope.load("tiny-random-wav2vec2-stable")  # a fresh instance: the shared one stays untouched
    with torch.no_grad():
        for layer in model.model.wav2vec2.encoder.layers:
            for linear in (layer.attention.out_proj, layer.feed_forward.output_dense):
                linear.weight.zero_()
                linear.bias.zero_()
    rng = np.random.default_rng(0)
    clean, corrupt = (rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(2))  # 0.5 s: 24 frames
    with torch.no_grad():
        ref_clean, ref_corrupt = model(clean), model(corrupt)  # CTC logits [1, frames, vocab]
    return model, clean, corrupt, ref_clean, ref_corrupt


def presences(out, ref_clean, ref_corrupt):
    """pA, pB: the projection of the output onto (clean − corrupt) in each window, 0 at corrupt, 1 at clean."""
    values = []
    for a, b in (A, B):
        direction = ref_clean[:, a:b] - ref_corrupt[:, a:b]
        values.append(((out[:, a:b] - ref_corrupt[:, a:b]) * direction).sum((1, 2)) / direction.pow(2).sum())
    return values


def make_metric(kind, ref_clean, ref_corrupt):
    def metric(out):
        pa, pb = presences(out, ref_clean, ref_corrupt)
        return {"and": pa * pb, "or": pa + pb - pa * pb, "add": (pa + pb) / 2}[kind]
    metric.__name__ = kind
    return metric


def scores(toy, kind, cells, direction, method="exact", hook=HOOK):
    model, clean, corrupt, ref_clean, ref_corrupt = toy
    session = open_session(model, clean, corrupt, metric=make_metric(kind, ref_clean, ref_corrupt))
    session.runs([hook])
    assert session.clean_value == pytest.approx(1.0, abs=1e-5) and session.corrupt_value == pytest.approx(0.0, abs=1e-5)
    cells = [Cell(hook, a, b, "frames") for a, b in cells]
    if method == "exact":
        values = session.exact(cells, direction)
    else:
        values = session.attribution(cells, direction, ig_alphas(5) if method == "attribution-ig" else (0.0,))
    return np.round(values, 4)  # clean = 1 and corrupt = 0, so these are the normalised scores


def test_toy_blocks_are_the_identity(toy):
    model, clean, *_ = toy
    _, cache = model.run_with_cache(clean, names_filter="encoder.blocks.*.hook_resid_post")
    torch.testing.assert_close(cache["encoder.blocks.0.hook_resid_post"], cache["encoder.blocks.1.hook_resid_post"])


def test_and_each_input_necessary_neither_sufficient(toy):
    assert scores(toy, "and", [A, B, (A[0], B[1])], "denoising").tolist() == [0.0, 0.0, 1.0]
    assert scores(toy, "and", [A, B, (0, 24)], "noising").tolist() == [0.0, 0.0, 0.0]


def test_or_each_input_sufficient_neither_necessary(toy):
    assert scores(toy, "or", [A, B, (A[0], B[1])], "denoising").tolist() == [1.0, 1.0, 1.0]
    assert scores(toy, "or", [A, B, (A[0], B[1])], "noising").tolist() == [1.0, 1.0, 0.0]


def test_additive_complementary_sets_sum_to_one(toy):
    half, rest = (0, 12), (12, 24)  # complementary: together every frame
    den = scores(toy, "add", [A, B, half, rest], "denoising")
    noi = scores(toy, "add", [half, rest], "noising")
    assert den.tolist() == [0.5, 0.5, 0.5, 0.5] and den[2] + den[3] == 1.0
    # noising a set = denoising its complement, for every toy
    assert noi.tolist() == [den[3], den[2]]
    for kind in ("and", "or"):
        d, n = scores(toy, kind, [half, rest], "denoising"), scores(toy, kind, [rest, half], "noising")
        assert d.tolist() == n.tolist()


def test_attribution_is_exact_where_the_metric_is_linear(toy):
    """At the CTC logits the ADD metric is linear, so the first-order estimate is exact, cell by cell."""
    cells = [A, B, (2, 14), (0, 24)]
    exact = scores(toy, "add", cells, "denoising", hook="encoder.hook_logits")
    estimate = scores(toy, "add", cells, "denoising", "attribution", hook="encoder.hook_logits")
    np.testing.assert_allclose(estimate, exact, atol=1e-3)


def test_integrated_gradients_is_exact_where_the_metric_is_linear(toy):
    """ADD is linear in the CTC logits: the gradient is the same at every point of IG's path (inputs
    interpolated through the non-linear front end), so IG equals exact patching, cell by cell, both ways."""
    cells = [A, B, (2, 14), (0, 24)]
    for direction in ("denoising", "noising"):
        exact = scores(toy, "add", cells, direction, hook="encoder.hook_logits")
        estimate = scores(toy, "add", cells, direction, "attribution-ig", hook="encoder.hook_logits")
        np.testing.assert_allclose(estimate, exact, atol=1e-3)


def test_attribution_misses_interactions_as_theory_says(toy):
    """AND: the gradient at the corrupt run is 0 (pB = 0), so patching A and B together is missed; OR: the
    two first-order terms add up to 2 where the truth saturates at 1."""
    both = (A[0], B[1])
    assert scores(toy, "and", [both], "denoising", "attribution", hook="encoder.hook_logits").tolist() == [0.0]
    assert scores(toy, "or", [both], "denoising", "attribution", hook="encoder.hook_logits").tolist() == [2.0]
    assert scores(toy, "or", [both], "denoising", hook="encoder.hook_logits").tolist() == [1.0]
