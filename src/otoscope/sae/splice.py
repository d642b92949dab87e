"""Splicing an SAE into a HookedAudioModel: the activation at a hook point is replaced by its reconstruction.

While spliced, the model has four more hook points after the host ``H`` (in forward order), usable with
``run_with_cache``, ``run_with_hooks`` and ``model.hooks`` like any other::

    H.hook_sae_input    [batch, pos, d_in]    what the SAE reads (the host's original activation)
    H.hook_sae_acts     [batch, pos, d_sae]   latent activations: read them, or edit them to steer
    H.hook_sae_recons   [batch, pos, d_in]    the reconstruction
    H.hook_sae_error    [batch, pos, d_in]    x − x̂ (only with ``use_error_term``)

With ``use_error_term`` the model receives ``x̂ + (x − x̂_clean)``: exactly ``x`` unless the latents were
edited, so features can be studied and steered without the reconstruction error changing the output.
Hooks on ``H`` itself that are installed inside the splice see the SAE's output. Per-head hooks
(``[batch, pos, heads, d_head]``) are flattened to ``heads × d_head`` for the SAE.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from otoscope.errors import HookNameError, OtoscopeError, did_you_mean
from otoscope.hooks.points import HookPoint, Site
from otoscope.sae.model import SparseAutoencoder

SAE_HOOKS = ("hook_sae_input", "hook_sae_acts", "hook_sae_recons", "hook_sae_error")


class SplicedSAE(nn.Module):
    """The SAE as it sits in the model, with identity modules that carry its hook points."""

    def __init__(self, sae: SparseAutoencoder, hook: str, use_error_term: bool):
        super().__init__()
        self.sae = sae
        self.hook = hook
        self.use_error_term = use_error_term
        for name in SAE_HOOKS:
            setattr(self, name, nn.Identity())
        self.mask: torch.Tensor | None = None
        """Optional ``[batch, pos]`` bool: only these positions are replaced (others pass through); ignored
        when its shape does not match the activation (e.g. one-token decoding steps)."""

    def names(self) -> list[str]:
        """Canonical names of the SAE hook points."""
        return [f"{self.hook}.{n}" for n in SAE_HOOKS if n != "hook_sae_error" or self.use_error_term]

    def _hooked(self, module: nn.Module) -> bool:
        return bool(module._forward_hooks)

    def replace(self, act: torch.Tensor, hook_point=None) -> torch.Tensor:
        """The host hook function: ``act`` ``[batch, pos, ...]`` → the SAE's output of the same shape."""
        sae = self.sae
        x = act.reshape(*act.shape[:2], -1)  # [batch, pos, d_in]
        if x.shape[-1] != sae.d_in:
            raise OtoscopeError(f"{self.hook} has width {x.shape[-1]} but the SAE reads d_in={sae.d_in}; splice an SAE "
                                "trained on this hook point.")
        x = self.hook_sae_input(x.to(sae.device))
        if self._hooked(self.hook_sae_acts) or sae.cfg.architecture != "topk":
            z = self.hook_sae_acts(sae.encode(x))  # [batch, pos, d_sae]
            x_hat = sae.decode(z)
        else:  # nobody reads the latents: the sparse path never builds [batch, pos, d_sae]
            x_hat = sae(x)
        x_hat = self.hook_sae_recons(x_hat)
        if self.use_error_term:
            with torch.no_grad():
                clean = sae(x)
            x_hat = x_hat + self.hook_sae_error(x - clean)
        out = x_hat.to(act.device, act.dtype)
        if self.mask is not None and tuple(self.mask.shape) == tuple(x.shape[:2]):
            out = torch.where(self.mask.to(out.device)[..., None], out, x.to(out.device, out.dtype))
        return out.reshape(act.shape)


def _points(spliced: SplicedSAE, host: HookPoint) -> dict[str, HookPoint]:
    pos = "frames" if "frames" in host.shape.split(",")[1] else "tokens"
    docs = {"hook_sae_input": ("d_in", "what the SAE reads (the host activation, flattened per position)"),
            "hook_sae_acts": ("d_sae", "SAE latent activations"),
            "hook_sae_recons": ("d_in", "SAE reconstruction"),
            "hook_sae_error": ("d_in", "reconstruction error x − x̂ (use_error_term)")}
    out = {}
    for name in spliced.names():
        short = name.rsplit(".", 1)[1]
        width, doc = docs[short]
        out[name] = HookPoint(name, getattr(spliced, short), Site.OUTPUT, f"[batch, {pos}, {width}]", doc)
    return out


def sae_hook(model, sae: SparseAutoencoder, hook: str | None = None) -> str:
    """The hook point ``sae`` reads on ``model`` (``hook``, or the SAE's own ``hook_name``), checked: it exists on
    this model (an SAE for another model usually names a hook this one lacks) and is an activation, not a pattern."""
    hook = hook or sae.cfg.hook_name
    if hook is None:
        raise OtoscopeError("the SAE does not name its hook point; pass the hook (--hook encoder.blocks.N.hook_resid_post).")
    if hook not in model.points:
        raise HookNameError(f"unknown hook point '{hook}': {model.name} has no hook point {hook};{did_you_mean(hook, model.points)} "
                            f"the SAE was trained on {sae.cfg.model_name or 'another model'}: load that model (--model).")
    if model.points[hook].site is Site.PATTERN:
        raise OtoscopeError(f"{hook} is an attention pattern; SAEs read activations, not patterns.")
    return hook


@contextlib.contextmanager
def splice(model, sae: SparseAutoencoder, hook: str | None = None, *, use_error_term: bool = False) -> Iterator[SplicedSAE]:
    """Replace ``hook``'s activation (default: the SAE's own ``hook_name``) by the SAE's output while the block runs.

    Yields the :class:`SplicedSAE`; its hook points (``{hook}.hook_sae_acts`` …) are in ``model.points``
    until the block ends. Splicing several SAEs (at different hooks) nests.
    """
    hook = sae_hook(model, sae, hook)
    if f"{hook}.hook_sae_acts" in model.points:
        raise OtoscopeError(f"an SAE is already spliced at {hook}; splice one SAE per hook point.")
    spliced = SplicedSAE(sae, hook, use_error_term).to(sae.device)
    original = model.points
    table: dict[str, HookPoint] = {}
    for name, point in original.items():
        table[name] = point
        if name == hook:
            table.update(_points(spliced, point))
    model.points = table
    try:
        with model.hooks([(hook, spliced.replace)]):
            yield spliced
    finally:
        model.points = original
