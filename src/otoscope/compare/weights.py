"""Per-module weight deltas ``ΔW = W_B − W_A``: their size, singular values and effective rank.

Every parameter of model A is matched by name (and shape) in model B; what does not match is listed as
skipped, never guessed. A module's parameters (``weight``, ``bias``, …) are reported together; the SVD is
of its weight matrix, with trailing axes flattened (a conv kernel ``[out, in, k]`` as ``[out, in·k]``).

Effective rank, two definitions (both in the output):

* ``rank`` — the numerical rank: the number of singular values ``σᵢ > max(rank_rtol · σ₁, floor)``. The
  floor is what float rounding of the merged weights can produce on its own, ``eps(dtype) · max|W_A| ·
  (√m + √n)`` for an ``m × n`` weight (the spectral norm of a matrix of independent rounding errors
  of at most ``eps · max|W|`` each is about ``(√m + √n)`` times that). A LoRA update ``B·A`` of rank ``r``
  merged onto ``W`` has ``rank == r``; a delta that is only rounding has rank 0.
* ``erank`` — the entropy effective rank of Roy & Vetterli (2007): ``exp(−Σ pᵢ log pᵢ)`` with
  ``pᵢ = σᵢ / Σσⱼ`` over the singular values above the floor. It equals ``rank`` when those singular values
  are equal and is smaller when a few dominate (it is not an integer).

``changed`` is exact: True when any parameter of the module differs bit for bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import torch

_BLOCK = re.compile(r"(?:^|\.)(encoder|decoder)\.layers\.(\d+)(?:\.|$)")


@dataclass
class ModuleDelta:
    """How one module's parameters moved from model A to model B."""

    module: str
    """The module's path in the Hugging Face model, e.g. ``model.decoder.layers.2.fc1``."""
    block: str | None
    """The otoscope block it belongs to, e.g. ``decoder.blocks.2`` (None outside the blocks)."""
    params: list[str]
    """Parameter names compared (``weight``, ``bias``, …)."""
    shape: list[int]
    """Shape of the weight matrix (of the first parameter for modules without one)."""
    norm_a: float
    """``‖W_A‖`` (Frobenius, over all compared parameters)."""
    delta_norm: float
    """``‖W_B − W_A‖`` (Frobenius, over all compared parameters)."""
    relative: float
    """``delta_norm / norm_a`` (inf when A's parameters are all zero and B's are not)."""
    changed: bool
    """Any compared parameter differs bit for bit."""
    rank: int | None = None
    """Numerical rank of the weight-matrix delta (see the module docstring); None without a matrix."""
    erank: float | None = None
    """Entropy effective rank of the weight-matrix delta; None without a matrix."""
    floor: float | None = None
    """Float rounding floor used for the ranks."""
    singular_values: list[float] = field(default_factory=list, repr=False)
    """Singular values of the weight-matrix delta, largest first (empty for unchanged or matrix-free modules)."""

    def to_json(self, max_singular: int | None = 64) -> dict:
        """JSON-ready dict (at most ``max_singular`` singular values)."""
        out = asdict(self)
        out["singular_values"] = [float(f"{s:.6g}") for s in self.singular_values[:max_singular]]
        return out


@dataclass
class WeightComparison:
    """Every module's delta, and the parameters that could not be compared."""

    modules: list[ModuleDelta]
    """One entry per module with at least one comparable parameter, in model A's order."""
    skipped: list[dict]
    """``{"param", "reason"}`` for parameters only in one model or of different shapes."""

    @property
    def changed(self) -> list[ModuleDelta]:
        """The modules whose parameters differ."""
        return [m for m in self.modules if m.changed]

    @property
    def changed_blocks(self) -> list[str]:
        """Blocks with at least one changed module, in model order."""
        return list(dict.fromkeys(m.block for m in self.changed if m.block is not None))

    def to_frame(self):
        """Tidy table: one row per module (singular values left out)."""
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in asdict(m).items() if k != "singular_values"} for m in self.modules])


def block_of(module: str) -> str | None:
    """``decoder.blocks.2`` for ``model.decoder.layers.2.fc1`` (None when the name has no ``layers.N``)."""
    match = _BLOCK.search(module)
    return f"{match.group(1)}.blocks.{match.group(2)}" if match else None


def effective_ranks(sv: torch.Tensor, floor: float, rtol: float) -> tuple[int, float]:
    """``(rank, erank)`` of singular values ``sv`` (descending) with the rounding ``floor``; see the module docstring."""
    if sv.numel() == 0 or float(sv[0]) <= floor:
        return 0, 0.0
    keep = sv[sv > floor]
    rank = int((sv > max(rtol * float(sv[0]), floor)).sum())
    p = keep / keep.sum()
    erank = math.exp(float(-(p * torch.log(p)).sum()))
    return rank, erank


def rounding_floor(weight_a: torch.Tensor) -> float:
    """The largest singular value float rounding of ``weight_a``'s elements can produce: ``eps · max|W| · (√m + √n)``."""
    eps = torch.finfo(weight_a.dtype).eps if weight_a.is_floating_point() else 0.0
    m, n = weight_a.shape[0], weight_a[0].numel()
    return eps * float(weight_a.detach().abs().max()) * (math.sqrt(m) + math.sqrt(n))


@torch.no_grad()
def module_delta(module: str, params_a: dict[str, torch.Tensor], params_b: dict[str, torch.Tensor],
                 rtol: float = 1e-3) -> ModuleDelta:
    """The :class:`ModuleDelta` of one module from its parameters in A and B (same names and shapes)."""
    norm_a2 = delta2 = 0.0
    changed = False
    for name, wa in params_a.items():
        wa, wb = wa.detach().cpu(), params_b[name].detach().cpu()
        norm_a2 += float(torch.linalg.vector_norm(wa, dtype=torch.float64)) ** 2
        if not torch.equal(wa, wb):  # only changed parameters pay for a float64 difference
            changed = True
            delta2 += float(torch.linalg.vector_norm(wb.double() - wa.double())) ** 2
    norm_a, delta_norm = math.sqrt(norm_a2), math.sqrt(delta2)
    relative = delta_norm / norm_a if norm_a > 0 else (0.0 if delta_norm == 0 else math.inf)
    matrix = params_a.get("weight")
    if matrix is None or matrix.ndim < 2:
        matrix = next((t for t in params_a.values() if t.ndim >= 2), None)
    first = next(iter(params_a.values()))
    delta = ModuleDelta(module, block_of(module), list(params_a), list((matrix if matrix is not None else first).shape),
                        norm_a, delta_norm, relative, changed)
    if matrix is None:
        return delta
    name = next(n for n, t in params_a.items() if t is matrix)
    if not changed or torch.equal(params_b[name].detach().cpu(), matrix.detach().cpu()):
        delta.rank, delta.erank = 0, 0.0
        return delta
    delta.floor = rounding_floor(matrix)
    diff = (params_b[name].detach().double().cpu() - matrix.detach().double().cpu()).reshape(matrix.shape[0], -1)
    sv = torch.linalg.svdvals(diff)  # [min(m, n)] descending
    delta.singular_values = sv.tolist()
    delta.rank, delta.erank = effective_ranks(sv, delta.floor, rtol)
    return delta


def compare_weights(model_a, model_b, rtol: float = 1e-3) -> WeightComparison:
    """Match the parameters of two HF models (``nn.Module``) by name and shape → :class:`WeightComparison`.

    Tied weights count once (under their first name). Parameters only in one model, or of different
    shapes, are listed in ``skipped`` with the reason.
    """
    pa, pb = dict(model_a.named_parameters()), dict(model_b.named_parameters())
    skipped = [{"param": n, "reason": "only in model A"} for n in pa if n not in pb]
    skipped += [{"param": n, "reason": "only in model B"} for n in pb if n not in pa]
    groups: dict[str, tuple[dict, dict]] = {}
    for name, wa in pa.items():
        if name not in pb:
            continue
        wb = pb[name]
        if wa.shape != wb.shape:
            skipped.append({"param": name, "reason": f"shape {list(wa.shape)} in A, {list(wb.shape)} in B"})
            continue
        module, _, leaf = name.rpartition(".")
        ga, gb = groups.setdefault(module, ({}, {}))
        ga[leaf], gb[leaf] = wa, wb
    modules = [module_delta(m, ga, gb, rtol) for m, (ga, gb) in groups.items()]
    return WeightComparison(modules, skipped)
