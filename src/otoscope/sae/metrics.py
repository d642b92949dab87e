"""Reconstruction metrics (MSE, FVU, L0, dead and dense latents, density) and stability across seeds.

FVU is ``Σ‖x − x̂‖² / Σ‖x − mean(x)‖²`` with the mean taken over the evaluated rows: the variance is about
the data mean. Dividing by ``Σ‖x‖²`` instead (the variance about zero, a bug SAELens and SAEBench both
shipped) flatters an SAE whenever the activations have a large mean — as residual streams do — because
the decoder bias alone then "explains" most of the energy. Sums run in float64 over streamed batches, so
the figure is exact for any number of rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.model import SparseAutoencoder


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained of ``x_hat`` for ``x`` ``[N, d]`` (variance about the mean of ``x``)."""
    x, x_hat = x.detach().double(), x_hat.detach().double()
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


@dataclass
class ReconstructionMetrics:
    """How well an SAE reconstructs a set of activations."""

    rows: int
    """Rows evaluated."""
    mse: float
    """Mean squared error per element."""
    fvu: float
    """Fraction of variance unexplained, ``Σ‖x − x̂‖² / Σ‖x − mean(x)‖²``."""
    explained_variance: float
    """``1 − fvu``."""
    l0: float
    """Mean active latents per row."""
    dead_fraction: float
    """Fraction of latents that never fired on these rows."""
    dense_fraction: float
    """Fraction of latents firing on more than ``dense_threshold`` of the rows."""
    dense_threshold: float
    """Firing frequency above which a latent counts as dense."""
    frequency: list[float] = field(default_factory=list, repr=False)
    """Firing frequency of every latent (fraction of rows)."""

    def to_json(self, with_frequency: bool = False) -> dict:
        """JSON-ready dict (the per-latent frequencies only when asked)."""
        out = asdict(self)
        if not with_frequency:
            out.pop("frequency")
        return out


class ReconstructionAccumulator:
    """Streams batches of ``(x, x̂, active latents)`` into :class:`ReconstructionMetrics`."""

    def __init__(self, d_in: int, d_sae: int):
        self.rows = 0
        self.sum_x = torch.zeros(d_in, dtype=torch.float64)
        self.sum_x2 = 0.0
        self.sum_err2 = 0.0
        self.active = 0
        self.counts = torch.zeros(d_sae, dtype=torch.int64)

    @torch.no_grad()
    def add(self, x: torch.Tensor, x_hat: torch.Tensor, counts: torch.Tensor, active: int) -> None:
        """One batch: ``x``, ``x_hat`` ``[N, d_in]``; ``counts`` ``[d_sae]`` rows per latent; ``active`` total actives."""
        x64, err = x.double().cpu(), (x.double() - x_hat.double()).cpu()
        self.rows += x.shape[0]
        self.sum_x += x64.sum(0)
        self.sum_x2 += float(x64.pow(2).sum())
        self.sum_err2 += float(err.pow(2).sum())
        self.active += int(active)
        self.counts += counts.cpu().to(torch.int64)

    def result(self, dense_threshold: float = 0.1) -> ReconstructionMetrics:
        """The metrics of everything added."""
        n = max(self.rows, 1)
        mean = self.sum_x / n
        total = self.sum_x2 - n * float(mean.pow(2).sum())  # Σ‖x − mean‖²
        value = self.sum_err2 / total if total > 0 else float("nan")
        freq = self.counts.double() / n
        return ReconstructionMetrics(self.rows, self.sum_err2 / (n * self.sum_x.numel()), value, 1 - value,
                                     self.active / n, float((self.counts == 0).double().mean()),
                                     float((freq > dense_threshold).double().mean()), dense_threshold, freq.tolist())


@torch.no_grad()
def sae_batch(sae: SparseAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(x̂, counts [d_sae], active)`` for ``x`` ``[N, d_in]`` (sparse path for TopK)."""
    code = sae.encode_sparse(x)
    x_hat = sae.decode_sparse(code)
    on = code.values > 0
    counts = torch.bincount(code.latents[on], minlength=sae.d_sae)
    return x_hat, counts, int(on.sum())


@torch.no_grad()
def reconstruction_metrics(sae: SparseAutoencoder, batches: Iterable[torch.Tensor] | torch.Tensor, *,
                           dense_threshold: float = 0.1, chunk: int = 8192) -> ReconstructionMetrics:
    """Metrics of ``sae`` over activations: one ``[N, d_in]`` tensor or an iterable of them."""
    acc = ReconstructionAccumulator(sae.d_in, sae.d_sae)
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    for batch in batches:
        flat = batch.reshape(-1, batch.shape[-1]).to(sae.device, torch.float32)
        for start in range(0, flat.shape[0], chunk):
            x = flat[start : start + chunk]
            x_hat, counts, active = sae_batch(sae, x)
            acc.add(x, x_hat, counts, active)
    return acc.result(dense_threshold)


@dataclass
class StabilityResult:
    """How many of one SAE's features another SAE (say, another seed) also learned."""

    matched_fraction: float
    """Fraction of features whose best decoder-cosine match in the other SAE exceeds ``threshold``."""
    threshold: float
    """The cosine threshold (0.7 by convention)."""
    mean_max_cosine: float
    """Mean over features of the best match's cosine."""
    max_cosine: list[float] = field(default_factory=list, repr=False)
    """Best match cosine per feature."""


@torch.no_grad()
def feature_match(a: SparseAutoencoder, b: SparseAutoencoder, threshold: float = 0.7, chunk: int = 4096) -> StabilityResult:
    """Match every decoder direction of ``a`` to its most similar one in ``b`` (cosine) → :class:`StabilityResult`."""
    if a.d_in != b.d_in:
        raise OtoscopeError(f"the SAEs read different widths ({a.d_in} vs {b.d_in}); compare SAEs of the same hook.")
    da = torch.nn.functional.normalize(a.W_dec.detach().float().cpu(), dim=1)  # [d_sae_a, d_in]
    db = torch.nn.functional.normalize(b.W_dec.detach().float().cpu(), dim=1)  # [d_sae_b, d_in]
    best = torch.cat([(da[s : s + chunk] @ db.t()).max(dim=1).values for s in range(0, da.shape[0], chunk)])
    return StabilityResult(float((best > threshold).float().mean()), threshold, float(best.mean()), best.tolist())
