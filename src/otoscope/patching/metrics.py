"""Patching metrics: what a run's outputs are scored by, and which outputs that needs.

A metric says which decoder rows to run and which next-token positions to read (its :class:`Readout`),
and turns the logits read there, ``[batch, rows, positions, vocab]``, into one number per batch row.
Reading only those positions lets the engine skip the unembedding everywhere else.

* ``logit_diff``: logit(answer) − logit(wrong) at the next position. For answers of several tokens
  (``multi_token=True``) it is log P(answer) − log P(wrong), each summed over the answer's tokens under
  teacher forcing (one decoder row per answer); for single tokens the two definitions coincide.
* ``logprob`` / ``prob``: log P(answer) and P(answer). ``accuracy``: 1 when every answer token is the argmax.
* ``kl``: KL(clean ‖ run) of the next-token distribution, in nats (0 on the clean run).
* a callable ``fn(outputs) -> [batch]``: Whisper logits ``[batch, tokens, vocab]`` for the context row,
  or an encoder-only model's outputs (CTC logits ``[batch, frames, vocab]``, or hidden states).

Every score is also reported normalised, ``(patched − corrupt) / (clean − corrupt)``: 1 = the clean
behaviour, 0 = the corrupt one, whichever the direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from otoscope.errors import OtoscopeError


@dataclass
class Readout:
    """Which decoder inputs a run needs and which of its logits the metric reads."""

    rows: torch.Tensor | None
    """``[rows, tokens]`` decoder ids (context + teacher-forced answer tokens); None: encoder-only model."""
    positions: torch.Tensor | None
    """``[rows, positions]`` positions whose next-token logits are read; None: the full outputs."""


class Metric:
    """Base class: ``readout(context)`` says what to run, ``score(outputs)`` gives ``[batch]`` values."""

    name = "metric"
    differentiable = True

    def readout(self, context: list[int] | None) -> Readout:
        """The decoder rows and read positions for a run whose decoder context is ``context``."""
        raise NotImplementedError

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        """``[batch]`` metric values from the outputs the readout asked for."""
        raise NotImplementedError

    def bind_clean(self, clean_outputs: torch.Tensor) -> None:
        """Remember what the clean run produced (KL needs its distribution)."""


class TokenMetric(Metric):
    """The built-in next-token metrics on Whisper's decoder."""

    def __init__(self, name: str, answer: list[int] | None, wrong: list[int] | None, pad_id: int):
        self.name = name
        self.differentiable = name != "accuracy"
        branches = [] if name == "kl" else [answer] + ([wrong] if name == "logit_diff" else [])
        self.branches: list[list[int]] = branches
        self.shared_row = all(len(b) == 1 for b in branches)  # every answer is one token: one row suffices
        self.pad_id = pad_id
        self.reference: torch.Tensor | None = None  # clean next-token log-probs [vocab] (kl)

    def readout(self, context):
        last = len(context) - 1
        if self.shared_row:
            return Readout(torch.tensor([context]), torch.tensor([[last]]))
        width = max(len(b) for b in self.branches)
        rows = [context + b[:-1] + [self.pad_id] * (width - len(b)) for b in self.branches]
        positions = [[last + min(i, len(b) - 1) for i in range(width)] for b in self.branches]
        return Readout(torch.tensor(rows), torch.tensor(positions))

    def _branch_logprobs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Summed log-probability of each answer: ``[batch, branches]``."""
        logp = outputs.float().log_softmax(-1)  # [batch, rows, positions, vocab]
        values = []
        for r, branch in enumerate(self.branches):
            row = 0 if self.shared_row else r
            picked = logp[:, row, torch.arange(len(branch), device=logp.device), torch.tensor(branch, device=logp.device)]  # [batch, len(branch)]
            values.append(picked.sum(-1))
        return torch.stack(values, dim=1)

    def score(self, outputs):
        # outputs: [batch, rows, positions, vocab]
        if self.name == "kl":
            if self.reference is None:
                raise AssertionError("kl metric used before bind_clean")
            logp = outputs[:, 0, 0].float().log_softmax(-1)  # [batch, vocab]
            ref = self.reference.to(logp.device)
            return (ref.exp() * (ref - logp)).sum(-1).clamp_min(0)
        if self.name == "logit_diff" and self.shared_row:
            logits = outputs[:, 0, 0].float()  # [batch, vocab]
            return logits[:, self.branches[0][0]] - logits[:, self.branches[1][0]]
        if self.name == "accuracy":
            answer = self.branches[0]
            row = outputs[:, 0, : len(answer)].argmax(-1)  # [batch, len(answer)]
            return (row == torch.tensor(answer, device=row.device)).all(-1).float()
        lp = self._branch_logprobs(outputs)
        if self.name == "logit_diff":
            return lp[:, 0] - lp[:, 1]
        return lp[:, 0] if self.name == "logprob" else lp[:, 0].exp()

    def bind_clean(self, clean_outputs):
        if self.name == "kl":
            self.reference = clean_outputs[0, 0, 0].detach().float().log_softmax(-1)


class CallableMetric(Metric):
    """A user function on the model's outputs, returning one value per batch row."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        self.fn = fn
        self.name = getattr(fn, "__name__", "custom")

    def readout(self, context):
        return Readout(None if context is None else torch.tensor([context]), None)

    def score(self, outputs):
        value = self.fn(outputs)
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float32)
        batch = outputs.shape[0]
        if value.ndim == 0 and batch > 1:  # a per-example function: call it row by row
            value = torch.stack([torch.as_tensor(self.fn(outputs[i : i + 1])).reshape(()) for i in range(batch)])
        value = value.reshape(-1)
        if value.numel() != batch:
            raise OtoscopeError(f"metric {self.name} returned {value.numel()} values for a batch of {batch}; "
                                "return one value per batch row (shape [batch]).")
        return value.float()


def describe_tokens(model, ids: Sequence[int]) -> str:
    """``[' New', ' York'] = [968, 3303]``: how a text tokenised, for error messages."""
    pieces = [model.to_string([i]) for i in ids]
    return f"{pieces} = {list(ids)}"


def _tokens(model, value, what: str, multi_token: bool) -> list[int]:
    if isinstance(value, str):
        ids = model.to_tokens(value)
        if not ids:
            raise OtoscopeError(f"{what} {value!r} tokenises to nothing; pass the word with its leading space.")
    else:
        ids = [int(i) for i in value]
        if not ids:
            raise OtoscopeError(f"{what} is an empty token list.")
    vocab = model.config.vocab_size
    if any(i < 0 or i >= vocab for i in ids):
        raise OtoscopeError(f"{what} token ids {ids} are outside the vocabulary (0..{vocab - 1}).")
    if len(ids) > 1 and not multi_token:
        hint = " Whisper words start with a space (' London')." if isinstance(value, str) and not value.startswith(" ") else ""
        raise OtoscopeError(f"{what} {value!r} is {len(ids)} tokens for {model.name} ({describe_tokens(model, ids)}); "
                            f"pick a one-token {what} or pass multi_token=True (CLI --multi-token) to score the "
                            f"whole sequence.{hint}")
    return ids


def make_metric(model, metric, answer=None, wrong=None, multi_token: bool = False) -> Metric:
    """Build a :class:`Metric` from a name or callable, tokenising ``answer`` and ``wrong`` for ``model``."""
    if isinstance(metric, Metric):
        return metric
    if callable(metric):
        return CallableMetric(metric)
    if not model.has_decoder:
        raise OtoscopeError(f"metric '{metric}' reads Whisper's next-token logits, but {model.name} is encoder-only; "
                            "pass a callable metric fn(outputs) -> [batch] (outputs: CTC logits [batch, frames, vocab]).")
    if metric != "kl" and answer is None:
        raise OtoscopeError(f"metric '{metric}' needs an answer (the clean run's next token, e.g. answer=' London').")
    if metric == "logit_diff" and wrong is None:
        raise OtoscopeError("metric 'logit_diff' needs a wrong answer too (e.g. wrong=' Paris'), or use metric='logprob'.")
    answer_ids = None if answer is None else _tokens(model, answer, "answer", multi_token)
    wrong_ids = None if wrong is None or metric != "logit_diff" else _tokens(model, wrong, "wrong", multi_token)
    if answer_ids is not None and answer_ids == wrong_ids:
        raise OtoscopeError(f"answer and wrong tokenise to the same ids {answer_ids}; the difference would be 0.")
    return TokenMetric(metric, answer_ids, wrong_ids, model.eot)


def normalise(value, clean: float, corrupt: float):
    """``(value − corrupt) / (clean − corrupt)``; NaN when clean and corrupt score the same."""
    import numpy as np

    span = clean - corrupt
    value = np.asarray(value, dtype=np.float64)
    if not np.isfinite(span) or abs(span) < 1e-9:
        return np.full_like(value, np.nan)
    return (value - corrupt) / span
