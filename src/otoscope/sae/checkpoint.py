"""Resumable training checkpoints in safetensors + JSON (no pickles).

``checkpoints/step-00001000/`` holds ``state.json`` (step, stream position, configs, per-hook scalars, the
optimisers' hyper-parameters), ``state.safetensors`` (raw weights, Adam moments and step counts, firing
statistics) and, per hook, a ready-to-use SAELens folder. The folder appears in one rename, so a kill
leaves either the whole checkpoint or none; restoring it reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from otoscope._io import atomic_dir
from otoscope.errors import OtoscopeError
from otoscope.sae.dead import FiringTracker
from otoscope.sae.format import save_sae
from otoscope.sae.model import SparseAutoencoder

_STEP = re.compile(r"step-(\d+)$")


@dataclass
class HookState:
    """Everything trained for one hook point."""

    hook: str
    """Hook name."""
    sae: SparseAutoencoder
    """The SAE (weights in the normalised space while training)."""
    optimizer: torch.optim.Optimizer
    """Its AdamW."""
    tracker: FiringTracker
    """Its firing statistics."""
    scale: float = 1.0
    """Input scale used while training (folded into the saved weights)."""
    norm: float = 1.0
    """RMS distance of the (scaled) data from its mean: the loss normaliser."""


def _optimizer_tensors(state: HookState) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = state.optimizer.state_dict()
    tensors = {}
    for index, slots in sd["state"].items():
        for key, value in slots.items():
            tensors[f"{state.hook}/opt/{index}/{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).cpu()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def save_checkpoint(root: Path, step: int, position: int, states: list[HookState], meta: dict, keep: int) -> Path:
    """Write ``root/step-{step}`` and delete all but the newest ``keep`` checkpoints."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    record = {"step": step, "position": position, **meta, "hooks": {}}
    for state in states:
        for name, value in state.sae.state_dict().items():
            tensors[f"{state.hook}/param/{name}"] = value.detach().cpu().contiguous()
        opt_tensors, groups = _optimizer_tensors(state)
        tensors.update(opt_tensors)
        tracker_tensors, tracker_ints = state.tracker.state(f"{state.hook}/tracker/")
        tensors.update({k: v.cpu() for k, v in tracker_tensors.items()})
        record["hooks"][state.hook] = {"scale": state.scale, "norm": state.norm, "tracker": tracker_ints,
                                       "param_groups": groups}
    folder = root / f"step-{step:08d}"
    with atomic_dir(folder, markers=None) as tmp:  # a step folder of our own run
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        for state in states:
            save_sae(state.sae, tmp / state.hook, frequency=state.tracker.frequency(), scale=state.scale)
    for old in checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def checkpoints(root: Path) -> list[Path]:
    """Finished checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP.search(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(_STEP.search(p.name).group(1)))


def load_checkpoint(folder: Path, states: list[HookState]) -> dict:
    """Restore ``states`` in place from ``folder``; returns its ``state.json`` record."""
    from safetensors.torch import load_file

    try:
        record = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "state.safetensors"))
    except Exception as err:  # damaged JSON or safetensors
        raise OtoscopeError(f"cannot read checkpoint {folder} ({err}); delete it to resume from the previous one.") from None
    for state in states:
        if state.hook not in record["hooks"]:
            raise OtoscopeError(f"checkpoint {folder} has no state for {state.hook}; resume with the same hooks.")
        info = record["hooks"][state.hook]
        params = {k.split("/param/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{state.hook}/param/")}
        state.sae.load_state_dict({k: v.to(state.sae.device) for k, v in params.items()})
        slots: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith(f"{state.hook}/opt/"):
                index, name = key[len(state.hook) + 5:].split("/", 1)
                slots.setdefault(int(index), {})[name] = value
        device = state.sae.device
        opt_state = {i: {k: (v if k == "step" else v.to(device)) for k, v in s.items()} for i, s in slots.items()}
        state.optimizer.load_state_dict({"state": opt_state, "param_groups": info["param_groups"]})
        state.tracker.load(f"{state.hook}/tracker/", {k: v.to(device) for k, v in tensors.items()
                                                      if k.startswith(f"{state.hook}/tracker/")}, info["tracker"])
        state.scale, state.norm = float(info["scale"]), float(info["norm"])
    return record
