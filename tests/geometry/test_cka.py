import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.geometry.cka import cka_across_models, cka_layers, linear_cka, unbiased_hsic
from otoscope.geometry.collect import LayerActivations


def _naive_unbiased_hsic(k, l):
    n = k.shape[0]
    k, l = k.clone().fill_diagonal_(0), l.clone().fill_diagonal_(0)
    one = torch.ones(n, 1, dtype=k.dtype)
    value = torch.trace(k @ l) + (one.T @ k @ one) * (one.T @ l @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * (one.T @ k @ l @ one)
    return value.item() / (n * (n - 3))


def test_unbiased_hsic_matches_the_formula():
    torch.manual_seed(0)
    x, y = torch.randn(50, 8, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64)
    k, l = x @ x.T, y @ y.T
    assert unbiased_hsic(k, l).item() == pytest.approx(_naive_unbiased_hsic(k, l), rel=1e-10)
    with pytest.raises(OtoscopeError, match="at least 4"):
        unbiased_hsic(k[:3, :3], l[:3, :3])


def test_linear_cka_properties():
    torch.manual_seed(0)
    x = torch.randn(400, 16)
    q, _ = torch.linalg.qr(torch.randn(16, 16))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 2.5 * x @ q + 3.0) == pytest.approx(1.0)  # orthogonal, isotropic scale, shift
    assert linear_cka(x, torch.randn(400, 16)) < 0.15


def _items(layers: list[torch.Tensor], clips: int):
    # layers: [clips * frames, d] each; split into per-clip LayerActivations
    per = layers[0].shape[0] // clips
    names = [f"l{i}" for i in range(len(layers))]
    return [LayerActivations(f"c{c}", names, torch.stack([t[c * per : (c + 1) * per] for t in layers])) for c in range(clips)]


def test_minibatch_estimator_agrees_with_full_batch_and_streams():
    torch.manual_seed(0)
    a = torch.randn(1200, 12)
    b = a @ torch.randn(12, 12) * 0.5 + 0.3 * torch.randn(1200, 12)
    c = torch.randn(1200, 12)
    result = cka_layers(_items([a, b, c], clips=6), batch_frames=200, frames_per_clip=None)
    assert result.n_batches == 6 and result.n_examples == 1200
    assert np.allclose(np.diag(result.matrix), 1.0, atol=1e-6)
    assert np.allclose(result.matrix, result.matrix.T, atol=1e-9)
    # the unbiased minibatch estimate is close to the full-data CKA, and unrelated layers sit near 0
    assert result.matrix[0, 1] == pytest.approx(linear_cka(a, b), abs=0.05)
    assert abs(result.matrix[0, 2]) < 0.05
    df = result.to_frame()
    assert len(df) == 9 and set(df.columns) == {"row", "col", "cka"}


def test_cross_model_needs_aligned_frames():
    torch.manual_seed(0)
    a = _items([torch.randn(100, 4)], 2)
    b = [LayerActivations("c0", ["m"], torch.randn(1, 40, 6))]
    with pytest.raises(OtoscopeError, match="same frame rate"):
        cka_across_models(a, b)
    same = cka_across_models(a, a, batch_frames=50, frames_per_clip=None)
    assert same.matrix[0, 0] == pytest.approx(1.0)


def test_real_model_layer_cka(tiny_en, speech):
    from otoscope.geometry.collect import collect_layers

    items = collect_layers(tiny_en, [r["path"] for r in speech[:3]])
    result = cka_layers(items, batch_frames=64)
    assert result.matrix.shape == (5, 5)  # embed + 4 blocks
    assert result.rows[0] == "encoder.hook_embed"
    # neighbouring layers are more alike than the embedding and the last block
    assert result.matrix[3, 4] > result.matrix[0, 4]
