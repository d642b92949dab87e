"""The plain per-layer encoder lens: one full forward (encoder + decode) per layer, through hooks.

It is the reference that :func:`otoscope.lens.encoder.encoder_lens` is tested and benchmarked against:
the way one would write it with hooks alone, re-running the whole model for every layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from otoscope.lens.encoder import LayerLens, logit_lens_stats

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


def encoder_lens_per_layer(model: HookedAudioModel, audio, max_new_tokens: int = 96) -> list[LayerLens]:
    """Logit-lens statistics and encoder-lens transcript of each layer, one full model run per layer."""
    out = []
    norm = model.adapter.final_norm("encoder")
    last = f"encoder.blocks.{model.n_layers - 1}.hook_resid_post"
    n_real = int(model.prepare(audio).frame_mask[0].sum())
    for layer in range(model.n_layers):
        grabbed = {}

        def keep(t, hook):
            grabbed[hook.name] = t

        def swap(t, hook):
            # the functional form: calling ``norm`` itself would re-enter this very hook
            x = grabbed[f"encoder.blocks.{layer}.hook_resid_post"]
            return torch.nn.functional.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)

        hooks = [(f"encoder.blocks.{layer}.hook_resid_post", keep), (last, keep), ("encoder.hook_ln_final", swap)]
        with torch.no_grad(), model.hooks(hooks):
            text = model.transcribe(audio, max_new_tokens=max_new_tokens, exact=True).text  # the fast lens decodes plainly
        pair = torch.stack([grabbed[f"encoder.blocks.{layer}.hook_resid_post"][0, :n_real], grabbed[last][0, :n_real]])
        lis, ent, kl = logit_lens_stats(model, pair)
        out.append(LayerLens(layer, lis[0], ent[0], kl[0], text))
    return out


def encoder_lens_texts_per_layer(model: HookedAudioModel, audio, max_new_tokens: int = 96) -> list[str]:
    """Only the transcripts of :func:`encoder_lens_per_layer`."""
    return [layer.encoder_lens_text for layer in encoder_lens_per_layer(model, audio, max_new_tokens)]
