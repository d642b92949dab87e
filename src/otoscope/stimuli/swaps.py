"""Pairs made by synthesising twice: one word swapped (same voice), or the same words in another voice.

A word swap is a true minimal pair by default (``splice=True``): the corrupt clip is the clean clip
with only the word replaced by the same word-slot of a rendering of the corrupt sentence
(:mod:`otoscope.stimuli.splice`), so outside the word and its crossfades the two clips are the same
samples, the audio after the word shifted by a stated number of samples. ``splice=False`` keeps the two
whole renderings, which differ everywhere because espeak-ng plans each sentence's prosody as a whole.
"""

from __future__ import annotations

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.stimuli.normalize import spell_out
from otoscope.stimuli.pairs import MinimalPair, align_clips
from otoscope.stimuli.speech import synthesize
from otoscope.stimuli.splice import splice as splice_clips
from otoscope.stimuli.words import Token, WordSpan, split_words, tokens

CROSSFADE = 0.03  # seconds of crossfade on each side of a spliced word, outside it
PHASE_SEARCH = 0.004  # seconds the splice points may move to line the two renderings up in phase


def _find(words: list[Token], phrase: list[str]) -> int:
    """Index of the first run of ``words`` that reads ``phrase`` (exact, else ignoring case)."""
    n = len(phrase)
    for fold in (str, str.lower):
        for i in range(len(words) - n + 1):
            if [fold(w.word) for w in words[i:i + n]] == [fold(p) for p in phrase]:
                return i
    raise OtoscopeError(f"'{' '.join(phrase)}' is not in the text; its words are {[w.word for w in words]}.")


def _phrase(text: str, what: str) -> list[str]:
    words = split_words(spell_out(text))
    if not words:
        raise OtoscopeError(f"the {what} word is empty ({text!r}); pass a word, e.g. --swap London=Paris.")
    return words


def _context(spoken: str, word: Token) -> str | None:
    """Whisper-style decoder context: the spoken text before ``word``, with a leading space (None at the start)."""
    before = spoken[:word.start].rstrip()
    return " " + before if before else None


def word_swap(text: str, old: str, new: str, *, voice: str = "en-us", speed: int = 130, pitch: int = 50,
              align: str = "pad", splice: bool = True, crossfade: float = CROSSFADE) -> MinimalPair:
    """The same voice says ``text`` (clean) and ``text`` with ``old`` replaced by ``new`` (corrupt).

    Numbers and symbols are spelled out (``3`` → ``three``); ``old`` and ``new`` may be several words.
    With ``splice`` (default) the corrupt clip is the clean one with the word replaced and
    ``crossfade`` seconds of crossfade outside it; ``details["splice"]`` states the alignment in samples.
    """
    spoken = spell_out(text)
    words = tokens(spoken)
    old_words, new_words = _phrase(old, "old"), _phrase(new, "new")
    if [w.lower() for w in old_words] == [w.lower() for w in new_words]:
        raise OtoscopeError(f"'{old}' and '{new}' are the same word; swap in a different one.")
    i = _find(words, old_words)
    j = i + len(old_words)
    corrupt_text = spoken[:words[i].start] + " ".join(new_words) + spoken[words[j - 1].end:]
    clean, other = synthesize(spoken, voice, speed, pitch), synthesize(corrupt_text, voice, speed, pitch)
    answer, wrong = " " + " ".join(w.word for w in words[i:j]), " " + " ".join(new_words)
    k = i + len(new_words)  # one past the new words in the corrupt rendering
    details = {"clean_text": text, "spoken_text": spoken, "corrupt_text": corrupt_text, "voice": voice,
               "speed": speed, "pitch": pitch, "word_index": i,
               "span": [clean.words[i].start, clean.words[j - 1].end]}
    description = f"'{answer.strip()}' → '{wrong.strip()}' ({voice}, {speed} wpm)"
    if not splice:
        clip_clean, clip_corrupt, note = align_clips(clean.clip, other.clip, align)
        return MinimalPair(clip_clean, clip_corrupt, "word", description, clean.words, other.words, note,
                           _context(spoken, words[i]), answer, wrong, details)
    rate = clean.clip.sample_rate
    at = lambda seconds: int(round(seconds * rate))  # noqa: E731
    cut = splice_clips(clean.clip.samples, other.clip.samples, (at(clean.words[i].start), at(clean.words[j - 1].end)),
                       (at(other.words[i].start), at(other.words[k - 1].end)), at(crossfade), at(PHASE_SEARCH))
    # the new words fill the spliced span exactly; boundaries between several new words move with it
    new_spans = [w.shifted((cut.span[0] - cut.source_span[0]) / rate) for w in other.words[i:k]]
    new_spans[0] = WordSpan(new_spans[0].word, round(cut.span[0] / rate, 4), new_spans[0].end)
    new_spans[-1] = WordSpan(new_spans[-1].word, new_spans[-1].start, round(cut.span[1] / rate, 4))
    later = lambda t: round((at(t) + cut.shift) / rate, 4)  # noqa: E731  (in samples, as the splice moved them)
    after = [WordSpan(w.word, later(w.start), later(w.end)) for w in clean.words[j:]]
    corrupt_words = clean.words[:i] + new_spans + after
    corrupt = Clip(cut.samples, rate, f"{clean.clip.name} [{answer.strip()} → {wrong.strip()}]")
    clip_clean, clip_corrupt, note = align_clips(clean.clip, corrupt, align)
    note = (f"spliced: samples {cut.clean_span[0]}–{cut.clean_span[1]} of clean replaced by the new word "
            f"({cut.span[1] - cut.span[0]} samples), {cut.crossfade}-sample crossfades outside it, the audio after "
            f"it {cut.shift:+d} samples later; {note}")
    details["splice"] = cut.to_json(rate)
    return MinimalPair(clip_clean, clip_corrupt, "word", description, clean.words, corrupt_words, note,
                       _context(spoken, words[i]), answer, wrong, details)


def voice_swap(text: str, voice: str = "en-us", other_voice: str = "en-gb", *, speed: int = 130, pitch: int = 50,
               align: str = "pad") -> MinimalPair:
    """``text`` in ``voice`` (clean) and in ``other_voice`` (corrupt): the same spoken words, speed and pitch."""
    if voice == other_voice:
        raise OtoscopeError(f"both voices are '{voice}'; pick another voice (espeak-ng --voices=en).")
    spoken = spell_out(text)
    clean, corrupt = synthesize(spoken, voice, speed, pitch), synthesize(spoken, other_voice, speed, pitch)
    clip_clean, clip_corrupt, note = align_clips(clean.clip, corrupt.clip, align)
    words = tokens(spoken)
    return MinimalPair(clip_clean, clip_corrupt, "voice", f"voice {voice} → {other_voice}", clean.words, corrupt.words,
                       note, _context(spoken, words[-1]), " " + words[-1].word, None,
                       {"text": text, "spoken_text": spoken, "voice": voice, "other_voice": other_voice,
                        "speed": speed, "pitch": pitch})
