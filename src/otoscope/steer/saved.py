"""Any steering folder → the intervention it holds, and one context manager that applies either kind.

A folder's ``steer.json`` says what it is: ``"intervention": "latents"`` (a
:class:`~otoscope.steer.latent_steer.LatentSteer`, its SAE in ``sae/``), or a direction (no such key, or
``"direction"``: :class:`~otoscope.steer.direction.Direction`, possibly with a latent gate).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

from otoscope.errors import OtoscopeError
from otoscope.steer.direction import Direction
from otoscope.steer.latent_steer import LatentSteer

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

Intervention = Union[Direction, LatentSteer]


def load_steering(folder: str | Path, model: str | None = None) -> Intervention:
    """Read a steering folder made by ``steer fit`` / ``steer silence``; with ``model`` refuse another model's."""
    folder = Path(folder)
    path = folder / "steer.json"
    if not path.is_file():
        raise OtoscopeError(f"{folder} is not a steering folder (it has no steer.json); "
                            "make one with 'otoscope steer fit' or 'otoscope steer silence'.")
    info = json.loads(path.read_text(encoding="utf-8"))
    kind = info.get("intervention", "direction")
    if kind == "direction":
        return Direction.load(folder, model)
    if kind != "latents":
        raise OtoscopeError(f"{folder}/steer.json holds an unknown intervention '{kind}'; "
                            "it was written by a newer otoscope: upgrade, or re-run 'otoscope steer silence'.")
    if model is not None and info["model"] != model:
        raise OtoscopeError(f"{folder} was made for model '{info['model']}', not '{model}'; "
                            f"run with --model {info['model']} or run 'otoscope steer silence' for {model}.")
    return LatentSteer.from_json(info, folder)


def applied(model: "HookedAudioModel", intervention: Intervention, alpha: float | None = None) -> contextlib.AbstractContextManager:
    """The context manager that applies ``intervention`` (``alpha`` overrides its default strength)."""
    from otoscope.steer.apply import steering
    from otoscope.steer.latent_steer import latent_steering

    if isinstance(intervention, LatentSteer):
        return latent_steering(model, intervention, alpha)
    return steering(model, intervention, alpha)


@contextlib.contextmanager
def steering_folder(model: "HookedAudioModel", folder: str | Path, alpha: float | None = None) -> Iterator[Intervention]:
    """Load ``folder`` for ``model`` and apply it while the block runs; yields the intervention."""
    intervention = load_steering(folder, model.name)
    with applied(model, intervention, alpha):
        yield intervention
