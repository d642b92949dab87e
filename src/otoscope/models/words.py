"""Grouping decoder tokens into words the way Whisper's word timestamps do.

A token that begins with a space starts a new word; a punctuation token is a word of its own for
timing, then joins its neighbour's text (opening marks the next word, closing marks the previous one)
without changing that word's times or probability: punctuation has no sound to time. Tokens that
split a multi-byte character are decoded together so every piece is whole text.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

PREPENDED = "\"'“¿([{-"
"""Punctuation that joins the following word (``( Hello`` → ``(Hello``)."""
APPENDED = "\"'.。,，!！?？:：”)]}、"
"""Punctuation that joins the preceding word (``London .`` → ``London.``)."""


@dataclass
class TokenWord:
    """One word over a stretch of decoder tokens."""

    text: str
    """The word as it appears in the transcript, leading space included (`` London.``)."""
    first: int
    """Index of its first timed token in the text tokens."""
    stop: int
    """One past its last timed token (punctuation joined to it is not timed)."""


def subword_pieces(tokenizer, tokens: list[int]) -> list[tuple[str, list[int]]]:
    """Split ``tokens`` into the shortest runs that each decode to whole characters → ``(text, tokens)``."""
    pieces, run = [], []
    for token in tokens:
        run.append(token)
        text = tokenizer.decode(run, clean_up_tokenization_spaces=False)
        if "\ufffd" not in text:
            pieces.append((text, run))
            run = []
    if run:  # bytes that never complete a character: keep them as one piece
        pieces.append((tokenizer.decode(run, clean_up_tokenization_spaces=False), run))
    return pieces


def _is_punctuation(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and all(c in string.punctuation or c in PREPENDED or c in APPENDED for c in stripped)


def group_words(tokenizer, tokens: list[int]) -> list[TokenWord]:
    """Words of the text ``tokens`` (special tokens already removed), punctuation merged into them."""
    words: list[TokenWord] = []
    position = 0
    for text, run in subword_pieces(tokenizer, tokens):
        starts_word = not words or text.startswith(" ") or _is_punctuation(text) or _is_punctuation(words[-1].text)
        if starts_word:
            words.append(TokenWord(text, position, position + len(run)))
        else:
            words[-1].text += text
            words[-1].stop = position + len(run)
        position += len(run)
    return _merge_punctuation(words)


def _merge_punctuation(words: list[TokenWord]) -> list[TokenWord]:
    # opening marks (" (", ' "') join the word after them, keeping that word's timing
    merged: list[TokenWord] = []
    pending = ""
    for word in words:
        if word.text.startswith(" ") and word.text.strip() and all(c in PREPENDED for c in word.text.strip()):
            pending += word.text
            continue
        if pending:
            word = TokenWord(pending + word.text.lstrip() if word.text.startswith(" ") else pending + word.text,
                             word.first, word.stop)
            pending = ""
        merged.append(word)
    if pending:  # opening marks with nothing after them stay a word of their own
        merged.append(TokenWord(pending, words[-1].first, words[-1].stop))
    # closing marks (".", ",", ")") join the word before them
    out: list[TokenWord] = []
    for word in merged:
        if out and not out[-1].text.endswith(" ") and word.text and all(c in APPENDED for c in word.text):
            out[-1] = TokenWord(out[-1].text + word.text, out[-1].first, out[-1].stop)
        else:
            out.append(word)
    return out
