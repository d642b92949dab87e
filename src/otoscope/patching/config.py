"""What to patch and how, in two validated dataclasses: the pair's configuration and the sweep's.

* :class:`PairConfig` is fixed when a pair's session opens (:func:`~otoscope.patching.open_session`): how
  clips of unequal length are aligned and the metric the cached clean and corrupt runs are scored by.
* :class:`SweepConfig` is one sweep on an open session (:func:`~otoscope.patching.sweep`): which activations,
  cut into which cells, patched in which direction, by which method.
* :class:`PatchConfig` is both at once, for the one-shot :func:`~otoscope.patching.patch`; ``.pair`` and
  ``.sweep`` split it.

An option given where it does not apply (``sweep(session, metric="kl")``) is an error naming where it goes.
This module imports nothing heavy: ``otoscope patch --help`` builds its flags from these classes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Callable, Literal, Optional, Sequence, Union

from otoscope.errors import OtoscopeError

Direction = Literal["denoising", "noising"]
DIRECTIONS = ("denoising", "noising")
# the registry in otoscope.patching.methods maps each name to its function (a test checks they agree)
METHODS = ("exact", "attribution", "attribution-ig", "atp-qk", "atp-star", "two-point", "hybrid", "random")
# the estimates that need the metric's gradient
GRADIENT_METHODS = ("attribution", "attribution-ig", "atp-qk", "atp-star", "two-point", "hybrid")
BUILTIN_METRICS = ("logit_diff", "logprob", "prob", "accuracy", "kl")
ALIGN = ("pad", "trim", "error")

MetricLike = Union[str, Callable]


def check_ig_steps(steps) -> int:
    """``steps`` as an int, or a one-line error unless it is a whole number >= 1."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or int(steps) != steps or steps < 1:
        raise OtoscopeError(f"ig_steps must be a whole number >= 1, got {steps}.")
    return int(steps)


def _whole(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise OtoscopeError(f"{name} must be a whole number >= {minimum}, got {value}.")


@dataclass(frozen=True)
class PairConfig:
    """How a pair is scored: the metric and its answers, and how clips of unequal length are aligned."""

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
    align: Literal["pad", "trim", "error"] = "pad"
    """Clips of unequal length: ``pad`` the shorter with trailing silence, ``trim`` the longer, or ``error``."""

    def __post_init__(self):
        if isinstance(self.metric, str):
            if self.metric not in BUILTIN_METRICS:
                raise OtoscopeError(f"unknown metric {self.metric!r}; use one of {', '.join(BUILTIN_METRICS)} or a "
                                    "callable fn(outputs) -> [batch].")
        elif not callable(self.metric):
            raise OtoscopeError(f"metric must be a name or a callable, got {type(self.metric).__name__}.")
        for name in ("answer", "wrong"):
            value = getattr(self, name)
            if isinstance(value, str) and not value:
                raise OtoscopeError(f"{name} is an empty string; pass the token text, e.g. ' London'.")
        if self.answer is not None and self.answer == self.wrong:
            raise OtoscopeError(f"answer and wrong are the same ({self.answer!r}); the logit difference would be 0.")
        if self.align not in ALIGN:
            raise OtoscopeError(f"align must be one of {ALIGN}, got {self.align!r}.")

    @property
    def metric_name(self) -> str:
        """The metric's name for outputs (a callable's ``__name__``)."""
        return self.metric if isinstance(self.metric, str) else getattr(self.metric, "__name__", "custom")


@dataclass(frozen=True)
class SweepConfig:
    """One sweep on an open pair: which activations, cut into which cells, patched how."""

    hooks: Union[str, Sequence[str]] = "encoder.blocks.*.hook_resid_post"
    """Hook points to patch: a name, a glob or a list of them (``otoscope hooks MODEL`` lists them)."""
    window: Optional[float] = 10
    """Frames (or seconds, see ``window_unit``) per cell on the frame axis. Windows tile the *real* frames
    only. None: one cell per hook covering every position (for Whisper all 1500 frames, padding included)."""
    stride: Optional[float] = None
    """Step between window starts, in ``window_unit``; None: the window (no overlap)."""
    window_unit: Literal["frames", "seconds"] = "frames"
    """Unit of ``window`` and ``stride``: encoder frames (20 ms) or seconds."""
    token_window: Optional[int] = 1
    """Decoder positions per cell for hooks on the token axis (1: one cell per token); None: all at once."""
    heads: bool = False
    """One cell per attention head (hooks with a heads axis: ``hook_q/k/v/z``, ``hook_pattern``)."""
    neurons: Optional[Sequence[int]] = None
    """One cell per listed index of the last axis (MLP neurons for ``mlp.hook_pre/hook_post``); None: all."""
    direction: Direction = "denoising"
    """``denoising``: clean activations into the corrupt run (sufficiency); ``noising``: corrupt activations
    into the clean run (necessity)."""
    method: Literal["exact", "attribution", "attribution-ig", "atp-qk", "atp-star", "two-point", "hybrid",
                    "random"] = "exact"
    """``exact``: run the model once per cell (batched, from the patched layer on); ``attribution``: the
    first-order estimate from one forward and one backward pass for all cells; ``attribution-ig``: that estimate
    with the gradient averaged over ``ig_steps`` runs on inputs interpolated between the two runs (integrated
    gradients); ``atp-qk``: attribution with AtP*'s QK fix (the attention patterns of the first attention
    the patch enters recomputed exactly); ``atp-star``: the QK fix plus GradDrop; ``two-point``: the
    attribution estimate for weak cells, the gradient at the input path's midpoint for strong ones (see
    ``strong_share``); ``hybrid``: cells ranked by the two-point estimate, the ``top_k`` strongest re-measured
    exactly; ``random``: a random ranking, the floor any method must beat."""
    ig_steps: int = 5
    """``attribution-ig``: points on the path from the run patched into (0) to the run patched from (1), at the
    midpoints of ``ig_steps`` equal intervals; the gradient is averaged over them."""
    strong_share: float = 0.2
    """``two-point`` and ``hybrid``: a cell is strong, and scored by the midpoint gradient instead of the tangent,
    when its midpoint estimate is at least this share of the strongest cell's."""
    top_k: int = 5
    """``hybrid``: cells re-measured exactly (the strongest by the two-point estimate)."""
    seed: int = 0
    """``random``: the seed of the random ranking."""
    batch_size: Optional[int] = None
    """Cells per forward pass (exact patching); None: the session's (``open_session(batch_size=...)``, 8)."""

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
            raise OtoscopeError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}.")
        check_ig_steps(self.ig_steps)
        _whole("top_k", self.top_k, 1)
        if not 0 <= self.strong_share <= 1:
            raise OtoscopeError(f"strong_share must be between 0 and 1, got {self.strong_share}.")
        _whole("seed", self.seed, 0)
        if self.neurons is not None:
            neurons = list(self.neurons)
            if not neurons or any(int(n) != n or n < 0 for n in neurons):
                raise OtoscopeError("neurons must be a non-empty list of indices >= 0.")
        if self.batch_size is not None:
            _whole("batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class PatchConfig(SweepConfig, PairConfig):
    """A pair's configuration and one sweep's, for :func:`~otoscope.patching.patch`; ``.pair`` and ``.sweep``
    are the two halves, for :func:`~otoscope.patching.open_session` and :func:`~otoscope.patching.sweep`."""

    def __post_init__(self):
        PairConfig.__post_init__(self)
        SweepConfig.__post_init__(self)
        if self.metric == "accuracy" and self.method in GRADIENT_METHODS:
            raise OtoscopeError(f"accuracy is a step function with no gradient, so {self.method} patching cannot "
                                "estimate it; use metric='logit_diff' or method='exact'.")

    @property
    def pair(self) -> PairConfig:
        """The pair's half: metric, answers, alignment."""
        return PairConfig(**{f.name: getattr(self, f.name) for f in fields(PairConfig)})

    @property
    def sweep(self) -> SweepConfig:
        """The sweep's half: hooks, cells, direction, method."""
        return SweepConfig(**{f.name: getattr(self, f.name) for f in fields(SweepConfig)})


PAIR_OPTIONS = tuple(f.name for f in fields(PairConfig))
SWEEP_OPTIONS = tuple(f.name for f in fields(SweepConfig))


def config_from(cls: type, config, overrides: dict, where: str):
    """``config`` (or ``cls``'s defaults) with keyword ``overrides``, for the function named ``where``.

    An option of the other half (a sweep option given to ``open_session``, a pair option given to ``sweep``)
    is an error that says where it goes; an unknown one gets a did-you-mean.
    """
    if config is not None and not isinstance(config, cls) or (cls is not PatchConfig and isinstance(config, PatchConfig)):
        half = "pair" if cls is PairConfig else "sweep"
        raise OtoscopeError(f"{where}() takes a {cls.__name__}, got {type(config).__name__}; pass config.{half} "
                            f"(a PatchConfig's {half} half), or call patch() with the whole PatchConfig.")
    names = {f.name for f in fields(cls)}
    for name in overrides:
        if name in names:
            continue
        if cls is SweepConfig and name in PAIR_OPTIONS:
            raise OtoscopeError(f"{name} is fixed when the pair's session opens, not per sweep; pass {name}= to "
                                "open_session() (or patch()), and open another session to change it.")
        if cls is PairConfig and name in SWEEP_OPTIONS:
            raise OtoscopeError(f"{name} is a sweep option, not the pair's; pass {name}= to sweep() (or patch()).")
        from otoscope.errors import did_you_mean

        raise OtoscopeError(f"unknown patching option {name!r}.{did_you_mean(name, names)} "
                            f"Options: {', '.join(sorted(names))}.")
    if config is None:
        return cls(**overrides)
    return dataclasses.replace(config, **overrides) if overrides else config
