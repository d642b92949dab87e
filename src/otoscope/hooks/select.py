"""Choosing hook points by name, glob, list or predicate."""

from __future__ import annotations

import fnmatch
from typing import Callable, Iterable, Union

from otoscope.errors import HookNameError, did_you_mean
from otoscope.hooks.points import HookPoint, Site

NamesFilter = Union[None, str, Iterable[str], Callable[[str], bool]]


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _glob(pattern: str, names: list[str], points: dict[str, HookPoint]) -> list[str]:
    hits = fnmatch.filter(names, pattern)
    # Attention patterns are costly (eager attention, [batch, heads, q, k]): a glob takes them only
    # when it names them.
    if "pattern" not in pattern:
        hits = [n for n in hits if points[n].site is not Site.PATTERN]
    if not hits:
        raise HookNameError(f"hook filter '{pattern}' matches no hook point.{did_you_mean(pattern, names)} "
                            "List them with model.hook_names() or 'otoscope hooks MODEL'.")
    return hits


def check_name(name: str, points: dict[str, HookPoint]) -> str:
    """Return ``name`` if it is a hook point, else raise with the nearest valid name."""
    if name not in points:
        raise HookNameError(f"unknown hook point '{name}'.{did_you_mean(name, points)} "
                            "List them with model.hook_names() or 'otoscope hooks MODEL'.")
    return name


def select(points: dict[str, HookPoint], names_filter: NamesFilter) -> list[str]:
    """Hook names chosen by ``names_filter``, in forward order.

    ``None`` → every hook point except attention patterns; a string → one exact name or a glob;
    an iterable → exact names or globs; a callable → the names for which it returns True.
    """
    names = list(points)
    if names_filter is None:
        return [n for n in names if points[n].site is not Site.PATTERN]
    if callable(names_filter):
        chosen = {n for n in names if names_filter(n)}
        if not chosen:
            raise HookNameError("the names_filter function accepted no hook point; check it against model.hook_names().")
    else:
        items = [names_filter] if isinstance(names_filter, str) else list(names_filter)
        if not items:
            raise HookNameError("empty list of hook names; pass at least one name or glob.")
        chosen = set()
        for item in items:
            chosen.update(_glob(item, names, points) if _is_glob(item) else [check_name(item, points)])
    return [n for n in names if n in chosen]
