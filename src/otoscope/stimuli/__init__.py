"""Stimuli: inputs generated or shipped by the project, apart from the analyses that use them.

- :mod:`otoscope.stimuli.speech`: text spoken by espeak-ng with word time spans; sentences and voices.
- :mod:`otoscope.stimuli.words`: the words of a text and :class:`WordSpan` (when a word is spoken).
- :mod:`otoscope.stimuli.normalize`: numbers and symbols spelled out as they are spoken.
- :mod:`otoscope.stimuli.timing`: word spans from espeak-ng's word and phoneme events.
- :mod:`otoscope.stimuli.espeak`: espeak-ng's C library, one fresh process per synthesis.
- :mod:`otoscope.stimuli.pairs`: minimal pairs (:class:`MinimalPair`), their folder format, alignment.
- :mod:`otoscope.stimuli.swaps`: pairs that swap a word (spliced, :mod:`.splice`) or the voice.
- :mod:`otoscope.stimuli.degrade`: pairs that add noise to a clip or replace a span of it.
- :mod:`otoscope.stimuli.prompt_pairs`: pairs for audio-LLMs that reach the prompt (text-context, conflict);
  their prompt templates in :mod:`otoscope.stimuli.templates`.
- :mod:`otoscope.stimuli.noise`: synthetic non-speech (coloured noise, tones, chirps, clicks, hum).
- :mod:`otoscope.stimuli.animals`: CC0 animal sounds bundled with the package.
- :mod:`otoscope.stimuli.sets`: a labelled speech / non-speech set split into fit and held-out halves.
"""

from typing import TYPE_CHECKING

from otoscope._lazy import lazy_exports

# loaded on first use: the modules import otoscope.audio.io (and so torch), which `otoscope --help` must not
__getattr__, __dir__ = lazy_exports(__name__, {
    "add_noise": ".degrade", "replace_span": ".degrade", "espeak_available": ".espeak",
    "spell_out": ".normalize", "FACTORS": ".pairs", "MinimalPair": ".pairs", "align_clips": ".pairs", "load_pair": ".pairs",
    "PromptPair": ".prompt_pairs", "context_pair": ".prompt_pairs", "conflict_pair": ".prompt_pairs",
    "Stimulus": ".sets", "StimulusSet": ".sets", "speech_nonspeech_sets": ".sets", "Speech": ".speech",
    "synthesize": ".speech", "Splice": ".splice", "voice_swap": ".swaps", "word_swap": ".swaps", "WordSpan": ".words",
    "split_words": ".words"})

if TYPE_CHECKING:
    from otoscope.stimuli.degrade import add_noise, replace_span
    from otoscope.stimuli.espeak import espeak_available
    from otoscope.stimuli.normalize import spell_out
    from otoscope.stimuli.pairs import FACTORS, MinimalPair, align_clips, load_pair
    from otoscope.stimuli.prompt_pairs import PromptPair, conflict_pair, context_pair
    from otoscope.stimuli.sets import Stimulus, StimulusSet, speech_nonspeech_sets
    from otoscope.stimuli.speech import Speech, synthesize
    from otoscope.stimuli.splice import Splice
    from otoscope.stimuli.swaps import voice_swap, word_swap
    from otoscope.stimuli.words import WordSpan, split_words

__all__ = ["FACTORS", "MinimalPair", "PromptPair", "Speech", "Splice", "Stimulus", "StimulusSet", "WordSpan", "add_noise",
           "align_clips", "conflict_pair", "context_pair", "espeak_available", "load_pair", "replace_span",
           "speech_nonspeech_sets", "spell_out", "split_words", "synthesize", "voice_swap", "word_swap"]
