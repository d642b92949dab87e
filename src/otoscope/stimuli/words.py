"""Words of a text and when each is spoken."""

from __future__ import annotations

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


def split_words(text: str) -> list[str]:
    """The words of ``text``: split on spaces, punctuation stripped."""
    return [w for w in (t.strip(PUNCTUATION) for t in text.split()) if w]
