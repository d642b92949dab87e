"""The localisation methods the benchmark compares, behind one small table.

Each method maps an open patching session and a sweep's settings to a
:class:`~otoscope.patching.result.PatchResult` over the same cells as the exact sweep, scored against it by
:func:`otoscope.patching.scores.score_method`. Exact patching is the reference the others are scored
against. The methods are :data:`otoscope.patching.methods.METHODS`, name for name: a method registered
there is benchmarked here. All methods of a unit share one session, so a gradient pass or an exact cell
one method computed is reused by the next; each result's time is still what the method costs alone
(:meth:`otoscope.patching.session.PatchSession.memo`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

from otoscope.errors import OtoscopeError, did_you_mean
from otoscope.patching.methods import METHODS as REGISTRY
from otoscope.patching.result import PatchResult

REFERENCE = "exact"  # the method every other one is scored against


@dataclass(frozen=True)
class Method:
    """One localisation method."""

    name: str
    """Name on the command line and in results."""
    description: str
    """What it computes, in one line."""
    run: Callable[..., PatchResult]
    """``run(session, sweep_options, seed) -> PatchResult`` over the sweep's cells."""


def _sweep(method: str):
    def run(session, options: dict, seed: int) -> PatchResult:
        from otoscope.patching import sweep

        seeded = {"seed": seed} if method == "random" else {}  # the floor's scores: stable per pair, not per run
        return sweep(session, method=method, **options, **seeded)
    return run


METHODS: dict[str, Method] = {name: Method(name, (fn.__doc__ or name).split(": ``")[0], _sweep(name))
                              for name, fn in REGISTRY.items()}
"""Every method of the patching registry, run through ``sweep(session, method=name)``."""


def parse_methods(spec: str) -> list[str]:
    """``"all"`` or a comma list → method names, the reference first (it is always run: the others need it)."""
    names = list(METHODS) if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    check_methods(names)
    return [REFERENCE] + [n for n in dict.fromkeys(names) if n != REFERENCE]


def check_methods(names) -> None:
    """Refuse an unknown method name, with did-you-mean (the command line's and ``BenchConfig``'s one check)."""
    for name in names:
        if name not in METHODS:
            raise OtoscopeError(f"unknown method {name!r}.{did_you_mean(name, METHODS)} Methods: {', '.join(METHODS)}, all.")


def seed_of(*parts: str) -> int:
    """A stable seed from names (the random method's scores do not change between runs or machines)."""
    return zlib.crc32("/".join(parts).encode())
