"""The localization methods of the registry, each against a plain computation where it must agree."""

import typing

import numpy as np
import pytest
import torch

from otoscope.patching import METHODS, open_session, sweep
from otoscope.patching.atp import key_query_change
from tests.patching.graddrop_reference import atp_star_reference, drop_layer
from otoscope.patching.config import METHODS as NAMES
from otoscope.patching.config import SweepConfig
from otoscope.patching.scores import score_method

HOOK = "encoder.blocks.*.hook_resid_post"


def test_the_registry_is_what_config_and_cli_offer():
    assert tuple(METHODS) == NAMES == typing.get_args(typing.get_type_hints(SweepConfig)["method"])


@pytest.fixture(scope="module")
def exact(tiny_session):
    return sweep(tiny_session, hooks=HOOK, window=10)


def test_every_method_fills_the_same_cells_and_times_itself(tiny_session, exact):
    for name in ("attribution", "random", "hybrid"):
        result = METHODS[name](tiny_session, SweepConfig(hooks=HOOK, window=10, top_k=2))
        assert result.method == name and len(result.cells) == len(exact.cells) and result.context["seconds"] >= 0
        score_method(exact, result)  # same cells, or it raises
    assert exact.context["exact_cells"] == list(range(len(exact.cells)))


def test_two_point_takes_the_midpoint_gradient_for_strong_cells_and_the_tangent_elsewhere(tiny_session):
    cells = tiny_session.cells(SweepConfig(hooks=HOOK, window=10), tiny_session.hook_names(HOOK))
    tangent = tiny_session.attribution(cells, "denoising")
    midpoint = tiny_session.attribution(cells, "denoising", [0.5])
    result = sweep(tiny_session, hooks=HOOK, window=10, method="two-point", strong_share=0.3)
    strength = np.abs(midpoint - result.corrupt)
    strong = strength >= 0.3 * strength.max()
    assert 0 < strong.sum() < len(cells)
    np.testing.assert_allclose([c.value for c in result.cells], np.where(strong, midpoint, tangent), atol=1e-5)


def test_hybrid_measures_its_top_cells_exactly_and_keeps_the_estimate_elsewhere(tiny_session, exact):
    estimate = sweep(tiny_session, hooks=HOOK, window=10, method="two-point")
    hybrid = sweep(tiny_session, hooks=HOOK, window=10, method="hybrid", top_k=5)
    top = hybrid.context["exact_cells"]
    values = np.array([c.value for c in estimate.cells])
    assert sorted(top) == sorted(np.argsort(-np.abs(values - estimate.corrupt))[:5].tolist())
    for i, (h, e, a) in enumerate(zip(hybrid.cells, exact.cells, estimate.cells)):
        assert h.value == pytest.approx(e.value if i in top else a.value, abs=1e-4)


def test_random_ranking_is_the_floor(tiny_session, exact):
    rhos = [score_method(exact, sweep(tiny_session, hooks=HOOK, window=10, method="random", seed=s)).spearman
            for s in range(30)]
    assert abs(np.mean(rhos)) < 0.15 and np.std(rhos) > 0.05  # no information, and not a constant
    a = sweep(tiny_session, hooks=HOOK, window=10, method="random", seed=3)
    b = sweep(tiny_session, hooks=HOOK, window=10, method="random", seed=3)
    assert [c.value for c in a.cells] == [c.value for c in b.cells]


def _attention(q, k, scale):
    return torch.softmax(torch.einsum("ihd,jhd->hij", q, k) * scale, dim=-1)  # [heads, queries, keys]


def test_qk_fix_is_exact_where_the_softmax_is_the_only_non_linearity():
    """A metric linear in the pattern, Σ G ⊙ A, of one saturated self-attention whose keys and queries change
    at three positions: the QK fix gives the exact change, the tangent (plain attribution) does not."""
    g = torch.Generator().manual_seed(0)
    n, heads, d, scale, span = 12, 2, 4, 3.0, (4, 7)
    q, k = torch.randn(n, heads, d, generator=g, dtype=torch.float64), torch.randn(n, heads, d, generator=g, dtype=torch.float64)
    grad = torch.randn(heads, n, n, generator=g, dtype=torch.float64)
    k_new = k[span[0]:span[1]] + 2 * torch.randn(3, heads, d, generator=g, dtype=torch.float64)
    q_new = q[span[0]:span[1]] + 2 * torch.randn(3, heads, d, generator=g, dtype=torch.float64)
    pattern = _attention(q, k, scale)
    assert pattern.max() > 0.9  # saturated rows
    q2, k2 = q.clone(), k.clone()
    q2[span[0]:span[1]], k2[span[0]:span[1]] = q_new, k_new
    exact = float((grad * (_attention(q2, k2, scale) - pattern)).sum())
    fixed = key_query_change(q, k, pattern, grad, span, k_new, q_new, scale)
    assert fixed == pytest.approx(exact, abs=1e-9)
    # keys only (cross-attention): queries unchanged
    k3 = k.clone()
    k3[span[0]:span[1]] = k_new
    assert key_query_change(q, k, pattern, grad, span, k_new, None, scale) == pytest.approx(
        float((grad * (_attention(q, k3, scale) - pattern)).sum()), abs=1e-9)
    # the tangent: the same metric linearised in q and k at the base
    qv, kv = q.clone().requires_grad_(True), k.clone().requires_grad_(True)
    gq, gk = torch.autograd.grad((grad * _attention(qv, kv, scale)).sum(), [qv, kv])
    tangent = float((gq * (q2 - q)).sum() + (gk * (k2 - k)).sum())
    assert abs(tangent - exact) > 10 * abs(fixed - exact) + 0.05


def test_atp_qk_changes_only_the_cells_that_enter_an_attention(tiny_session):
    hooks = ["encoder.blocks.0.hook_resid_post", "decoder.blocks.0.hook_mlp_out"]
    plain = sweep(tiny_session, hooks=hooks, window=20, method="attribution")
    fixed = sweep(tiny_session, hooks=hooks, window=20, method="atp-qk")
    for p, f in zip(plain.cells, fixed.cells):
        assert np.isfinite(f.value)
        if p.hook.startswith("decoder"):
            assert f.value == pytest.approx(p.value, abs=1e-5)
    assert any(abs(p.value - f.value) > 1e-6 for p, f in zip(plain.cells, fixed.cells) if p.layer == 0)


def test_graddrop_upstream_of_a_cell_changes_nothing(tiny_session):
    hook = "encoder.blocks.1.hook_resid_post"
    cells = tiny_session.cells(SweepConfig(hooks=hook, window=20), [hook])
    plain = tiny_session.attribution(cells, "denoising")
    for layer in (0, 1):  # blocks up to the cell's own: the gradient at its output does not pass through them
        dropped = tiny_session.attribution(cells, "denoising", hooks=drop_layer("encoder", layer))
        np.testing.assert_allclose(dropped, plain, atol=1e-5)
    after = tiny_session.attribution(cells, "denoising", hooks=drop_layer("decoder", 0))
    assert np.abs(after - plain).max() > 1e-6


def test_options_of_the_other_half_are_refused(tiny_session):
    from otoscope.errors import OtoscopeError
    from otoscope.patching import PatchConfig

    with pytest.raises(OtoscopeError, match=r"metric is fixed when the pair's session opens.*open_session\(\)"):
        sweep(tiny_session, metric="kl")
    with pytest.raises(OtoscopeError, match=r"window is a sweep option.*sweep\(\)"):
        open_session(tiny_session.model, "a.flac", "b.flac", window=5)
    config = PatchConfig(window=20, metric="logprob", answer="a")
    with pytest.raises(OtoscopeError, match=r"config\.sweep"):
        sweep(tiny_session, config)
    assert config.sweep.window == 20 and config.pair.metric == "logprob" and not hasattr(config.pair, "window")


def test_graddrop_in_one_forward_equals_one_run_per_layer(tiny_session, london_session):
    """atp-star (one gated forward, a backward per layer, passes downstream of every cell skipped) equals AtP* with
    one full gradient run per layer, on encoder and decoder cells of the random model and on real weights."""
    from otoscope.patching import atp

    # decoder cells only: no encoder block is upstream of them
    assert not any(atp._upstream("decoder.blocks.0.hook_resid_post", "encoder", i) for i in range(4))
    assert atp._upstream("encoder.blocks.2.hook_resid_pre", "encoder", 2)
    assert not atp._upstream("encoder.blocks.2.hook_resid_post", "encoder", 2)
    assert atp._upstream("encoder.blocks.2.hook_attn_out", "encoder", 2)
    assert atp._upstream("encoder.blocks.0.hook_resid_post", "decoder", 3)
    for session, hooks in ((tiny_session, ["encoder.blocks.*.hook_resid_post", "decoder.blocks.*.hook_resid_post"]),
                           (london_session, ["encoder.blocks.*.hook_resid_post"])):
        cells = session.cells(SweepConfig(hooks=hooks, window=20 if session is tiny_session else 10),
                              session.hook_names(hooks))
        got, expected = atp.atp_star(session, cells, "denoising"), atp_star_reference(session, cells, "denoising")
        span = np.ptp(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4 * span)
        # GradDrop moves the estimates far beyond that tolerance: the comparison is not vacuous
        assert np.abs(expected - atp.qk_fixed(session, cells, "denoising")).max() > 100 * 1e-4 * span


def test_graddrop_reaches_a_cell_at_the_dropped_blocks_input(tiny_session):
    """Block 1's input is block 0's output: the same cells read at either hook get the same atp-star values, so
    dropping block 1 lets the skip carry the gradient to a cell at its input too (not only its output's)."""
    from otoscope.patching import atp

    names = ["encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_resid_pre"]
    cells = tiny_session.cells(SweepConfig(hooks=names, window=20), names)
    post = [c for c in cells if c.hook == names[0]]
    pre = [c for c in cells if c.hook == names[1]]
    assert [(c.start, c.end) for c in post] == [(c.start, c.end) for c in pre] and len(post) > 3
    values = atp.atp_star(tiny_session, post + pre, "denoising")
    base = tiny_session._value(tiny_session.base_and_source("denoising", names)[0])
    assert np.abs(values[: len(post)] - base).max() > 1e-6  # not all at the unpatched value
    np.testing.assert_allclose(values[len(post):], values[: len(post)], rtol=1e-5, atol=1e-9)
