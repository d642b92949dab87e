"""A features folder written by brute force (plain loops over every frame), following the shared contract.

Until ``otoscope sae features`` exists on this branch, the dashboard tests read folders made here: a tiny
random Whisper, a random TopK SAE with a few latents that can never fire, and the fixture clips.
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


def _entry(c: int, f: int, value: float, rows: list[dict], fps: float) -> dict:
    return {"clip": rows[c]["path"], "clip_index": c, "frame": f, "seconds": round(f / fps, 4), "value": float(value),
            "labels": {"kind": rows[c]["kind"]}}


def write_features(model, sae, sae_dir: Path, rows: list[dict], out: Path, *, top_n: int = 20, hook: str = HOOK,
                   evil: bool = True) -> dict:
    """Compute every statistic of the contract by brute force and write ``out/features.json``; return it."""
    fps = model.geometry.frame_rate
    per_clip = codes(model, sae, hook, [r["path"] for r in rows])
    where = [(c, f) for c, code in enumerate(per_clip) for f in range(code.shape[0])]
    acts = np.concatenate(per_clip)  # [N, d_sae]
    kinds = np.array([rows[c]["kind"] for c, _ in where])
    edges = np.linspace(-3, 1.5, 19)
    latents = []
    for i in range(acts.shape[1]):
        a = acts[:, i]
        firing = np.flatnonzero(a > 0)
        order = firing[np.argsort(-a[firing], kind="stable")]
        top = [_entry(*where[j], a[j], rows, fps) for j in order[:top_n]]
        hist = np.histogram(np.clip(np.log10(a[firing]), edges[0], edges[-1]), edges)[0].tolist() if firing.size else [0] * 18
        quantiles = []
        if firing.size:
            ranked = firing[np.argsort(a[firing], kind="stable")]
            for g, part in enumerate(np.array_split(ranked, 10)):
                if part.size:
                    picks = part[np.linspace(0, part.size - 1, min(5, part.size)).astype(int)]
                    quantiles.append({"lo": float(a[part].min()), "hi": float(a[part].max()),
                                      "examples": [_entry(*where[j], a[j], rows, fps) for j in picks[::-1]]})
        fires = a > 0
        co = []
        for j in range(acts.shape[1]):
            if j != i and fires.any():
                both = (fires & (acts[:, j] > 0)).sum()
                either = (fires | (acts[:, j] > 0)).sum()
                if both:
                    co.append({"index": j, "score": float(both / either)})
        co.sort(key=lambda x: -x["score"])
        counts = {k: int(sum(1 for e in top if e["labels"]["kind"] == k)) for k in ("speech", "nonspeech")}
        base = {k: float((kinds == k).mean()) for k in counts}
        sel = {k: (counts[k] / max(len(top), 1)) / base[k] for k in counts} if top else {}
        best = max(sel, key=sel.get) if sel else None
        explanation = None
        if best is not None and sel[best] > 1.2:
            explanation = {"text": f"fires on {best}", "key": "kind", "value": best, "precision": 0.5, "recall": 0.5}
        latents.append({
            "index": i, "frequency": float(fires.mean()), "mean": float(a.mean()), "max": float(a.max(initial=0.0)),
            "histogram": hist, "top": top, "quantiles": quantiles, "coactivation": co[:5],
            "labels": {"kind": {"top_counts": counts, "selectivity": sel, "best": best,
                                "best_selectivity": sel.get(best) if best else None}} if top else {},
            "temporal_consistency": None, "explanation": explanation})
    if evil:  # things the dashboard did not write, which it must escape
        fired = [r for r in latents if r["top"]]
        fired[0]["explanation"] = {"text": f"fires on {EVIL}", "key": "kind", "value": EVIL, "precision": 1.0, "recall": 0.1}
        fired[0]["top"][0]["labels"]["word"] = EVIL
    doc = {"version": 1, "sae": str(sae_dir), "hook": hook, "model": model.name, "d_sae": int(acts.shape[1]),
           "frames": int(acts.shape[0]), "top_n": top_n,
           "clips": [{"clip": r["path"], "frames": int(code.shape[0]), "seconds": float(r["seconds"]),
                      "labels": {"kind": r["kind"]}} for r, code in zip(rows, per_clip)],
           "label_keys": ["kind"], "histogram": {"edges": edges.tolist()}, "latents": latents}
    out.mkdir(parents=True, exist_ok=True)
    (out / "features.json").write_text(json.dumps(doc), encoding="utf-8")
    return doc
