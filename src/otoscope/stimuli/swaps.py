"""Pairs made by synthesising twice: one word swapped (same voice), or the same words in another voice."""

from __future__ import annotations

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.stimuli.pairs import MinimalPair, align_clips
from otoscope.stimuli.speech import Speech, synthesize
from otoscope.stimuli.words import PUNCTUATION, split_words


def _find_word(words: list[str], word: str) -> int:
    for i, w in enumerate(words):
        if w == word:
            return i
    lowered = [w.lower() for w in words]
    if word.lower() in lowered:
        return lowered.index(word.lower())
    raise OtoscopeError(f"'{word}' is not a word of the text; its words are {words}.")


def _context_before(text: str, index: int) -> str:
    """Whisper-style decoder context: the text up to word ``index``, with a leading space."""
    tokens = text.split()
    i = _token_of_word(tokens, index)
    if i is None:
        return " " + text
    return " " + " ".join(tokens[:i]) if i else ""


def _token_of_word(tokens: list[str], index: int) -> int | None:
    """Position in whitespace ``tokens`` of word ``index`` (tokens of punctuation alone are not words)."""
    count = -1
    for i, tok in enumerate(tokens):
        if tok.strip(PUNCTUATION):
            count += 1
        if count == index:
            return i
    return None


def _aligned(a: Speech | Clip, b: Speech | Clip, align: str):
    ca, cb = (x.clip if isinstance(x, Speech) else x for x in (a, b))
    return align_clips(ca, cb, align)


def word_swap(text: str, old: str, new: str, *, voice: str = "en-us", speed: int = 130,
              align: str = "pad") -> MinimalPair:
    """The same voice says ``text`` and ``text`` with word ``old`` replaced by ``new``."""
    words = split_words(text)
    index = _find_word(words, old)
    if not new.strip() or len(new.split()) != 1:
        raise OtoscopeError(f"the new word must be one word, got {new!r}.")
    tokens = text.split()
    i = _token_of_word(tokens, index)
    if i is not None:
        tokens[i] = tokens[i].replace(words[index], new, 1)
    corrupt_text = " ".join(tokens)
    clean, corrupt = synthesize(text, voice, speed), synthesize(corrupt_text, voice, speed)
    clip_clean, clip_corrupt, note = _aligned(clean, corrupt, align)
    return MinimalPair(clip_clean, clip_corrupt, "word", f"'{words[index]}' → '{new}' ({voice}, {speed} wpm)",
                       clean.words, corrupt.words, note, _context_before(text, index) or None, " " + words[index],
                       " " + new, {"clean_text": text, "corrupt_text": corrupt_text, "voice": voice, "speed": speed,
                                   "word_index": index, "span": [clean.words[index].start, clean.words[index].end]})


def voice_swap(text: str, voice: str = "en-us", other_voice: str = "en-gb", *, speed: int = 130,
               align: str = "pad") -> MinimalPair:
    """``text`` in ``voice`` (clean) and in ``other_voice`` (corrupt)."""
    if voice == other_voice:
        raise OtoscopeError(f"both voices are '{voice}'; pick another voice (espeak-ng --voices=en).")
    clean, corrupt = synthesize(text, voice, speed), synthesize(text, other_voice, speed)
    clip_clean, clip_corrupt, note = _aligned(clean, corrupt, align)
    words = split_words(text)
    return MinimalPair(clip_clean, clip_corrupt, "voice", f"voice {voice} → {other_voice}", clean.words, corrupt.words,
                       note, _context_before(text, len(words) - 1) or None, " " + words[-1], None,
                       {"text": text, "voice": voice, "other_voice": other_voice, "speed": speed})
