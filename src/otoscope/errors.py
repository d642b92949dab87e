"""User-facing errors.

Everything a user can cause by passing bad input raises :class:`OtoscopeError` (a ``ValueError``)
with a one-line message that names the problem and the fix. The CLI prints exactly that line.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class OtoscopeError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it."""


class AudioError(OtoscopeError):
    """Audio that cannot be read or used (missing, corrupt, empty, NaN/inf, too long)."""


class ModelNotFoundError(OtoscopeError):
    """A model name or path that no source could load."""


class HookNameError(OtoscopeError, KeyError):
    """An unknown hook name, or a filter that matches no hook."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
