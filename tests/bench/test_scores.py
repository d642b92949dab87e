"""Scores of a method against exact patching, checked against plain computations."""

import math

import numpy as np
import pandas as pd
import pytest

from otoscope.bench.scores import cells_in_region, effect, pearson, region_share, score, top_k_recall


def test_correlations_match_plain_formulas():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    b[:10] += 2 * a[:10]
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    s = score(a, b, "denoising", [False] * 30, 1.0, 4.0)
    ranks = pd.Series(a).rank(), pd.Series(b).rank()
    assert s.spearman == pytest.approx(np.corrcoef(ranks[0], ranks[1])[0, 1])
    assert s.time_fraction == 0.25 and s.region_share is None


def test_noising_ranks_by_loss():
    # noising scores near 0 destroy the clean answer: they are the important cells
    exact = np.array([0.9, 0.1, 1.0, 0.5])
    assert list(effect(exact, "noising")) == pytest.approx([0.1, 0.9, 0.0, 0.5])
    assert score(exact, exact, "noising", [False] * 4, 1, 1).spearman == pytest.approx(1.0)
    assert score(exact, 1 - exact, "noising", [False] * 4, 1, 1).spearman == pytest.approx(-1.0)


def test_top_k_recall_counts_shared_cells():
    ref = np.arange(10.0)  # top 5: cells 5..9
    est = ref.copy()
    est[9], est[0] = -1, 100  # the method misses cell 9 and promotes cell 0
    assert top_k_recall(ref, est) == pytest.approx(0.8)
    assert top_k_recall(ref, ref[::-1]) == 0.0
    assert top_k_recall(ref[:3], ref[:3]) == 1.0  # fewer cells than k: all of them
    assert top_k_recall(np.array([np.nan, 1, 2, 3, 4, 5]), np.array([9, 1, 2, 3, 4, 5])) == pytest.approx(0.8)


def test_region_share_and_cells_in_region():
    cells = [{"seconds": [0.0, 0.2]}, {"seconds": [0.2, 0.4]}, {"seconds": [0.4, 0.6]}, {"tokens": [1, 2], "seconds": None}]
    inside = cells_in_region(cells, (0.25, 0.6))
    assert inside == [False, True, True, False]  # 0.2–0.4 is 75% inside
    assert cells_in_region(cells, None) == [False] * 4
    assert region_share([1.0, 2.0, -5.0, 1.0], inside) == pytest.approx(2.0 / 4.0)  # negative effects do not count
    assert region_share([0.0, 0.0, 0.0, 0.0], inside) is None
    assert region_share([1.0] * 4, [False] * 4) is None


def test_constant_scores_give_nan_not_an_error():
    s = score(np.ones(5), np.arange(5.0), "denoising", [False] * 5, None, 1.0)
    assert math.isnan(s.spearman) and math.isnan(s.pearson)
    assert s.to_json()["spearman"] is None and s.time_fraction is None
