"""Argument checking for the ``otoscope`` command: value types, a one-line parser, messages in flag terms.

Bad values are rejected while parsing (before a model loads or a file is written), as one line
``otoscope: error: ...`` and exit status 2, the same as every other user error of the command.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``otoscope: error: ...``, exit status 2.

    ``add_subparsers`` makes subcommand parsers of the same class, so this covers every subcommand.
    """

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"otoscope: error: {' '.join(message.split())} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _number(kind, text: str, what: str, ok) -> int | float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (batch sizes, counts, steps)."""
    return _number(int, text, "a whole number >= 1", lambda v: v >= 1)


def nonneg_int(text: str) -> int:
    """A whole number >= 0 (0 usually turns something off)."""
    return _number(int, text, "a whole number >= 0", lambda v: v >= 0)


def finite_float(text: str) -> float:
    """Any finite number (not nan or inf)."""
    return _number(float, text, "a finite number", math.isfinite)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(float, text, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(float, text, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def device(text: str) -> str:
    """A torch device this machine has: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    import torch  # only when --device is given: ``otoscope --help`` stays instant

    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text}: no CUDA GPU is available here; use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise argparse.ArgumentTypeError(f"{text}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here; use --device cpu")
    return text


def chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser that parsed ``args``: ``otoscope sae train`` → the ``train`` parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest, None)
            if name in action.choices:
                return chosen_parser(action.choices[name], args)
    return parser


# Python values that have their own flag spelling (``window=None`` is ``--window all``).
SPECIAL = {("window", "None"): "--window all", ("window_unit", "'seconds'"): "--seconds",
           ("window_unit", "'frames'"): "no --seconds", ("token_window", "None"): "--all-tokens"}
_ASSIGNMENT = re.compile(r"\b([a-z_][a-z0-9_]*)=('[^']*'|\"[^\"]*\"|None|True|False|-?[\w.+-]*\w)")
_LEADING_NAME = re.compile(r"^([a-z_][a-z0-9_]*)( must | needs | is | and )")


def in_flag_terms(message: str, parser: argparse.ArgumentParser) -> str:
    """Rewrite the Python spellings in a library message (``align='pad'``, ``window=None``) as the flags of
    ``parser``'s command (``--align pad``, ``--window all``); names without a flag stay as they are."""
    flags = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in flags:
            flags[action.dest] = longs[0]
    options = {o for action in parser._actions for o in action.option_strings}

    def assignment(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        special = SPECIAL.get((name, value))
        if special and next(w for w in special.split() if w.startswith("--")) in options:
            return special
        if name not in flags:
            return match.group(0)
        if value in ("True", "False", "None"):
            return flags[name] if value == "True" else f"no {flags[name]}"
        text = value[1:-1] if value[:1] in "'\"" else value
        return f"{flags[name]} {shlex.quote(text)}"

    message = _ASSIGNMENT.sub(assignment, message)
    message = re.sub(r"(--[\w-]+) \(CLI \1\)", r"\1", message)  # "pass --multi-token (CLI --multi-token)"
    leading = _LEADING_NAME.match(message)
    if leading and leading.group(1) in flags:
        message = flags[leading.group(1)] + message[len(leading.group(1)):]
    return message
