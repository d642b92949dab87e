"""Export to the feature-JSON layout of SAEDashboard's Neuronpedia runner (``batch-N.json``), adapted to audio.

Neuronpedia imports a folder of ``batch-N.json`` files, each ``{"model_id", "layer", "sae_set",
"sae_id_suffix", "features": [...]}``; a feature holds its index, firing fraction, density histogram,
top/bottom logit tokens, correlated features and neurons, and ``activations``: windows of ``tokens`` with one
``values`` entry per token, the window's ``qualifying_token_index`` and its quantile bin (``bin_min``,
``bin_max``, ``bin_contains``; −1 for the top-activation group). This layout is written from scratch from
the public description; for audio the *tokens are frames*, named by their clip time (``"1.24s"``), each
window is a snippet's frames, and every activation also carries ``clip``, ``seconds`` and ``audio`` (the
snippet file, relative to the dashboard). ``correlated_features_pearson`` holds the features run's
co-activation score, which is not a Pearson correlation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import torch

from otoscope.features.dashboard.effects import VocabEffect
from otoscope.features.dashboard.pages import Card

NEURON_ALIGNMENT = 3  # d_in dimensions listed per latent (largest |W_dec| entries)


def layer_of(hook: str) -> int | None:
    """Block number of a hook name (``encoder.blocks.3.hook_resid_post`` → 3), or None."""
    m = re.search(r"blocks\.(\d+)\.", hook)
    return int(m.group(1)) if m else None


def _activation(card: Card, seconds_of, bin_: tuple[float, float, float]) -> dict:
    ex = card.example
    frames = card.frames
    values = [float(v) for _, v in card.trace] or [float(ex["value"])]
    tokens = [f"{seconds_of(f):.2f}s" for f in frames] if frames else [f"{float(ex['seconds']):.2f}s"]
    centre = min(range(len(values)), key=lambda j: abs(card.trace[j][0] - 0.5)) if card.trace else 0
    return {"tokens": tokens, "values": values, "bin_min": bin_[0], "bin_max": bin_[1], "bin_contains": bin_[2],
            "qualifying_token_index": centre, "clip": str(ex["clip"]), "seconds": float(ex["seconds"]),
            "audio": f"{card.stem}.flac" if card.stem else None}


def feature_json(record: dict, edges: Sequence[float], top: list[Card], quantiles: list[tuple[float, float, list[Card]]],
                 W_dec_row: torch.Tensor, effect: VocabEffect | None, seconds_of) -> dict:
    """One feature in the batch layout (see the module docstring)."""
    counts = [int(c) for c in record.get("histogram") or []]
    centres = [10 ** ((a + b) / 2) for a, b in zip(edges[:-1], edges[1:])] if len(edges) == len(counts) + 1 else []
    align = W_dec_row.abs().topk(min(NEURON_ALIGNMENT, W_dec_row.numel()))
    activations = [_activation(c, seconds_of, (-1, -1, -1)) for c in top]
    for lo, hi, cards in quantiles:
        activations += [_activation(c, seconds_of, (lo, hi, len(cards))) for c in cards]
    co = record.get("coactivation") or []
    exp = record.get("explanation") or None
    return {
        "feature_index": int(record["index"]), "frac_nonzero": float(record["frequency"]),
        "freq_hist_data_bar_heights": counts, "freq_hist_data_bar_values": centres,
        "logits_hist_data_bar_heights": [], "logits_hist_data_bar_values": [],
        "pos_str": [t for t, _ in effect.top] if effect else [], "pos_values": [v for _, v in effect.top] if effect else [],
        "neg_str": [t for t, _ in effect.bottom] if effect else [],
        "neg_values": [v for _, v in effect.bottom] if effect else [],
        "correlated_features_indices": [int(c["index"]) for c in co],
        "correlated_features_pearson": [float(c["score"]) for c in co], "correlated_features_l1": [],
        "correlated_neurons_indices": [], "correlated_neurons_pearson": [], "correlated_neurons_l1": [],
        "neuron_alignment_indices": align.indices.tolist(),
        "neuron_alignment_values": W_dec_row[align.indices].tolist(),
        "neuron_alignment_l1": (W_dec_row[align.indices].abs() / W_dec_row.abs().sum().clamp_min(1e-12)).tolist(),
        "decoder_weights_dist": [],
        "activations": activations,
        "explanations": [{"description": exp.get("text", ""), "typeName": "otoscope-labels",
                          "score": exp.get("precision")}] if exp else [],
    }


def write_batch(folder: Path, n: int, meta: dict, features: list[dict]) -> Path:
    """Write ``folder/batch-n.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"batch-{n}.json"
    hook = str(meta.get("hook", ""))
    path.write_text(json.dumps({"model_id": meta.get("model"), "layer": layer_of(hook), "sae_set": str(meta.get("sae")),
                                "sae_id_suffix": None, "hook_name": hook, "features": features}), encoding="utf-8")
    return path
