"""``otoscope transcribe --steer DIR [--alpha A]``: the steering folder as an optional context."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def maybe_steering(model, folder: str | Path | None, alpha: float | None = None) -> Iterator[None]:
    """Apply the steering folder ``folder`` (made for ``model``) while the block runs; nothing when None."""
    if folder is None:
        if alpha is not None:
            from otoscope.errors import OtoscopeError

            raise OtoscopeError("--alpha sets the strength of --steer; pass a steering folder with --steer DIR.")
        yield
        return
    from otoscope.steer.apply import steering
    from otoscope.steer.direction import Direction

    with steering(model, Direction.load(folder, model.name), alpha):
        yield
