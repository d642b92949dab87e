"""The sparse autoencoder module: TopK, BatchTopK, ReLU (+L1) and JumpReLU in one class.

Every architecture encodes ``z = σ((x − b_dec) @ W_enc + b_enc)`` and decodes ``x̂ = z @ W_dec + b_dec``;
they differ in σ. Weights use SAELens's layout (``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``) so a
saved SAE is a SAELens v6 SAE. Initialisation follows the usual recipe: unit-norm decoder rows in random
directions, the encoder as the decoder's transpose, zero encoder bias, and the decoder bias set to the
data mean by the trainer (:meth:`SparseAutoencoder.init_b_dec`).

TopK and BatchTopK run through :mod:`otoscope.sae.kernels` (sparse backward, embedding-bag decoder);
ReLU and JumpReLU are dense, as their codes are not sparse early in training.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.kernels import SparseCode, sparse_decode, sparse_encode


def _rectangle(x: torch.Tensor) -> torch.Tensor:
    return ((x > -0.5) & (x < 0.5)).to(x.dtype)


class _JumpReLU(torch.autograd.Function):
    """``pre · 1[pre > θ]``; θ gets the straight-through (rectangle-kernel) gradient of the jump."""

    @staticmethod
    def forward(ctx, pre, threshold, bandwidth: float):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        grad_pre = (pre > threshold) * grad
        grad_threshold = (-(threshold / bw) * _rectangle((pre - threshold) / bw) * grad).sum(0)
        return grad_pre, grad_threshold, None


class _Step(torch.autograd.Function):
    """``1[pre > θ]``, whose straight-through gradient reaches θ only (the L0 penalty moves thresholds)."""

    @staticmethod
    def forward(ctx, pre, threshold, bandwidth: float):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        return None, (-(1.0 / bw) * _rectangle((pre - threshold) / bw) * grad).sum(0), None


class TrainOutput(NamedTuple):
    """One training forward pass."""

    x_hat: torch.Tensor
    """``[batch, d_in]`` reconstruction."""
    counts: torch.Tensor
    """``[d_sae]`` int64: rows of the batch on which each latent is active."""
    l0: torch.Tensor
    """Scalar: mean number of active latents per row."""
    sparsity_loss: torch.Tensor
    """Scalar: the architecture's weighted sparsity penalty (0 for the TopK family)."""
    aux_recon: torch.Tensor | None
    """AuxK: ``[batch, d_in]`` reconstruction of the residual ``x − x̂`` from dead latents (no bias), or None."""


class SparseAutoencoder(nn.Module):
    """A sparse autoencoder over ``[..., d_in]`` activations with ``d_sae`` latents."""

    def __init__(self, cfg: SAEConfig, *, seed: int | None = None, device: str | torch.device | None = None):
        super().__init__()
        self.cfg = cfg
        d_in, d_sae = cfg.d_in, cfg.d_sae
        dtype = getattr(torch, cfg.dtype)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        W_dec = torch.randn(d_sae, d_in, generator=generator, dtype=torch.float64)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec.to(dtype))  # [d_sae, d_in], unit rows
        self.W_enc = nn.Parameter(self.W_dec.data.t().clone().contiguous())  # [d_in, d_sae]
        self.b_enc = nn.Parameter(torch.zeros(d_sae, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(d_in, dtype=dtype))
        if cfg.architecture == "jumprelu":
            self.threshold = nn.Parameter(torch.full((d_sae,), cfg.jumprelu_init_threshold, dtype=dtype))
        if cfg.architecture == "batchtopk":
            self.register_buffer("threshold", torch.zeros(d_sae, dtype=dtype))
        if device is not None:
            self.to(device)

    # ------------------------------------------------------------------ properties
    @property
    def d_in(self) -> int:
        """Input width."""
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        """Number of latents."""
        return self.cfg.d_sae

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.W_dec.device

    def thresholds(self) -> torch.Tensor | None:
        """``[d_sae]`` JumpReLU thresholds (learned, or BatchTopK's global one), or None for TopK / ReLU."""
        return self.threshold if self.cfg.architecture in ("jumprelu", "batchtopk") else None

    # ------------------------------------------------------------------ inference
    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_in:
            raise OtoscopeError(f"activations have width {x.shape[-1]} but this SAE reads d_in={self.d_in} "
                                f"(hook {self.cfg.hook_name or '?'}); use the SAE trained on this hook point.")
        return x.reshape(-1, self.d_in).to(self.W_dec.dtype)

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """``(x − b_dec) @ W_enc + b_enc`` → ``[..., d_sae]``."""
        flat = self._flat(x)
        return ((flat - self.b_dec) @ self.W_enc + self.b_enc).view(*x.shape[:-1], self.d_sae)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations ``[..., d_in]`` → ``[..., d_sae]`` (dense; inference rule of each architecture)."""
        pre = self.pre_acts(x)
        arch = self.cfg.architecture
        if arch == "topk":
            values, latents = pre.relu().topk(self.cfg.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter(-1, latents, values)
        if arch == "relu":
            return pre.relu()
        threshold = self.thresholds()
        return pre.relu() * (pre > threshold)

    def encode_sparse(self, x: torch.Tensor) -> SparseCode:
        """TopK inference as a :class:`SparseCode` over ``[N, d_in]`` rows (no dense ``[N, d_sae]`` kept)."""
        if self.cfg.architecture != "topk":
            dense = self.encode(x).reshape(-1, self.d_sae)
            rows, latents = dense.nonzero(as_tuple=True)
            offsets = torch.zeros(dense.shape[0] + 1, dtype=torch.int64, device=dense.device)
            offsets[1:] = torch.bincount(rows, minlength=dense.shape[0]).cumsum(0)
            return SparseCode(dense[rows, latents], latents, offsets)
        return sparse_encode(self._flat(x), self.W_enc, self.b_enc, self.cfg.k, b_dec=self.b_dec).code

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction from dense latents ``[..., d_sae]`` → ``[..., d_in]``."""
        return z.to(self.W_dec.dtype) @ self.W_dec + self.b_dec

    def decode_sparse(self, code: SparseCode) -> torch.Tensor:
        """Reconstruction from a :class:`SparseCode` → ``[N, d_in]`` (embedding bag, float32)."""
        return sparse_decode(code, self.W_dec) + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` ``[..., d_in]`` → ``[..., d_in]`` (sparse path for TopK)."""
        if self.cfg.architecture == "topk":
            out = self.decode_sparse(self.encode_sparse(x))
            return out.to(x.dtype).view(x.shape)
        return self.decode(self.encode(x)).to(x.dtype)

    # ------------------------------------------------------------------ training
    def train_forward(self, x: torch.Tensor, *, norm: float, dead: torch.Tensor | None = None,
                      k_aux: int = 0) -> TrainOutput:
        """One training forward on ``x`` ``[batch, d_in]``.

        ``norm`` is the data's RMS distance from its mean (the trainer estimates it once), which makes the
        ReLU L1 penalty scale-free. ``dead`` and ``k_aux`` turn on AuxK for the TopK family.
        """
        arch = self.cfg.architecture
        if self.cfg.sparse:
            out = sparse_encode(x, self.W_enc, self.b_enc, self.cfg.k, b_dec=self.b_dec, per_row=arch == "topk",
                                dead=dead, k_aux=k_aux)
            code = out.code
            x_hat = sparse_decode(code, self.W_dec) + self.b_dec
            active = code.values > 0
            counts = torch.bincount(code.latents[active], minlength=self.d_sae)
            l0 = active.sum().float() / x.shape[0]
            if arch == "batchtopk" and self.training:
                self._update_threshold(code)
            aux = sparse_decode(out.aux, self.W_dec) if out.aux is not None else None
            return TrainOutput(x_hat, counts, l0, x_hat.new_zeros(()), aux)
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc  # [batch, d_sae]
        if arch == "relu":
            z = pre.relu()
            penalty = (z * self.W_dec.norm(dim=1)).sum(-1).mean() / max(norm, 1e-12)
            sparsity = self.cfg.l1_coefficient * penalty
        else:
            threshold = self.threshold
            z = _JumpReLU.apply(pre, threshold, self.cfg.jumprelu_bandwidth)
            sparsity = self.cfg.l0_coefficient * _Step.apply(pre, threshold, self.cfg.jumprelu_bandwidth).sum(-1).mean()
        x_hat = z @ self.W_dec + self.b_dec
        active = z > 0
        return TrainOutput(x_hat, active.sum(0), active.sum(-1).float().mean(), sparsity, None)

    @torch.no_grad()
    def _update_threshold(self, code: SparseCode) -> None:
        positive = code.values[code.values > 0]
        if positive.numel():
            rate = self.cfg.batchtopk_threshold_momentum
            self.threshold.mul_(1 - rate).add_(rate * positive.min().to(self.threshold.dtype))

    @torch.no_grad()
    def clamp_threshold_(self) -> None:
        """Keep JumpReLU thresholds ≥ 0 (below zero the gate would pass negative pre-activations)."""
        if self.cfg.architecture == "jumprelu":
            self.threshold.clamp_(min=0.0)

    @torch.no_grad()
    def init_b_dec(self, mean: torch.Tensor) -> None:
        """Set the decoder bias to the data mean ``[d_in]``."""
        self.b_dec.copy_(mean.to(self.b_dec))

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale every decoder row to unit norm (called after each optimiser step)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(torch.finfo(self.W_dec.dtype).eps))

    @torch.no_grad()
    def remove_parallel_grad_(self) -> None:
        """Drop the part of ``W_dec``'s gradient along each row: it would only change the (fixed) norm."""
        if self.W_dec.grad is not None:
            along = (self.W_dec.grad * self.W_dec).sum(1, keepdim=True)  # [d_sae, 1]
            self.W_dec.grad.sub_(along * self.W_dec)

    @torch.no_grad()
    def folded(self, scale: float) -> "SparseAutoencoder":
        """A copy for raw activations when this SAE was trained on ``scale × activations``.

        Latents are unchanged: ``W_enc ← scale·W_enc``, ``b_dec ← b_dec/scale``, ``W_dec ← W_dec/scale``.
        """
        out = SparseAutoencoder(self.cfg, device=self.device)
        out.load_state_dict(self.state_dict())
        if scale != 1.0:
            out.W_enc.mul_(scale)
            out.W_dec.div_(scale)
            out.b_dec.div_(scale)
        return out
