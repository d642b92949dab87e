"""Sparse TopK encoding and embedding-bag decoding, with backward passes that touch only active latents.

A TopK SAE on ``[batch, d_in]`` activations keeps ``k`` of ``d_sae`` latents per row. Written densely
(SAELens does this), every step costs five ``batch × d_in × d_sae`` matrix products: the encoder forward,
the decoder forward, and three in the backward. Only the first needs to be dense, since every latent's
pre-activation must be seen to pick the top k. The rest touch ``batch × k`` latents:

* decoder forward: ``x̂[b] = Σ_j v[b, j] · W_dec[i[b, j]]`` is an embedding bag;
* decoder backward: ``∂v[b, j] = ⟨∂x̂[b], W_dec[i[b, j]]⟩`` is a sampled dense-dense product (SDDMM),
  and ``∂W_dec = Sᵀ ∂x̂`` a sparse × dense product with ``S`` the ``[batch, d_sae]`` code;
* encoder backward: ``∂W_enc = xᵀ ∂S`` and ``∂b_enc`` are scatters over the active latents only.

This is the design of EleutherAI's sparsify (its ``fused_encoder`` and embedding-bag decoder). A code is
kept as :class:`SparseCode`: compressed rows (CSR) over ``[batch, d_sae]``. ``dense_*`` functions are the
plain autograd versions the tests compare against.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F


class SparseCode(NamedTuple):
    """Latent activations of a batch in compressed-row form.

    Row ``b``'s active latents are ``latents[offsets[b]:offsets[b+1]]`` with values ``values[same]``.
    TopK codes have exactly ``k`` entries per row, so ``values.view(batch, k)`` is valid for them.
    """

    values: torch.Tensor
    """``[nnz]`` activations (≥ 0; zeros are possible when fewer than k pre-activations are positive)."""
    latents: torch.Tensor
    """``[nnz]`` int64 latent indices."""
    offsets: torch.Tensor
    """``[batch + 1]`` int64 row pointers."""

    @property
    def batch(self) -> int:
        """Rows in the batch."""
        return self.offsets.numel() - 1

    def rows(self) -> torch.Tensor:
        """``[nnz]`` row index of every entry."""
        counts = self.offsets.diff()
        return torch.repeat_interleave(torch.arange(self.batch, device=counts.device), counts)

    def to_dense(self, d_sae: int) -> torch.Tensor:
        """``[batch, d_sae]`` dense activations."""
        out = torch.zeros(self.batch, d_sae, dtype=self.values.dtype, device=self.values.device)
        out[self.rows(), self.latents] = self.values
        return out

    def l0(self) -> torch.Tensor:
        """``[batch]`` number of non-zero latents per row."""
        nonzero = (self.values > 0).to(torch.int64)
        return torch.zeros(self.batch, dtype=torch.int64, device=nonzero.device).index_add_(0, self.rows(), nonzero)


def _coo(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, size, check_invariants=False)


def _select(pre: torch.Tensor, k: int, per_row: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k of ``pre`` ``[batch, d_sae]`` per row, or the top ``k × batch`` of the whole batch."""
    batch, d_sae = pre.shape
    if per_row:
        values, latents = pre.topk(k, dim=-1, sorted=False)  # [batch, k]
        offsets = torch.arange(0, batch * k + 1, k, device=pre.device)
        return values.reshape(-1), latents.reshape(-1), offsets
    flat_values, flat = pre.reshape(-1).topk(min(k * batch, pre.numel()), sorted=False)
    flat, order = flat.sort()  # row-major order groups the entries by row
    rows = flat // d_sae
    offsets = torch.zeros(batch + 1, dtype=torch.int64, device=pre.device)
    offsets[1:] = torch.bincount(rows, minlength=batch).cumsum(0)
    return flat_values[order], flat % d_sae, offsets


class _SparseEncode(torch.autograd.Function):
    """``relu((x − b_dec) @ W_enc + b_enc)`` → top-k (per row or per batch), optionally with AuxK's dead-latent top-k."""

    @staticmethod
    def forward(ctx, x, b_dec, W_enc, b_enc, k: int, per_row: bool, dead: torch.Tensor | None, k_aux: int):
        # x [batch, d_in]; b_dec [d_in]; W_enc [d_in, d_sae]; b_enc [d_sae]
        centred = x - b_dec.to(x.dtype)
        pre = torch.addmm(b_enc.to(x.dtype), centred, W_enc.to(x.dtype)).relu_()  # [batch, d_sae]; bf16 under autocast
        values, latents, offsets = _select(pre, k, per_row)
        if dead is not None and k_aux > 0:
            aux_values, aux_latents = pre.masked_fill(~dead, -float("inf")).topk(k_aux, dim=-1, sorted=False)
            aux_values, aux_latents = aux_values.reshape(-1), aux_latents.reshape(-1)
        else:
            aux_values = pre.new_zeros(0)
            aux_latents = torch.zeros(0, dtype=torch.int64, device=x.device)
        values, aux_values = values.float(), aux_values.float()
        ctx.save_for_backward(centred, W_enc, latents, offsets, values > 0, aux_latents, aux_values > 0)
        ctx.k_aux = k_aux
        ctx.mark_non_differentiable(latents, offsets, aux_latents)
        return values, latents, offsets, aux_values, aux_latents

    @staticmethod
    def backward(ctx, grad_values, _latents, _offsets, grad_aux, _aux_latents):
        centred, W_enc, latents, offsets, alive, aux_latents, aux_alive = ctx.saved_tensors
        batch, d_in = centred.shape
        d_sae = W_enc.shape[1]
        with torch.autocast(device_type=centred.device.type, enabled=False):
            if grad_values is None:
                grad_values = torch.zeros(latents.shape, device=centred.device)
            rows = SparseCode(grad_values, latents, offsets).rows()
            grads, lats, row_ids = [grad_values.float() * alive], [latents], [rows]
            if aux_latents.numel() and grad_aux is not None:
                grads.append(grad_aux.float() * aux_alive)
                lats.append(aux_latents)
                row_ids.append(torch.arange(batch, device=centred.device).repeat_interleave(ctx.k_aux))
            g, lat, rows = torch.cat(grads), torch.cat(lats), torch.cat(row_ids)  # [nnz] each
            W32 = W_enc.float()
            grad_x = grad_b_dec = grad_W = grad_b = None
            # ∂b_enc is a scatter of g; ∂b_dec = −Σ_b ∂x[b] = −W_enc ∂b_enc: no [batch, d_in] product needed for it
            grad_b32 = torch.zeros(d_sae, dtype=torch.float32, device=centred.device).index_add_(0, lat, g)
            if ctx.needs_input_grad[0]:
                grad_x = torch.sparse.mm(_coo(rows, lat, g, (batch, d_sae)), W32.t().contiguous()).to(centred.dtype)
            if ctx.needs_input_grad[1]:
                grad_b_dec = -(W32 @ grad_b32)
            if ctx.needs_input_grad[2]:
                grad_W = torch.sparse.mm(_coo(lat, rows, g, (d_sae, batch)), centred.float()).t().to(W_enc.dtype)
            if ctx.needs_input_grad[3]:
                grad_b = grad_b32.to(W_enc.dtype)
        return grad_x, grad_b_dec, grad_W, grad_b, None, None, None, None


class EncodeOutput(NamedTuple):
    """What :func:`sparse_encode` returns."""

    code: SparseCode
    """The selected latents."""
    aux: SparseCode | None
    """AuxK: the top ``k_aux`` dead latents of every row (None when no dead mask was given)."""


def sparse_encode(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int, *, b_dec: torch.Tensor | None = None,
                  per_row: bool = True, dead: torch.Tensor | None = None, k_aux: int = 0) -> EncodeOutput:
    """TopK (``per_row``) or BatchTopK encoding of ``x − b_dec`` for ``x`` ``[batch, d_in]``.

    The backward pass touches only the selected latents. ``dead`` (``[d_sae]`` bool) with ``k_aux > 0``
    also returns the top ``k_aux`` dead latents per row for the AuxK loss.
    """
    use_aux = dead is not None and k_aux > 0
    if b_dec is None:
        b_dec = x.new_zeros(x.shape[1])
    values, latents, offsets, aux_values, aux_latents = _SparseEncode.apply(
        x.contiguous(), b_dec, W_enc, b_enc, int(k), bool(per_row), dead if use_aux else None,
        int(k_aux) if use_aux else 0)
    aux = None
    if use_aux:
        aux_offsets = torch.arange(0, x.shape[0] * k_aux + 1, k_aux, device=x.device)
        aux = SparseCode(aux_values, aux_latents, aux_offsets)
    return EncodeOutput(SparseCode(values, latents, offsets), aux)


def _gather_dot(grad_out: torch.Tensor, W_dec: torch.Tensor, code: SparseCode) -> torch.Tensor:
    """``⟨grad_out[row], W_dec[latent]⟩`` for every entry of ``code`` → ``[nnz]``."""
    if grad_out.device.type == "cpu":
        # SDDMM: one fused pass, no [nnz, d_in] gather in memory
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            pattern = torch.sparse_csr_tensor(code.offsets, code.latents, grad_out.new_zeros(code.latents.numel()),
                                              (code.batch, W_dec.shape[0]))
            return torch.sparse.sampled_addmm(pattern, grad_out, W_dec.t()).values()
    return (W_dec[code.latents] * grad_out[code.rows()]).sum(-1)  # GPUs have the bandwidth for the gather


class _SparseDecode(torch.autograd.Function):
    """``x̂[b] = Σ_j values[j] · W_dec[latents[j]]`` over row b's entries, as an embedding bag."""

    @staticmethod
    def forward(ctx, values, latents, offsets, W_dec):
        # values, latents [nnz]; offsets [batch + 1]; W_dec [d_sae, d_in] → [batch, d_in]
        W = W_dec.float()
        out = F.embedding_bag(latents, W, offsets[:-1], mode="sum", per_sample_weights=values.float())
        ctx.save_for_backward(values, latents, offsets, W_dec)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        values, latents, offsets, W_dec = ctx.saved_tensors
        code = SparseCode(values, latents, offsets)
        grad_values = grad_W = None
        with torch.autocast(device_type=grad_out.device.type, enabled=False):
            grad_out = grad_out.float().contiguous()
            if ctx.needs_input_grad[0]:
                grad_values = _gather_dot(grad_out, W_dec.float(), code).to(values.dtype)
            if ctx.needs_input_grad[3]:
                sparse = _coo(latents, code.rows(), values.float(), (W_dec.shape[0], code.batch))
                grad_W = torch.sparse.mm(sparse, grad_out).to(W_dec.dtype)  # [d_sae, d_in]
        return grad_values, None, None, grad_W


def sparse_decode(code: SparseCode, W_dec: torch.Tensor) -> torch.Tensor:
    """Decode ``code`` with ``W_dec`` ``[d_sae, d_in]`` → ``[batch, d_in]`` (no bias). Float32 output."""
    return _SparseDecode.apply(code.values, code.latents, code.offsets, W_dec)


# ----------------------------------------------------------------------------- plain references
def dense_encode(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int, *, b_dec: torch.Tensor | None = None,
                 per_row: bool = True) -> torch.Tensor:
    """The dense reference of :func:`sparse_encode` → ``[batch, d_sae]`` with plain autograd."""
    centred = x - b_dec if b_dec is not None else x
    pre = (centred @ W_enc + b_enc).relu()  # [batch, d_sae]
    if per_row:
        values, latents = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, latents, values)
    flat = pre.reshape(-1)
    values, index = flat.topk(min(k * x.shape[0], flat.numel()))
    return torch.zeros_like(flat).scatter(0, index, values).view_as(pre)


def dense_decode(z: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """The dense reference of :func:`sparse_decode`: ``z @ W_dec``."""
    return z @ W_dec
