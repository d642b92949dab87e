"""Word timestamps from Whisper's own cross-attention (the method of openai-whisper's ``word_timestamps``).

For each clip: decode greedily (or take a given transcript), run the decoder once more teacher-forced
on ``prefix + text + <|endoftext|>`` while reading the cross-attention of the alignment heads
(:func:`otoscope.models.whisper.alignment_heads`), and turn it into one score per (token, frame):

1. each head's attention is renormalised over the clip's real frames (Whisper's padding never counts),
2. standardised per frame across the tokens (mean 0, std 1), so frames every token attends to stop
   dominating,
3. smoothed along time with a running median of width 7, and averaged over the heads.

Dynamic time warping (:mod:`otoscope.models.dtw`) then finds the monotonic token → frame path of
highest total score; a token starts at the first frame its row of the path reaches, and a word spans
from its first token's start to the next word's first token's start (the last word ends where the
path moves to ``<|endoftext|>``). Tokens are grouped into words by :mod:`otoscope.models.words`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from otoscope.audio.io import Clip, split_windows
from otoscope.errors import OtoscopeError
from otoscope.models.dtw import dtw, median_filter
from otoscope.models.inputs import pad_tokens, whisper_features
from otoscope.models.whisper import alignment_heads
from otoscope.models.words import group_words

if TYPE_CHECKING:
    import pandas as pd

    from otoscope.models.hooked import HookedAudioModel

MEDIAN_FILTER_WIDTH = 7  # frames (140 ms) of running median over each head's attention
QK_SCALE = 1.0  # temperature on the attention scores before renormalising over real frames


@dataclass(frozen=True)
class WordSpan:
    """One word of a transcript and where it is in the audio."""

    word: str
    """The word as in the transcript, with its leading space and attached punctuation (`` London.``)."""
    start: float
    """Start time in seconds from the beginning of the clip."""
    end: float
    """End time in seconds (≥ start)."""
    probability: float
    """Mean probability the decoder gave the word's tokens (over text tokens only)."""


@dataclass
class WordTimestamps:
    """Word spans of one clip."""

    words: list[WordSpan]
    """The words in order; their texts joined give ``text`` (with a leading space)."""
    text: str
    """The transcript that was aligned (leading space stripped)."""
    path: str = ""
    """Where the clip came from."""
    tokens: list[int] = field(default_factory=list)
    """The aligned text token ids."""

    def to_frame(self) -> "pd.DataFrame":
        """One row per word: ``path, word, start, end, probability``."""
        import pandas as pd

        return pd.DataFrame([{"path": self.path, "word": w.word, "start": w.start, "end": w.end,
                              "probability": w.probability} for w in self.words],
                            columns=["path", "word", "start", "end", "probability"])

    def to_dict(self) -> dict:
        """``{"path", "words": [{"word", "start", "end", "probability"}]}``: one line of ``otoscope align --json``."""
        return {"path": self.path, "words": [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                                              "probability": round(w.probability, 4)} for w in self.words]}


def alignment_matrix(patterns: torch.Tensor, n_frames: int, width: int = MEDIAN_FILTER_WIDTH,
                     qk_scale: float = QK_SCALE) -> torch.Tensor:
    """Token-to-frame alignment scores ``[tokens, frames]`` from attention ``[heads, tokens, all_frames]``.

    Steps 1–3 of the module docstring: renormalise over the first ``n_frames`` frames (the
    probabilities' logarithm differs from the scores by a per-row constant, so this equals a softmax of
    ``qk_scale ×`` the scores over the real frames), standardise each frame across tokens, median-filter
    along time, average the heads.
    """
    real = patterns[..., :n_frames].double().clamp_min(1e-30)
    weights = torch.softmax(real.log() * qk_scale, dim=-1)  # [heads, tokens, frames]
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = (weights - mean) / std.clamp_min(1e-12)
    return median_filter(weights, width).mean(0)


def _check_decoder(model: "HookedAudioModel") -> None:
    if not model.has_decoder:
        raise NotImplementedError(f"word timestamps come from a Whisper decoder's cross-attention; "
                                  f"{type(model.model).__name__} has no decoder. Use a Whisper model.")


def _pattern_hooks(heads: list[tuple[int, int]], store: dict[int, torch.Tensor]):
    """Hooks that keep the alignment heads' cross-attention ``[batch, heads, tokens, frames]`` per layer."""
    layers = sorted({layer for layer, _ in heads})

    def keep(layer):
        picked = [h for l, h in heads if l == layer]

        def read(pattern, hook):  # pattern [batch, heads, tokens, frames]
            store[layer] = pattern[:, picked].detach().float()
        return read

    return [(f"decoder.blocks.{layer}.cross_attn.hook_pattern", keep(layer)) for layer in layers]


@torch.no_grad()
def _align_batch(model: "HookedAudioModel", clips: list[Clip], texts: list[str | None], language: str | None,
                 max_new_tokens: int, width: int) -> list[WordTimestamps]:
    from otoscope.models.decode import detect_language, greedy_whisper

    hf = model.model
    features = whisper_features(model.feature_extractor, clips, model.geometry).to(model.device, model.dtype)
    states = hf.get_encoder()(features).last_hidden_state  # [batch, 1500, d_model]
    decoded = None
    if any(t is None for t in texts):
        decoded = greedy_whisper(model, clips, language, max_new_tokens, encoder_states=states)
    if model.english_only:
        languages = [None] * len(clips)
    elif decoded is not None:
        languages = [d.language for d in decoded]
    else:
        languages = [language] * len(clips) if language else detect_language(model, states)
    eot = model.eot
    token_rows = []
    for i, text in enumerate(texts):
        ids = decoded[i].tokens if text is None else model.to_tokens(text if text.startswith(" ") else " " + text)
        token_rows.append([t for t in ids if t < eot])  # text tokens only, as Whisper aligns them
    prefixes = [model.task_prefix(lang) for lang in languages]
    limit = model.config.max_target_positions
    # a decode that hit the token limit never emitted end-of-text: its last token gives way to it
    token_rows = [t if text is not None else t[: limit - len(p) - 1] for t, p, text in zip(token_rows, prefixes, texts)]
    rows = [p + t + [eot] for p, t in zip(prefixes, token_rows)]
    if max(len(r) for r in rows) > limit:
        raise OtoscopeError(f"a transcript is {max(len(r) for r in rows)} tokens with its prefix; Whisper aligns "
                            f"at most {limit} per 30 s window. Shorten the text.")
    ids, _ = pad_tokens(rows, eot)
    store: dict[int, torch.Tensor] = {}
    heads = alignment_heads(model)
    with model.hooks(_pattern_hooks(heads, store)):
        logits = hf(encoder_outputs=(states,), decoder_input_ids=ids.to(model.device), use_cache=False).logits
    patterns = torch.cat([store[layer] for layer in sorted(store)], dim=1)  # [batch, alignment heads, tokens, 1500]
    results = []
    for i, clip in enumerate(clips):
        tokens, first = token_rows[i], len(prefixes[i]) - 1  # row `first` predicts the first text token
        text = model.to_string(tokens).strip()
        if not tokens:
            results.append(WordTimestamps([], text, clip.name, tokens))
            continue
        n_frames = model.geometry.n_frames(len(clip.samples))
        # every real decoder position takes part in the per-frame standardisation, as in Whisper
        matrix = alignment_matrix(patterns[i, :, : len(rows[i])], n_frames, width)
        path = dtw(-matrix[first : first + len(tokens) + 1].cpu().numpy())  # text tokens + end-of-text
        jumps = np.flatnonzero(np.diff(path.rows, prepend=-1))  # first step of each row
        starts = model.geometry.convert(path.cols[jumps], "frames", "seconds")  # [text tokens + 1]
        probs = torch.softmax(logits[i, first : first + len(tokens), :eot].float(), dim=-1)
        token_probs = probs[torch.arange(len(tokens)), torch.tensor(tokens)].tolist()
        words = [WordSpan(w.text, float(starts[w.first]), float(starts[w.stop]),
                          float(np.mean(token_probs[w.first : w.stop])))
                 for w in group_words(model.tokenizer, tokens)]
        results.append(WordTimestamps(words, text, clip.name, tokens))
    return results


def word_timestamps(model: "HookedAudioModel", clips: list[Clip], texts: Sequence[str | None] | None = None, *,
                    batch_size: int = 8, language: str | None = None, max_new_tokens: int = 224,
                    median_width: int = MEDIAN_FILTER_WIDTH, progress: bool = False) -> list[WordTimestamps]:
    """Word spans of each clip, batched. ``texts`` (one per clip, None = decode it) are aligned as given.

    Clips longer than Whisper's 30 s window are split into consecutive windows (as ``transcribe`` does)
    whose words are shifted to the clip's timeline and joined; a given text needs a clip of ≤ 30 s.
    """
    from tqdm.auto import tqdm

    _check_decoder(model)
    if batch_size < 1:
        raise OtoscopeError(f"batch_size must be at least 1, got {batch_size}.")
    texts = [None] * len(clips) if texts is None else list(texts)
    if len(texts) != len(clips):
        raise OtoscopeError(f"got {len(texts)} texts for {len(clips)} clips; pass one per clip (None to decode).")
    window = model.geometry.window_samples
    pieces: list[tuple[int, float, Clip, str | None]] = []
    for i, (clip, text) in enumerate(zip(clips, texts)):
        if text is not None and len(clip.samples) > window:
            raise OtoscopeError(f"{clip.name} is {clip.seconds:.1f} s; aligning a given text needs a clip of at most "
                                f"{window / clip.sample_rate:.0f} s (or leave the text out to decode window by window).")
        for k, piece in enumerate(split_windows(clip, window)):
            pieces.append((i, model.geometry.convert(k * window, "samples", "seconds"), piece, text))
    parts: list[list[tuple[float, WordTimestamps]]] = [[] for _ in clips]
    bar = tqdm(total=len(pieces), desc="align", unit="window", disable=not progress)
    for start in range(0, len(pieces), batch_size):
        batch = pieces[start : start + batch_size]
        aligned = _align_batch(model, [p[2] for p in batch], [p[3] for p in batch], language, max_new_tokens,
                               median_width)
        for (i, offset, _, _), result in zip(batch, aligned):
            parts[i].append((offset, result))
        bar.update(len(batch))
    bar.close()
    out = []
    for clip, windows in zip(clips, parts):
        words = [WordSpan(w.word, w.start + offset, w.end + offset, w.probability) for offset, r in windows for w in r.words]
        out.append(WordTimestamps(words, " ".join(r.text for _, r in windows if r.text), clip.name,
                                  [t for _, r in windows for t in r.tokens]))
    return out
