"""Greedy transcription: Whisper with a KV cache (batched), CTC by frame-wise argmax."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from otoscope.audio.io import Clip, split_windows
from otoscope.errors import OtoscopeError
from otoscope.models.inputs import pad_tokens, waveform_features, whisper_features
from otoscope.models.safeguards import (RepetitionGuard, SpeechGates, average_logprob, chosen_logprobs,
                                        compression_ratio, no_speech_probs, no_speech_token)

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class Transcription:
    """The greedy transcript of one clip."""

    text: str
    """Decoded text (Whisper's leading space stripped)."""
    tokens: list[int] = field(default_factory=list)
    """Emitted token ids, without the task prefix and end-of-text (Whisper), or collapsed CTC ids."""
    language: str | None = None
    """Language code used (multilingual Whisper), else None."""
    path: str = ""
    """Where the clip came from."""
    finished: bool = True
    """False when decoding stopped before end-of-text: the token limit or the repetition guard."""
    no_speech_prob: float | None = None
    """Whisper: probability of the no-speech token at ``<|startoftranscript|>`` (first step). CTC: None."""
    avg_logprob: float | None = None
    """Whisper: summed log-probs of the chosen tokens, end-of-text included, over ``len(tokens) + 1``. CTC: None."""
    compression_ratio: float | None = None
    """Whisper: text bytes over their zlib-compressed size (openai/whisper flags > 2.4 as looping). CTC: None."""
    repetition_stopped: bool = False
    """True when the repetition guard stopped a looping decode (the text is what came before the stop)."""
    skipped: str | None = None
    """Which no-speech gate emptied the text (``safeguards.GATE_*``), or None when it was kept."""
    windows: list["Transcription"] = field(default_factory=list)
    """The per-30 s-window transcriptions of a longer clip (empty for a single window)."""

    def __str__(self) -> str:
        return self.text


def _suppress_lists(model: HookedAudioModel) -> tuple[list[int], list[int]]:
    gen = getattr(model.model, "generation_config", None)
    suppress = list(getattr(gen, "suppress_tokens", None) or [])
    begin = list(getattr(gen, "begin_suppress_tokens", None) or [])
    return suppress, begin


def detect_language(model: HookedAudioModel, encoder_states: torch.Tensor) -> list[str]:
    """Most likely language code per clip: the decoder's next token after ``<|startoftranscript|>``."""
    gen = model.model.generation_config
    lang_to_id: dict[str, int] = getattr(gen, "lang_to_id", None) or {}
    if not lang_to_id:
        return ["en"] * encoder_states.shape[0]
    ids = torch.full((encoder_states.shape[0], 1), model.token_id("<|startoftranscript|>"), device=encoder_states.device)
    logits = model.model(encoder_outputs=(encoder_states,), decoder_input_ids=ids, use_cache=False).logits[:, -1]
    tokens, token_ids = zip(*lang_to_id.items())
    best = logits[:, list(token_ids)].argmax(-1).tolist()
    return [tokens[i][2:-2] for i in best]


def _cache_kwarg(hf) -> str:
    """The forward's name for the KV cache: ``cache`` in recent transformers, where ``past_key_values`` is
    deprecated (and warns), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(hf.forward).parameters else "past_key_values"


@torch.no_grad()
def greedy_whisper(model: HookedAudioModel, clips: list[Clip], language: str | None, max_new_tokens: int,
                   encoder_states: torch.Tensor | None = None,
                   repetition: RepetitionGuard | None = None) -> list[Transcription]:
    """Decode one batch of ≤30 s clips greedily with a KV cache.

    ``encoder_states`` ``[batch, frames, d_model]`` replaces the encoder's output when given (the
    encoder lens decodes from intermediate layers this way); ``clips`` then only name the rows.
    ``repetition`` stops rows that loop; None decodes exactly as plain greedy decoding does.
    """
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    hf = model.model
    device, dtype = model.device, model.dtype
    if encoder_states is None:
        features = whisper_features(model.feature_extractor, clips, model.geometry).to(device, dtype)
        encoder_states = hf.get_encoder()(features).last_hidden_state  # [batch, 1500, d_model]
    if model.english_only:
        languages = [None] * len(clips)
    else:
        languages = [language] * len(clips) if language else detect_language(model, encoder_states)
    rows = [model.task_prefix(lang) for lang in languages]
    prefix, _ = pad_tokens(rows, model.eot)  # every prefix has the same length
    prefix = prefix.to(device)
    suppress, begin = _suppress_lists(model)
    eot = model.eot
    limit = min(max_new_tokens, model.config.max_target_positions - prefix.shape[1])
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())  # filled in place by each forward
    cache_arg = {_cache_kwarg(hf): cache}
    step_input = prefix
    rows: list[list[int]] = [[] for _ in clips]
    active = list(range(len(clips)))  # original row of each row still decoding
    no_speech: list[float | None] = [None] * len(clips)
    sum_logprob = [0.0] * len(clips)
    looped = [False] * len(clips)
    for step in range(limit):
        out = hf(encoder_outputs=(encoder_states,), decoder_input_ids=step_input, use_cache=True, **cache_arg)
        if step == 0:  # the prefix starts with <|startoftranscript|>: its logits give the no-speech probability
            no_speech = no_speech_probs(out.logits[:, 0], no_speech_token(model))
        logits = out.logits[:, -1].float()  # [active, vocab]
        if suppress:
            logits[:, suppress] = -float("inf")
        if step == 0 and begin:
            logits[:, begin] = -float("inf")
        next_token = logits.argmax(-1)
        for row, token, logprob in zip(active, next_token.tolist(), chosen_logprobs(logits, next_token).tolist()):
            rows[row].append(token)
            sum_logprob[row] += logprob
            looped[row] = repetition is not None and token != eot and repetition.looped(rows[row])
        finished = (next_token == eot) | torch.tensor([looped[row] for row in active], device=next_token.device)
        if bool(finished.all()):
            break
        if bool(finished.any()):
            # finished rows leave the batch: a long transcript no longer drags the short ones along
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            encoder_states, next_token = encoder_states[keep], next_token[keep]
            active = [active[i] for i in keep.tolist()]
        step_input = next_token[:, None]
    results = []
    for i, (clip, lang, row) in enumerate(zip(clips, languages, rows)):
        tokens = row[: row.index(eot)] if eot in row else row
        text = model.to_string(tokens).strip()
        results.append(Transcription(text, tokens, lang, clip.name, eot in row, no_speech[i],
                                     average_logprob(sum_logprob[i], len(tokens)), compression_ratio(text), looped[i]))
    return results


@torch.no_grad()
def greedy_ctc(model: HookedAudioModel, clips: list[Clip]) -> list[Transcription]:
    """Frame-wise argmax of a CTC head, repeats collapsed and blanks dropped."""
    if not model.adapter.can_transcribe:
        raise OtoscopeError(f"{model.name} has no CTC head and tokenizer, so it cannot transcribe; "
                            "load a fine-tuned checkpoint such as wav2vec2-base-960h.")
    values, attention = waveform_features(model.feature_extractor, clips, model.geometry)
    mask = None if attention is None else attention.to(model.device)
    logits = model.model(input_values=values.to(model.device, model.dtype), attention_mask=mask).logits
    results = []
    for i, clip in enumerate(clips):
        ids = logits[i, : model.geometry.n_frames(len(clip.samples))].argmax(-1).tolist()
        text = model.tokenizer.decode(ids)  # the CTC tokenizer groups repeats and drops the pad/blank token
        results.append(Transcription(text.strip(), ids, None, clip.name))
    return results


def transcribe(model: HookedAudioModel, clips: list[Clip], *, batch_size: int = 8, language: str | None = None,
               max_new_tokens: int = 224, progress: bool = False, exact: bool = False,
               repetition: RepetitionGuard | None = None, no_speech_threshold: float | None = None,
               logprob_threshold: float | None = None) -> list[Transcription]:
    """Transcribe clips in batches; Whisper clips over 30 s are split into 30 s windows and re-joined.

    Whisper stops looping decodes with ``repetition`` (default :class:`RepetitionGuard`); ``exact=True``
    turns the guard off, so the tokens are exactly plain greedy decoding's. ``no_speech_threshold`` /
    ``logprob_threshold`` empty the text of windows openai/whisper's rule calls silent (off by default).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise OtoscopeError(f"batch_size must be at least 1, got {batch_size}.")
    gates = SpeechGates(no_speech_threshold, logprob_threshold)
    if exact and (repetition is not None or gates.active):
        raise OtoscopeError("exact=True decodes plain greedy tokens; drop repetition= and the no-speech / "
                            "logprob thresholds, or set exact=False.")
    if model.adapter.decoding != "seq2seq":
        if gates.active:
            raise OtoscopeError(f"{model.name} is a CTC model with no no-speech probability; "
                                "the no-speech / logprob thresholds apply to Whisper only.")
        return [t for start in range(0, len(clips), batch_size) for t in greedy_ctc(model, clips[start : start + batch_size])]
    guard = None if exact else (repetition or RepetitionGuard())
    window = model.geometry.window_samples
    pieces = [(i, piece) for i, clip in enumerate(clips) for piece in split_windows(clip, window)]
    texts: list[list[Transcription]] = [[] for _ in clips]
    bar = tqdm(total=len(pieces), desc="transcribe", unit="window", disable=not progress)
    for start in range(0, len(pieces), batch_size):
        batch = pieces[start : start + batch_size]
        decoded = greedy_whisper(model, [p for _, p in batch], language, max_new_tokens, repetition=guard)
        for (i, _), result in zip(batch, decoded):
            texts[i].append(_gate(result, gates))
        bar.update(len(batch))
    bar.close()
    return [parts[0] if len(parts) == 1 else _join(clip.name, parts) for clip, parts in zip(clips, texts)]


def _gate(result: Transcription, gates: SpeechGates) -> Transcription:
    """Empty the text and tokens of a window the no-speech rule drops; its figures stay."""
    fired = gates.fired(result.no_speech_prob, result.avg_logprob)
    if fired is None:
        return result
    return replace(result, text="", tokens=[], skipped=fired)


def _join(name: str, parts: list[Transcription]) -> Transcription:
    """One transcription of a clip from its 30 s windows.

    The average log-prob pools every window's tokens; the no-speech probability is the lowest window's
    (a clip holds speech when any window does); ``skipped`` is set only when every window was dropped.
    """
    n_tokens = sum(len(p.tokens) + 1 for p in parts if p.skipped is None)
    sums = sum(p.avg_logprob * (len(p.tokens) + 1) for p in parts if p.skipped is None)
    text = " ".join(p.text for p in parts if p.text)
    skipped = parts[0].skipped if all(p.skipped for p in parts) else None
    no_speech = [p.no_speech_prob for p in parts if p.no_speech_prob is not None]
    return Transcription(text, [t for p in parts for t in p.tokens], parts[0].language, name,
                         all(p.finished for p in parts), min(no_speech) if no_speech else None,
                         sums / n_tokens if n_tokens else None, compression_ratio(text),
                         any(p.repetition_stopped for p in parts), skipped, parts)
