"""The study: Whisper's non-speech hallucinations, and steering them away.

One call, :func:`run_study`, builds the stimuli (espeak-ng speech, synthetic noises, CC0 animal clips;
fit and held-out halves), and measures on the held-out half:

- Whisper as it is (hallucination rate on non-speech, WER on speech against the sentences spoken);
- Whisper's own gate (no-speech probability ≥ 0.6 → empty transcript);
- per encoder layer: probe accuracy (speech vs non-speech) and a fitted clip gate's accuracy;
- the naive intervention: the non-speech − speech difference of means added at an encoder layer;
- the decoder-side intervention: the ellipsis token's unembedding added at the first-prediction position
  of each decoder layer, per strength, ungated and gated;
- the intervention ``steer silence`` chooses on the fit half alone, saved as a steering folder and
  checked end to end through ``model.transcribe`` under :func:`otoscope.steer.steering`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from otoscope._io import write_text_atomic
from otoscope.steer.apply import steering
from otoscope.steer.direction import Direction
from otoscope.steer.encoded import Encoded, encode, no_speech_probs
from otoscope.steer.silence import choose_silencer, fit_gate, gate_opens, token_direction
from otoscope.steer.transcripts import decode, hallucination_rate, mean_wer
from otoscope.stimuli.sets import StimulusSet, speech_nonspeech_sets

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
    """Seed of the noise levels/lengths and the animal split."""
    alphas: tuple[float, ...] = (0.25, 1.0)
    """Decoder-side strengths, in units of the mean residual norm at the hook."""
    decoder_layers: tuple[int, ...] | None = None
    """Decoder blocks swept (None: all)."""
    naive_layers: tuple[int, ...] = (1, 3)
    """Encoder blocks for the naive difference-of-means intervention."""
    naive_alphas: tuple[float, ...] = (1.0,)
    """Its strengths (mean-norm units)."""
    naive_clips: int = 3
    """Held-out clips per class for the naive intervention (it re-runs the encoder, so it is costly)."""
    check_clips: int = 3
    """Held-out clips per class decoded end to end with the saved steering folder."""

    def __post_init__(self):
        if self.n_speech < 2 or self.noise_per_kind < 0 or self.naive_clips < 0 or self.check_clips < 0:
            raise ValueError("n_speech must be ≥ 2; noise_per_kind, naive_clips and check_clips ≥ 0.")
        if not self.alphas:
            raise ValueError("give at least one strength in alphas.")


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


def run_study(out: str | Path, config: StudyConfig | None = None, stimuli: StimulusSet | None = None,
              model=None, progress: bool = True) -> StudyResult:
    """Run the whole study into ``out`` (study.json, plots, study.html, silence/ steering folder)."""
    from otoscope.models.loader import load
    from otoscope.steer.study_report import write_report

    config = config or StudyConfig()
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model or load(config.model)
    stimuli = stimuli or speech_nonspeech_sets(config.n_speech, config.noise_per_kind, config.seed)
    fit_speech, fit_non = _split(stimuli.fit)
    held_speech, held_non = _split(stimuli.heldout)
    fit_s = encode(model, [s.clip for s in fit_speech], progress=progress)
    fit_n = encode(model, [s.clip for s in fit_non], progress=progress)
    held_s = encode(model, [s.clip for s in held_speech], progress=progress)
    held_n = encode(model, [s.clip for s in held_non], progress=progress)
    refs = [s.text for s in held_speech]

    # Whisper as it is, and its own gate
    base_s, base_n = decode(model, held_s), decode(model, held_n)
    ns_s, ns_n = no_speech_probs(model, held_s.states), no_speech_probs(model, held_n.states)
    gate_s = ["" if p >= NO_SPEECH_THRESHOLD else t for p, t in zip(ns_s.tolist(), base_s)]
    gate_n = ["" if p >= NO_SPEECH_THRESHOLD else t for p, t in zip(ns_n.tolist(), base_n)]
    baseline = {"hallucination_rate": hallucination_rate(base_n), "wer": mean_wer(refs, base_s)}
    whisper_gate = {"threshold": NO_SPEECH_THRESHOLD, "hallucination_rate": hallucination_rate(gate_n),
                    "wer": mean_wer(refs, gate_s)}

    # encoder layers: probes and gates
    probes = _probe_table(model, fit_s, fit_n)
    layers = []
    for layer in range(model.n_layers):
        g = fit_gate(fit_s, fit_n, layer)
        held_acc = float(((~gate_opens(g, held_s)).sum() + gate_opens(g, held_n).sum()) / (len(held_speech) + len(held_non)))
        layers.append({"layer": layer, "hook": g.gate.hook, "probe_accuracy": probes[layer]["accuracy"],
                       "gate_fit_accuracy": g.accuracy, "gate_margin_sd": g.margin, "gate_heldout_accuracy": held_acc})

    # the chosen intervention, fitted on the fit half only (the `steer silence` path)
    chosen = choose_silencer(model, [s.clip for s in fit_speech], [s.clip for s in fit_non], alphas=config.alphas,
                             layers=config.decoder_layers, encoded=(fit_s, fit_n))
    folder = chosen.direction.save(out / "silence", created_by="otoscope steer study")
    gate = chosen.gate
    open_s, open_n = gate_opens(gate, held_s).tolist(), gate_opens(gate, held_n).tolist()

    # the decoder-side sweep on held-out data, ungated and gated
    sweep, chosen_texts = [], None
    fit_both = fit_s + fit_n
    for layer in (config.decoder_layers if config.decoder_layers is not None else range(model.n_decoder_layers)):
        d = token_direction(model, "...", layer, fit_both)
        for alpha in config.alphas:
            ts, tn = decode(model, held_s, d, alpha), decode(model, held_n, d, alpha)
            gs = [t if o else b for t, b, o in zip(ts, base_s, open_s)]
            gn = [t if o else b for t, b, o in zip(tn, base_n, open_n)]
            for method, s_texts, n_texts in (("decoder_token", ts, tn), ("gated_decoder_token", gs, gn)):
                sweep.append({"method": method, "layer": layer, "alpha": alpha,
                              "hallucination_rate": hallucination_rate(n_texts), "wer": mean_wer(refs, s_texts)})
                c = chosen.chosen
                if (method, layer, alpha) == (c.method, c.layer, c.alpha):
                    chosen_texts = (s_texts, n_texts)
    naive = _naive(model, config, fit_s, fit_n, held_speech, held_non, refs)

    # end-to-end check: the saved folder through model.transcribe (encoder, live gate, decoder)
    from otoscope.models.decode import transcribe

    loaded = Direction.load(folder, model.name)
    k = config.check_clips
    check_rows = list(range(min(k, len(held_speech)))), list(range(min(k, len(held_non))))
    with steering(model, loaded):
        live = [t.text for t in transcribe(model, [held_speech[i].clip for i in check_rows[0]]
                                           + [held_non[i].clip for i in check_rows[1]], max_new_tokens=48, exact=True)]
    cached = [chosen_texts[0][i] for i in check_rows[0]] + [chosen_texts[1][i] for i in check_rows[1]]
    steered = {"hallucination_rate": hallucination_rate(chosen_texts[1]), "wer": mean_wer(refs, chosen_texts[0])}
    reduction = 1 - steered["hallucination_rate"] / baseline["hallucination_rate"] if baseline["hallucination_rate"] else 0.0
    summary = {"hallucination_rate_baseline": baseline["hallucination_rate"],
               "hallucination_rate_gate": whisper_gate["hallucination_rate"],
               "hallucination_rate_steered": steered["hallucination_rate"], "reduction": reduction,
               "wer_clean": baseline["wer"], "wer_steered": steered["wer"],
               "wer_increase": steered["wer"] - baseline["wer"]}
    data = {
        "version": 1, "model": model.name, "config": asdict(config), "seconds": round(time.time() - started, 1),
        "clips": {"fit_speech": len(fit_speech), "fit_nonspeech": len(fit_non), "heldout_speech": len(held_speech),
                  "heldout_nonspeech": len(held_non)},
        "baseline": baseline, "whisper_gate": whisper_gate, "encoder_layers": layers, "decoder_sweep": sweep,
        "naive_encoder": naive,
        "chosen": {"direction": loaded.to_dict(), "fit": asdict(chosen.chosen), "heldout": steered, "folder": str(folder),
                   "end_to_end_agreement": sum(a == b for a, b in zip(live, cached)) / max(1, len(live)),
                   "end_to_end_texts": live},
        "candidates_fit": [asdict(c) for c in chosen.candidates],
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
