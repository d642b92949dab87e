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
    from otoscope.steer.saved import steering_folder

    with steering_folder(model, folder, alpha):  # a direction or a latent steer, as the folder says
        yield
