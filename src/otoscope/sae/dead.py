"""Dead latents: who fires how often, who has stopped firing, and resampling the dead.

A latent is dead once it has not fired for ``dead_after`` rows. For the TopK family the AuxK loss gives
dead latents a gradient; for every architecture, resampling re-initialises them toward inputs the SAE
reconstructs badly (Anthropic's "Towards Monosemanticity" scheme, used by the whisper_sae seed project):
pick inputs with probability proportional to their squared error, point the dead latent's decoder row at
the (centred, normalised) input, set its encoder column to the same direction at a fifth of the mean live
encoder norm, zero its encoder bias and reset its Adam moments.
"""

from __future__ import annotations

import torch

from otoscope.sae.model import SparseAutoencoder


class FiringTracker:
    """Per-latent firing statistics over the rows seen so far (all ranks together)."""

    def __init__(self, d_sae: int, dead_after: int, device: torch.device | str = "cpu"):
        self.dead_after = dead_after
        self.seen = 0
        """Rows seen."""
        self.last_fired = torch.zeros(d_sae, dtype=torch.int64, device=device)
        """``[d_sae]``: value of :attr:`seen` when each latent last fired (0: not yet)."""
        self.counts = torch.zeros(d_sae, dtype=torch.int64, device=device)
        """``[d_sae]``: rows each latent fired on in the current window."""
        self.rows = 0
        """Rows in the current window."""
        self.previous = torch.zeros(d_sae, dtype=torch.int64, device=device)
        """``[d_sae]``: counts of the previous full window."""
        self.previous_rows = 0
        """Rows in the previous full window."""

    def update(self, counts: torch.Tensor, rows: int) -> None:
        """Add one step: ``counts`` ``[d_sae]`` rows each latent fired on, out of ``rows``."""
        self.seen += rows
        self.last_fired[counts > 0] = self.seen
        self.counts += counts
        self.rows += rows
        if self.rows >= self.dead_after:
            self.previous, self.previous_rows = self.counts.clone(), self.rows
            self.counts.zero_()
            self.rows = 0

    def dead(self) -> torch.Tensor:
        """``[d_sae]`` bool: no firing in the last ``dead_after`` rows."""
        return (self.seen - self.last_fired) >= self.dead_after

    def frequency(self) -> torch.Tensor:
        """``[d_sae]`` firing frequency over the current and previous windows (fraction of rows)."""
        rows = self.rows + self.previous_rows
        return (self.counts + self.previous).double().div(max(rows, 1)).float()

    def revive(self, latents: torch.Tensor) -> None:
        """Treat ``latents`` as just fired (after resampling)."""
        self.last_fired[latents] = self.seen

    def state(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """Tensors and integers that restore this tracker exactly."""
        tensors = {f"{prefix}last_fired": self.last_fired, f"{prefix}counts": self.counts,
                   f"{prefix}previous": self.previous}
        return tensors, {"seen": self.seen, "rows": self.rows, "previous_rows": self.previous_rows}

    def load(self, prefix: str, tensors: dict[str, torch.Tensor], ints: dict[str, int]) -> None:
        """Inverse of :meth:`state`."""
        for name in ("last_fired", "counts", "previous"):
            getattr(self, name).copy_(tensors[f"{prefix}{name}"])
        self.seen, self.rows, self.previous_rows = ints["seen"], ints["rows"], ints["previous_rows"]


@torch.no_grad()
def resample_dead(sae: SparseAutoencoder, x: torch.Tensor, dead: torch.Tensor, optimizer: torch.optim.Optimizer,
                  generator: torch.Generator, encoder_scale: float = 0.2) -> torch.Tensor:
    """Re-initialise the ``dead`` latents of ``sae`` toward rows of ``x`` ``[batch, d_in]`` it reconstructs badly.

    Returns the resampled latent indices. ``generator`` (CPU) makes the choice reproducible.
    """
    latents = dead.nonzero().flatten()
    if latents.numel() == 0:
        return latents
    error = (x - sae(x)).pow(2).sum(-1).double().cpu()  # [batch]
    probs = error / error.sum() if error.sum() > 0 else torch.full_like(error, 1.0 / error.numel())
    rows = torch.multinomial(probs, latents.numel(), replacement=True, generator=generator).to(x.device)
    directions = x[rows] - sae.b_dec
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-8)  # [n_dead, d_in]
    alive = ~dead
    enc_norm = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0, device=x.device)
    sae.W_dec[latents] = directions.to(sae.W_dec.dtype)
    sae.W_enc[:, latents] = (directions.t() * enc_norm * encoder_scale).to(sae.W_enc.dtype)
    sae.b_enc[latents] = 0
    reset_moments(sae, optimizer, latents)
    return latents


@torch.no_grad()
def reset_moments(sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, latents: torch.Tensor) -> None:
    """Zero the Adam moments of ``latents``' decoder rows, encoder columns and encoder biases."""
    for param, index in ((sae.W_dec, (latents,)), (sae.W_enc, (slice(None), latents)), (sae.b_enc, (latents,))):
        state = optimizer.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][index] = 0
