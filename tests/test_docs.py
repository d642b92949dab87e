"""docs/hooks.md lists every hook point of every architecture (names templated with {L})."""

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).parents[1] / "docs" / "hooks.md").read_text()


@pytest.mark.parametrize("name", ["tiny-random-whisper", "tiny-random-wav2vec2", "tiny-random-wav2vec2-stable",
                                  "tiny-random-hubert", "tiny-random-wavlm", "tiny-random-qwen2audio",
                                  "tiny-random-voxtral", "tiny-random-musicgen"])
def test_every_hook_is_documented(name):
    import otoscope

    model = otoscope.load(name)
    for hook, point in model.points.items():
        templated = re.sub(r"blocks\.\d+\.", "blocks.{L}.", hook)
        assert f"`{templated}` | `{point.shape}`" in DOC, templated


def _shell_commands(text: str) -> list[str]:
    """Every ``otoscope …`` line of the ```sh blocks, continuation lines joined, comments, redirections and
    optional ``[…]`` parts removed."""
    commands, blocks, inside, lang = [], [], False, ""
    for line in text.splitlines():  # fences, in order: an opening one names its language (or none)
        if line.startswith("```"):
            if inside and lang in ("", "sh"):
                blocks.append(current)
            inside, lang, current = not inside, line[3:].strip(), ""
        elif inside:
            current += line + "\n"
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#\s.*$", "", line)
            line = re.sub(r"\[[^\]]*\]", "", line)
            line = re.split(r"\s[>|]\s", line)[0].strip()
            if line.startswith("otoscope "):
                commands.append(line)
    return commands


ROOT = Path(__file__).parents[1]
DOCS_WITH_COMMANDS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
                                           if _shell_commands(p.read_text()))]
"""README and every doc whose sh blocks show an ``otoscope`` command (new docs join automatically)."""


@pytest.mark.parametrize("doc", DOCS_WITH_COMMANDS)
def test_documented_commands_parse(doc):
    """Each command the docs show uses flags the CLI has (parsed by the real parser, nothing run)."""
    import shlex

    from otoscope.cli.main import build_parser

    commands = _shell_commands((Path(__file__).parents[1] / doc).read_text())
    assert commands, f"{doc} shows no otoscope command"
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as err:
            raise AssertionError(f"{doc}: {command!r} does not parse") from err
