"""Per clip: audio player, waveform and log-mel spectrogram, transcript, and the lenses that apply
(encoder logit lens and encoder lens, decoder logit lens; the CTC lens on encoder-only models)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from otoscope.report import html as H
from otoscope.report import plots
from otoscope.report.sections.context import ReportContext, Section, SectionResult, records

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

MAX_HEATMAP_TOKENS = 40  # decoder-lens heatmaps stay readable; report.json keeps every token
MEL_FRAMES_PER_SECOND = 100  # Whisper's log-mel hop: 10 ms


def not_applicable(model: HookedAudioModel) -> list[str]:
    """What the report leaves out for ``model``, one line each."""
    kinds, out = model.adapter.lens_kinds, []
    if not {"encoder", "decoder"} <= kinds:
        out.append("encoder logit lens, encoder lens and decoder logit lens (no decoder)")
    if "tuned" not in kinds or model.adapter.decoding != "seq2seq":
        out.append("tuned lens and attention locality (they are measured through a Whisper decoder)")
    if "ctc" not in kinds and not model.has_decoder:
        out.append("CTC lens (no CTC head and tokenizer)")
    return out


def build(ctx: ReportContext) -> SectionResult:
    """Every clip's transcript; the detailed ones also get audio, plots and lenses."""
    entries, bodies = [], []
    for i, (clip, transcription) in enumerate(zip(ctx.clips, ctx.transcriptions)):
        text = transcription.text if transcription is not None else ""
        entry = {"path": clip.name, "seconds": round(clip.seconds, 3), "transcript": text}
        body = f'<h3>{H.esc(Path(clip.name).name)} — {clip.seconds:.2f} s</h3>'
        body += f'<p class="transcript">{H.esc(text) or "<i>(no transcript)</i>"}</p>'
        if i < ctx.n_detail:
            body += _clip_detail(ctx, i, entry)
        bodies.append(body)
        entries.append(entry)
    na = "".join(f'<p class="na">Not applicable to {H.esc(ctx.model.name)}: {H.esc(x)}</p>'
                 for x in not_applicable(ctx.model))
    return SectionResult("clips", "Clips, transcripts and lenses", "Clips & lenses", na + "".join(bodies),
                         {"clips": entries})


def _clip_detail(ctx: ReportContext, i: int, entry: dict) -> str:
    import soundfile as sf

    from otoscope.lens.decoder import ctc_lens, decoder_logit_lens
    from otoscope.lens.plots import plot_layer_curves

    model, clip, assets = ctx.model, ctx.clips[i], ctx.assets
    transcription, lens = ctx.transcriptions[i], ctx.lenses[i]
    mel = None
    if model.adapter.input_kind == "mel":
        features = model.prepare([clip]).features[0].numpy()  # [mels, 3000]
        mel = features[:, : max(1, int(round(clip.seconds * MEL_FRAMES_PER_SECOND)))]
    wave = plots.waveform_spectrogram(clip.samples, clip.sample_rate, Path(clip.name).name, assets / f"clip{i}_wave.png", mel)
    sf.write(str(assets / f"clip{i}.wav"), clip.samples, clip.sample_rate, format="WAV")  # the folder is swapped in whole
    body = f'<audio controls src="assets/clip{i}.wav"></audio>' + H.image(f"assets/{wave.name}", "waveform and spectrogram")
    ctx.step(f"clip {i} audio")
    if lens is not None:
        entry["encoder_lens"] = lens.to_json()
        plot_layer_curves(lens, assets / f"clip{i}_lens.png")
        body += f'<p>Saturation layer (encoder lens): <b>{H.fmt(lens.saturation_layer)}</b>. LIS is compressed near 1 on small models; KL and entropy show the change.</p>'
        body += H.table([("layer", "layer"), ("lis", "LIS"), ("entropy", "entropy (nats)"), ("kl_to_final", "KL to final"),
                         ("encoder_lens_wer", "WER"), ("encoder_lens_text", "encoder-lens transcript")],
                        [vars(x) for x in lens.layers], text_columns=["encoder_lens_text"])
        body += H.image(f"assets/clip{i}_lens.png", "encoder logit lens per layer")
        dec = decoder_logit_lens(model, [clip], transcription=transcription, encoder_out=lens.encoder_out)
        shown = dec.table[dec.table["position"] < MAX_HEATMAP_TOKENS]
        pivot = shown.pivot(index="layer", columns="position", values="prob")
        more = f" (first {MAX_HEATMAP_TOKENS} of {len(dec.tokens)} tokens)" if len(dec.tokens) > MAX_HEATMAP_TOKENS else ""
        plots.heatmap(pivot.to_numpy(), [str(x) for x in pivot.index], [repr(t)[1:-1] for t in dec.tokens[:MAX_HEATMAP_TOKENS]],
                      f"Decoder logit lens: probability of the emitted token{more}", assets / f"clip{i}_decoder.png",
                      "emitted token", "decoder layer", colorbar_label="probability")
        entry["decoder_lens"] = records(dec.summary())
        body += H.image(f"assets/clip{i}_decoder.png", "decoder logit lens")
    elif "ctc" in model.adapter.lens_kinds:
        ctc = ctc_lens(model, [clip])
        entry["ctc_lens"] = records(ctc.table)
        body += H.table([("layer", "layer"), ("mean_prob", "mean prob of final token"), ("top1", "top-1 agreement"),
                         ("text", "greedy CTC text")], entry["ctc_lens"], text_columns=["text"])
    ctx.step(f"clip {i} lenses")
    return body


SECTION = Section("clips", build, steps=lambda ctx: 2 * ctx.n_detail)
