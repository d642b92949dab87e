"""DTW and the median filter against brute force."""

import itertools

import numpy as np
import pytest
import torch

from otoscope.models.dtw import dtw, median_filter


def _all_paths(n, m):
    """Every monotonic path from (0, 0) to (n-1, m-1) with steps down, right or diagonal."""
    def walk(i, j):
        if (i, j) == (n - 1, m - 1):
            yield [(i, j)]
            return
        for di, dj in ((1, 1), (1, 0), (0, 1)):
            if i + di < n and j + dj < m:
                for rest in walk(i + di, j + dj):
                    yield [(i, j)] + rest
    return list(walk(0, 0))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1), (3, 4), (4, 6), (5, 5), (2, 7)])
def test_dtw_finds_the_cheapest_of_all_paths(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = rng.normal(size=shape)
        paths = _all_paths(*shape)
        best = min(paths, key=lambda p: sum(cost[i, j] for i, j in p))
        path = dtw(cost)
        assert list(zip(path.rows.tolist(), path.cols.tolist())) == best


def test_dtw_path_is_monotonic_and_complete_on_a_wide_matrix():
    rng = np.random.default_rng(0)
    cost = rng.normal(size=(12, 300))
    path = dtw(cost)
    steps = np.stack([np.diff(path.rows), np.diff(path.cols)], 1)
    assert path.rows[0] == 0 and path.cols[0] == 0 and path.rows[-1] == 11 and path.cols[-1] == 299
    assert {tuple(s) for s in steps.tolist()} <= {(1, 1), (1, 0), (0, 1)}


def test_dtw_follows_a_planted_diagonal():
    cost = np.ones((4, 8))
    for i, cols in enumerate([(0, 1), (2, 3, 4), (5,), (6, 7)]):
        cost[i, list(cols)] = -5.0
    path = dtw(cost)
    starts = [int(path.cols[np.flatnonzero(path.rows == i)[0]]) for i in range(4)]
    assert starts == [0, 2, 5, 6]


def test_dtw_rejects_empty():
    with pytest.raises(ValueError, match="non-empty 2-D"):
        dtw(np.zeros((0, 3)))


@pytest.mark.parametrize("width", [1, 3, 7])
def test_median_filter_matches_a_plain_loop(width):
    rng = np.random.default_rng(width)
    x = rng.normal(size=(2, 3, 20))
    half = width // 2
    expected = np.empty_like(x)
    for idx in itertools.product(range(2), range(3)):
        row = x[idx]
        padded = np.concatenate([row[1 : half + 1][::-1], row, row[-half - 1 : -1][::-1]]) if half else row
        expected[idx] = [np.median(padded[k : k + width]) for k in range(20)]
    assert np.allclose(median_filter(torch.from_numpy(x), width).numpy(), expected)


def test_median_filter_leaves_short_rows_and_rejects_even_widths():
    x = torch.arange(3.0)[None]
    assert torch.equal(median_filter(x, 7), x)
    with pytest.raises(ValueError, match="odd"):
        median_filter(x, 4)
