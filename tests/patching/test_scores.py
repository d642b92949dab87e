"""Method scores on constructed maps whose answers are known, and the one ranking of cells they use."""

import numpy as np
import pytest

from otoscope.patching.result import CellResult, PatchResult
from otoscope.patching.scores import region_mask, score_method


def result(values, method="exact", direction="denoising", seconds=None, clean=1.0, corrupt=0.0):
    """A sweep of one hook, 10-frame cells, with these raw values (clean 1, corrupt 0: value = normalised)."""
    cells = [CellResult("encoder.blocks.0.hook_resid_post", 0, (10 * i, 10 * i + 10), (0.2 * i, 0.2 * i + 0.2), None,
                        None, None, float(v), float((v - corrupt) / (clean - corrupt))) for i, v in enumerate(values)]
    return PatchResult("m", direction, method, "logit_diff", clean, corrupt, cells,
                       context={} if seconds is None else {"seconds": seconds})


def test_identical_and_reversed_maps():
    values = np.linspace(0, 1, 12)
    same = score_method(result(values, seconds=10.0), result(values, "attribution", seconds=1.0))
    assert same.spearman == pytest.approx(1) and same.pearson == pytest.approx(1) and same.top_recall == 1
    assert same.time_fraction == pytest.approx(0.1) and np.isnan(same.region_share) and same.cells == 12
    flipped = score_method(result(values), result(values[::-1].copy(), "attribution"))
    assert flipped.spearman == pytest.approx(-1) and flipped.pearson == pytest.approx(-1) and flipped.top_recall == 0
    assert np.isnan(flipped.time_fraction)


@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_a_method_with_every_sign_flipped(direction):
    # docs/benchmark.md: top-5 recall and share in region say *where* (by |effect|), the correlations say which
    # way; a method whose effects are exactly exact's with the sign flipped finds the right cells (recall 1, the
    # same share in region) and is flagged by Spearman = Pearson = -1
    effects = np.array([0.9, -0.6, 0.05, 0.3, -0.02, 0.0, 0.7, 0.1, -0.4, 0.01])
    normalized = effects if direction == "denoising" else 1 - effects  # clean 1, corrupt 0: value = normalised
    flipped = -effects if direction == "denoising" else 1 + effects
    exact, estimate = result(normalized, direction=direction), result(flipped, "attribution", direction=direction)
    assert estimate.effects() == pytest.approx(-exact.effects())
    mask = region_mask(exact, 0.0, 0.4)  # cells 0 and 1
    s, own = score_method(exact, estimate, region=mask), score_method(exact, exact, region=mask)
    assert s.spearman == pytest.approx(-1) and s.pearson == pytest.approx(-1)
    assert s.top_recall == 1 and own.top_recall == 1
    assert s.region_share == pytest.approx(own.region_share) == pytest.approx(1.5 / np.abs(effects).sum())


def test_top_recall_counts_the_shared_strongest_cells():
    exact = result([0.9, 0.8, 0.7, 0.6, 0.5, 0, 0, 0, 0, 0])
    # the estimate finds cells 0, 1, 2 among its five strongest, and two weak ones instead of 3 and 4
    estimate = result([0.9, 0.8, 0.7, 0.0, 0.0, 0.6, 0.5, 0, 0, 0], "attribution")
    assert score_method(exact, estimate).top_recall == pytest.approx(0.6)
    # strength is the magnitude of the effect: a strong negative estimate counts as strong
    negative = result([-0.9, -0.8, -0.7, -0.6, -0.5, 0, 0, 0, 0, 0], "attribution")
    assert score_method(exact, negative).top_recall == 1 and score_method(exact, negative).spearman < 0


def test_region_share_is_the_share_of_effect_inside_the_mask():
    inside = result([0, 0, 0.5, 0.5, 0, 0])
    mask = region_mask(inside, 0.4, 0.8)  # cells 2 and 3 span 0.4-0.6 and 0.6-0.8 s
    assert mask.tolist() == [False, False, True, True, False, False]
    assert score_method(inside, inside, region=mask).region_share == pytest.approx(1)
    half = result([0.25, 0, 0.25, 0.5, 0, 0], "attribution")
    assert score_method(inside, half, region=mask).region_share == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one bool per cell"):
        score_method(inside, half, region=mask[:3])


def test_noising_effects_are_what_is_lost():
    noising = result([1.0, 0.2, 0.9, 0.6], direction="noising")  # effects 0, 0.8, 0.1, 0.4
    assert [c.frames[0] for c in noising.strongest(2)] == [10, 30]
    assert noising.effects() == pytest.approx([0, 0.8, 0.1, 0.4])
    assert [c.frames[0] for c in result([0.1, np.nan, 0.5]).strongest(5)] == [20, 0, 10]  # NaN last


def test_results_of_different_sweeps_are_refused():
    with pytest.raises(ValueError, match="different cells"):
        score_method(result([0, 1, 2]), result([0, 1]))
