"""A steering direction and its saved form: a folder with ``direction.safetensors`` + ``steer.json``.

A :class:`Direction` says what to add (or project out), where, how strongly, and optionally when (a
:class:`Gate`). The vector added is ``alpha · scale · v̂``: ``v̂`` the unit direction, ``scale`` the mean
residual norm at the hook measured when the direction was fitted (``units="mean_norm"``) or 1
(``units="raw"``), so ``alpha=1`` in mean-norm units moves an activation by about its own length.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from otoscope._io import atomic_dir
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.steer.latent_steer import LatentGate

KINDS = ("add", "project_out")
UNITS = ("mean_norm", "raw")
POSITIONS = ("all", "first")
GATE_MODES = ("clip", "frame")
STEER_MARKERS = ("steer.json",)  # an earlier steering folder, which a new one may replace
FORMAT_VERSION = 1


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float, or a one-line error when it is not a finite number."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise OtoscopeError(f"steering strength alpha must be a number, got {alpha!r}.") from None
    if not math.isfinite(value):
        raise OtoscopeError(f"steering strength alpha must be finite, got {value}; pass e.g. --alpha 1.0.")
    return value


@dataclass
class Gate:
    """Apply the steering only where the input already looks like one class (e.g. non-speech)."""

    hook: str
    """Encoder hook whose activation is scored, e.g. ``encoder.blocks.1.hook_resid_post``."""
    vector: torch.Tensor
    """``[d_model]`` direction the activation is projected on (stored unit-length)."""
    threshold: float
    """Steer where the projection (raw activation units) is above this."""
    mode: str = "clip"
    """``clip``: score = mean projection over the clip's real frames, the whole clip is steered or not;
    ``frame``: each frame is scored and steered on its own (encoder hooks only)."""

    def __post_init__(self):
        if self.mode not in GATE_MODES:
            raise OtoscopeError(f"gate mode must be one of {GATE_MODES}, got '{self.mode}'.")
        if not self.hook.startswith("encoder."):
            raise OtoscopeError(f"a gate scores an encoder hook, got '{self.hook}'.")
        self.vector = _unit(self.vector)
        self.threshold = check_alpha(self.threshold)

    def frame_scores(self, acts: torch.Tensor) -> torch.Tensor:
        """Projection of ``acts`` ``[batch, frames, d_model]`` on the unit vector → ``[batch, frames]``."""
        return acts.float() @ self.vector.to(acts.device, torch.float32)


@dataclass
class Direction:
    """A steering intervention at one hook point."""

    vector: torch.Tensor
    """``[d_model]`` direction (stored unit-length; its length is given by ``alpha`` and ``scale``)."""
    hook: str
    """Hook point where it acts, e.g. ``encoder.blocks.2.hook_resid_post`` or ``decoder.blocks.3.hook_resid_post``."""
    model: str
    """Name of the model it was made for; loading it for another model is refused."""
    alpha: float = 1.0
    """Default strength, in ``units``."""
    kind: str = "add"
    """``add`` (x + α·scale·v̂) or ``project_out`` (x − (x·v̂)v̂; alpha and scale unused)."""
    units: str = "mean_norm"
    """``mean_norm``: alpha is in units of ``scale``, the mean activation norm at the hook; ``raw``: scale 1."""
    scale: float = 1.0
    """Mean activation norm at the hook on the data the direction was fitted on."""
    positions: str = "all"
    """Decoder hooks: ``all`` positions, or ``first``: only the position predicting the first text token."""
    gate: "Gate | LatentGate | None" = None
    """Optional gate: steer only clips (or frames) that score above its threshold (a projection
    :class:`Gate`, or a :class:`~otoscope.steer.latent_steer.LatentGate` on SAE latents)."""
    meta: dict = field(default_factory=dict)
    """Free-form provenance: how it was fitted, figures on the fit set."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise OtoscopeError(f"steering kind must be one of {KINDS}, got '{self.kind}'.")
        if self.units not in UNITS:
            raise OtoscopeError(f"steering units must be one of {UNITS}, got '{self.units}'.")
        if self.positions not in POSITIONS:
            raise OtoscopeError(f"positions must be one of {POSITIONS}, got '{self.positions}'.")
        if self.gate is not None and self.positions == "all" and self.hook.startswith("decoder."):
            raise OtoscopeError("a gated decoder direction acts on positions='first' only (decoding drops finished "
                                "rows, so later steps cannot be matched to their gate).")
        self.vector = _unit(self.vector)
        self.alpha = check_alpha(self.alpha)
        self.scale = check_alpha(self.scale)

    def delta(self, alpha: float | None = None) -> torch.Tensor:
        """The vector added by ``kind='add'``: ``alpha · scale · v̂`` → ``[d_model]``."""
        a = check_alpha(self.alpha if alpha is None else alpha)
        return a * (self.scale if self.units == "mean_norm" else 1.0) * self.vector

    # ----------------------------------------------------------------- saved form
    def save(self, folder: str | Path, created_by: str = "otoscope") -> Path:
        """Write ``folder/direction.safetensors`` and ``folder/steer.json`` atomically; returns the folder."""
        from safetensors.torch import save_file

        tensors = {"direction": self.vector.float().contiguous()}
        info = {"version": FORMAT_VERSION, "model": self.model, "hook": self.hook, "alpha": self.alpha,
                "kind": self.kind, "units": self.units, "scale": self.scale, "positions": self.positions,
                "gate": None, "created_by": created_by, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "meta": self.meta}
        latent_gate = self.gate is not None and not isinstance(self.gate, Gate)
        if self.gate is not None and not latent_gate:
            tensors["gate"] = self.gate.vector.float().contiguous()
            info["gate"] = {"hook": self.gate.hook, "threshold": self.gate.threshold, "mode": self.gate.mode}
        with atomic_dir(folder, markers=STEER_MARKERS) as tmp:
            if latent_gate:  # a LatentGate: its SAE travels in the folder (see otoscope.steer.latent_steer)
                from otoscope.steer.latent_steer import write_sae

                info["gate"] = self.gate.to_json(write_sae(self.gate.sae, tmp))
            save_file(tensors, str(tmp / "direction.safetensors"))
            (tmp / "steer.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path, model: str | None = None) -> "Direction":
        """Read a steering folder; with ``model`` (a model name) refuse one made for another model."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "steer.json").is_file() or not (folder / "direction.safetensors").is_file():
            raise OtoscopeError(f"{folder} is not a steering folder (it needs steer.json and direction.safetensors); "
                                "make one with 'otoscope steer fit' or 'otoscope steer silence'.")
        info = json.loads((folder / "steer.json").read_text(encoding="utf-8"))
        if model is not None and info["model"] != model:
            raise OtoscopeError(f"{folder} was made for model '{info['model']}', not '{model}'; "
                                f"run with --model {info['model']} or fit a direction for {model}.")
        tensors = load_file(str(folder / "direction.safetensors"))
        gate = None
        if info.get("gate") and info["gate"].get("type") == "latents":
            from otoscope.steer.latent_steer import LatentGate

            gate = LatentGate.from_json(info["gate"], folder)
        elif info.get("gate"):
            gate = Gate(info["gate"]["hook"], tensors["gate"], info["gate"]["threshold"], info["gate"]["mode"])
        return cls(tensors["direction"], info["hook"], info["model"], info["alpha"], info["kind"], info["units"],
                   info["scale"], info.get("positions", "all"), gate, info.get("meta", {}))

    def to_dict(self) -> dict:
        """JSON-friendly summary (no tensors)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("vector", "gate")}
        if self.gate is None or isinstance(self.gate, Gate):
            out["gate"] = None if self.gate is None else {"hook": self.gate.hook, "threshold": self.gate.threshold,
                                                          "mode": self.gate.mode}
        else:
            out["gate"] = self.gate.to_json()
        return out


def _unit(vector) -> torch.Tensor:
    v = torch.as_tensor(vector).detach().float().cpu().reshape(-1)
    norm = float(v.norm())
    if not math.isfinite(norm) or norm == 0.0:
        raise OtoscopeError("a steering direction must be a non-zero finite vector.")
    return v / norm
