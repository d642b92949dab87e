"""The result of a checkpoint comparison: weights, layers, SAE reconstruction, patching; JSON and tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otoscope.compare.layers import CKAMatrix, LayerShift
from otoscope.compare.patching_shift import PairShift
from otoscope.compare.weights import WeightComparison

COMPARE_FILES = ("compare.json", "index.html")  # mark a folder as an earlier comparison, which a new one may replace


@dataclass
class CompareResult:
    """What changed from model A to model B."""

    model_a: str
    """Model A's name."""
    model_b: str
    """Model B's name (``A+ADAPTER`` for an adapter)."""
    kind: str
    """``checkpoint`` or ``adapter``."""
    weights: WeightComparison
    """Per-module weight deltas and the parameters that could not be compared."""
    layers: list[LayerShift]
    """Per layer hook in both models: CKA, drift, SAE FVU."""
    cka: list[CKAMatrix]
    """A-layer × B-layer CKA per stack."""
    clips: list[str]
    """The clips compared on."""
    texts: list[str | None]
    """The transcripts teacher-forced into the decoders."""
    skipped_layers: list[dict] = field(default_factory=list)
    """``{"hook", "reason"}`` for layer hooks in only one model."""
    pairs: list[PairShift] = field(default_factory=list)
    """Patching maps of both models, per minimal pair."""
    adapter: dict[str, Any] = field(default_factory=dict)
    """The adapter's config summary (for ``kind == "adapter"``)."""
    notes: list[str] = field(default_factory=list)
    """What was skipped or is approximate, and why."""
    config: dict[str, Any] = field(default_factory=dict)
    """The :class:`~otoscope.compare.config.CompareConfig` used."""

    @property
    def changed_modules(self) -> list[str]:
        """Modules whose weights differ."""
        return [m.module for m in self.weights.changed]

    @property
    def first_moved_layer(self) -> dict[str, str | None]:
        """Per stack, the first layer hook whose activations differ at all (drift > 0), or None."""
        out: dict[str, str | None] = {}
        for shift in self.layers:
            out.setdefault(shift.stack, None)
            if out[shift.stack] is None and shift.drift is not None and shift.drift > 0:
                out[shift.stack] = shift.hook
        return out

    def summary(self) -> dict[str, Any]:
        """The headline figures."""
        changed = self.weights.changed
        return {"changed_modules": len(changed), "compared_modules": len(self.weights.modules),
                "changed_blocks": self.weights.changed_blocks,
                "ranks": {m.module: m.rank for m in changed if m.rank is not None},
                "first_moved_layer": self.first_moved_layer,
                "skipped_params": len(self.weights.skipped), "skipped_layers": len(self.skipped_layers)}

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready (``compare.json``)."""
        return {"model_a": self.model_a, "model_b": self.model_b, "kind": self.kind, "adapter": self.adapter,
                "summary": self.summary(), "clips": self.clips, "texts": self.texts,
                "modules": [m.to_json() for m in self.weights.modules], "skipped_params": self.weights.skipped,
                "layers": [s.to_json() for s in self.layers], "skipped_layers": self.skipped_layers,
                "cka": [vars(m) for m in self.cka], "pairs": [p.to_json() for p in self.pairs],
                "notes": self.notes, "config": self.config}

    def layers_frame(self):
        """Tidy table: one row per layer hook."""
        import pandas as pd

        return pd.DataFrame([s.to_json() for s in self.layers])

    def modules_frame(self):
        """Tidy table: one row per module."""
        return self.weights.to_frame()
