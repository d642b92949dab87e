"""Per layer: how similar the two models' representations are (linear CKA) and how far they moved (drift).

On the same clips and positions, for each hook present in both models:

* ``cka`` — linear CKA between A's and B's rows (the minibatch unbiased-HSIC estimator of
  :mod:`otoscope.geometry.cka`): 1 when B's layer is a rotation and scaling of A's, lower as they differ.
  It ignores what CKA is blind to (an orthogonal change of basis), so read it with the drift.
* ``drift`` — the mean activation drift relative to the layer's size, ``mean‖h_B − h_A‖ / mean‖h_A‖`` over
  rows (``drift_abs``: the numerator alone); 0 exactly when B computes the same activations.
* ``cosine`` — the mean cosine between ``h_A`` and ``h_B`` of the same row.

The full A-layer × B-layer CKA matrix of each stack (encoder, decoder) is kept too: with models of
different depths it shows which of B's layers corresponds to which of A's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from otoscope.compare.activations import PairedActivations, layer_of, stack_of
from otoscope.errors import OtoscopeError
from otoscope.geometry.cka import cka_across_models
from otoscope.geometry.collect import LayerActivations

CKA_BATCH_ROWS = 256  # rows per unbiased-HSIC minibatch


@dataclass
class LayerShift:
    """How one layer's activations differ between model A and model B."""

    hook: str
    """The hook, e.g. ``decoder.blocks.2.hook_resid_post``."""
    stack: str
    """``encoder`` or ``decoder``."""
    layer: int
    """Block index (-1 for ``hook_embed``)."""
    rows: int
    """Positions compared (over all clips)."""
    cka: float | None
    """Linear CKA of A's and B's rows (None when it could not be estimated)."""
    drift: float | None
    """``mean‖h_B − h_A‖ / mean‖h_A‖`` (None when the widths differ)."""
    drift_abs: float | None
    """``mean‖h_B − h_A‖``."""
    cosine: float | None
    """Mean cosine of ``h_A`` and ``h_B``."""
    fvu_a: float | None = None
    """FVU of the SAE fitted to A on A's rows (filled by :mod:`otoscope.compare.sae_shift`)."""
    fvu_b: float | None = None
    """FVU of the same SAE on B's rows."""
    fvu_increase: float | None = None
    """``fvu_b − fvu_a``: how much worse A's SAE explains B."""

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class CKAMatrix:
    """A-layer × B-layer CKA of one stack."""

    stack: str
    """``encoder`` or ``decoder``."""
    rows: list[str]
    """Model A's hooks."""
    cols: list[str]
    """Model B's hooks."""
    matrix: list[list[float]]
    """``[rows, cols]`` CKA values."""


@torch.no_grad()
def drift(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """``(relative drift, absolute drift, mean cosine)`` of rows ``a``, ``b`` ``[rows, d_model]``."""
    a, b = a.double(), b.double()
    dist = (b - a).norm(dim=1).mean()
    size = a.norm(dim=1).mean()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12).mean()
    return float(dist / size) if size > 0 else float("nan"), float(dist), float(cos)


def layer_shifts(acts: PairedActivations) -> tuple[list[LayerShift], list[CKAMatrix], list[str]]:
    """``(shifts, cka_matrices, notes)``: one :class:`LayerShift` per hook in both models, a CKA matrix per stack."""
    notes: list[str] = []
    matrices: list[CKAMatrix] = []
    diag: dict[str, float] = {}
    for stack in dict.fromkeys(stack_of(h) for h in acts.common()):
        rows = [h for h in acts.a if stack_of(h) == stack]
        cols = [h for h in acts.b if stack_of(h) == stack]
        items_a = [LayerActivations(name, rows, torch.stack([acts.a[h][i] for h in rows]))
                   for i, name in enumerate(acts.clips)]  # [layers, positions, d_model] per clip
        items_b = [LayerActivations(name, cols, torch.stack([acts.b[h][i] for h in cols]))
                   for i, name in enumerate(acts.clips)]
        try:
            result = cka_across_models(items_a, items_b, batch_frames=CKA_BATCH_ROWS, frames_per_clip=None)
        except OtoscopeError as err:
            notes.append(f"{stack}: no CKA ({err})")
            continue
        matrices.append(CKAMatrix(stack, rows, cols, result.matrix.round(6).tolist()))
        for h in rows:
            if h in cols:
                diag[h] = float(result.matrix[rows.index(h), cols.index(h)])
    shifts = []
    for hook in acts.common():
        a, b = acts.rows(hook)
        d = drift(a, b) if a.shape[1] == b.shape[1] else (None, None, None)
        if d[0] is None:
            notes.append(f"{hook}: widths differ ({a.shape[1]} in A, {b.shape[1]} in B): no drift or SAE comparison")
        shifts.append(LayerShift(hook, stack_of(hook), layer_of(hook), a.shape[0], diag.get(hook), *d))
    return shifts, matrices, notes
