"""What counts as a hallucination, and decoding cached encoder states under a steering direction."""

from __future__ import annotations

import re
from typing import Sequence

import torch

from otoscope.steer.apply import steering
from otoscope.steer.direction import Direction
from otoscope.steer.encoded import Encoded

# A bracketed or parenthesised tag ("[Music]", "(dog barking)"), also one the token limit left unclosed.
_TAG = re.compile(r"\[[^\]]*(\]|$)|\([^)]*(\)|$)|\*[^*]*(\*|$)")
_MUSIC = re.compile("[♪♫♬♩]")
_WORD = re.compile(r"\w", re.UNICODE)


def strip_tags(text: str) -> str:
    """``text`` without bracketed/parenthesised/starred tags and music symbols."""
    return _MUSIC.sub(" ", _TAG.sub(" ", text)).strip()


def is_hallucination(text: str) -> bool:
    """True when a transcript of non-speech still contains a word after tags and music symbols are removed."""
    return bool(_WORD.search(strip_tags(text)))


def hallucination_rate(texts: Sequence[str]) -> float:
    """Fraction of ``texts`` that are hallucinations (0 for an empty list)."""
    return sum(map(is_hallucination, texts)) / len(texts) if texts else 0.0


def clip_wers(references: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
    """Per-clip WER (Whisper's basic normaliser; see :func:`otoscope.lens.encoder.word_error_rate`)."""
    from otoscope.lens.encoder import word_error_rate

    return [word_error_rate(r, h) for r, h in zip(references, hypotheses)]


def mean_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Mean per-clip WER (:func:`clip_wers`; 0 for no clips)."""
    wers = clip_wers(references, hypotheses)
    return sum(wers) / len(wers) if wers else 0.0


def decode(model, encoded: Encoded, direction: Direction | None = None, alpha: float | None = None,
           rows: Sequence[int] | None = None, batch_size: int = 16, max_new_tokens: int = 48) -> list[str]:
    """Greedy transcripts of ``encoded`` (or its ``rows``) from the cached encoder states, optionally steered.

    Only decoder-side, ungated directions make sense here (the encoder does not run); gates are applied
    by the caller from the cached clip means.
    """
    from otoscope.models.decode import greedy_whisper

    if direction is not None and (direction.gate is not None or not direction.hook.startswith("decoder.")):
        raise ValueError("decode() from cached encoder states takes an ungated decoder direction.")
    rows = list(range(len(encoded.clips))) if rows is None else list(rows)
    texts: list[str] = []
    for start in range(0, len(rows), batch_size):
        idx = rows[start : start + batch_size]
        clips = [encoded.clips[i] for i in idx]
        states = encoded.states[idx].to(model.device, model.dtype)
        with torch.no_grad():
            if direction is None:
                out = greedy_whisper(model, clips, None, max_new_tokens, encoder_states=states)
            else:
                with steering(model, direction, alpha):
                    out = greedy_whisper(model, clips, None, max_new_tokens, encoder_states=states)
        texts += [t.text for t in out]
    return texts
