"""Pairs that reach an audio-LLM's prompt: text-context pairs and conflict pairs.

* **text-context pair** (:func:`context_pair`): the same audio in both runs, the prompt changes. The
  clean prompt names the word the audio says, the corrupt prompt another word; the answer is the audio's
  word.
  Patching clean into corrupt asks where in the LLM the prompt's word travels.
* **conflict pair** (:func:`conflict_pair`): the prompt asserts one word while the audio says another, in
  both runs and the other way round: clean = audio says ``word`` + prompt asserts ``other``, corrupt = audio
  says ``other`` + prompt asserts ``word``. The answer is the clean audio's word, so the clean score is
  positive when the model listens and negative when it follows the prompt, and gc(k) says at which LLM
  block the decision sits in the audio tokens and at which in the prompt.

Prompts come from a template with a ``{word}`` slot (:data:`~otoscope.stimuli.templates.DEFAULT_TEMPLATE`). Patching needs the two
prompts to tokenize to the same length, so pick words of as many tokens (``otoscope listen`` says which
pair fails and why). Audio comes from given clips (any file, a tone) or from espeak-ng
(:func:`speech_context_pair`, :func:`speech_conflict_pair`). A pair saves in the folder format
:mod:`otoscope.listen.pairs` loads: ``pair.json`` with ``clean``, ``corrupt`` (omitted when the audio is
the same), ``prompt``, ``corrupt_prompt``, ``answer``, ``wrong``, plus ``clean.flac`` / ``corrupt.flac``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.stimuli.pairs import PAIR_FILES, align_clips
from otoscope.stimuli.templates import DEFAULT_TEMPLATE, fill

KINDS = ("text", "conflict")


@dataclass
class PromptPair:
    """A clean and a corrupt (audio, prompt) input for an audio-LLM, and the answers to score."""

    clean: Clip
    """Clean audio."""
    corrupt: Clip
    """Corrupt audio (the clean clip itself for a text-context pair)."""
    prompt: str
    """Clean prompt."""
    corrupt_prompt: str
    """Corrupt prompt."""
    answer: str
    """The word the clean run should answer (the clean audio's word)."""
    wrong: str
    """The other word (scored against ``answer`` as a logit difference)."""
    kind: str
    """``text`` (same audio, the prompt changes) or ``conflict`` (the prompt asserts the other word than the audio)."""
    description: str
    """What differs, in words."""
    details: dict = field(default_factory=dict)
    """The generator's parameters (template, words, text, voice...)."""

    @property
    def same_audio(self) -> bool:
        """True when both runs hear the same samples."""
        return self.clean is self.corrupt or (len(self.clean.samples) == len(self.corrupt.samples)
                                              and np.array_equal(self.clean.samples, self.corrupt.samples))

    def to_json(self) -> dict:
        """The ``pair.json`` object (the listen pair format)."""
        out = {"kind": self.kind, "description": self.description, "clean": "clean.flac",
               "corrupt": None if self.same_audio else "corrupt.flac", "prompt": self.prompt,
               "corrupt_prompt": self.corrupt_prompt, "answer": self.answer, "wrong": self.wrong,
               "seconds": round(self.clean.seconds, 4), "sample_rate": self.clean.sample_rate, "details": self.details}
        return {k: v for k, v in out.items() if v is not None}

    def save(self, out: str | Path) -> list[Path]:
        """Write ``pair.json`` and the audio (16-bit FLAC) into folder ``out``, replaced as a whole (an earlier
        pair folder, see :data:`~otoscope.stimuli.pairs.PAIR_FILES`)."""
        import soundfile as sf

        from otoscope._io import atomic_dir, check_output_dir, write_text_atomic

        out = check_output_dir(out, PAIR_FILES)
        clips = [(self.clean, "clean.flac")] + ([] if self.same_audio else [(self.corrupt, "corrupt.flac")])
        with atomic_dir(out, markers=PAIR_FILES) as folder:
            for clip, name in clips:
                sf.write(str(folder / name), np.clip(clip.samples, -1, 1), clip.sample_rate, format="FLAC",
                         subtype="PCM_16")
            write_text_atomic(folder / "pair.json", json.dumps(self.to_json(), indent=1))
        return [out / name for _, name in clips] + [out / "pair.json"]


def _words(word: str, other: str) -> tuple[str, str]:
    word, other = word.strip(), other.strip()
    if not word or not other:
        raise OtoscopeError("both words must be non-empty; pass WORD=OTHER, e.g. --swap cat=dog.")
    if word.lower() == other.lower():
        raise OtoscopeError(f"'{word}' and '{other}' are the same word; pick another word for the prompt.")
    return word, other


def context_pair(audio: Clip, word: str, other: str, template: str = DEFAULT_TEMPLATE) -> PromptPair:
    """Same ``audio`` (which says ``word``) in both runs; the clean prompt names ``word``, the corrupt ``other``."""
    word, other = _words(word, other)
    return PromptPair(audio, audio, fill(template, word), fill(template, other), word, other, "text",
                      f"same audio ({audio.name}); the prompt says '{word}' → '{other}'",
                      {"template": template, "word": word, "other": other, "audio": audio.name})


def conflict_pair(audio: Clip, other_audio: Clip, word: str, other: str, template: str = DEFAULT_TEMPLATE,
                  align: str = "pad") -> PromptPair:
    """``audio`` says ``word``, ``other_audio`` says ``other``: clean = ``audio`` + a prompt asserting ``other``,
    corrupt = ``other_audio`` + a prompt asserting ``word``; unequal clips are aligned (``align``: pad / trim)."""
    word, other = _words(word, other)
    clean, corrupt, note = align_clips(audio, other_audio, align)
    return PromptPair(clean, corrupt, fill(template, other), fill(template, word), word, other, "conflict",
                      f"audio '{word}' with a prompt asserting '{other}' → audio '{other}' with a prompt asserting "
                      f"'{word}'", {"template": template, "word": word, "other": other, "alignment": note,
                                    "audio": [audio.name, other_audio.name]})


def speech_context_pair(text: str, word: str, other: str, template: str = DEFAULT_TEMPLATE, *, voice: str = "en-us",
                        speed: int = 130) -> PromptPair:
    """:func:`context_pair` on ``text`` spoken by espeak-ng; ``word`` must be one of its words."""
    from otoscope.stimuli.normalize import spell_out
    from otoscope.stimuli.speech import synthesize
    from otoscope.stimuli.words import split_words

    spoken = spell_out(text)
    if word.strip().lower() not in [w.lower() for w in split_words(spoken)]:
        raise OtoscopeError(f"'{word.strip()}' is not a word of the text {text!r}; the audio must say the clean "
                            "prompt's word.")
    speech = synthesize(spoken, voice, speed)
    pair = context_pair(speech.clip, word, other, template)
    pair.details.update(text=text, voice=voice, speed=speed, words=[asdict(w) for w in speech.words])
    return pair


def speech_conflict_pair(text: str, word: str, other: str, template: str = DEFAULT_TEMPLATE, *, voice: str = "en-us",
                         speed: int = 130, align: str = "pad") -> PromptPair:
    """:func:`conflict_pair` on a spliced espeak-ng word swap of ``text`` (``word`` → ``other``,
    :func:`otoscope.stimuli.swaps.word_swap`)."""
    from otoscope.stimuli.swaps import word_swap

    swap = word_swap(text, word, other, voice=voice, speed=speed, align=align)
    pair = conflict_pair(swap.clean, swap.corrupt, word, other, template, align)
    pair.details.update(text=text, voice=voice, speed=speed, swap=swap.description, alignment=swap.alignment)
    return pair
