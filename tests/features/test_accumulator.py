"""The accumulator's co-activation counts on synthetic codes: padded TopK rows and a few very dense rows."""

from __future__ import annotations

import torch

from otoscope.features import FeaturesConfig, naive
from otoscope.features.stats import FeatureAccumulator


def _code(z: torch.Tensor):
    rows, latents = z.nonzero(as_tuple=True)
    return rows, latents, z[rows, latents]


def test_pair_counts_equal_the_gram_matrix_of_firing_indicators():
    gen = torch.Generator().manual_seed(0)
    d = 40
    acc = FeatureAccumulator(d, FeaturesConfig(coactivation_top=5))
    zs = []
    for batch, density in enumerate((0.05, 0.1, 0.9)):  # the last batch: rows far denser than the rest
        z = torch.rand(30, d, generator=gen) * (torch.rand(30, d, generator=gen) < density)
        if batch == 2:
            z[1:] *= torch.rand(29, d, generator=gen) < 0.05
        zs.append(z)
        acc.update(*_code(z), torch.full((30,), batch), torch.arange(30))
    z = torch.cat(zs)
    on = (z > 0).int()
    gram = on.T @ on
    counted = acc.coact[:d, :d] + acc.coact[:d, :d].T
    off = ~torch.eye(d, dtype=torch.bool)
    assert torch.equal(counted[off], gram[off])
    index, score = acc.coactivation(5)
    jac = naive.jaccard(z)
    for j in range(d):
        row = jac[j].tolist()
        expected = [i for i in sorted(range(d), key=lambda i: (-row[i], i)) if row[i] > 0][:5]
        assert [i for i in index[j].tolist() if i >= 0] == expected
