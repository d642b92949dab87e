"""Tuned lens vs logit lens (Whisper): affine translators per layer trained on the report's own clips,
compared by KL to the final layer on held-out frames (encoder) and transcript tokens (decoder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from otoscope.report import html as H
from otoscope.report import plots
from otoscope.report.sections.context import ReportContext, Section, SectionResult, records

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


def _decoder_residuals(model: HookedAudioModel, clips, transcriptions) -> torch.Tensor:
    """Decoder ``hook_resid_post`` at every emitted position of the model's own transcripts: [layers, tokens, d_model]."""
    chunks = []
    names = [f"decoder.blocks.{i}.hook_resid_post" for i in range(model.n_decoder_layers)]
    for clip, result in zip(clips, transcriptions):
        if result is None:
            continue
        inputs = model.prepare([clip], tokens=result.tokens)
        _, cache = model.run_with_cache(inputs, names_filter=names)
        start = inputs.prefix_len[0] - 1
        chunks.append(cache.stack("decoder.blocks.*.hook_resid_post")[:, 0, start:])
    return torch.cat(chunks, dim=1) if chunks else torch.zeros(len(names), 0, model.config.d_model)


def build(ctx: ReportContext) -> SectionResult | None:
    """Train and compare a tuned lens per side that has enough examples; say why a side is skipped."""
    from otoscope.lens.tuned import TunedLensConfig, decoder_head, encoder_head, train_tuned_lens

    model, steps, min_examples = ctx.model, ctx.config.tuned_lens_steps, ctx.config.tuned_lens_min_examples
    if not ("tuned" in model.adapter.lens_kinds and steps > 0):
        ctx.step("tuned lens")
        return None
    items, transcriptions = ctx.items, ctx.transcriptions
    # (side, its residuals [layers, examples, d_model] when computed, head, unit, how many examples it has)
    tokens = sum(len(t.tokens) + 1 for t in transcriptions if t is not None)  # each emitted token and end-of-text
    sides = [("encoder", lambda: torch.cat([item.acts[1:] for item in items], dim=1), encoder_head(model), "real frames",
              sum(item.acts.shape[1] for item in items)),
             ("decoder", lambda: _decoder_residuals(model, ctx.clips, transcriptions), decoder_head(model),
              "transcript tokens", tokens)]
    body = ('<p class="note">Affine translators per layer, identity-initialised (so an untrained tuned lens is the logit '
            f'lens), trained {steps} steps to minimise KL(final ‖ lens) on these clips; KL is measured on a held-out '
            'quarter of the examples. Weights: <code>assets/tuned_lens_&lt;side&gt;.safetensors</code>.</p>')
    data: dict = {}
    for side, get_residuals, head, unit, count in sides:
        if count < min_examples:
            note = f"too few {unit} ({count}) to train and hold out a tuned lens (needs {min_examples}); give more clips"
            data[side] = {"skipped": note}
            body += f'<p class="na">{side.capitalize()}: {H.esc(note)}.</p>'
            continue
        residuals = get_residuals()
        result = train_tuned_lens(residuals, head, TunedLensConfig(steps=steps, lr=3e-3, batch=16),
                                  meta={"model": model.name, "side": side, "hook": "hook_resid_post"})
        result.lens.save(ctx.assets / f"tuned_lens_{side}.safetensors")
        rows = records(result.table)
        data[side] = rows
        plots.layer_lines(result.table["layer"].tolist(), {"logit lens": result.table["kl_logit_lens"].tolist(),
                                                           "tuned lens": result.table["kl_tuned_lens"].tolist()},
                          "held-out KL(final ‖ lens) (nats)", f"{side.capitalize()}: logit lens vs tuned lens",
                          ctx.assets / f"tuned_{side}.png")
        body += f"<h3>{side.capitalize()} ({residuals.shape[1]} {unit})</h3>"
        body += H.image(f"assets/tuned_{side}.png", f"{side} logit vs tuned lens")
        body += H.table([("layer", "layer"), ("kl_logit_lens", "KL logit lens"), ("kl_tuned_lens", "KL tuned lens")], rows)
    ctx.step("tuned lens")
    return SectionResult("tuned", "Tuned lens vs logit lens", "Tuned lens", body, {"tuned_lens": data})


SECTION = Section("tuned lens", build)
