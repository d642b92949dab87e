"""How a benchmark pair is scored on a model, and whether the model gets the clean run right.

* ``logit_diff``: logit(answer) − logit(wrong) at the token after ``text`` (first token of each word);
* ``logprob``: log P(answer) of the whole teacher-forced ``answer`` (several tokens);
* ``speech_odds``: log-odds that the clip is speech at ``<|startoftranscript|>``,
  log Σ_{t ≠ nospeech} p(t) − log p(nospeech) (Whisper's no-speech probability, on a log-odds scale);
* ``ctc_chars``: an encoder-only CTC model's evidence for the clean word's characters against the
  corrupt word's, inside the word's span: for each character, its best log-probability over the span's
  frames, averaged over the word's characters (the corrupt word's score subtracted).

:func:`session_options` gives the keyword arguments of :func:`otoscope.patching.open_session`;
:func:`check_clean` says whether the model's clean run is right (a pair it gets wrong is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from otoscope.bench.pair import BenchPair
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.patching.session import PatchSession

CTC_VOCAB = ("<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W",
             "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z")
"""Character vocabulary of the English wav2vec2 CTC checkpoints, used when a model ships no tokenizer
(the tiny random CTC models have 32 outputs, as these)."""
MIN_TRANSCRIPT_ACCURACY = 0.8
"""``logprob`` pairs: the share of the transcript's tokens the clean run must predict (teacher-forced argmax).
Whole sentences in espeak-ng voices are rarely transcribed token for token by the small models (one misheard
word in seven would drop the pair), and the metric stays the log-probability of the reference transcript."""


@dataclass
class CleanCheck:
    """Whether a model gets a pair's clean run right."""

    ok: bool
    """True: keep the pair for this model."""
    reason: str = ""
    """Why not, when ``ok`` is False."""


def _first_token(model: HookedAudioModel, word: str) -> list[int]:
    return model.to_tokens(word)[:1]


def _char_ids(model: HookedAudioModel, word: str) -> list[int]:
    """Vocabulary ids of the distinct letters of ``word`` (upper-cased, as the English CTC vocabularies are)."""
    tokenizer = model.tokenizer
    vocab = tokenizer.get_vocab() if tokenizer is not None else {c: i for i, c in enumerate(CTC_VOCAB)}
    size = int(model.config.vocab_size)
    ids = []
    for ch in dict.fromkeys(word.strip().upper()):
        i = vocab.get(ch, vocab.get(ch.lower()))
        if i is not None and i < size:
            ids.append(int(i))
    if not ids:
        raise OtoscopeError(f"no character of {word!r} is in {model.name}'s CTC vocabulary; pick an English CTC model.")
    return ids


def speech_odds_metric(model: HookedAudioModel, sot_index: int):
    """``fn(logits [batch, tokens, vocab]) -> [batch]``: log-odds of speech at position ``sot_index``."""
    from otoscope.models.safeguards import no_speech_token

    token = no_speech_token(model)
    if token is None:
        raise OtoscopeError(f"{model.name} has no no-speech token; the speech/non-speech task needs a Whisper model.")

    def speech_odds(logits: torch.Tensor) -> torch.Tensor:
        row = logits[:, sot_index].float()  # [batch, vocab]
        others = row.clone()
        others[:, token] = float("-inf")
        return torch.logsumexp(others, -1) - row[:, token]

    return speech_odds


def ctc_chars_metric(model: HookedAudioModel, pair: BenchPair):
    """``fn(logits [batch, frames, vocab]) -> [batch]``: clean word's character evidence minus the corrupt word's."""
    start, end = pair.region or (0.0, pair.clean.seconds)
    first, last = (int(v) for v in model.geometry.convert([start, end], "seconds", "frames"))
    clean_ids, wrong_ids = _char_ids(model, pair.answer or ""), _char_ids(model, pair.wrong or "")

    def ctc_chars(logits: torch.Tensor) -> torch.Tensor:
        span = logits[:, first : max(last, first + 1)].float().log_softmax(-1)  # [batch, span frames, vocab]
        best = span.max(dim=1).values  # [batch, vocab]: each character's best frame
        return best[:, clean_ids].mean(-1) - best[:, wrong_ids].mean(-1)

    return ctc_chars


def session_options(model: HookedAudioModel, pair: BenchPair) -> dict:
    """Keyword arguments of :func:`otoscope.patching.open_session` for ``pair`` on ``model`` (metric, answers, text)."""
    if pair.metric == "ctc_chars":
        if model.has_decoder:
            raise OtoscopeError(f"{pair.task} scores CTC logits; {model.name} is a Whisper model (use an encoder-only CTC model).")
        return {"metric": ctc_chars_metric(model, pair)}
    if not model.has_decoder:
        raise OtoscopeError(f"{pair.task} reads Whisper's decoder; {model.name} is encoder-only.")
    options = {"text": pair.text, "prompt": pair.prompt}
    if pair.metric == "logit_diff":
        return {**options, "metric": "logit_diff", "answer": _first_token(model, pair.answer),
                "wrong": _first_token(model, pair.wrong)}
    if pair.metric == "logprob":
        return {**options, "metric": "logprob", "answer": pair.answer, "multi_token": True}
    if pair.metric == "speech_odds":
        sot = len(model.to_tokens(pair.prompt[0])) + 1 if pair.prompt else 0  # <|startofprev|> + prompt, then SOT
        return {**options, "metric": speech_odds_metric(model, sot)}
    raise OtoscopeError(f"unknown bench metric {pair.metric!r}; use one of logit_diff, logprob, speech_odds, ctc_chars.")


def check_clean(model: HookedAudioModel, pair: BenchPair, session: PatchSession) -> CleanCheck:
    """Is the clean run of an open patching ``session`` on ``pair`` right? ``logit_diff``: the answer's first
    token is the argmax where the metric reads it; ``logprob``: at least :data:`MIN_TRANSCRIPT_ACCURACY` of the
    transcript's tokens are (teacher-forced); log-odds metrics: positive. Pairs whose clean and
    corrupt runs score the same are refused too. Reads the session's cached runs: no extra forward pass."""
    clean_value, corrupt_value = session.clean_value, session.corrupt_value
    if abs(clean_value - corrupt_value) < 1e-6:
        return CleanCheck(False, f"clean and corrupt score the same ({clean_value:.4g})")
    if pair.metric in ("speech_odds", "ctc_chars"):
        return CleanCheck(clean_value > 0, "" if clean_value > 0 else f"clean {pair.metric} is {clean_value:.3f} <= 0")
    answer = session.metric.branches[0]  # the answer's token ids, as the metric reads them
    outputs = session.runs()[0].outputs  # [1, rows, positions, vocab]; row 0 is the answer's
    predicted = outputs[0, 0, : len(answer)].argmax(-1).tolist()
    accuracy = sum(p == a for p, a in zip(predicted, answer)) / len(answer)
    needed = 1.0 if pair.metric == "logit_diff" else MIN_TRANSCRIPT_ACCURACY
    if accuracy < needed:
        return CleanCheck(False, f"clean run says {model.to_string(predicted)!r}, not {model.to_string(answer)!r}")
    return CleanCheck(True)
