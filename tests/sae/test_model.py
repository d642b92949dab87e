"""The SAE module: initialisation, each architecture's encode rule, training forward, folding a scale."""

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.kernels import dense_decode, dense_encode
from otoscope.sae.model import SparseAutoencoder

ARCHS = ["topk", "batchtopk", "relu", "jumprelu"]


def _sae(arch="topk", d_in=16, d_sae=64, k=4, seed=0):
    return SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, k=k), seed=seed)


def test_initialisation_recipe():
    sae = _sae()
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-6)  # unit-norm decoder rows
    assert torch.equal(sae.W_enc, sae.W_dec.t())  # encoder = decoder transpose
    assert not sae.b_enc.any() and not sae.b_dec.any()
    assert torch.equal(_sae(seed=3).W_dec, _sae(seed=3).W_dec) and not torch.equal(_sae(seed=3).W_dec, sae.W_dec)
    mean = torch.randn(16)
    sae.init_b_dec(mean)
    assert torch.equal(sae.b_dec.data, mean)


def test_config_validation_says_how_to_fix():
    with pytest.raises(OtoscopeError, match="unknown SAE architecture 'gated'"):
        SAEConfig(d_in=8, architecture="gated")
    with pytest.raises(OtoscopeError, match="k=100 is larger than d_sae=64"):
        SAEConfig(d_in=8, d_sae=64, k=100)
    assert SAEConfig(d_in=8, expansion=4).d_sae == 32


def test_decoder_bias_is_subtracted_before_encoding():
    sae = _sae("relu")
    x = torch.randn(5, 16)
    with torch.no_grad():
        sae.b_dec.copy_(x[0])
    assert torch.allclose(sae.pre_acts(x[:1]), sae.b_enc[None], atol=1e-6)  # x − b_dec = 0 → pre = b_enc


@pytest.mark.parametrize("arch", ARCHS)
def test_inference_rules(arch):
    sae = _sae(arch)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
        if sae.thresholds() is not None:
            sae.threshold.fill_(0.4)
    x = torch.randn(32, 16)
    pre = sae.pre_acts(x)
    z = sae.encode(x)
    if arch == "topk":
        assert ((z > 0).sum(-1) <= 4).all() and torch.allclose(z, dense_encode(x, sae.W_enc, sae.b_enc, 4, b_dec=sae.b_dec))
    elif arch == "relu":
        assert torch.equal(z, pre.relu())
    else:  # jumprelu, and batchtopk at inference: JumpReLU with the learned threshold
        assert torch.equal(z, pre.relu() * (pre > 0.4))
    assert torch.allclose(sae(x), dense_decode(z, sae.W_dec) + sae.b_dec, atol=1e-5)
    code = sae.encode_sparse(x)
    assert torch.allclose(code.to_dense(64), z, atol=1e-6)


def test_batchtopk_keeps_k_per_row_on_average_and_learns_a_threshold():
    sae = _sae("batchtopk", k=4).train()
    x = torch.randn(128, 16)
    out = sae.train_forward(x, norm=1.0)
    assert out.l0.item() == pytest.approx(4.0)
    assert out.counts.sum().item() == 4 * 128
    assert sae.threshold.min() > 0  # moved toward the smallest kept activation


def test_jumprelu_l0_penalty_raises_thresholds():
    sae = _sae("jumprelu")
    sae.cfg.l0_coefficient = 1.0
    sae.cfg.jumprelu_bandwidth = 1.0
    x = torch.randn(256, 16)
    out = sae.train_forward(x, norm=1.0)
    out.sparsity_loss.backward()
    assert sae.threshold.grad is not None and (sae.threshold.grad <= 0).all() and sae.threshold.grad.sum() < 0
    assert sae.W_enc.grad is None or sae.W_enc.grad.abs().sum() == 0  # the L0 estimator moves thresholds only


def test_relu_l1_penalty_is_scale_free():
    sae = _sae("relu")
    x = torch.randn(64, 16)
    a = sae.train_forward(x, norm=2.0).sparsity_loss
    b = sae.train_forward(10 * x, norm=20.0).sparsity_loss
    assert torch.allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_folding_a_training_scale_keeps_latents(arch):
    sae = _sae(arch)
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.b_enc.normal_(0, 0.2)
        if sae.thresholds() is not None:
            sae.threshold.fill_(0.1)
    x, scale = torch.randn(20, 16), 3.5
    folded = sae.folded(scale)
    assert torch.allclose(folded.encode(x), sae.encode(scale * x), atol=1e-5)
    assert torch.allclose(folded(x), sae(scale * x) / scale, atol=1e-5)


def test_decoder_gradient_along_rows_is_removed():
    sae = _sae()
    sae.W_dec.grad = torch.randn_like(sae.W_dec)
    sae.remove_parallel_grad_()
    assert torch.allclose((sae.W_dec.grad * sae.W_dec).sum(1), torch.zeros(64), atol=1e-6)


def test_width_mismatch_is_named():
    sae = _sae()
    sae.cfg.hook_name = "encoder.blocks.1.hook_resid_post"
    with pytest.raises(OtoscopeError, match="width 8 but this SAE reads d_in=16 \\(hook encoder.blocks.1.hook_resid_post\\)"):
        sae(torch.randn(3, 8))


def test_forward_keeps_leading_axes():
    sae = _sae()
    x = torch.randn(2, 7, 16)
    assert sae(x).shape == x.shape and sae.encode(x).shape == (2, 7, 64)
