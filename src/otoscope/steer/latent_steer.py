"""Interventions through SAE latents: a gate that reads them, and clamping them in the encoder.

- :class:`LatentGate` scores each frame by the summed activation of chosen latents of an SAE at an encoder
  hook (e.g. the latents most selective for non-speech); like a projection :class:`~otoscope.steer.direction.Gate`
  it opens a clip when the mean over its real frames is above a threshold, and can gate a direction.
- :class:`LatentSteer` splices the SAE in (reconstruction error added back, so nothing else changes) and
  clamps the chosen latents to ``alpha ×`` a reference activation (their mean when active on the class
  they were chosen for) on every frame of the clip, optionally only in clips a latent gate opens.

Saved form: the SAE travels **inside** the steering folder (``sae/``, SAELens format) with a SHA-256 of its
files in ``steer.json``, checked on load, so a folder is self-contained (a study SAE is a few MB) and a
changed or damaged SAE is refused instead of silently steering something else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from otoscope._io import atomic_dir
from otoscope.errors import OtoscopeError
from otoscope.steer.direction import FORMAT_VERSION, STEER_MARKERS, check_alpha
from otoscope.steer.gate import GateState, feature_hook, real_mean

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.sae.model import SparseAutoencoder

SAE_FOLDER = "sae"  # the SAE's place inside a steering folder


def sae_checksum(folder: Path) -> str:
    """SHA-256 over the names and bytes of every file in the SAE folder ``folder`` (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def write_sae(sae: "SparseAutoencoder", folder: Path) -> dict:
    """Save ``sae`` into ``folder/sae`` → the ``steer.json`` record (folder name and checksum)."""
    from otoscope.sae.format import save_sae

    save_sae(sae, folder / SAE_FOLDER)
    return {"folder": SAE_FOLDER, "sha256": sae_checksum(folder / SAE_FOLDER)}


def read_sae(folder: Path, record: dict) -> "SparseAutoencoder":
    """The SAE a steering folder carries, after checking its checksum."""
    from otoscope.sae.format import load_sae

    path = folder / record["folder"]
    if not path.is_dir():
        raise OtoscopeError(f"{folder} names an SAE in {record['folder']}/ but it is missing; copy the whole steering folder.")
    if sae_checksum(path) != record["sha256"]:
        raise OtoscopeError(f"the SAE in {path} does not match the checksum in steer.json (changed or damaged); "
                            "restore it or re-run 'otoscope steer silence'.")
    return load_sae(path)


def _check_latents(latents: Sequence[int], sae) -> list[int]:
    latents = [int(i) for i in latents]
    if not latents:
        raise OtoscopeError("choose at least one latent.")
    bad = [i for i in latents if not 0 <= i < sae.d_sae]
    if bad:
        raise OtoscopeError(f"latents {bad} are out of range: the SAE has {sae.d_sae} latents.")
    return latents


@dataclass
class LatentGate:
    """Open where the summed activation of ``latents`` (mean over a clip's real frames) is above ``threshold``."""

    hook: str
    """Encoder hook the SAE reads, e.g. ``encoder.blocks.2.hook_resid_post``."""
    sae: "SparseAutoencoder"
    """The SAE (trained on that hook)."""
    latents: list[int]
    """Latents whose activations are summed (e.g. the most non-speech-selective ones)."""
    threshold: float
    """Open where the score is above this (latent activation units)."""
    mode: str = "clip"
    """``clip`` (mean over real frames decides for the whole clip) or ``frame``."""

    def __post_init__(self):
        if self.mode not in ("clip", "frame"):
            raise OtoscopeError(f"gate mode must be 'clip' or 'frame', got '{self.mode}'.")
        if not self.hook.startswith("encoder."):
            raise OtoscopeError(f"a gate scores an encoder hook, got '{self.hook}'.")
        self.latents = _check_latents(self.latents, self.sae)
        self.threshold = check_alpha(self.threshold)

    def frame_scores(self, acts: torch.Tensor) -> torch.Tensor:
        """Summed activation of the chosen latents per frame: ``[batch, frames, d_model]`` → ``[batch, frames]``."""
        with torch.no_grad():
            z = self.sae.encode(acts.reshape(*acts.shape[:2], -1).to(self.sae.device))  # [batch, frames, d_sae]
        return z[..., self.latents].float().sum(-1).to(acts.device)

    def to_json(self, sae_record: dict | None = None) -> dict:
        """``steer.json``'s gate record."""
        out = {"type": "latents", "hook": self.hook, "latents": self.latents, "threshold": self.threshold, "mode": self.mode}
        return {**out, "sae": sae_record} if sae_record else out

    @classmethod
    def from_json(cls, record: dict, folder: Path) -> "LatentGate":
        """Inverse of :meth:`to_json` (the SAE read from ``folder``, checksum checked)."""
        return cls(record["hook"], read_sae(folder, record["sae"]), record["latents"], record["threshold"], record["mode"])


@dataclass
class LatentSteer:
    """Clamp chosen SAE latents in the encoder to ``alpha × reference`` on every frame (of gated clips)."""

    sae: "SparseAutoencoder"
    """The SAE, spliced in at ``hook`` with its error term."""
    hook: str
    """Encoder hook."""
    model: str
    """Model it was made for; another model is refused."""
    latents: list[int]
    """Latents to clamp."""
    reference: list[float]
    """Per latent, the activation ``alpha = 1`` clamps to (its mean when active on the chosen class)."""
    alpha: float = 1.0
    """Default strength: 0 ablates the latents, 1 sets them to their typical value, more exaggerates them."""
    gate: LatentGate | None = None
    """Optional clip gate; it must read the same SAE at the same hook (scored before the edit)."""
    meta: dict = field(default_factory=dict)
    """Provenance and fit-set figures."""

    def __post_init__(self):
        self.latents = _check_latents(self.latents, self.sae)
        self.reference = [float(v) for v in self.reference]
        if len(self.reference) != len(self.latents) or not all(math.isfinite(v) for v in self.reference):
            raise OtoscopeError("give one finite reference activation per latent.")
        self.alpha = check_alpha(self.alpha)
        if self.gate is not None and (self.gate.hook != self.hook or self.gate.sae is not self.sae or self.gate.mode != "clip"):
            raise OtoscopeError("a latent steer's gate must be a clip gate on the same SAE and hook.")

    def save(self, folder: str | Path, created_by: str = "otoscope") -> Path:
        """Write ``steer.json`` and the SAE (``sae/``) into ``folder`` atomically."""
        with atomic_dir(folder, markers=STEER_MARKERS) as tmp:
            record = write_sae(self.sae, tmp)
            info = {"version": FORMAT_VERSION, "intervention": "latents", "model": self.model, "hook": self.hook,
                    "alpha": self.alpha, "latents": self.latents, "reference": self.reference, "sae": record,
                    "gate": None if self.gate is None else self.gate.to_json(),
                    "created_by": created_by, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "meta": self.meta}
            (tmp / "steer.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        return Path(folder)

    @classmethod
    def from_json(cls, info: dict, folder: Path) -> "LatentSteer":
        """Build from a parsed ``steer.json`` of ``folder`` (see :func:`otoscope.steer.saved.load_steering`)."""
        sae = read_sae(folder, info["sae"])
        gate = None
        if info.get("gate"):
            g = info["gate"]
            gate = LatentGate(g["hook"], sae, g["latents"], g["threshold"], g["mode"])
        return cls(sae, info["hook"], info["model"], info["latents"], info["reference"], info["alpha"], gate,
                   info.get("meta", {}))

    def to_dict(self) -> dict:
        """JSON-friendly summary (no tensors)."""
        return {"intervention": "latents", "model": self.model, "hook": self.hook, "alpha": self.alpha,
                "latents": self.latents, "reference": self.reference, "d_sae": self.sae.d_sae,
                "gate": None if self.gate is None else self.gate.to_json(), "meta": self.meta}


@contextlib.contextmanager
def latent_steering(model: "HookedAudioModel", steer: LatentSteer, alpha: float | None = None,
                    check_model: bool = True) -> Iterator[GateState]:
    """Apply ``steer`` while the block runs; yields the gate's state (clip scores) when gated."""
    a = check_alpha(steer.alpha if alpha is None else alpha)
    if check_model and steer.model != model.name:
        raise OtoscopeError(f"this latent steer was made for '{steer.model}', not '{model.name}'; "
                            "load the matching model or run 'otoscope steer silence' for it.")
    state = GateState()
    idx = torch.tensor(steer.latents)
    values = torch.tensor(steer.reference) * a  # [latents]

    def fn(z: torch.Tensor, point):  # z: [batch, frames, d_sae], before the edit
        out = z.clone()
        if steer.gate is not None:
            counts = state.counts if state.counts is not None and state.counts.shape[0] == z.shape[0] \
                else torch.full((z.shape[0],), z.shape[1])
            state.scores = real_mean(z[..., steer.gate.latents].float().sum(-1), counts)
            state.open = state.scores > steer.gate.threshold
            where = state.open.to(z.device)[:, None, None]
        else:
            where = torch.ones(1, 1, 1, dtype=torch.bool, device=z.device)
        target = values.to(z.device, z.dtype).expand(*z.shape[:2], len(steer.latents))
        out[..., idx] = torch.where(where, target, z[..., idx])
        return out

    handles = [feature_hook(model, state)] if steer.gate is not None else []
    try:
        with model.add_sae(steer.sae, steer.hook, use_error_term=True) as spliced:
            with model.hooks([(f"{spliced.hook}.hook_sae_acts", fn)]):
                yield state
    finally:
        for h in handles:
            h.remove()
