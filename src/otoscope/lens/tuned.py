"""Tuned lens (Belrose et al. 2023): a learned affine translator per layer before the model's own head.

Each translator starts as the identity (so an untrained tuned lens *is* the logit lens) and is trained
to minimise KL(final ‖ lens) — the final layer's next-token (decoder) or per-frame (encoder)
distribution against the translated layer's. Examples are split into train and held-out sets; the
comparison with the logit lens is reported on the held-out set. Saved as safetensors plus JSON metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import torch
from torch import nn

from otoscope._io import atomic_path
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class TunedLensConfig:
    """How to train a tuned lens."""

    steps: int = 60
    """Optimiser steps."""
    batch: int = 64
    """Examples (frames or tokens) per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    holdout: float = 0.25
    """Fraction of examples kept out of training for the reported comparison."""
    seed: int = 0
    """Seed for the split and batches."""

    def __post_init__(self):
        if self.steps < 0 or self.batch < 1 or self.lr <= 0:
            raise OtoscopeError("tuned lens needs steps >= 0, batch >= 1 and lr > 0.")
        if not 0 < self.holdout < 1:
            raise OtoscopeError(f"holdout must be in (0, 1), got {self.holdout}.")


class TunedLens(nn.Module):
    """One affine translator ``h ↦ h + A h + b`` per layer (``A``, ``b`` start at zero)."""

    def __init__(self, n_layers: int, d_model: int, meta: dict | None = None):
        super().__init__()
        self.translators = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        for t in self.translators:
            nn.init.zeros_(t.weight)
            nn.init.zeros_(t.bias)
        self.meta = dict(meta or {})

    def forward(self, hidden: torch.Tensor, layer: int) -> torch.Tensor:
        """Translate ``hidden [..., d_model]`` of ``layer`` toward the final layer's basis."""
        return hidden + self.translators[layer](hidden)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (safetensors) atomically, metadata in the header."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"otoscope_tuned_lens": json.dumps(self.meta)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TunedLens":
        """Read a lens written by :meth:`save` (safetensors only)."""
        from safetensors import safe_open

        from otoscope._integrity import check_safetensors

        if not Path(path).is_file():
            raise OtoscopeError(f"tuned lens file not found: {path}.")
        problem = check_safetensors(path)  # the header against the file size: names truncation plainly
        if problem is not None:
            raise OtoscopeError(f"tuned lens {problem}; train it again.")
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("otoscope_tuned_lens", "{}"))
                state = {k: handle.get_tensor(k) for k in handle.keys()}
            n_layers = len({k.split(".")[1] for k in state})
            lens = cls(n_layers, state["translators.0.weight"].shape[0], meta)
            lens.load_state_dict(state)
        except Exception as err:  # safetensors' own errors, a damaged header, tensors of the wrong names or shapes
            raise OtoscopeError(f"cannot read the tuned lens {path} ({type(err).__name__}: {err}); the file is damaged "
                                "or not one written by TunedLens.save.") from None
        return lens


@dataclass
class TunedLensResult:
    """A trained tuned lens and its held-out comparison with the logit lens."""

    lens: TunedLens
    """The translators."""
    table: pd.DataFrame
    """One row per layer: kl_logit_lens, kl_tuned_lens (held-out means, nats)."""
    losses: list[float] = field(default_factory=list)
    """Training loss per step."""


def _kl(final_logp: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    return (final_logp.exp() * (final_logp - logp)).sum(-1)  # [...]


def _kl_fast(neg_entropy: torch.Tensor, final_p: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(final ‖ softmax(logits)) = Σ p log p − Σ p·logits + logsumexp(logits), without a log-softmax tensor.

    ``neg_entropy`` ``[...]`` is Σ p log p of the final distribution ``final_p`` ``[..., vocab]``; the gradient
    through ``logsumexp`` is softmax − the same as through the plain form (checked against :func:`_kl` in tests).
    """
    logits = logits.float()
    return neg_entropy - (final_p * logits).sum(-1) + torch.logsumexp(logits, dim=-1)


EVAL_CHUNK = 32  # examples per vocabulary-sized block: tens of MB, which the allocator reuses (see logit_lens_stats)


def _targets(final: torch.Tensor, head) -> tuple[torch.Tensor, torch.Tensor]:
    """The final layer's log-distribution ``[examples, vocab]`` and its Σ p log p ``[examples]``."""
    logps, neg_entropy = [], []
    with torch.no_grad():
        for part in final.split(EVAL_CHUNK * 4):
            logps.append(torch.log_softmax(head(part).float(), dim=-1))
            neg_entropy.append((logps[-1].exp() * logps[-1]).sum(-1))
    return torch.cat(logps), torch.cat(neg_entropy)


def train_tuned_lens(residuals: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
                     config: TunedLensConfig | None = None, meta: dict | None = None) -> TunedLensResult:
    """Train translators for ``residuals [layers, examples, d_model]``; the last layer is the target.

    ``head`` maps a residual to logits (final layer norm + unembedding). Each step runs every layer's batch
    through the head as one matmul (the vocabulary projection is nearly all of the cost).
    """
    config = config or TunedLensConfig()
    n_layers, n, d_model = residuals.shape
    if n < 4:
        raise OtoscopeError(f"a tuned lens needs at least 4 examples, got {n}.")
    gen = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(n, generator=gen)
    n_test = max(1, int(round(n * config.holdout)))
    test, train = order[:n_test], order[n_test:]
    residuals = residuals.detach().float()
    final_logp, neg_entropy = _targets(residuals[-1], head)
    lens = TunedLens(n_layers, d_model, meta)
    opt = torch.optim.Adam(lens.parameters(), lr=config.lr)
    layers = list(range(n_layers - 1))  # the last layer is its own target
    losses = []
    for _ in range(config.steps if layers else 0):
        batch = train[torch.randint(len(train), (min(config.batch, len(train)),), generator=gen)]
        translated = torch.stack([lens(residuals[layer, batch], layer) for layer in layers])  # [layers-1, batch, d_model]
        loss = _kl_fast(neg_entropy[batch], final_logp[batch].exp(), head(translated)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    # held-out KL in the plain form (exactly 0 for the last layer, where the fast form leaves rounding)
    logit, tuned = torch.zeros(n_layers, dtype=torch.float64), torch.zeros(n_layers, dtype=torch.float64)
    with torch.no_grad():
        for part in test.split(EVAL_CHUNK):
            h = residuals[:, part]  # [layers, chunk, d_model]
            logit += _kl(final_logp[part], head(h)).sum(-1).double()
            moved = torch.stack([lens(h[layer], layer) for layer in range(n_layers)])
            tuned += _kl(final_logp[part], head(moved)).sum(-1).double()
    logit, tuned = logit / n_test, tuned / n_test
    rows = [{"layer": layer, "kl_logit_lens": float(logit[layer]), "kl_tuned_lens": float(tuned[layer])}
            for layer in range(n_layers)]
    return TunedLensResult(lens, pd.DataFrame(rows), losses)


def _frozen_norm(norm: nn.LayerNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    weight, bias = norm.weight.detach(), norm.bias.detach()
    return lambda h: nn.functional.layer_norm(h, norm.normalized_shape, weight, bias, norm.eps)


def encoder_head(model: HookedAudioModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """Whisper's encoder logit-lens head (final layer norm, token embeddings), with frozen weights."""
    norm = _frozen_norm(model.adapter.final_norm("encoder"))
    unembed = model.adapter.unembedding("encoder").detach()  # [vocab, d_model]
    return lambda h: norm(h) @ unembed.T


def decoder_head(model: HookedAudioModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """Whisper's decoder head (final layer norm, output projection), with frozen weights."""
    norm = _frozen_norm(model.adapter.final_norm("decoder"))
    unembed = model.adapter.unembedding("decoder").detach()  # [vocab, d_model]
    return lambda h: norm(h) @ unembed.T
