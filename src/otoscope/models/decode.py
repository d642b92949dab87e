"""Greedy transcription: Whisper with a KV cache (batched), CTC by frame-wise argmax."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from otoscope.audio.io import Clip, split_windows
from otoscope.errors import OtoscopeError
from otoscope.models.inputs import pad_tokens, waveform_features, whisper_features


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
    """False when the token limit stopped decoding before end-of-text (the text is cut short)."""

    def __str__(self) -> str:
        return self.text


def _suppress_lists(model) -> tuple[list[int], list[int]]:
    gen = getattr(model.model, "generation_config", None)
    suppress = list(getattr(gen, "suppress_tokens", None) or [])
    begin = list(getattr(gen, "begin_suppress_tokens", None) or [])
    return suppress, begin


def detect_language(model, encoder_states: torch.Tensor) -> list[str]:
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
def greedy_whisper(model, clips: list[Clip], language: str | None, max_new_tokens: int,
                   encoder_states: torch.Tensor | None = None) -> list[Transcription]:
    """Decode one batch of ≤30 s clips greedily with a KV cache.

    ``encoder_states`` ``[batch, frames, d_model]`` replaces the encoder's output when given (the
    encoder lens decodes from intermediate layers this way); ``clips`` then only name the rows.
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
    for step in range(limit):
        out = hf(encoder_outputs=(encoder_states,), decoder_input_ids=step_input, use_cache=True, **cache_arg)
        logits = out.logits[:, -1].float()  # [active, vocab]
        if suppress:
            logits[:, suppress] = -float("inf")
        if step == 0 and begin:
            logits[:, begin] = -float("inf")
        next_token = logits.argmax(-1)
        for row, token in zip(active, next_token.tolist()):
            rows[row].append(token)
        finished = next_token == eot
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
    for clip, lang, row in zip(clips, languages, rows):
        tokens = row[: row.index(eot)] if eot in row else row
        results.append(Transcription(model.to_string(tokens).strip(), tokens, lang, clip.name, eot in row))
    return results


@torch.no_grad()
def greedy_ctc(model, clips: list[Clip]) -> list[Transcription]:
    """Frame-wise argmax of a CTC head, repeats collapsed and blanks dropped."""
    if not hasattr(model.model, "lm_head") or model.tokenizer is None:
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


def transcribe(model, clips: list[Clip], *, batch_size: int = 8, language: str | None = None,
               max_new_tokens: int = 224, progress: bool = False) -> list[Transcription]:
    """Transcribe clips in batches; Whisper clips over 30 s are split into 30 s windows and re-joined."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise OtoscopeError(f"batch_size must be at least 1, got {batch_size}.")
    if not model.is_whisper:
        return [t for start in range(0, len(clips), batch_size) for t in greedy_ctc(model, clips[start : start + batch_size])]
    window = model.geometry.window_samples
    pieces = [(i, piece) for i, clip in enumerate(clips) for piece in split_windows(clip, window)]
    texts: list[list[Transcription]] = [[] for _ in clips]
    bar = tqdm(total=len(pieces), desc="transcribe", unit="window", disable=not progress)
    for start in range(0, len(pieces), batch_size):
        batch = pieces[start : start + batch_size]
        for (i, _), result in zip(batch, greedy_whisper(model, [p for _, p in batch], language, max_new_tokens)):
            texts[i].append(result)
        bar.update(len(batch))
    bar.close()
    return [Transcription(" ".join(p.text for p in parts if p.text), [t for p in parts for t in p.tokens],
                          parts[0].language, clip.name, all(p.finished for p in parts)) for clip, parts in zip(clips, texts)]
