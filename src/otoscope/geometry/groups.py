"""Do clips with the same label sit closer together? Cosine similarity within vs between groups.

Raw cosine similarities between audio representations are often all high (0.9+): every clip shares a
large common component. So each layer reports the all-pairs baseline next to within/between, the same
numbers after removing the mean over clips ("centered"), a label-permutation test with its p-value, an
effect size (Cohen's d of within-pair vs between-pair similarities), and, with
:func:`same_input_control`, the ceiling: the same clip run twice with a trace of noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from otoscope.errors import OtoscopeError
from otoscope.geometry.collect import LayerActivations, iter_layers


@dataclass
class GroupSimilarity:
    """Per-layer group-similarity statistics."""

    table: pd.DataFrame
    """One row per (layer, centered): within, between, baseline, difference, p_value, cohens_d."""
    n_permutations: int
    """Label permutations used for the p-values."""
    labels: list[str]
    """The clip labels, in order."""


def _cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    x = torch.nn.functional.normalize(x.double(), dim=-1)
    return x @ x.T


def _within_between(sim: np.ndarray, labels: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    i, j = pairs
    same = labels[i] == labels[j]
    return float(sim[i, j][same].mean()), float(sim[i, j][~same].mean())


def group_similarity(items: Sequence[LayerActivations], labels: Sequence[str] | None = None,
                     n_permutations: int = 1000, seed: int = 0) -> GroupSimilarity:
    """Within- vs between-group cosine similarity of mean-pooled representations, per layer."""
    labels = list(labels) if labels is not None else [item.label for item in items]
    if any(label is None for label in labels):
        raise OtoscopeError("every clip needs a label for group similarity; give labels or a manifest with a label column.")
    lab = np.asarray(labels, dtype=object)
    counts = pd.Series(lab).value_counts()
    if len(counts) < 2 or (counts >= 2).sum() < 1:
        raise OtoscopeError(f"group similarity needs at least two labels and one label with two clips; got {dict(counts)}.")
    pooled = torch.stack([item.pooled() for item in items])  # [clips, layers, d_model]
    pairs = np.triu_indices(len(items), k=1)
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(lab) for _ in range(n_permutations)]
    rows = []
    for layer in range(pooled.shape[1]):
        for centered in (False, True):
            x = pooled[:, layer]
            if centered:
                x = x - x.mean(0, keepdim=True)
            sim = _cosine_matrix(x).numpy()
            within, between = _within_between(sim, lab, pairs)
            diff = within - between
            null = np.array([np.subtract(*_within_between(sim, p, pairs)) for p in perms])
            p_value = (1 + np.sum(null >= diff)) / (1 + n_permutations)
            same = lab[pairs[0]] == lab[pairs[1]]
            w, b = sim[pairs][same], sim[pairs][~same]
            pooled_sd = np.sqrt(((len(w) - 1) * w.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / max(len(w) + len(b) - 2, 1)) \
                if len(w) > 1 and len(b) > 1 else float("nan")
            rows.append({"layer": layer, "hook": items[0].layers[layer], "centered": centered, "within": within,
                         "between": between, "baseline": float(sim[pairs].mean()), "difference": diff,
                         "p_value": float(p_value), "cohens_d": float(diff / pooled_sd) if pooled_sd > 0 else float("nan")})
    return GroupSimilarity(pd.DataFrame(rows), n_permutations, [str(x) for x in labels])


def same_input_control(model, audio: Sequence, snr_db: float = 40.0, seed: int = 0,
                       hooks: list[str] | None = None, clean: Sequence[LayerActivations] | None = None) -> pd.DataFrame:
    """Ceiling for similarities: each clip against itself with white noise at ``snr_db``; per layer mean cosine.

    ``hooks``: the hooks to compare (default: the encoder's residual stream, see :func:`layer_hooks`);
    ``clean``: the clips' activations at those hooks when already collected (saves one pass)."""
    clips = model.clips(list(audio))
    rng = np.random.default_rng(seed)
    noisy = []
    for clip in clips:
        power = float(np.mean(clip.samples ** 2)) or 1e-8
        noise = rng.standard_normal(len(clip.samples)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
        noisy.append(clip.samples + noise)
    clean_items = list(clean) if clean is not None else list(iter_layers(model, clips, hooks=hooks))
    noisy_items = list(iter_layers(model, noisy, hooks=hooks))
    rows = []
    for layer, hook in enumerate(clean_items[0].layers):
        sims = [torch.nn.functional.cosine_similarity(a.pooled()[layer], b.pooled()[layer], dim=0).item()
                for a, b in zip(clean_items, noisy_items)]
        rows.append({"layer": layer, "hook": hook, "same_input_cosine": float(np.mean(sims)), "snr_db": snr_db})
    return pd.DataFrame(rows)
