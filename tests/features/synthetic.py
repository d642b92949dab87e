"""A features folder for the dashboard tests: ``otoscope sae features`` on the tiny random Whisper, a random TopK
SAE with a few latents that can never fire, and the fixture clips; and a plain per-clip SAE run to check against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from otoscope.sae.config import SAEConfig
from otoscope.sae.format import save_sae
from otoscope.sae.model import SparseAutoencoder

HOOK = "encoder.blocks.1.hook_resid_post"
DEAD = (3, 17, 40)  # latents whose encoder bias keeps them off
EVIL = "<script>alert('x')</script>"


def random_sae(path: Path, d_in: int = 32, d_sae: int = 64, k: int = 4, hook: str = HOOK) -> SparseAutoencoder:
    """A random TopK SAE (seeded) with :data:`DEAD` latents switched off, saved as a SAELens folder at ``path``."""
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=d_sae, k=k, hook_name=hook, model_name="tiny-random-whisper"),
                            seed=0)
    with torch.no_grad():
        sae.b_enc[list(DEAD)] = -1e4
    save_sae(sae, path)
    return sae


def codes(model, sae, hook: str, paths: list[str]) -> list[np.ndarray]:
    """``[frames, d_sae]`` per clip, one clip per forward (the plain way)."""
    out = []
    for path in paths:
        with torch.no_grad(), model.add_sae(sae, hook):
            _, cache = model.run_with_cache(path, names_filter=f"{hook}.hook_sae_acts")
        out.append(cache.real(f"{hook}.hook_sae_acts", 0).float().numpy())
    return out


def write_features(model, sae, sae_dir: Path, manifest: Path, out: Path) -> dict:
    """``otoscope.features.feature_stats`` over ``manifest`` (label key ``kind``), saved to ``out``, then edited as
    a user's folder might be: the real SAE path, explanations where a kind is preferred, and text that must be
    escaped (:data:`EVIL`) in one explanation and one example label. Returns the written document."""
    from otoscope.features import FeaturesConfig, feature_stats

    feature_stats(model, sae, str(manifest), FeaturesConfig(labels=["kind"], progress=False)).save(out)
    doc = json.loads((out / "features.json").read_text(encoding="utf-8"))
    doc["sae"] = str(sae_dir)
    fired = [r for r in doc["latents"] if r["top"]]
    for r in fired:
        kind = r["labels"]["kind"]
        if r.get("explanation") is None and kind["best_selectivity"] > 1.2:
            r["explanation"] = {"text": f"fires on {kind['best']}", "key": "kind", "value": kind["best"],
                                "precision": 0.5, "recall": 0.5}
    fired[0]["explanation"] = {"text": f"fires on {EVIL}", "key": "kind", "value": EVIL, "precision": 1.0, "recall": 0.1}
    fired[0]["top"][0]["labels"]["word"] = EVIL
    (out / "features.json").write_text(json.dumps(doc), encoding="utf-8")
    return doc
