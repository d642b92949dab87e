"""The plain per-layer encoder lens: one full forward (encoder + decode) per layer, through hooks.

It is the reference that :func:`otoscope.lens.encoder.encoder_lens` is tested and benchmarked against.
"""

from __future__ import annotations

import torch


def encoder_lens_texts_per_layer(model, audio, max_new_tokens: int = 96) -> list[str]:
    """Transcript decoded from each encoder block's normed residual, one full transcription per layer."""
    texts = []
    norm = model.model.model.encoder.layer_norm
    for layer in range(model.n_layers):
        grabbed = {}

        def keep(t, hook):
            grabbed["x"] = t

        def swap(t, hook):
            # the functional form: calling ``norm`` itself would re-enter this very hook
            return torch.nn.functional.layer_norm(grabbed["x"], norm.normalized_shape, norm.weight, norm.bias, norm.eps)

        with torch.no_grad(), model.hooks([(f"encoder.blocks.{layer}.hook_resid_post", keep), ("encoder.hook_ln_final", swap)]):
            texts.append(model.transcribe(audio, max_new_tokens=max_new_tokens).text)
    return texts
