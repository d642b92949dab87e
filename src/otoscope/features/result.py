""":class:`FeatureStats`: the per-latent statistics of one pass, as ``features.json`` + ``features.safetensors``.

Glossary of the figures (per latent, over the real frames of the corpus — never Whisper's padding):

* ``frequency``: fraction of frames where it fires (activation > 0); ``mean``: mean activation over *all*
  frames (zeros included); ``max``: the largest activation.
* ``histogram``: counts of ``log10(activation)`` over firing frames in the shared bins ``edges``.
* ``top``: the ``top_n`` highest activations (ties: smaller clip index, then frame).
* ``quantiles``: up to ``Q`` groups of firing frames by activation quantile (from the histogram, at bin
  resolution; strongest first), each with ``lo``/``hi`` bounds and a uniform sample of examples.
* ``coactivation``: latents with the highest Jaccard index ``|i ∧ j| / |i ∨ j|`` of firing frames.
* ``labels[key]``: ``top_counts`` (label values among the top activations), ``selectivity`` (mean activation
  on frames with that value / mean activation on the key's other labelled frames; > 2 selective, > 4 highly
  selective; capped at 1000, which means "(almost) never fires elsewhere"; only the 20 most selective
  values are listed), ``best`` and ``best_selectivity``.
* ``temporal_consistency``: η², the share of the activation's variance over frames inside word spans that
  lies *between* spans: ``Σ_s |s|(ā_s − ā)² / Σ_f (a_f − ā)²`` (``ā_s`` the span mean, ``ā`` the mean
  over all in-span frames). 1: constant within each word and varying between words (consistent);
  near 0: varies as much within a word as across words. Null without spans or when it never varies.
"""

from __future__ import annotations

import gc
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from otoscope._io import atomic_path, write_text_atomic
from otoscope.errors import OtoscopeError

JSON_FILE, TENSOR_FILE = "features.json", "features.safetensors"
SELECTIVITY_CAP = 1000.0
LISTED_CLASSES = 20
_COLUMNS = ("frequency", "mean", "max", "histogram", "edges", "top_value", "top_clip", "top_frame", "quantile_lo",
            "quantile_hi", "quantile_value", "quantile_clip", "quantile_frame", "coactivation_index",
            "coactivation_score", "temporal_consistency")


@contextmanager
def _no_gc():
    """Pause the cyclic garbage collector while a large tree of plain lists and dicts is built: they hold no
    cycles, and each collection would otherwise rescan every object already made (quadratic in the tree)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class FeatureStats:
    """Statistics of every latent of one SAE over a corpus (see the module docstring for each figure)."""

    sae: str
    """The SAE folder as given."""
    hook: str
    """Hook point the SAE reads."""
    model: str
    """Model name."""
    frames_per_second: float
    """Encoder frames per second (seconds = frame / this)."""
    clips: list[dict]
    """Per corpus clip: ``clip`` (path or id), ``frames`` (real), ``seconds``, ``labels``, and ``words``
    (``[{"word", "start", "end"}]`` in frames, end exclusive) when spans were given."""
    label_keys: list[str]
    """Label keys the statistics break down by."""
    columns: dict[str, torch.Tensor]
    """Columnar arrays: ``frequency [d_sae]``, ``mean``, ``max``, ``histogram [d_sae, bins]``, ``edges [bins+1]``,
    ``top_value|top_clip|top_frame [d_sae, top_n]`` (clip -1: empty), ``quantile_lo|hi [d_sae, Q]`` (NaN: empty),
    ``quantile_value|clip|frame [d_sae, Q, per_quantile]``, ``coactivation_index|score [d_sae, K]``,
    ``temporal_consistency [d_sae]``."""
    label_stats: list[dict] = field(default_factory=list)
    """Per latent: ``{key: {top_counts, selectivity, best, best_selectivity}}``."""
    explanations: list[dict | None] = field(default_factory=list)
    """Per latent: an explanation dict or None (filled by the explainer)."""

    @property
    def d_sae(self) -> int:
        """Number of latents."""
        return int(self.columns["frequency"].shape[0])

    @property
    def frames(self) -> int:
        """Real frames in the corpus."""
        return int(sum(c["frames"] for c in self.clips))

    @property
    def top_n(self) -> int:
        """Top activations kept per latent."""
        return int(self.columns["top_value"].shape[1])

    # ------------------------------------------------------------------ entries
    def _labels_at(self, clip: int, frame: int) -> dict:
        info = self.clips[clip]
        out = {k: v for k, v in info.get("labels", {}).items() if k in self.label_keys}
        for w in info.get("words", []):
            if w["start"] <= frame < w["end"]:
                out["word"] = w["word"]  # a later overlapping word wins, as in the statistics
        return out

    def _entry(self, clip: int, frame: int, value: float, seconds: float) -> dict:
        entry = {"clip": self.clips[clip]["clip"], "clip_index": clip, "frame": frame, "seconds": seconds,
                 "value": value}
        if self.label_keys:
            entry["labels"] = self._labels_at(clip, frame)
        return entry

    def _lists(self) -> dict[str, list]:
        """Every column as nested Python lists (one conversion for the whole JSON), plus each example's
        seconds (``top_seconds``, ``quantile_seconds``: frame / frames per second to 4 decimals, computed once
        for the whole table rather than per entry)."""
        lists = {name: column.tolist() for name, column in self.columns.items()}
        for name in ("top", "quantile"):
            frames = self.columns[f"{name}_frame"].double()
            lists[f"{name}_seconds"] = (frames * 1e4 / self.frames_per_second).round().div(1e4).tolist()
        return lists

    def top(self, latent: int, lists: dict | None = None) -> list[dict]:
        """The top activations of ``latent``, highest first."""
        c = lists or self._lists()
        clips, frames, values, seconds = (c[n][latent] for n in ("top_clip", "top_frame", "top_value", "top_seconds"))
        return [self._entry(k, f, v, t) for k, f, v, t in zip(clips, frames, values, seconds) if k >= 0]

    def quantiles(self, latent: int, lists: dict | None = None) -> list[dict]:
        """Non-empty quantile groups of ``latent``, strongest first (examples by value, highest first)."""
        c = lists or self._lists()
        lo, hi = c["quantile_lo"][latent], c["quantile_hi"][latent]
        clips, frames, values, seconds = (c[n][latent] for n in ("quantile_clip", "quantile_frame", "quantile_value",
                                                                  "quantile_seconds"))
        return [{"lo": lo[q], "hi": hi[q],
                 "examples": [self._entry(k, f, v, t) for k, f, v, t in zip(clips[q], frames[q], values[q], seconds[q])
                              if k >= 0]}
                for q in reversed(range(len(lo))) if not math.isnan(lo[q])]

    def latent(self, i: int, lists: dict | None = None) -> dict:
        """One latent's entry of ``features.json``."""
        c = lists or self._lists()
        coact = [{"index": j, "score": s} for j, s in zip(c["coactivation_index"][i], c["coactivation_score"][i])
                 if j >= 0]
        return {"index": i, "frequency": c["frequency"][i], "mean": c["mean"][i], "max": c["max"][i],
                "histogram": c["histogram"][i], "top": self.top(i, c), "quantiles": self.quantiles(i, c),
                "coactivation": coact, "labels": self.label_stats[i] if self.label_stats else {},
                "temporal_consistency": _num(c["temporal_consistency"][i]),
                "explanation": self.explanations[i] if self.explanations else None}

    def to_json(self) -> dict:
        """The ``features.json`` structure (the shared contract, version 1)."""
        with _no_gc():
            return self._to_json()

    def _to_json(self) -> dict:
        lists = self._lists()
        return {"version": 1, "sae": self.sae, "hook": self.hook, "model": self.model, "d_sae": self.d_sae,
                "frames": self.frames, "top_n": self.top_n, "frames_per_second": self.frames_per_second,
                "clips": self.clips, "label_keys": self.label_keys,
                "histogram": {"edges": self.columns["edges"].tolist()},
                "latents": [self.latent(i, lists) for i in range(self.d_sae)]}

    def to_frame(self):
        """A pandas DataFrame, one row per latent: index, frequency, mean, max, the top value, the best
        co-activating latent, temporal consistency, per label key its best value and selectivity, explanation."""
        import pandas as pd

        c = self.columns
        data = {"index": range(self.d_sae), "frequency": c["frequency"].numpy(), "mean": c["mean"].numpy(),
                "max": c["max"].numpy(), "top_value": c["top_value"][:, 0].clamp_min(0).numpy(),
                "coactivation": c["coactivation_index"][:, 0].numpy() if c["coactivation_index"].shape[1]
                else [-1] * self.d_sae,
                "temporal_consistency": c["temporal_consistency"].numpy()}
        for key in self.label_keys:
            stats = [s.get(key, {}) for s in self.label_stats] if self.label_stats else [{}] * self.d_sae
            data[f"{key}_best"] = [s.get("best") for s in stats]
            data[f"{key}_selectivity"] = [s.get("best_selectivity") for s in stats]
        data["explanation"] = [(e or {}).get("text") for e in self.explanations] if self.explanations \
            else [None] * self.d_sae
        return pd.DataFrame(data)

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path) -> Path:
        """Write ``features.json`` and ``features.safetensors`` into ``folder`` (each atomically)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / TENSOR_FILE) as tmp:
            save_file({k: v.contiguous() for k, v in self.columns.items()}, str(tmp),
                      metadata={"sae": self.sae, "hook": self.hook, "model": self.model})
        with _no_gc():  # millions of fresh, acyclic objects: collecting them repeatedly was a third of the time
            text = json.dumps(self._to_json(), allow_nan=False, separators=(",", ":"))
        write_text_atomic(folder / JSON_FILE, text)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "FeatureStats":
        """Read a folder written by :meth:`save` (explanations added to ``features.json`` since are kept)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / JSON_FILE).is_file() or not (folder / TENSOR_FILE).is_file():
            raise OtoscopeError(f"{folder} lacks {JSON_FILE} or {TENSOR_FILE}; write it with `otoscope sae features`.")
        try:
            data = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
            columns = load_file(str(folder / TENSOR_FILE))
        except Exception as err:  # json or safetensors errors on damaged files
            raise OtoscopeError(f"cannot read {folder} ({err}); rerun `otoscope sae features`.") from None
        missing = [c for c in _COLUMNS if c not in columns]
        if missing or data.get("version") != 1:
            raise OtoscopeError(f"{folder} is not a version-1 features folder (missing {', '.join(missing) or 'version'}).")
        latents = data["latents"]
        return cls(data["sae"], data["hook"], data["model"], float(data.get("frames_per_second", 50.0)), data["clips"],
                   data["label_keys"], columns, [entry.get("labels", {}) for entry in latents],
                   [entry.get("explanation") for entry in latents])
