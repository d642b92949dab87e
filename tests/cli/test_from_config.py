"""Flags generated from a config dataclass: names, defaults, choices and help come from the fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from otoscope.cli.args import OneLineParser, positive_int
from otoscope.cli.from_config import add_config_flags, config_from_args, field_docs


@dataclass(frozen=True)
class Toy:
    """A config as the project writes them."""

    steps: int = 3
    """Steps to take, 100% of them."""
    rate: Optional[float] = None
    """Learning rate; None: the ``default`` one."""
    mode: Literal["fast", "slow"] = "fast"
    """How to go."""
    verbose: bool = False
    """Say more."""
    cache: bool = True
    """Keep results."""

    def __post_init__(self):
        if self.steps > 10:
            raise ValueError("steps must be at most 10")


def parser(**kwargs):
    p = OneLineParser(prog="toy")
    add_config_flags(p, Toy, **kwargs)
    return p


def test_flags_defaults_choices_and_help_come_from_the_fields():
    assert field_docs(Toy)["rate"] == "Learning rate; None: the ``default`` one."
    p = parser()
    assert config_from_args(Toy, p.parse_args([])) == Toy()
    args = p.parse_args(["--steps", "5", "--rate", "0.1", "--mode", "slow", "--verbose", "--no-cache"])
    assert config_from_args(Toy, args) == Toy(steps=5, rate=0.1, mode="slow", verbose=True, cache=False)
    text = p.format_help()
    assert "Steps to take, 100% of them. (default: 3)" in text and "{fast,slow}" in text
    assert "None: the default one." in text and "Say more." in text


def test_bad_values_fail_while_parsing_or_in_post_init(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--mode", "medium"])
    assert "invalid choice: 'medium'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser(types={"steps": positive_int}).parse_args(["--steps", "0"])
    assert "--steps: expected a whole number >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at most 10"):
        config_from_args(Toy, parser().parse_args(["--steps", "11"]))


def test_skip_and_override_fields():
    p = parser(skip=("verbose",), defaults={"steps": 7})
    args = p.parse_args([])
    assert not hasattr(args, "verbose") and args.steps == 7
    assert config_from_args(Toy, args, verbose=True) == Toy(steps=7, verbose=True)
    assert "(default: 7)" in p.format_help()


def test_otoscope_patch_flags_follow_the_patching_configs():
    from otoscope.cli.main import build_parser
    from otoscope.patching.config import PairConfig, SweepConfig

    args = build_parser().parse_args(["patch", "--pair", "p", "--out", "o"])
    assert config_from_args(PairConfig, args) == PairConfig()
    assert config_from_args(SweepConfig, args) == SweepConfig(batch_size=8)  # the command's one own default
