"""How the patching map moved: exact activation patching of the same minimal pairs on both models.

For each pair folder (``otoscope pairs`` output: ``clean.flac``, ``corrupt.flac``, ``pair.json`` with the
decoder context and answers) both models are patched with the same cells (``patch_hooks`` ×
``patch_window``-frame windows, denoising, exact). Cells are matched by hook and span; per pair the
result has both models' clean and corrupt metric values, the Pearson correlation of the normalised
scores ``(patched − corrupt) / (clean − corrupt)`` over the cells, and the cells whose normalised score
changed most.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from otoscope.compare.config import CompareConfig
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

PAIR_FILE = "pair.json"


@dataclass
class PairShift:
    """One minimal pair patched on both models."""

    pair: str
    """The pair's folder."""
    description: str
    """What differs between its clips."""
    metric: str
    """The metric patched (``logit_diff`` with a wrong answer, else ``logprob``)."""
    clean_a: float
    """Model A's metric on the clean clip."""
    corrupt_a: float
    """Model A's metric on the corrupt clip."""
    clean_b: float
    """Model B's metric on the clean clip."""
    corrupt_b: float
    """Model B's metric on the corrupt clip."""
    cells: int
    """Cells patched in both models."""
    correlation: float | None
    """Pearson correlation of the two models' normalised scores over the cells (None when undefined)."""
    max_abs_change: float | None
    """Largest ``|normalised_B − normalised_A|`` over the cells."""
    top: list[dict] = field(default_factory=list)
    """The cells that changed most: hook, layer, seconds, ``a``, ``b``, ``change`` (normalised scores)."""
    map: list[dict] = field(default_factory=list, repr=False)
    """Every matched cell: hook, layer, start frame, ``a``, ``b`` (for the report's plots)."""
    notes: list[str] = field(default_factory=list)
    """Warnings from either model's sweep."""

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def find_pairs(path: str | Path) -> list[Path]:
    """``path`` itself when it is a pair folder, else its sub-folders that are (sorted)."""
    path = Path(path)
    if (path / PAIR_FILE).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / PAIR_FILE).is_file()) if path.is_dir() else []
    if not found:
        raise OtoscopeError(f"no minimal pair in {path}: pass a folder with {PAIR_FILE} (from 'otoscope pairs') "
                            "or a folder of such folders.")
    return found


def _key(cell) -> tuple:
    return cell.hook, cell.frames, cell.tokens, cell.head, cell.neuron


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def pair_shift(model_a: "HookedAudioModel", model_b: "HookedAudioModel", folder: Path, config: CompareConfig) -> PairShift | str:
    """Patch one pair on both models → :class:`PairShift`, or a note saying why the pair was skipped."""
    from otoscope.patching import patch
    from otoscope.stimuli.pairs import load_pair

    pair = load_pair(folder)
    if not pair.answer:
        return f"{folder}: no answer in {PAIR_FILE}, nothing to patch (make the pair with 'otoscope pairs word')"
    args = pair.patch_args()
    options = dict(hooks=config.patch_hooks, window=config.patch_window, method="exact", direction="denoising",
                   metric="logit_diff" if pair.wrong else "logprob", batch_size=max(config.batch_size, 8))
    ra, rb = patch(model_a, **args, **options), patch(model_b, **args, **options)
    cells_b = {_key(c): c for c in rb.cells}
    matched = [(c, cells_b[_key(c)]) for c in ra.cells if _key(c) in cells_b]
    na = np.array([c.normalized for c, _ in matched], dtype=float)
    nb = np.array([d.normalized for _, d in matched], dtype=float)
    finite = np.isfinite(na) & np.isfinite(nb)
    change = nb - na
    order = [i for i in np.argsort(-np.abs(np.nan_to_num(change, nan=-math.inf))) if finite[i]][: config.top_changes]
    top = [{"hook": matched[i][0].hook, "layer": matched[i][0].layer,
            "seconds": list(matched[i][0].seconds) if matched[i][0].seconds else None,
            "tokens": list(matched[i][0].tokens) if matched[i][0].tokens else None,
            "a": float(na[i]), "b": float(nb[i]), "change": float(change[i])} for i in order]
    cell_map = [{"hook": c.hook, "layer": c.layer, "start": (c.frames or c.tokens or (0, 0))[0],
                 "a": float(na[i]), "b": float(nb[i])} for i, (c, _) in enumerate(matched)]
    notes = [f"model A: {n}" for n in ra.notes] + [f"model B: {n}" for n in rb.notes]
    return PairShift(str(folder), pair.description, ra.metric, ra.clean, ra.corrupt, rb.clean, rb.corrupt, len(matched),
                     _pearson(na[finite], nb[finite]),
                     float(np.abs(change[finite]).max()) if finite.any() else None, top, cell_map, notes)


def patching_shift(model_a: "HookedAudioModel", model_b: "HookedAudioModel", config: CompareConfig) -> tuple[list[PairShift], list[str]]:
    """Every pair under ``config.pairs`` patched on both models → ``(shifts, notes for skipped pairs)``."""
    shifts, notes = [], []
    for folder in find_pairs(config.pairs):
        result = pair_shift(model_a, model_b, folder, config)
        (notes.append if isinstance(result, str) else shifts.append)(result)
    return shifts, notes
