"""The study: Whisper's non-speech hallucinations, and steering them away.

One call, :func:`run_study`, builds the stimuli (espeak-ng speech, synthetic noises, CC0 animal clips;
fit and held-out halves), and measures on the held-out half:

- Whisper as it is (hallucination rate on non-speech, WER on speech against the sentences spoken);
- Whisper's own gate (no-speech probability ≥ 0.6 → empty transcript);
- per encoder layer: probe accuracy (speech vs non-speech) and a fitted clip gate's accuracy;
- the naive intervention: the non-speech − speech difference of means added at an encoder layer;
- the decoder-side intervention: the ellipsis token's unembedding added at the first-prediction position
  of each decoder layer, per strength, ungated and gated;
- per encoder layer, with one small SAE each (trained on the fit half with otoscope's trainer, or given):
  the latents most selective for non-speech, a latent gate, and clamping those latents in the encoder
  (:mod:`otoscope.steer.study_latents`); the decoder push gated by the latent gate;
- the intervention ``steer silence`` chooses on the fit half alone among all of these, saved as a steering
  folder and checked end to end through ``model.transcribe`` under it;
- 95 % intervals (Wilson for rates, paired bootstrap for the reduction and the WER increase).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from otoscope._io import write_text_atomic
from otoscope.steer.apply import steering
from otoscope.steer.direction import Direction
from otoscope.steer.encoded import Encoded, encode, no_speech_probs
from otoscope.steer.intervals import mean_interval, rate_interval, reduction_interval
from otoscope.steer.sae_fit import SteerSAEConfig, load_steer_saes, train_steer_saes
from otoscope.steer.silence import choose_silencer, fit_gate, gate_opens, mix, token_direction
from otoscope.steer.study_latents import best_per_method, clamp_sweep, latent_layers, steered_texts
from otoscope.steer.transcripts import clip_wers, decode, hallucination_rate, is_hallucination, mean_wer
from otoscope.stimuli.heldout import study_sets
from otoscope.stimuli.sets import StimulusSet

NO_SPEECH_THRESHOLD = 0.6  # openai/whisper's default no_speech_threshold


@dataclass
class StudyConfig:
    """What the study runs."""

    model: str = "whisper-tiny.en"
    """Model name."""
    n_speech: int = 8
    """Speech sentences per split."""
    noise_per_kind: int = 1
    """Synthetic noises per kind (7 kinds) per split."""
    seed: int = 0
    """Seed of the fit/held-out split: noise streams, which animals and which sentences are held out (0: the
    published split; any other value gives a fresh one)."""
    alphas: tuple[float, ...] = (0.25, 1.0)
    """Decoder-side strengths, in units of the mean residual norm at the hook."""
    decoder_layers: tuple[int, ...] | None = (1, 3)
    """Decoder blocks swept (None: all; the default keeps the study within ~1 h on 2 busy cores)."""
    naive_layers: tuple[int, ...] = (3,)
    """Encoder blocks for the naive difference-of-means intervention."""
    naive_alphas: tuple[float, ...] = (1.0,)
    """Its strengths (mean-norm units)."""
    naive_clips: int = 3
    """Held-out clips per class for the naive intervention (it re-runs the encoder, so it is costly)."""
    check_clips: int = 3
    """Held-out clips per class decoded end to end with the saved steering folder."""
    extra_heldout: bool = True
    """Enlarge the held-out half (:func:`otoscope.stimuli.heldout.study_sets`: more speech, noises of new
    kinds, variants of the held-out animals); False: the plain halves of ``speech_nonspeech_sets``."""
    latents: bool = True
    """Include the SAE-latent half (SAE per encoder layer, latent gates, latent clamps)."""
    sae: str | None = None
    """SAE folder (one per ``encoder.blocks.N.hook_resid_post``); None: train small ones on the fit half."""
    sae_config: SteerSAEConfig = field(default_factory=SteerSAEConfig)
    """How the SAEs are trained when ``sae`` is None."""
    latent_layers: tuple[int, ...] | None = None
    """Encoder layers given an SAE (None: all)."""
    latent_alphas: tuple[float, ...] = (1.0, 4.0)
    """Latent clamp strengths (multiples of the latents' typical non-speech activation)."""
    latent_clips: tuple[int | None, int | None] = (3, 6)
    """Held-out (speech, non-speech) clips in the latent clamp sweep (None: all), evenly spaced."""

    def __post_init__(self):
        if self.n_speech < 2 or min(self.noise_per_kind, self.naive_clips, self.check_clips, self.seed) < 0:
            raise ValueError("n_speech must be ≥ 2; noise_per_kind, naive_clips, check_clips and seed ≥ 0.")
        if not self.alphas:
            raise ValueError("give at least one strength in alphas.")
        if any(k is not None and k < 1 for k in self.latent_clips):
            raise ValueError("latent_clips must be positive counts (or None for all).")


@dataclass
class StudyResult:
    """What :func:`run_study` measured; ``summary`` is the one-line figure set."""

    summary: dict
    """hallucination_rate_baseline/_gate/_steered, reduction, wer_clean, wer_steered, wer_increase."""
    data: dict = field(default_factory=dict)
    """Everything written to study.json."""
    out: Path | None = None
    """Output folder."""


def _split(stimuli):
    speech = [s for s in stimuli if s.kind == "speech"]
    return speech, [s for s in stimuli if s.kind != "speech"]


def _probe_table(model, fit_s: Encoded, fit_n: Encoded) -> list[dict]:
    from otoscope.geometry.collect import LayerActivations
    from otoscope.geometry.probe import probe_layers

    hooks = [f"encoder.blocks.{i}.hook_resid_post" for i in range(model.n_layers)]
    items = [LayerActivations(c.name, hooks, m[:, None, :], label)
             for enc, label in ((fit_s, "speech"), (fit_n, "nonspeech")) for c, m in zip(enc.clips, enc.layer_means)]
    return probe_layers(items).table.to_dict("records")


def _naive(model, config, fit_s, fit_n, held_speech, held_non, refs) -> list[dict]:
    """Difference of means (non-speech − speech clip means) added at encoder layers, ungated, end to end."""
    from otoscope.models.decode import transcribe

    # exact=True: plain greedy decoding, as the cached decodes elsewhere in the study
    if not config.naive_clips:
        return []
    speech, non = held_speech[: config.naive_clips], held_non[:: max(1, len(held_non) // config.naive_clips)][: config.naive_clips]
    clips = [s.clip for s in speech + non]
    rows = []
    base = [t.text for t in transcribe(model, clips, max_new_tokens=48, exact=True)]
    for layer in config.naive_layers:
        v = fit_n.layer_means[:, layer].mean(0) - fit_s.layer_means[:, layer].mean(0)
        scale = float((fit_s + fit_n).mean_norms[layer])
        d = Direction(v, f"encoder.blocks.{layer}.hook_resid_post", model.name, 1.0, "add", "mean_norm", scale)
        for alpha in config.naive_alphas:
            with steering(model, d, alpha):
                texts = [t.text for t in transcribe(model, clips, max_new_tokens=48, exact=True)]
            rows.append({"method": "encoder_mean_difference", "layer": layer, "alpha": alpha,
                         "hallucination_rate": hallucination_rate(texts[len(speech):]),
                         "wer": mean_wer(refs[: len(speech)], texts[: len(speech)]),
                         "baseline_hallucination_rate": hallucination_rate(base[len(speech):]),
                         "baseline_wer": mean_wer(refs[: len(speech)], base[: len(speech)]),
                         "examples": texts[len(speech):][:3]})
    return rows


def _held_figures(refs, base_s, base_n, s_texts, n_texts) -> dict:
    """Held-out hallucination rate (with its Wilson interval), reduction and WER increase (bootstrap intervals)."""
    flags_b, flags = [is_hallucination(t) for t in base_n], [is_hallucination(t) for t in n_texts]
    diffs = [a - b for a, b in zip(clip_wers(refs, s_texts), clip_wers(refs, base_s))]
    return {"hallucination": rate_interval(flags), "reduction": reduction_interval(flags_b, flags),
            "wer": mean_wer(refs, s_texts), "wer_increase": mean_interval(diffs)}


def _sweep(model, config, fit, fit_both, held_s, held_n, refs, base_s, base_n):
    """The decoder push on held-out data per layer and α: ungated, direction-gated and latent-gated.
    Returns (rows, texts by (method, layer, alpha))."""
    gates = [("gated_decoder_token", fit.gate)] + ([("latent_gated_decoder_token", fit.latent_gate)] if fit.latent_gate else [])
    opens = {m: (gate_opens(g, held_s).tolist(), gate_opens(g, held_n).tolist()) for m, g in gates}
    rows, texts = [], {}
    for layer in (config.decoder_layers if config.decoder_layers is not None else range(model.n_decoder_layers)):
        d = token_direction(model, "...", layer, fit_both)
        for alpha in config.alphas:
            ts, tn = decode(model, held_s, d, alpha), decode(model, held_n, d, alpha)
            variants = [("decoder_token", ts, tn)] + [(m, mix(ts, base_s, opens[m][0]), mix(tn, base_n, opens[m][1]))
                                                      for m, _ in gates]
            for method, s_texts, n_texts in variants:
                rows.append({"method": method, "layer": layer, "alpha": alpha,
                             "hallucination_rate": hallucination_rate(n_texts), "wer": mean_wer(refs, s_texts)})
                texts[(method, layer, float(alpha))] = (s_texts, n_texts)
    return rows, texts


def run_study(out: str | Path, config: StudyConfig | None = None, stimuli: StimulusSet | None = None,
              model=None, progress: bool = True) -> StudyResult:
    """Run the whole study into ``out`` (study.json, plots, study.html, silence/ steering folder)."""
    from otoscope.models.decode import transcribe
    from otoscope.models.loader import load
    from otoscope.steer.saved import applied, load_steering
    from otoscope.steer.study_report import write_report
    from otoscope.stimuli.sets import speech_nonspeech_sets

    config = config or StudyConfig()
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model or load(config.model)
    if stimuli is None:
        stimuli = (study_sets(config.n_speech, config.noise_per_kind, config.seed) if config.extra_heldout
                   else speech_nonspeech_sets(config.n_speech, config.noise_per_kind, config.seed))
    fit_speech, fit_non = _split(stimuli.fit)
    held_speech, held_non = _split(stimuli.heldout)
    sae_info, saes = None, {}
    if config.latents:  # SAEs from the fit half only (or the user's)
        sae_layers = list(config.latent_layers) if config.latent_layers is not None else list(range(model.n_layers))
        sae_info = (load_steer_saes(model, config.sae, sae_layers) if config.sae else
                    train_steer_saes(model, [s.clip for s in stimuli.fit], sae_layers, config.sae_config,
                                     progress=progress))
        saes = sae_info.saes
    fit_s, fit_n = (encode(model, [s.clip for s in group], progress=progress, saes=saes) for group in (fit_speech, fit_non))
    held_s, held_n = (encode(model, [s.clip for s in group], progress=progress, saes=saes) for group in (held_speech, held_non))
    refs = [s.text for s in held_speech]

    # Whisper as it is, and its own gate
    base_s, base_n = decode(model, held_s), decode(model, held_n)
    ns_s, ns_n = no_speech_probs(model, held_s.states), no_speech_probs(model, held_n.states)
    gate_s = ["" if p >= NO_SPEECH_THRESHOLD else t for p, t in zip(ns_s.tolist(), base_s)]
    gate_n = ["" if p >= NO_SPEECH_THRESHOLD else t for p, t in zip(ns_n.tolist(), base_n)]
    baseline = {"hallucination_rate": hallucination_rate(base_n), "wer": mean_wer(refs, base_s),
                "hallucination": rate_interval([is_hallucination(t) for t in base_n])}
    whisper_gate = {"threshold": NO_SPEECH_THRESHOLD, "hallucination_rate": hallucination_rate(gate_n),
                    "wer": mean_wer(refs, gate_s), **_held_figures(refs, base_s, base_n, gate_s, gate_n)}

    # encoder layers: probes and direction gates
    probes = _probe_table(model, fit_s, fit_n)
    layers = []
    for layer in range(model.n_layers):
        g = fit_gate(fit_s, fit_n, layer)
        held_acc = float(((~gate_opens(g, held_s)).sum() + gate_opens(g, held_n).sum()) / (len(held_speech) + len(held_non)))
        layers.append({"layer": layer, "hook": g.gate.hook, "probe_accuracy": probes[layer]["accuracy"],
                       "gate_fit_accuracy": g.accuracy, "gate_margin_sd": g.margin, "gate_heldout_accuracy": held_acc})

    # the chosen intervention, fitted on the fit half only (the `steer silence` path), among directions and latents
    chosen = choose_silencer(model, [s.clip for s in fit_speech], [s.clip for s in fit_non], alphas=config.alphas,
                             layers=config.decoder_layers, encoded=(fit_s, fit_n), saes=saes,
                             latent_alphas=config.latent_alphas)
    folder = chosen.intervention.save(out / "silence", created_by="otoscope steer study")
    sweep, sweep_texts = _sweep(model, config, chosen, fit_s + fit_n, held_s, held_n, refs, base_s, base_n)
    clamps = clamp_sweep(model, chosen, config, held_s, held_n, refs, base_s, base_n) if saes else []
    naive = _naive(model, config, fit_s, fit_n, held_speech, held_non, refs)

    c = chosen.chosen
    chosen_texts = sweep_texts.get((c.method, c.layer, c.alpha))
    if chosen_texts is None:  # an encoder-side (latent clamp) choice: measured on every held-out clip
        chosen_texts = steered_texts(model, chosen.intervention, held_s, held_n)
    per_method = best_per_method(chosen)
    for method, row in per_method.items():  # each method's own fit-half choice, measured on held-out data
        texts = sweep_texts.get((method, row["layer"], row["alpha"]))
        if texts is not None:
            row["heldout"] = _held_figures(refs, base_s, base_n, *texts)
        else:
            row["heldout_subset"] = next((r for r in clamps if (r["method"], r["layer"], r["alpha"]) ==
                                          (method, row["layer"], row["alpha"])), None)

    # end-to-end check: the saved folder through model.transcribe (encoder, live gate, decoder)
    loaded = load_steering(folder, model.name)
    k = config.check_clips
    check_rows = list(range(min(k, len(held_speech)))), list(range(min(k, len(held_non))))
    with applied(model, loaded):
        live = [t.text for t in transcribe(model, [held_speech[i].clip for i in check_rows[0]]
                                           + [held_non[i].clip for i in check_rows[1]], max_new_tokens=48, exact=True)]
    cached = [chosen_texts[0][i] for i in check_rows[0]] + [chosen_texts[1][i] for i in check_rows[1]]
    figures = _held_figures(refs, base_s, base_n, *chosen_texts)
    steered = {"hallucination_rate": figures["hallucination"]["rate"], "wer": figures["wer"], **figures}
    seconds = round(time.time() - started, 1)
    summary = {"hallucination_rate_baseline": baseline["hallucination_rate"],
               "hallucination_rate_gate": whisper_gate["hallucination_rate"],
               "hallucination_rate_steered": steered["hallucination_rate"], "reduction": figures["reduction"]["value"],
               "wer_clean": baseline["wer"], "wer_steered": steered["wer"],
               "wer_increase": steered["wer"] - baseline["wer"],
               "chosen": c.method, "heldout_speech": len(held_speech), "heldout_nonspeech": len(held_non),
               "hallucination_rate_steered_ci": [figures["hallucination"]["low"], figures["hallucination"]["high"]],
               "hallucination_rate_gate_ci": [whisper_gate["hallucination"]["low"], whisper_gate["hallucination"]["high"]],
               "reduction_ci": [figures["reduction"]["low"], figures["reduction"]["high"]],
               "wer_increase_ci": [figures["wer_increase"]["low"], figures["wer_increase"]["high"]],
               "methods": {m: {"hallucination_rate": r["heldout"]["hallucination"]["rate"],
                               "ci": [r["heldout"]["hallucination"]["low"], r["heldout"]["hallucination"]["high"]],
                               "wer_increase": r["heldout"]["wer_increase"]["value"], "layer": r["layer"], "alpha": r["alpha"]}
                           if "heldout" in r else
                           {"hallucination_rate": (r.get("heldout_subset") or {}).get("hallucination_rate"),
                            "wer_increase": None if not r.get("heldout_subset") else
                            r["heldout_subset"]["wer"] - r["heldout_subset"]["baseline_wer"],
                            "subset": None if not r.get("heldout_subset") else
                            [r["heldout_subset"]["n_speech"], r["heldout_subset"]["n_nonspeech"]],
                            "layer": r["layer"], "alpha": r["alpha"]}
                           for m, r in per_method.items()},
               "sae_seconds": sae_info.seconds if sae_info else None}
    data = {
        "version": 2, "model": model.name, "config": asdict(config), "seconds": seconds,
        "clips": {"fit_speech": len(fit_speech), "fit_nonspeech": len(fit_non), "heldout_speech": len(held_speech),
                  "heldout_nonspeech": len(held_non)},
        "baseline": baseline, "whisper_gate": whisper_gate, "encoder_layers": layers, "decoder_sweep": sweep,
        "naive_encoder": naive,
        "saes": None if sae_info is None else {"source": sae_info.source, "seconds": sae_info.seconds, "fvu": sae_info.fvu,
                                               "d_sae": {i: s.d_sae for i, s in saes.items()}},
        "latent_layers": latent_layers(chosen, held_s, held_n) if saes else [], "latent_sweep": clamps,
        "per_method": per_method,
        "chosen": {"intervention": loaded.to_dict(), "fit": asdict(c), "heldout": steered, "folder": str(folder),
                   "end_to_end_agreement": sum(a == b for a, b in zip(live, cached)) / max(1, len(live)),
                   "end_to_end_texts": live},
        "candidates_fit": [asdict(x) for x in chosen.candidates],
        "transcripts": [{"clip": s.clip.name, "kind": s.kind, "source": s.source, "reference": s.text,
                         "no_speech_prob": float(p), "baseline": b, "steered": t}
                        for group, probs, bases, steer_texts in ((held_speech, ns_s, base_s, chosen_texts[0]),
                                                                 (held_non, ns_n, base_n, chosen_texts[1]))
                        for s, p, b, t in zip(group, probs.tolist(), bases, steer_texts)],
        "summary": summary,
    }
    write_text_atomic(out / "study.json", json.dumps(data, indent=1) + "\n")
    write_report(out, data)
    return StudyResult(summary, data, out)
