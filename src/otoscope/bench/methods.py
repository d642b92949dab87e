"""The localisation methods the benchmark compares, behind one small table.

Each method maps an open patching session and a sweep's settings to one normalised score per cell
(``(patched − corrupt) / (clean − corrupt)``, as exact patching reports), in the order of the exact
sweep's cells. Exact patching is the reference the others are scored against. This table is the one
place to register a method; a registry in :mod:`otoscope.patching` can replace it name for name.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from otoscope.errors import OtoscopeError, did_you_mean

REFERENCE = "exact"  # the method every other one is scored against


@dataclass(frozen=True)
class Method:
    """One localisation method."""

    name: str
    """Name on the command line and in results."""
    description: str
    """What it computes, in one line."""
    run: Callable[..., np.ndarray]
    """``run(session, sweep_options, seed) -> [cells]`` normalised scores."""


def _sweep(method: str, **extra):
    def run(session, options: dict, seed: int) -> np.ndarray:
        from otoscope.patching import sweep

        result = sweep(session, method=method, **options, **extra)
        return np.array([c.normalized for c in result.cells], dtype=np.float64)
    return run


def _random(session, options: dict, seed: int) -> np.ndarray:
    """Uniform random scores: the floor every method must beat (no model runs)."""
    from otoscope.patching.config import config_from

    config = config_from(None, options)
    cells = session.cells(config, session.hook_names(config.hooks))
    return np.random.default_rng(seed).uniform(0, 1, len(cells))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("exact", "one patched run per cell (the reference)", _sweep("exact")),
    Method("attribution", "first-order estimate: one forward and one backward pass", _sweep("attribution")),
    Method("attribution-ig", "integrated gradients over 5 interpolated inputs", _sweep("attribution-ig", ig_steps=5)),
    Method("random", "uniform random scores (the floor)", _random),
)}


def parse_methods(spec: str) -> list[str]:
    """``"all"`` or a comma list → method names, the reference first (it is always run: the others need it)."""
    names = list(METHODS) if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in METHODS:
            raise OtoscopeError(f"unknown method {name!r}.{did_you_mean(name, METHODS)} Methods: {', '.join(METHODS)}, all.")
    return [REFERENCE] + [n for n in dict.fromkeys(names) if n != REFERENCE]


def seed_of(*parts: str) -> int:
    """A stable seed from names (the random method's scores do not change between runs or machines)."""
    return zlib.crc32("/".join(parts).encode())
