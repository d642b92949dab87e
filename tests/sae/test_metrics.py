"""FVU with the variance about the mean, streaming metrics, dead/dense counts, seed stability."""

import pytest
import torch

from otoscope.sae.config import SAEConfig
from otoscope.sae.metrics import ReconstructionAccumulator, feature_match, fvu, reconstruction_metrics
from otoscope.sae.model import SparseAutoencoder


def test_fvu_is_relative_to_the_mean_not_to_zero():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 8, generator=g) + 20.0  # a large mean, like a residual stream
    mean_only = x.mean(0).expand_as(x)
    assert fvu(x, mean_only) == pytest.approx(1.0)  # the mean explains no variance
    assert fvu(x, x) == 0.0
    about_zero = float((x - mean_only).pow(2).sum() / x.pow(2).sum())
    assert about_zero < 0.01  # the buggy formula would call the bias alone a near-perfect SAE


def test_streamed_metrics_equal_one_pass_and_count_dead_and_dense_latents():
    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=32, k=3), seed=0)
    with torch.no_grad():
        sae.b_enc[5] = 100.0  # fires on every row: dense
        sae.b_enc[6] = -100.0  # never fires: dead
    x = torch.randn(1000, 8)
    whole = reconstruction_metrics(sae, x)
    streamed = reconstruction_metrics(sae, [x[:333], x[333:700], x[700:]], chunk=100)
    assert streamed.fvu == pytest.approx(whole.fvu, rel=1e-9) and streamed.rows == 1000
    assert whole.fvu == pytest.approx(fvu(x, sae(x)), rel=1e-6)
    assert whole.l0 == pytest.approx(3.0)
    assert whole.frequency[5] == 1.0 and whole.frequency[6] == 0.0
    assert whole.dead_fraction == pytest.approx(sum(f == 0 for f in whole.frequency) / 32)
    assert whole.dense_fraction == pytest.approx(sum(f > 0.1 for f in whole.frequency) / 32)
    with torch.no_grad():
        assert whole.mse == pytest.approx(float((x - sae(x)).pow(2).mean()), rel=1e-5)
    assert "frequency" not in whole.to_json()


def test_accumulator_without_rows_is_nan_not_an_error():
    assert ReconstructionAccumulator(4, 8).result().fvu != ReconstructionAccumulator(4, 8).result().fvu


def test_feature_match_across_seeds():
    a = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, k=4), seed=0)
    shuffled = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, k=4), seed=1)
    with torch.no_grad():
        shuffled.W_dec.copy_(a.W_dec[torch.randperm(64)] * 3.0)  # same directions, other order and norm
    assert feature_match(a, shuffled).matched_fraction == 1.0
    other = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, k=4), seed=2)
    result = feature_match(a, other)
    assert result.matched_fraction < 0.5 and 0 < result.mean_max_cosine < 0.9
    assert len(result.max_cosine) == 64
