"""``otoscope report``: one self-contained HTML report (``DIR/index.html`` + ``DIR/assets``).

Per clip: audio player, waveform and log-mel spectrogram, transcript, encoder logit lens (LIS, entropy,
KL) and encoder lens (transcript per layer, saturation layer), decoder logit lens. Over all clips:
residual norms per layer, layer × layer CKA, optional CKA against a second model, a tuned lens compared
with the logit lens on held-out frames, attention locality, and — given labels — group similarity with
permutation tests and linear probes. Every number also goes to ``DIR/report.json``.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from otoscope._io import write_text_atomic
from otoscope.errors import OtoscopeError
from otoscope.report import html as H
from otoscope.report import plots

MAX_HEATMAP_TOKENS = 40  # decoder-lens heatmaps stay readable; report.json keeps every token


@dataclass
class ReportConfig:
    """What goes into a report."""

    model: str = "whisper-tiny.en"
    """Model name, HF id or folder."""
    compare_model: str | None = None
    """A second model for cross-model CKA (same frame rate), e.g. ``whisper-base``."""
    labels: list[str] | None = None
    """One label per clip: enables group similarity and probes."""
    detailed_clips: int = 4
    """Clips that get a full per-clip lens section (the rest: transcript only)."""
    locality_bands: tuple[int | None, ...] = (2, 4, 8, 16, 32, 64, None)
    """Attention band half-widths (frames) for the locality curve; None is unrestricted."""
    locality_clips: int = 1
    """Clips the locality curve is measured on (it costs one batched run per clip)."""
    tuned_lens_steps: int = 20
    """Training steps of each tuned lens (0 disables them)."""
    tuned_lens_min_examples: int = 32
    """Fewest frames (encoder) or transcript tokens (decoder) a tuned lens is trained on; a quarter is held out.
    Below it the side is skipped with a note: on whisper-tiny.en the decoder lens trained on one 5 s clip's
    19 tokens came out worse than the logit lens on the held-out ones (its 384 × 385 parameters per layer
    overfit)."""
    pair: str | None = None
    """A minimal-pair folder (``otoscope pairs`` output): adds an activation-patching section (Whisper)."""
    device: str | None = None
    """Where the model runs."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self):
        if self.detailed_clips < 0 or self.locality_clips < 0 or self.tuned_lens_steps < 0:
            raise OtoscopeError("detailed_clips, locality_clips and tuned_lens_steps must be >= 0.")
        if self.tuned_lens_min_examples < 8:
            raise OtoscopeError(f"tuned_lens_min_examples must be >= 8 (a quarter is held out), got {self.tuned_lens_min_examples}.")


@dataclass
class ReportResult:
    """Where the report went and what it holds."""

    index: Path
    """The HTML page."""
    data: dict = field(default_factory=dict)
    """Everything in ``report.json``."""


def _records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def build_report(files: Sequence[str | Path], out: str | Path, config: ReportConfig | None = None,
                 model=None) -> ReportResult:
    """Compute every section for ``files`` and write the report into ``out``.

    ``model``: an already loaded :class:`~otoscope.models.hooked.HookedAudioModel` (in a notebook), used
    instead of loading ``config.model``.
    """
    import otoscope
    from otoscope.geometry.cka import cka_across_models, cka_layers
    from otoscope.geometry.collect import collect_layers
    from otoscope.geometry.norms import layer_norms, summarise_norms

    config = config or ReportConfig()
    files = [str(f) for f in files]
    if not files:
        raise OtoscopeError("no audio files given; pass at least one.")
    if config.labels is not None and len(config.labels) != len(files):
        raise OtoscopeError(f"got {len(config.labels)} labels for {len(files)} files; give one label per file.")
    out = Path(out)
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    n_detail = min(config.detailed_clips, len(files))
    steps = (4 + 2 * n_detail + min(config.locality_clips, len(files)) + bool(config.compare_model) + bool(config.labels)
             + bool(config.pair))
    bar = tqdm(total=steps, desc="report", unit="step", disable=not config.progress)

    def step(label: str):
        bar.set_postfix_str(label)
        bar.update(1)

    model = model if model is not None else otoscope.load(config.model, device=config.device)
    clips = model.clips(files)  # validates every file before any work
    step("model")
    data: dict = {"model": model.name, "source": model.source, "created": datetime.datetime.now().isoformat(timespec="seconds"),
                  "otoscope": otoscope.__version__, "clips": []}
    sections: list[str] = []
    nav: list[tuple[str, str]] = []

    lenses = _encoder_lenses(model, clips[:n_detail]) + [None] * (len(clips) - n_detail)
    transcriptions = _transcriptions(model, clips, lenses)
    step("transcripts & encoder lenses")
    not_applicable = _not_applicable(model)

    clip_html = []
    for i, (clip, transcription) in enumerate(zip(clips, transcriptions)):
        text = transcription.text if transcription is not None else ""
        entry = {"path": clip.name, "seconds": round(clip.seconds, 3), "transcript": text}
        body = f'<h3>{H.esc(Path(clip.name).name)} — {clip.seconds:.2f} s</h3>'
        body += f'<p class="transcript">{H.esc(text) or "<i>(no transcript)</i>"}</p>'
        if i < n_detail:
            body += _clip_detail(model, clip, transcription, lenses[i], i, assets, entry, step)
        clip_html.append(body)
        data["clips"].append(entry)
    na = "".join(f'<p class="na">Not applicable to {H.esc(model.name)}: {H.esc(x)}</p>' for x in not_applicable)
    sections.append(H.section("clips", "Clips, transcripts and lenses", na + "".join(clip_html)))
    nav.append(("clips", "Clips & lenses"))

    items = _layer_activations(model, clips, lenses, config.labels)
    norms = summarise_norms(layer_norms(items))
    plots.norms_plot(norms, assets / "norms.png")
    cka = cka_layers(items)
    names = [_short(h) for h in cka.rows]
    plots.heatmap(cka.matrix, names, names, f"Linear CKA between layers ({cka.n_examples} frames, unbiased minibatch)",
                  assets / "cka.png", "layer", "layer", colorbar_label="CKA")
    step("norms & CKA")
    data["norms"] = _records(norms)
    data["cka"] = {"layers": names, "matrix": cka.matrix.round(5).tolist(), "frames": cka.n_examples, "batches": cka.n_batches}
    geo = H.image("assets/norms.png", "residual norms per layer") + H.image("assets/cka.png", "CKA heatmap")
    geo += H.table([("layer", "layer"), ("hook", "hook"), ("mean_norm", "mean norm"), ("std_norm", "std over clips")],
                   data["norms"], text_columns=["hook"])
    if config.compare_model:
        other = otoscope.load(config.compare_model, device=config.device)
        cross = cka_across_models(items, collect_layers(other, clips))
        rows, cols = [_short(h) for h in cross.rows], [_short(h) for h in cross.cols]
        plots.heatmap(cross.matrix, rows, cols, f"CKA: {model.name} (rows) vs {other.name} (columns)", assets / "cka_cross.png",
                      f"{other.name} layer", f"{model.name} layer", colorbar_label="CKA")
        data["cka_cross"] = {"model": other.name, "rows": rows, "cols": cols, "matrix": cross.matrix.round(5).tolist()}
        geo += H.image("assets/cka_cross.png", "cross-model CKA")
        step("cross-model CKA")
    sections.append(H.section("geometry", "Representation geometry", geo))
    nav.append(("geometry", "Geometry"))

    if model.is_whisper and config.tuned_lens_steps > 0:
        sections.append(_tuned_section(model, items, clips, transcriptions, assets, data, config.tuned_lens_steps,
                                       config.tuned_lens_min_examples))
        nav.append(("tuned", "Tuned lens"))
    step("tuned lens")

    if model.is_whisper and config.locality_clips > 0:
        n = config.locality_clips
        sections.append(_locality_section(model, clips[:n], transcriptions[:n], config.locality_bands, assets, data, step))
        nav.append(("locality", "Attention locality"))

    if config.labels:
        sections.append(_groups_section(model, clips, items, config.labels, data))
        nav.append(("groups", "Groups & probes"))
        step("groups & probes")

    if config.pair:
        sections.append(_patching_section(model, config.pair, assets, data))
        nav.append(("patching", "Patching"))
        step("activation patching")
    bar.close()

    write_text_atomic(out / "report.json", json.dumps(data, indent=1, default=float))
    subtitle = (f"{model.name} ({model.source}) · {len(clips)} clip(s) · otoscope {otoscope.__version__} · "
                f"{data['created']}")
    index = out / "index.html"
    write_text_atomic(index, H.page("Otoscope report", subtitle, nav, sections))
    return ReportResult(index, data)


def _short(hook: str) -> str:
    if hook.endswith("hook_embed"):
        return "embed"
    parts = hook.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "blocks" else hook


def _not_applicable(model) -> list[str]:
    if model.is_whisper:
        return []
    out = ["encoder logit lens, encoder lens and decoder logit lens (no decoder)",
           "tuned lens and attention locality (they are measured through a Whisper decoder)"]
    if getattr(model.model, "lm_head", None) is None or model.tokenizer is None:
        out.append("CTC lens (no CTC head and tokenizer)")
    return out


def _encoder_lenses(model, clips) -> list:
    """Whisper: each detailed clip's encoder lens (one encoder forward and one batched decode per clip)."""
    from otoscope.lens.encoder import encoder_lens

    return [encoder_lens(model, [clip]) for clip in clips] if model.is_whisper else [None] * len(clips)


def _layer_activations(model, clips, lenses, labels) -> list:
    """Every clip's residual stream per layer (real frames); clips with an encoder lens already have it."""
    from otoscope.geometry.collect import LayerActivations, collect_layers, layer_hooks

    rest = [i for i, lens in enumerate(lenses) if lens is None]
    fresh = iter(collect_layers(model, [clips[i] for i in rest], None if labels is None else [labels[i] for i in rest])
                 if rest else ())
    hooks = layer_hooks(model)
    return [next(fresh) if lens is None else LayerActivations(clip.name, hooks, lens.residuals,
                                                               None if labels is None else labels[i])
            for i, (clip, lens) in enumerate(zip(clips, lenses))]


def _transcriptions(model, clips, lenses) -> list:
    """Each clip's greedy transcript. Where an encoder lens ran, its last layer's decode *is* the model's
    transcript (that layer's normed residual is the encoder output), so only the other clips — and any
    whose lens decode hit its token limit — are transcribed."""
    can = model.is_whisper or (getattr(model.model, "lm_head", None) is not None and model.tokenizer is not None)
    out = [lens.transcription if lens is not None and lens.transcription.finished else None for lens in lenses]
    rest = [i for i, t in enumerate(out) if t is None]
    if can and rest:
        for i, result in zip(rest, model.transcribe([clips[i] for i in rest])):
            out[i] = result
    return out


def _clip_detail(model, clip, transcription, lens, i: int, assets: Path, entry: dict, step) -> str:
    from otoscope.lens.decoder import ctc_lens, decoder_logit_lens
    from otoscope.lens.plots import plot_layer_curves

    mel = None
    if model.is_whisper:
        features = model.prepare([clip]).features[0].numpy()  # [mels, 3000]
        mel = features[:, : max(1, int(round(clip.seconds * 100)))]
    wave = plots.waveform_spectrogram(clip.samples, clip.sample_rate, Path(clip.name).name, assets / f"clip{i}_wave.png", mel)
    import soundfile as sf

    from otoscope._io import atomic_path

    with atomic_path(assets / f"clip{i}.wav") as tmp:
        sf.write(str(tmp), clip.samples, clip.sample_rate, format="WAV")
    body = f'<audio controls src="assets/clip{i}.wav"></audio>' + H.image(f"assets/{wave.name}", "waveform and spectrogram")
    step(f"clip {i} audio")
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
        entry["decoder_lens"] = _records(dec.summary())
        body += H.image(f"assets/clip{i}_decoder.png", "decoder logit lens")
    elif getattr(model.model, "lm_head", None) is not None and model.tokenizer is not None:
        ctc = ctc_lens(model, [clip])
        entry["ctc_lens"] = _records(ctc.table)
        body += H.table([("layer", "layer"), ("mean_prob", "mean prob of final token"), ("top1", "top-1 agreement"),
                         ("text", "greedy CTC text")], entry["ctc_lens"], text_columns=["text"])
    step(f"clip {i} lenses")
    return body


def _decoder_residuals(model, clips, transcriptions) -> torch.Tensor:
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


def _tuned_section(model, items, clips, transcriptions, assets: Path, data: dict, steps: int, min_examples: int) -> str:
    from otoscope.lens.tuned import TunedLensConfig, decoder_head, encoder_head, train_tuned_lens

    # (side, its residuals [layers, examples, d_model] when computed, head, unit, how many examples it has)
    tokens = sum(len(t.tokens) + 1 for t in transcriptions if t is not None)  # each emitted token and end-of-text
    sides = [("encoder", lambda: torch.cat([item.acts[1:] for item in items], dim=1), encoder_head(model), "real frames",
              sum(item.acts.shape[1] for item in items)),
             ("decoder", lambda: _decoder_residuals(model, clips, transcriptions), decoder_head(model), "transcript tokens",
              tokens)]
    body = ('<p class="note">Affine translators per layer, identity-initialised (so an untrained tuned lens is the logit '
            f'lens), trained {steps} steps to minimise KL(final ‖ lens) on these clips; KL is measured on a held-out '
            'quarter of the examples. Weights: <code>assets/tuned_lens_&lt;side&gt;.safetensors</code>.</p>')
    data["tuned_lens"] = {}
    for side, get_residuals, head, unit, count in sides:
        if count < min_examples:
            note = f"too few {unit} ({count}) to train and hold out a tuned lens (needs {min_examples}); give more clips"
            data["tuned_lens"][side] = {"skipped": note}
            body += f'<p class="na">{side.capitalize()}: {H.esc(note)}.</p>'
            continue
        residuals = get_residuals()
        result = train_tuned_lens(residuals, head, TunedLensConfig(steps=steps, lr=3e-3, batch=16),
                                  meta={"model": model.name, "side": side, "hook": "hook_resid_post"})
        result.lens.save(assets / f"tuned_lens_{side}.safetensors")
        records = _records(result.table)
        data["tuned_lens"][side] = records
        plots.layer_lines(result.table["layer"].tolist(), {"logit lens": result.table["kl_logit_lens"].tolist(),
                                                           "tuned lens": result.table["kl_tuned_lens"].tolist()},
                          "held-out KL(final ‖ lens) (nats)", f"{side.capitalize()}: logit lens vs tuned lens",
                          assets / f"tuned_{side}.png")
        body += f"<h3>{side.capitalize()} ({residuals.shape[1]} {unit})</h3>"
        body += H.image(f"assets/tuned_{side}.png", f"{side} logit vs tuned lens")
        body += H.table([("layer", "layer"), ("kl_logit_lens", "KL logit lens"), ("kl_tuned_lens", "KL tuned lens")], records)
    return H.section("tuned", "Tuned lens vs logit lens", body)


def _locality_section(model, clips, transcriptions, bands, assets: Path, data: dict, step) -> str:
    from otoscope.geometry.locality import attention_locality

    tables = []
    window = model.geometry.window_samples
    for clip, transcription in zip(clips, transcriptions):
        # the clip's transcript is the unrestricted run (a clip longer than one window was decoded by windows)
        one_window = window is None or len(clip.samples) <= window
        known = transcription.text if transcription is not None and one_window else None
        result = attention_locality(model, [clip], bands, reference=known)
        tables.append(result.table.assign(clip=Path(clip.name).name))
        step("attention locality")
    import pandas as pd

    table = pd.concat(tables)
    mean = table.groupby("k", dropna=False, sort=False).agg(seconds=("seconds", "first"), wer=("wer", "mean")).reset_index()
    plots.locality_plot(mean, assets / "locality.png")
    data["locality"] = _records(table)
    body = ('<p class="note">Every encoder self-attention head restricted to ±k frames (probabilities outside the band '
            'zeroed and renormalised); WER against the unrestricted transcript.</p>')
    body += H.image("assets/locality.png", "attention locality")
    body += H.table([("clip", "clip"), ("k", "k (frames)"), ("seconds", "± seconds"), ("wer", "WER"), ("text", "transcript")],
                    data["locality"], text_columns=["clip", "text"])
    return H.section("locality", "Attention locality", body)


def _groups_section(model, clips, items, labels, data: dict) -> str:
    from otoscope.geometry.groups import group_similarity, same_input_control
    from otoscope.geometry.probe import probe_layers

    control = same_input_control(model, clips[:1])
    data["same_input_control"] = _records(control)
    body = ('<p class="note">Same-input control: the first clip against itself with white noise at 40 dB SNR '
            '(the ceiling any similarity should be read against).</p>')
    body += H.table([("layer", "layer"), ("hook", "hook"), ("same_input_cosine", "cosine")], data["same_input_control"],
                    text_columns=["hook"])
    try:
        groups = group_similarity(items, labels)
        data["groups"] = _records(groups.table)
        body += (f'<p class="note">Mean-pooled representations; cosine within vs between labels, all-pairs baseline, '
                 f'{groups.n_permutations}-permutation p-value, Cohen\'s d; "centered" removes the mean over clips.</p>')
        body += H.table([("layer", "layer"), ("centered", "centered"), ("within", "within"), ("between", "between"),
                         ("baseline", "baseline"), ("difference", "difference"), ("p_value", "p"), ("cohens_d", "d")],
                        data["groups"])
    except OtoscopeError as err:
        body += f'<p class="na">Group similarity: {H.esc(err)}</p>'
    try:
        probe = probe_layers(items, labels)
        data["probe"] = _records(probe.table)
        body += f'<h3>Linear probe ({probe.n_folds}-fold CV)</h3>'
        body += H.table([("layer", "layer"), ("accuracy", "accuracy"), ("std", "std"), ("chance", "chance")], data["probe"])
    except OtoscopeError as err:
        body += f'<p class="na">Probe: {H.esc(err)}</p>'
    return H.section("groups", "Groups and probes", body)


def _patching_section(model, pair_path, assets: Path, data: dict) -> str:
    from otoscope.patching import grounding_coefficient, open_session, sweep
    from otoscope.patching.pairs import load_pair
    from otoscope.patching.report import patching_section

    if not model.is_whisper:
        return H.section("patching", "Activation patching",
                         f'<p class="na">The patching section of the report uses a Whisper decoder metric; run '
                         f'<code>otoscope patch --metric …</code> for {H.esc(model.name)}.</p>')
    pair = load_pair(pair_path)
    if not (pair.answer and pair.wrong):
        raise OtoscopeError(f"{pair_path}: the pair has no answer/wrong tokens; make it with 'otoscope pairs word'.")
    session = open_session(model, pair.clean, pair.corrupt, text=pair.text, answer=pair.answer, wrong=pair.wrong)
    result = sweep(session, words=pair.clean_words)
    grounding = grounding_coefficient(session)
    data["patching"] = result.to_json()
    return patching_section(result, assets, grounding=grounding)


def labels_from_manifest(manifest: str | Path, key: str, files: Sequence[str]) -> list[str]:
    """Labels for ``files`` from a JSONL manifest with ``path`` and ``key`` fields (paths relative to it)."""
    path = Path(manifest)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_path = {}
    for row in rows:
        if key not in row:
            raise OtoscopeError(f"{path}: a row has no '{key}' field; choose --label-key from {sorted(row)}.")
        by_path[str((path.parent / row["path"]).resolve())] = str(row[key])
    labels = []
    for f in files:
        resolved = str(Path(f).resolve())
        if resolved not in by_path:
            raise OtoscopeError(f"{f} is not in {path}; add it or drop --manifest.")
        labels.append(by_path[resolved])
    return labels
