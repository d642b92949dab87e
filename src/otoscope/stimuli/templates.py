"""Prompt templates for audio-LLM pairs: a prompt with one ``{word}`` slot (no torch: the CLI checks templates
while parsing)."""

from __future__ import annotations

import string

from otoscope.errors import OtoscopeError

DEFAULT_TEMPLATE = "The speaker says the word {word}. Which word does the speaker say? Answer with one word."


def fill(template: str, word: str) -> str:
    """``template`` with its ``{word}`` slot filled; one-line errors for a template without one slot."""
    try:
        slots = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise OtoscopeError(f"the prompt template {template!r} does not parse ({err}); write {{word}} where the word "
                            "goes and double other braces ({{ }}).") from None
    if slots != ["word"]:
        raise OtoscopeError(f"the prompt template needs exactly one {{word}} slot (it has {slots or 'none'}); write "
                            "it where the word goes, e.g. 'Is the word {word}?'")
    return template.format(word=word)
