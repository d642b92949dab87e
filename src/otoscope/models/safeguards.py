"""Whisper's own safeguards: the no-speech probability, the average log-probability, the compression ratio,
a repetition guard that stops a looping greedy decode, and openai/whisper's no-speech skip rule.

What openai/whisper computes (``whisper/decoding.py``, ``whisper/transcribe.py``), rewritten here:

- ``no_speech_prob``: the softmax probability of the no-speech token (``<|nocaptions|>`` in the
  English-only vocabulary, ``<|nospeech|>`` in the multilingual one) at the first decoding step, read
  at the ``<|startoftranscript|>`` position's logits over the full vocabulary, before any suppression.
- ``avg_logprob``: the sum of the chosen tokens' log-probabilities (log-softmax of the suppressed
  logits the argmax ran on), end-of-text included, divided by ``n_text_tokens + 1``.
- ``compression_ratio``: ``len(text bytes) / len(zlib.compress(text bytes))``; loops compress well,
  so a high ratio (openai's threshold is 2.4) flags repeated text.
- The skip rule: a window's text is dropped when ``no_speech_prob > no_speech_threshold``, unless a
  ``logprob_threshold`` is set and ``avg_logprob`` is above it (a confident decode vetoes the skip).

The repetition guard is ours: openai/whisper falls back to sampling at a higher temperature when the
compression ratio is high; greedy decoding here instead stops as soon as the tail of the transcript is
the same short block of tokens repeated, rather than looping to the token limit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from otoscope.errors import OtoscopeError

NO_SPEECH_TOKENS = ("<|nospeech|>", "<|nocaptions|>")
"""The no-speech token of Whisper's multilingual and English-only vocabularies, in that order."""

GATE_NO_SPEECH = "no_speech_threshold"
"""``skipped`` value: the no-speech probability was over its threshold (no log-prob threshold set)."""
GATE_NO_SPEECH_AND_LOGPROB = "no_speech_threshold+logprob_threshold"
"""``skipped`` value: no-speech probability over its threshold and average log-prob at or under its own."""


@dataclass(frozen=True)
class RepetitionGuard:
    """Stop a greedy decode whose tail is one block of ``n ≤ max_ngram`` tokens repeated.

    A row stops when its last ``k * n`` tokens are ``k`` copies of the same ``n`` tokens, for some
    ``n ≤ max_ngram`` with ``k ≥ min_repeats`` and ``k * n ≥ min_tokens``: a single token must repeat
    ``min_tokens`` times, a 4-token phrase ``min_repeats`` times. The tokens decoded so far are kept
    (they are a prefix of what plain greedy decoding would emit).
    """

    max_ngram: int = 8
    """Longest repeated block looked for, in tokens."""
    min_repeats: int = 4
    """Fewest consecutive copies of a block that count as a loop."""
    min_tokens: int = 16
    """Fewest tokens the repeated copies must cover together (so short blocks need more copies)."""

    def __post_init__(self):
        for name in ("max_ngram", "min_repeats", "min_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise OtoscopeError(f"RepetitionGuard.{name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.min_repeats < 2:
            raise OtoscopeError(f"RepetitionGuard.min_repeats must be at least 2 (one copy is no repetition), "
                             f"got {self.min_repeats}.")

    def copies_needed(self, n: int) -> int:
        """Copies of an ``n``-token block that make a loop."""
        return max(self.min_repeats, -(-self.min_tokens // n))

    def looped(self, tokens: list[int]) -> bool:
        """True when ``tokens`` end in a loop (checked after every new token, so only the tail is read)."""
        for n in range(1, self.max_ngram + 1):
            span = n * self.copies_needed(n)
            if len(tokens) < span:
                continue
            tail = tokens[-span:]
            if tail == tail[:n] * (span // n):
                return True
        return False


@dataclass(frozen=True)
class SpeechGates:
    """openai/whisper's rule for dropping a window that holds no speech; both thresholds off by default."""

    no_speech_threshold: float | None = None
    """Drop the window's text when ``no_speech_prob`` is above this (openai's default is 0.6). None: off."""
    logprob_threshold: float | None = None
    """With ``no_speech_threshold``: keep the text anyway when ``avg_logprob`` is above this (openai: -1.0)."""

    def __post_init__(self):
        if self.no_speech_threshold is not None and not 0.0 <= self.no_speech_threshold <= 1.0:
            raise OtoscopeError(f"no_speech_threshold is a probability in [0, 1], got {self.no_speech_threshold}.")
        if self.logprob_threshold is not None and self.logprob_threshold > 0.0:
            raise OtoscopeError(f"logprob_threshold is an average log-probability (≤ 0, e.g. -1.0), "
                             f"got {self.logprob_threshold}.")
        if self.logprob_threshold is not None and self.no_speech_threshold is None:
            raise OtoscopeError("logprob_threshold only vetoes the no-speech skip; set no_speech_threshold too "
                             "(e.g. --no-speech-threshold 0.6 --logprob-threshold -1.0).")

    @property
    def active(self) -> bool:
        """True when a gate can fire."""
        return self.no_speech_threshold is not None

    def fired(self, no_speech_prob: float | None, avg_logprob: float | None) -> str | None:
        """Which gate drops this window (``GATE_*``), or None to keep it."""
        if self.no_speech_threshold is None or no_speech_prob is None:
            return None
        if no_speech_prob <= self.no_speech_threshold:
            return None
        if self.logprob_threshold is None:
            return GATE_NO_SPEECH
        if avg_logprob is not None and avg_logprob > self.logprob_threshold:
            return None
        return GATE_NO_SPEECH_AND_LOGPROB


def no_speech_token(model) -> int | None:
    """Id of the model's no-speech token, or None when its vocabulary has none."""
    special = dict(model.tokenizer.get_added_vocab()) if model.tokenizer is not None else {}
    for token in NO_SPEECH_TOKENS:
        if token in special:
            return int(special[token])
    return None


def no_speech_probs(sot_logits: torch.Tensor, token: int | None) -> list[float | None]:
    """Softmax probability of ``token`` per row from the raw logits at ``<|startoftranscript|>``.

    ``sot_logits`` is ``[batch, vocab]``, read before any token suppression (as openai/whisper does).
    """
    if token is None:
        return [None] * sot_logits.shape[0]
    return sot_logits.float().softmax(-1)[:, token].tolist()


def chosen_logprobs(logits: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Log-softmax of ``logits`` ``[batch, vocab]`` at the ``chosen`` ``[batch]`` ids only: ``[batch]``.

    One logsumexp per row instead of a full log-softmax table, so decoding pays almost nothing for it.
    """
    return logits.gather(1, chosen[:, None]).squeeze(1) - logits.logsumexp(-1)


def average_logprob(sum_logprob: float, n_tokens: int) -> float:
    """openai/whisper's average: the summed log-probs (end-of-text included) over ``n_tokens + 1``."""
    return sum_logprob / (n_tokens + 1)


def compression_ratio(text: str) -> float:
    """``len(bytes) / len(zlib.compress(bytes))`` of the UTF-8 text; higher means more repetitive."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))
