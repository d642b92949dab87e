"""What to patch and how: one validated dataclass shared by the Python API and ``otoscope patch``."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, Literal, Sequence, Union

from otoscope.errors import OtoscopeError

Direction = Literal["denoising", "noising"]
DIRECTIONS = ("denoising", "noising")
METHODS = ("exact", "attribution", "attribution-ig")
BUILTIN_METRICS = ("logit_diff", "logprob", "prob", "accuracy", "kl")
ALIGN = ("pad", "trim", "error")

MetricLike = Union[str, Callable]


def check_ig_steps(steps) -> int:
    """``steps`` as an int, or a one-line error unless it is a whole number >= 1."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or int(steps) != steps or steps < 1:
        raise OtoscopeError(f"ig_steps must be a whole number >= 1, got {steps}.")
    return int(steps)


@dataclass(frozen=True)
class PatchConfig:
    """One activation-patching sweep: which activations, cut into which cells, scored how."""

    hooks: Union[str, Sequence[str]] = "encoder.blocks.*.hook_resid_post"
    """Hook points to patch: a name, a glob or a list of them (``otoscope hooks MODEL`` lists them)."""
    window: float | None = 10
    """Frames (or seconds, see ``window_unit``) per cell on the frame axis. Windows tile the *real* frames
    only. None: one cell per hook covering every position (for Whisper all 1500 frames, padding included)."""
    stride: float | None = None
    """Step between window starts, in ``window_unit``; None: the window (no overlap)."""
    window_unit: Literal["frames", "seconds"] = "frames"
    """Unit of ``window`` and ``stride``: encoder frames (20 ms) or seconds."""
    token_window: int | None = 1
    """Decoder positions per cell for hooks on the token axis (1: one cell per token); None: all at once."""
    heads: bool = False
    """One cell per attention head (hooks with a heads axis: ``hook_q/k/v/z``, ``hook_pattern``)."""
    neurons: Sequence[int] | None = None
    """One cell per listed index of the last axis (MLP neurons for ``mlp.hook_pre/hook_post``); None: all."""
    direction: Direction = "denoising"
    """``denoising``: clean activations into the corrupt run (sufficiency); ``noising``: corrupt activations
    into the clean run (necessity)."""
    method: Literal["exact", "attribution", "attribution-ig"] = "exact"
    """``exact``: run the model once per cell (batched, from the patched layer on); ``attribution``: the
    first-order estimate from one forward and one backward pass for all cells; ``attribution-ig``: the same
    estimate with the gradient averaged over ``ig_steps`` runs on inputs interpolated between the two runs
    (integrated gradients, EAP-IG): ``ig_steps`` forward and backward passes for all cells."""
    ig_steps: int = 5
    """``attribution-ig``: points on the path from the run patched into (0) to the run patched from (1), at the
    midpoints of ``ig_steps`` equal intervals; the gradient is averaged over them. Ignored by the other methods."""
    metric: MetricLike = "logit_diff"
    """``logit_diff``, ``logprob``, ``prob``, ``accuracy``, ``kl`` (to the clean next-token distribution), or
    a callable ``fn(outputs) -> [batch]`` on the model's outputs (Whisper: logits ``[batch, tokens, vocab]``;
    CTC models: ``[batch, frames, vocab]``)."""
    answer: Union[str, Sequence[int], None] = None
    """The clean run's answer (text such as ``" London"``, or token ids); needed by every built-in metric but KL."""
    wrong: Union[str, Sequence[int], None] = None
    """The corrupt run's answer, for ``logit_diff``."""
    multi_token: bool = False
    """Allow answers of several tokens, scored by their summed log-probabilities under teacher forcing."""
    batch_size: int = 8
    """Cells per forward pass (exact method)."""
    align: Literal["pad", "trim", "error"] = "pad"
    """Clips of unequal length: ``pad`` the shorter with trailing silence, ``trim`` the longer, or ``error``."""

    def __post_init__(self):
        if isinstance(self.hooks, str):
            if not self.hooks.strip():
                raise OtoscopeError("hooks is empty; pass a hook name or glob such as 'encoder.blocks.*.hook_resid_post'.")
        elif not list(self.hooks):
            raise OtoscopeError("hooks is an empty list; pass at least one hook name or glob.")
        for name in ("window", "stride"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise OtoscopeError(f"{name} must be a positive finite number, got {value}; use None for "
                                    + ("one cell over all positions." if name == "window" else "no overlap."))
        if self.stride is not None and self.window is None:
            raise OtoscopeError("stride needs a window; set window (frames or seconds) or drop stride.")
        if self.window_unit not in ("frames", "seconds"):
            raise OtoscopeError(f"window_unit must be 'frames' or 'seconds', got {self.window_unit!r}.")
        if self.window_unit == "frames":
            for name in ("window", "stride"):
                value = getattr(self, name)
                if value is not None and float(value) != int(value):
                    raise OtoscopeError(f"{name}={value} is not a whole number of frames; use window_unit='seconds'.")
        if self.token_window is not None and (int(self.token_window) != self.token_window or self.token_window < 1):
            raise OtoscopeError(f"token_window must be a positive whole number of tokens or None, got {self.token_window}.")
        if self.direction not in DIRECTIONS:
            raise OtoscopeError(f"direction must be 'denoising' or 'noising', got {self.direction!r}.")
        if self.method not in METHODS:
            raise OtoscopeError(f"method must be 'exact', 'attribution' or 'attribution-ig', got {self.method!r}.")
        check_ig_steps(self.ig_steps)
        if isinstance(self.metric, str):
            if self.metric not in BUILTIN_METRICS:
                raise OtoscopeError(f"unknown metric {self.metric!r}; use one of {', '.join(BUILTIN_METRICS)} or a "
                                    "callable fn(outputs) -> [batch].")
            if self.method != "exact" and self.metric == "accuracy":
                raise OtoscopeError(f"accuracy is a step function with no gradient, so {self.method} patching cannot "
                                    "estimate it; use metric='logit_diff' or method='exact'.")
        elif not callable(self.metric):
            raise OtoscopeError(f"metric must be a name or a callable, got {type(self.metric).__name__}.")
        for name in ("answer", "wrong"):
            value = getattr(self, name)
            if isinstance(value, str) and not value:
                raise OtoscopeError(f"{name} is an empty string; pass the token text, e.g. ' London'.")
        if self.answer is not None and self.answer == self.wrong:
            raise OtoscopeError(f"answer and wrong are the same ({self.answer!r}); the logit difference would be 0.")
        if self.neurons is not None:
            neurons = list(self.neurons)
            if not neurons or any(int(n) != n or n < 0 for n in neurons):
                raise OtoscopeError("neurons must be a non-empty list of indices >= 0.")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise OtoscopeError(f"batch_size must be a whole number >= 1, got {self.batch_size}.")
        if self.align not in ALIGN:
            raise OtoscopeError(f"align must be one of {ALIGN}, got {self.align!r}.")

    @property
    def metric_name(self) -> str:
        """The metric's name for outputs (a callable's ``__name__``)."""
        return self.metric if isinstance(self.metric, str) else getattr(self.metric, "__name__", "custom")


def config_from(config: PatchConfig | None, overrides: dict) -> PatchConfig:
    """``config`` (or the defaults) with keyword ``overrides``; unknown keywords are an error."""
    import dataclasses

    names = {f.name for f in fields(PatchConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        from otoscope.errors import did_you_mean

        raise OtoscopeError(f"unknown patching option {unknown[0]!r}.{did_you_mean(unknown[0], names)} "
                            f"Options: {', '.join(sorted(names))}.")
    base = config or PatchConfig(**{k: v for k, v in overrides.items()})
    return dataclasses.replace(base, **overrides) if config is not None else base
