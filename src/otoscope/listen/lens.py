"""The audio-LLM logit lens (AudioLens style): what each LLM block's residual stream already says.

Block L's output residual (``llm.blocks.{L}.hook_resid_post``) is read through the LLM's own final norm
and unembedding (:meth:`AudioLLMAdapter.readout`):

* at the readout position (the last prompt position): the rank and probability of the answer's first
  token, and the top tokens — when does the model "know" the answer?
* at each real audio token: the top token and its probability — what do audio positions read as text?

The last block's reading is the model's own next-token distribution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

TOP_K = 5


@dataclass
class LensLayer:
    """What block ``layer``'s output says at the readout position."""

    layer: int
    """LLM block index."""
    answer_rank: int | None
    """Rank of the answer token (0 = top), or None without an answer."""
    answer_prob: float | None
    """Its probability."""
    top_tokens: list[int]
    """The :data:`TOP_K` most likely next tokens."""
    top_probs: list[float]
    """Their probabilities."""


@dataclass
class LensResult:
    """The logit lens over every LLM block for one clip and prompt."""

    model: str
    """Model name."""
    answer: int | None
    """The answer token scored (None when not given)."""
    layers: list[LensLayer]
    """One entry per LLM block."""
    audio_top: torch.Tensor
    """``[layers, audio_tokens]`` top token read out at each real audio token."""
    audio_prob: torch.Tensor
    """``[layers, audio_tokens]`` its probability."""
    audio_seconds: list[tuple[float, float]] = field(default_factory=list)
    """Time span of each of those audio tokens."""
    decode: object = None
    """Token id → text (the tokenizer's), or None."""

    def _text(self, token: int) -> str | None:
        return None if self.decode is None else self.decode([int(token)])

    def to_json(self) -> dict:
        """Plain-JSON form, with token texts where a tokenizer is known."""
        layers = []
        for layer in self.layers:
            row = asdict(layer)
            row["top_text"] = [self._text(t) for t in layer.top_tokens]
            layers.append(row)
        return {"model": self.model, "answer": self.answer, "answer_text": None if self.answer is None else self._text(self.answer),
                "layers": layers, "audio_seconds": [list(map(float, s)) for s in self.audio_seconds],
                "audio_top": self.audio_top.tolist(), "audio_prob": [[round(p, 6) for p in r] for r in self.audio_prob.tolist()]}

    def to_frame(self):
        """One row per LLM block (readout position)."""
        import pandas as pd

        return pd.DataFrame([asdict(layer) for layer in self.layers])


@torch.no_grad()
def audio_llm_lens(model: "HookedAudioModel", audio, prompt: str | None = None, *, answer=None, input_ids=None,
                   top_k: int = TOP_K) -> LensResult:
    """The logit lens of every LLM block for one clip and prompt; ``answer``: text or token ids (first token scored)."""
    adapter = model.llm_adapter
    if adapter is None:
        raise OtoscopeError(f"{model.name} is not an audio-LLM; for Whisper use otoscope.lens.")
    names = [f"llm.blocks.{k}.hook_resid_post" for k in range(model.n_llm_layers)]
    inputs = model.prepare(audio, prompt, input_ids=input_ids)
    if len(inputs.clips) != 1:
        raise OtoscopeError("the audio-LLM lens reads one clip at a time; pass a single clip.")
    _, cache = model.run_with_cache(inputs, names_filter=names)
    pos = inputs.positions[0]
    answer_id = None
    if answer is not None:
        ids = adapter.answer_ids(answer)
        if not ids:
            raise OtoscopeError(f"the answer {answer!r} has no tokens; give a non-empty word.")
        answer_id = ids[0]
    read = adapter.readout("llm")  # the LLM's final RMS norm, then lm_head
    audio = pos.audio[: pos.real_audio]
    layers, audio_top, audio_prob = [], [], []
    for k, name in enumerate(names):
        resid = cache[name][0]  # [tokens, d_llm]
        probs = read(resid[[pos.readout] + audio]).float().softmax(-1)  # [1 + audio_tokens, vocab]
        readout = probs[0]
        rank = prob = None
        if answer_id is not None:
            prob = float(readout[answer_id])
            rank = int((readout > readout[answer_id]).sum())
        top = readout.topk(min(top_k, readout.numel()))
        layers.append(LensLayer(k, rank, prob, top.indices.tolist(), [float(p) for p in top.values]))
        best = probs[1:].max(-1)
        audio_top.append(best.indices)
        audio_prob.append(best.values)
    decode = None if model.tokenizer is None else (lambda ids: model.tokenizer.decode(ids))
    spans = [tuple(s) for s in pos.audio_seconds[: pos.real_audio]]
    return LensResult(model.name, answer_id, layers, torch.stack(audio_top), torch.stack(audio_prob), spans, decode)
