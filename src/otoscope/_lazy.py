"""Lazy public names for package ``__init__`` files (PEP 562).

``import otoscope`` (and the ``otoscope`` command, which imports it) must not pull in torch, transformers
or matplotlib: ``otoscope --help`` should answer instantly. So each package lists its public names and the
module holding each one, and the module is imported on first attribute access instead of at import time.
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``name`` lives in module ``exports[name]``.

    A module path starting with ``.`` is relative to ``package``. The value is cached in the package's
    namespace after the first access, so later look-ups cost nothing.
    """
    def __getattr__(name: str):
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(package + where if where.startswith(".") else where)
        value = getattr(module, name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
