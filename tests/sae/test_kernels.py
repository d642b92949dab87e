"""The sparse TopK encoder and embedding-bag decoder against the plain dense computation."""

import pytest
import torch

from otoscope.sae.kernels import SparseCode, dense_decode, dense_encode, sparse_decode, sparse_encode


def _problem(batch=64, d_in=24, d_sae=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d_in, generator=g)
    W_enc = (torch.randn(d_in, d_sae, generator=g) / d_in ** 0.5).requires_grad_()
    b_enc = (0.1 * torch.randn(d_sae, generator=g)).requires_grad_()
    W_dec = torch.randn(d_sae, d_in, generator=g).requires_grad_()
    target = torch.randn(batch, d_in, generator=g)
    return x, W_enc, b_enc, W_dec, target


@pytest.mark.parametrize("per_row", [True, False], ids=["topk", "batchtopk"])
def test_sparse_encode_decode_match_dense_forward_and_grads(per_row):
    x, W_enc, b_enc, W_dec, target = _problem()
    x.requires_grad_()
    b_dec = (0.3 * torch.randn(x.shape[1])).requires_grad_()
    k = 5
    code = sparse_encode(x, W_enc, b_enc, k, b_dec=b_dec, per_row=per_row).code
    assert code.latents.numel() == k * x.shape[0]
    if per_row:
        assert torch.equal(code.offsets.diff(), torch.full((x.shape[0],), k))
    loss = (sparse_decode(code, W_dec) + b_dec - target).pow(2).sum()
    loss.backward()
    params = (x, b_dec, W_enc, b_enc, W_dec)
    sparse_grads = [t.grad.clone() for t in params]
    for t in params:
        t.grad = None
    z = dense_encode(x, W_enc, b_enc, k, b_dec=b_dec, per_row=per_row)
    assert torch.allclose(code.to_dense(W_enc.shape[1]), z, atol=1e-6)
    dense_loss = (dense_decode(z, W_dec) + b_dec - target).pow(2).sum()
    dense_loss.backward()
    assert torch.allclose(loss, dense_loss, rtol=1e-5)
    for name, got, t in zip(("x", "b_dec", "W_enc", "b_enc", "W_dec"), sparse_grads, params):
        assert torch.allclose(got, t.grad, atol=1e-4, rtol=1e-4), name


def test_bfloat16_autocast_selects_the_same_latents_and_keeps_float32_gradients():
    # The GPU path runs the encoder matmul under bfloat16 autocast; CPU autocast exercises the same code.
    x, W_enc, b_enc, W_dec, target = _problem(d_in=16, d_sae=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        code = sparse_encode(x, W_enc, b_enc, 3).code
        loss = (sparse_decode(code, W_dec) - target).pow(2).sum()
    loss.backward()
    reference = sparse_encode(x, W_enc, b_enc, 3).code
    same = (code.latents.view(64, 3).sort(1).values == reference.latents.view(64, 3).sort(1).values).all(1)
    assert same.float().mean() > 0.9  # bfloat16 rounding may swap near-ties only
    assert code.values.dtype == torch.float32 and W_enc.grad.dtype == torch.float32 and W_dec.grad.dtype == torch.float32
    by_latent = lambda c: c.values.view(64, 3).gather(1, c.latents.view(64, 3).argsort(1))  # noqa: E731
    assert torch.allclose(by_latent(code)[same], by_latent(reference)[same], atol=0.05)


def test_auxk_latents_are_dead_and_their_gradients_match_dense():
    x, W_enc, b_enc, W_dec, target = _problem(seed=1)
    dead = torch.zeros(W_enc.shape[1], dtype=torch.bool)
    dead[::3] = True
    k_aux = 4
    out = sparse_encode(x, W_enc, b_enc, 5, dead=dead, k_aux=k_aux)
    assert out.aux is not None and dead[out.aux.latents].all()
    aux_loss = (sparse_decode(out.aux, W_dec) - target).pow(2).sum()
    aux_loss.backward()
    got = W_enc.grad.clone(), b_enc.grad.clone()
    W_enc.grad = b_enc.grad = None
    pre = (x @ W_enc + b_enc).relu().masked_fill(~dead, -float("inf"))
    values, latents = pre.topk(k_aux, dim=-1)
    z = torch.zeros_like(pre).scatter(-1, latents, values)
    (z @ W_dec - target).pow(2).sum().backward()
    assert torch.allclose(got[0], W_enc.grad, atol=1e-4) and torch.allclose(got[1], b_enc.grad, atol=1e-4)


def test_decoder_backward_gather_path_matches_sddmm_path():
    # CPU uses a fused SDDMM for ∂values; GPUs gather rows. Both are checked here on CPU.
    from otoscope.sae import kernels

    _, W_enc, b_enc, W_dec, target = _problem()
    code = SparseCode(torch.rand(30), torch.randint(0, 96, (30,)), torch.tensor([0, 4, 4, 11, 30]))
    grad_out = torch.randn(4, 24)
    fused = kernels._gather_dot(grad_out, W_dec.detach(), code)
    gathered = (W_dec.detach()[code.latents] * grad_out[code.rows()]).sum(-1)
    assert torch.allclose(fused, gathered, atol=1e-5)


def test_zero_activations_get_no_gradient():
    # With every pre-activation negative, the top-k values are ReLU zeros: no latent may learn from them.
    x, W_enc, b_enc, W_dec, target = _problem()
    with torch.no_grad():
        b_enc.fill_(-100.0)
    code = sparse_encode(x, W_enc, b_enc, 3).code
    assert (code.values == 0).all() and (code.l0() == 0).all()
    (sparse_decode(code, W_dec) - target).pow(2).sum().backward()
    assert W_enc.grad.abs().sum() == 0 and b_enc.grad.abs().sum() == 0
