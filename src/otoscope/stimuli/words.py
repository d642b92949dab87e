"""Words of a text and when each is spoken."""

from __future__ import annotations

import re
from dataclasses import dataclass

PUNCTUATION = ".,;:!?\"'()"  # stripped from the ends of a written word


@dataclass(frozen=True)
class WordSpan:
    """One word and when it is spoken."""

    word: str
    """The word as written (punctuation stripped)."""
    start: float
    """Start in seconds from the beginning of the clip."""
    end: float
    """End in seconds."""

    def shifted(self, seconds: float) -> "WordSpan":
        """The same word ``seconds`` later."""
        return WordSpan(self.word, round(self.start + seconds, 4), round(self.end + seconds, 4))


@dataclass(frozen=True)
class Token:
    """A word of a text and where it is written."""

    word: str
    """The word, punctuation stripped from its ends."""
    start: int
    """Index of its first character in the text."""
    end: int
    """Index one past its last character."""


def tokens(text: str) -> list[Token]:
    """The words of ``text`` with their character positions: whitespace-separated, punctuation stripped
    from the ends, and only those with a letter or digit (a lone dash is not a word)."""
    out = []
    for match in re.finditer(r"\S+", text):
        raw = match.group()
        word = raw.strip(PUNCTUATION)
        if any(c.isalnum() for c in word):
            start = match.start() + raw.index(word)
            out.append(Token(word, start, start + len(word)))
    return out


def split_words(text: str) -> list[str]:
    """The words of ``text``: split on spaces, punctuation stripped (see :func:`tokens`)."""
    return [t.word for t in tokens(text)]
