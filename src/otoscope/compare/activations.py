"""Both models' layer activations on the same clips, the same positions and the same teacher-forced text.

Rows are real positions only: Whisper's padding frames and batch-padding tokens are dropped
(``ActivationCache.real``). Decoder hooks read the transcript teacher-forced after the task prefix: the
clip's own ``text`` (manifest) when it has one, else model A's greedy transcript, so both models see the
same tokens. Per clip and stack at most ``positions_per_clip`` positions are kept, the same ones in both
models, drawn with a seeded generator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from otoscope.compare.config import LAYER_PATTERN, CompareConfig
from otoscope.errors import HookNameError, OtoscopeError

if TYPE_CHECKING:
    from otoscope.audio.io import Clip
    from otoscope.models.hooked import HookedAudioModel


def layer_hooks(model: "HookedAudioModel", hooks=None, *, strict: bool = True) -> list[str]:
    """The hooks to compare in ``model``: ``hooks`` (name, glob or list) or, by default, every stack's
    ``hook_embed`` and ``blocks.{L}.hook_resid_post`` in forward order. ``strict=False`` drops the names and
    globs the model lacks (model B may be shallower) instead of raising."""
    if hooks is None:
        pattern = re.compile(LAYER_PATTERN)
        return [n for n in model.hook_names() if pattern.match(n)]
    if strict:
        return model.hook_names(hooks)
    found: set[str] = set()
    for item in [hooks] if isinstance(hooks, str) else list(hooks):
        try:
            found.update(model.hook_names(item))
        except HookNameError:
            pass  # listed as skipped: only in the other model
    return [n for n in model.hook_names() if n in found]


def stack_of(hook: str) -> str:
    """``encoder`` for ``encoder.blocks.3.hook_resid_post``."""
    return hook.split(".", 1)[0]


def layer_of(hook: str) -> int:
    """Block index of a hook (-1 for ``hook_embed`` and other hooks outside the blocks)."""
    match = re.search(r"blocks\.(\d+)\.", hook)
    return int(match.group(1)) if match else -1


@dataclass
class PairedActivations:
    """Rows of both models on the same clips, per hook and clip."""

    clips: list[str]
    """Clip names, in order."""
    texts: list[str | None]
    """The teacher-forced transcript of each clip (None for models without a decoder)."""
    a: dict[str, list[torch.Tensor]]
    """Model A: hook → one ``[positions, d_model]`` float32 CPU tensor per clip."""
    b: dict[str, list[torch.Tensor]]
    """Model B: the same, at the same positions."""
    skipped: list[dict] = field(default_factory=list)
    """``{"hook", "reason"}`` for hooks that could not be paired (only in one model, unequal positions)."""

    def common(self) -> list[str]:
        """Hooks present in both models, in model A's order."""
        return [h for h in self.a if h in self.b]

    def rows(self, hook: str, clips: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A [rows, d_a], B [rows, d_b])`` of ``hook`` over ``clips`` (default all), concatenated."""
        pick = range(len(self.clips)) if clips is None else clips
        return torch.cat([self.a[hook][i] for i in pick]), torch.cat([self.b[hook][i] for i in pick])


def teacher_tokens(model_a: "HookedAudioModel", clips: list["Clip"], texts: Sequence[str | None],
                   batch_size: int) -> tuple[list[str | None], list[list[int] | None]]:
    """``(texts, tokens)`` to teacher-force per clip: its transcript with Whisper's leading space (model A's
    greedy transcript where none is given), cut to what fits the decoder after the task prefix."""
    if not model_a.has_decoder:
        return [None] * len(clips), [None] * len(clips)
    missing = [i for i, t in enumerate(texts) if not (t and t.strip())]
    out = list(texts)
    if missing:
        found = model_a.transcribe([clips[i] for i in missing], batch_size=batch_size)
        for i, result in zip(missing, found):
            out[i] = result.text
    room = model_a.config.max_target_positions - len(model_a.task_prefix())
    tokens = [model_a.to_tokens(" " + t.strip())[:room] if t and t.strip() else [] for t in out]
    return [model_a.to_string(t) for t in tokens], tokens


def collect(model_a: "HookedAudioModel", model_b: "HookedAudioModel", clips: list["Clip"], texts: Sequence[str | None],
            tokens: Sequence[list[int] | None], config: CompareConfig) -> PairedActivations:
    """Run both models over ``clips`` (decoders teacher-forced with ``tokens``) and keep the layer hooks'
    rows at the same positions; ``texts`` are the tokens' text, for the record."""
    hooks_a, hooks_b = layer_hooks(model_a, config.hooks), layer_hooks(model_b, config.hooks, strict=False)
    skipped = [{"hook": h, "reason": "only in model A"} for h in hooks_a if h not in hooks_b]
    skipped += [{"hook": h, "reason": "only in model B"} for h in hooks_b if h not in hooks_a]
    out = PairedActivations([c.name for c in clips], list(texts), {h: [] for h in hooks_a}, {h: [] for h in hooks_b},
                            skipped)
    rng = np.random.default_rng(config.seed)
    bar = tqdm(total=len(clips), desc="activations", unit="clip", disable=not config.progress)
    for start in range(0, len(clips), config.batch_size):
        batch = clips[start : start + config.batch_size]
        ids = list(tokens[start : start + config.batch_size])
        _, cache_a = model_a.run_with_cache(batch, names_filter=hooks_a, device="cpu",
                                            **({"tokens": ids} if model_a.has_decoder else {}))
        _, cache_b = model_b.run_with_cache(batch, names_filter=hooks_b, device="cpu",
                                            **({"tokens": ids} if model_b.has_decoder else {}))
        for j in range(len(batch)):
            picks: dict[str, tuple[int, torch.Tensor | None]] = {}  # stack → (positions, kept indices)
            for hooks, cache, store in ((hooks_a, cache_a, out.a), (hooks_b, cache_b, out.b)):
                for hook in hooks:
                    rows = cache.real(hook, j)  # [positions, d_model]
                    stack = stack_of(hook)
                    if stack not in picks:
                        picks[stack] = (rows.shape[0], _sample(rows.shape[0], config.positions_per_clip, rng))
                    n, keep = picks[stack]
                    if rows.shape[0] != n:
                        raise OtoscopeError(f"{hook}: clip {batch[j].name} has {n} positions in model A but "
                                            f"{rows.shape[0]} in model B; compare models with the same frame rate "
                                            "and tokenizer, or pick other --hooks.")
                    store[hook].append((rows if keep is None else rows[keep]).float().contiguous())
        bar.update(len(batch))
    bar.close()
    return out


def _sample(n: int, limit: int | None, rng: np.random.Generator) -> torch.Tensor | None:
    """Sorted indices of ``limit`` of ``n`` positions, or None to keep them all."""
    if limit is None or n <= limit:
        return None
    return torch.from_numpy(np.sort(rng.choice(n, limit, replace=False)))
