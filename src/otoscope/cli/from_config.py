"""Command-line flags generated from a config dataclass: one source for names, defaults, choices and help.

:func:`add_config_flags` adds one ``--flag`` per field of a dataclass whose fields carry a docstring (the
project's config style); :func:`config_from_args` builds the dataclass back from the parsed namespace, so
its ``__post_init__`` validates the values as it does for Python callers. How a field becomes a flag:

* ``bool`` defaulting to False → a switch (``--heads``); True → ``--x/--no-x``;
* ``Literal[...]`` → ``choices``; ``int``/``float``/``str`` (or ``Optional`` of one) → that type, parsed by
  :mod:`otoscope.cli.args`' checked parsers (a whole number, a finite number);
* the help text is the field's docstring with the default appended.

A command passes ``types`` for the values it spells its own way (``--window all``), ``skip`` for fields it
sets from other flags, and ``choices`` where a field's type admits more than a command line can give.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import re
import textwrap
import typing
from typing import Any, Callable, Iterable

from otoscope.cli.args import finite_float


def whole_number(text: str) -> int:
    """Any whole number."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` from the string literal under each annotated field in ``cls``'s source (and its
    dataclass bases'), whitespace collapsed."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _plain(doc: str) -> str:
    """A docstring as terminal help: reST literals unquoted, argparse's ``%`` escaped."""
    return re.sub(r"``([^`]*)``", r"\1", doc).replace("%", "%%")


def _unwrap_optional(tp) -> tuple[Any, bool]:
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def flag_name(name: str) -> str:
    """``batch_size`` → ``--batch-size``."""
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
                     types: dict[str, Callable[[str], Any]] | None = None,
                     choices: dict[str, Iterable[str]] | None = None, defaults: dict[str, Any] | None = None) -> None:
    """Add a ``--flag`` for every field of dataclass ``cls`` not in ``skip`` (see the module docstring).

    ``types``: a parser per field name, overriding the one read off the annotation; ``choices``: the values a
    command line may give; ``defaults``: a different default for this command (shown in the help).
    """
    types, choices, defaults = types or {}, choices or {}, defaults or {}
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        name = field.name
        if name in skip:
            continue
        default = defaults.get(name, field.default)
        if default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{name} has no default; give it one or skip it")
        tp, _ = _unwrap_optional(hints[name])
        helptext = _plain(docs.get(name, ""))
        kwargs: dict[str, Any] = {"dest": name, "default": default}
        if tp is bool and name not in types:
            kwargs["action"] = "store_true" if not default else argparse.BooleanOptionalAction
        else:
            if name in choices:
                kwargs["choices"] = tuple(choices[name])
            elif typing.get_origin(tp) is typing.Literal:
                kwargs["choices"] = typing.get_args(tp)
            if name in types:
                kwargs["type"] = types[name]
            elif tp is int:
                kwargs["type"] = whole_number
            elif tp is float:
                kwargs["type"] = finite_float
            if default is not None:
                helptext += " (default: %(default)s)"
        parser.add_argument(flag_name(name), help=helptext, **kwargs)


def config_from_args(cls: type, args: argparse.Namespace, **values):
    """``cls`` built from the parsed flags of its fields (those :func:`add_config_flags` added), with
    ``values`` for the rest or instead of them; its ``__post_init__`` validates the whole."""
    names = {f.name for f in dataclasses.fields(cls)}
    taken = {n: getattr(args, n) for n in names if hasattr(args, n)}
    return cls(**{**taken, **{k: v for k, v in values.items() if k in names}})
