"""Hook points: a canonical name mapped to a Hugging Face module and the value read there.

A :class:`HookPoint` says which module to hook and how to read the value there; :mod:`otoscope.hooks.manager`
does the hooking. Names follow TransformerLens: ``encoder.blocks.{L}.hook_resid_post`` and so on. Each
family's hook table lives in its adapter (:mod:`otoscope.models.adapters`), built with the helpers here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from torch import nn


class Site(Enum):
    """How a hook point's value is found on its module."""

    OUTPUT = "output"
    """The module's output (first element when it returns a tuple)."""
    INPUT = "input"
    """The module's first input (positional or ``hidden_states=``)."""
    RESID_SUM = "resid_sum"
    """``residual + output``: the residual stream right after a branch adds into it. The residual is the
    input of ``residual_module``; a replacement ``x`` is written back as the branch output ``x - residual``."""
    PATTERN = "pattern"
    """Attention probabilities ``[batch, heads, query, key]``, read inside the attention kernel."""


@dataclass(frozen=True)
class HookPoint:
    """One named place in the model where activations can be read and replaced."""

    name: str
    """Canonical name, e.g. ``encoder.blocks.0.hook_resid_post``."""
    module: nn.Module
    """The module the torch hook is attached to."""
    site: Site
    """Which value on that module this hook point is."""
    shape: str
    """Documented shape, e.g. ``[batch, frames, d_model]``."""
    doc: str
    """What the activation is, in one line."""
    heads: int | None = None
    """Split the last axis into ``[heads, d_head]`` (q, k, v, z hooks)."""
    channels_first: bool = False
    """The module emits ``[batch, channels, frames]``; hooks see ``[batch, frames, channels]``."""
    residual_module: nn.Module | None = None
    """For ``RESID_SUM``: the module whose input is the residual stream before the branch."""

    @property
    def side(self) -> str:
        """The name's first part: ``encoder`` or ``decoder`` (see :attr:`Adapter.sides`)."""
        return self.name.split(".", 1)[0]


def _base(model: nn.Module) -> nn.Module:
    """The base model under a task head (``WhisperForConditionalGeneration.model``), or ``model`` itself."""
    prefix = getattr(model, "base_model_prefix", "")
    return getattr(model, prefix, model) if prefix else model


def _attn_points(prefix: str, attn: nn.Module, heads: int, q_len: str, kv_len: str, with_qkv: bool) -> list[HookPoint]:
    """``{prefix}.hook_q|k|v|z|pattern`` of an attention module with ``q_proj``/``k_proj``/``v_proj``/``out_proj``
    (none when ``with_qkv`` is False: kernels whose projections never run as modules)."""
    points = []
    if with_qkv:
        for key, proj, length, doc in (("q", "q_proj", q_len, "queries per head (before the 1/sqrt(d_head) scaling)"),
                                       ("k", "k_proj", kv_len, "keys per head"), ("v", "v_proj", kv_len, "values per head")):
            points.append(HookPoint(f"{prefix}.hook_{key}", getattr(attn, proj), Site.OUTPUT,
                                    f"[batch, {length}, heads, d_head]", doc, heads=heads))
        points.append(HookPoint(f"{prefix}.hook_z", attn.out_proj, Site.INPUT, f"[batch, {q_len}, heads, d_head]",
                                "per-head attention output, before the output projection", heads=heads))
        points.append(HookPoint(f"{prefix}.hook_pattern", attn, Site.PATTERN, f"[batch, heads, {q_len}, {kv_len}]",
                                "attention probabilities (on request: runs eager attention)"))
    return points


def _mlp_points(prefix: str, fc_in: nn.Module, fc_out: nn.Module, length: str) -> list[HookPoint]:
    """``{prefix}.mlp.hook_pre|post``: the output of ``fc_in`` and the input of ``fc_out``."""
    return [
        HookPoint(f"{prefix}.mlp.hook_pre", fc_in, Site.OUTPUT, f"[batch, {length}, d_mlp]", "MLP pre-activations"),
        HookPoint(f"{prefix}.mlp.hook_post", fc_out, Site.INPUT, f"[batch, {length}, d_mlp]",
                  "MLP neuron activations (after the non-linearity)"),
    ]


def build_hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """All hook points of ``model``, by canonical name, from its family's adapter.

    Unsupported classes raise NotImplementedError naming the class.
    """
    from otoscope.models.adapters import adapter_for  # the adapters build on this module's helpers

    return {p.name: p for p in adapter_for(model).hook_points()}
