"""Checkpoint comparison: what fine-tuning (full or a PEFT LoRA adapter) changed inside a model.

* :func:`compare_models` — weights, layers, SAE reconstruction and patching maps → :class:`CompareResult`
  (``compare.json`` and a self-contained ``index.html`` when given ``out``)
* :class:`CompareConfig` — what to measure and how hard to try
* :func:`compare_weights` — per-module weight deltas with singular values and effective ranks
* :func:`load_models` — model A and model B (a checkpoint, or an adapter merged onto A in memory)

Axes: ``positions`` are encoder frames or decoder tokens of one clip; ``rows`` positions over all clips.
"""

from typing import TYPE_CHECKING

from otoscope._lazy import lazy_exports

# loaded on first use, so that ``otoscope compare --help`` does not import torch
__getattr__, __dir__ = lazy_exports(__name__, {
    "CompareConfig": ".config", "CompareResult": ".result", "compare_models": ".run", "compare_weights": ".weights",
    "load_models": ".checkpoints", "ModelPair": ".checkpoints", "ModuleDelta": ".weights", "LayerShift": ".layers",
    "PairShift": ".patching_shift"})

if TYPE_CHECKING:
    from otoscope.compare.checkpoints import ModelPair, load_models
    from otoscope.compare.config import CompareConfig
    from otoscope.compare.layers import LayerShift
    from otoscope.compare.patching_shift import PairShift
    from otoscope.compare.result import CompareResult
    from otoscope.compare.run import compare_models
    from otoscope.compare.weights import ModuleDelta, compare_weights

__all__ = ["CompareConfig", "CompareResult", "LayerShift", "ModelPair", "ModuleDelta", "PairShift", "compare_models",
           "compare_weights", "load_models"]
