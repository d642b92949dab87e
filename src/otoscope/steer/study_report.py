"""The study's figures: hallucination rate and WER against strength per layer (PNG), and an HTML section."""

from __future__ import annotations

import html
from pathlib import Path

from otoscope._io import atomic_path, write_text_atomic

METHOD_LABELS = {"decoder_token": "ungated", "gated_decoder_token": "direction-gated",
                 "latent_gated_decoder_token": "latent-gated", "encoder_latents": "ungated",
                 "latent_gated_encoder_latents": "latent-gated"}
STYLES = {"decoder_token": "--", "gated_decoder_token": "-", "latent_gated_decoder_token": ":",
          "encoder_latents": "--", "latent_gated_encoder_latents": "-"}
PLOTS = {"decoder_sweep": ("hallucination_vs_alpha.png", "wer_vs_alpha.png", "decoder layer",
                           "α (units of the mean residual norm at the hook)"),
         "latent_sweep": ("latents_hallucination_vs_alpha.png", "latents_wer_vs_alpha.png", "encoder layer",
                          "α (multiples of the latents' typical non-speech activation)")}


def plot_sweep(data: dict, path: Path, metric: str, ylabel: str, key: str = "decoder_sweep") -> Path:
    """One line per (layer, gating) of ``metric`` against α from ``data[key]``, with Whisper's and its gate's levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    rows = data[key]
    layers = sorted({r["layer"] for r in rows})
    colours = plt.cm.viridis([i / max(1, len(layers) - 1) for i in range(len(layers))])
    for colour, layer in zip(colours, layers):
        for method in STYLES:
            pts = sorted((r["alpha"], r[metric]) for r in rows if r["layer"] == layer and r["method"] == method)
            if pts:
                ax.plot(*zip(*pts), STYLES[method], marker="o", color=colour,
                        label=f"{PLOTS[key][2]} {layer}, {METHOD_LABELS[method]}")
    if key == "latent_sweep":  # measured on a subset of the held-out clips: its own unsteered level
        ax.axhline(rows[0][f"baseline_{metric}"], color="black", lw=1, label="Whisper (same clips)")
    else:
        ax.axhline(data["baseline"][metric], color="black", lw=1, label="Whisper")
        ax.axhline(data["whisper_gate"][metric], color="red", lw=1, ls=":", label="no-speech gate ≥ 0.6")
    if any(r["alpha"] <= 0 for r in rows):
        ax.set_xscale("symlog", base=2, linthresh=0.25)
    else:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(PLOTS[key][3])
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list):
        return html.escape(", ".join(_cell(x) for x in v))
    return html.escape(str(v))


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _interval(d: dict, key: str = "rate") -> str:
    return f"{d[key]:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def _chosen_text(d: dict) -> str:
    gate = d.get("gate")
    gate_text = "ungated" if not gate else (
        f"gated by SAE latents {_cell(gate['latents'])} at {html.escape(gate['hook'])} (threshold {gate['threshold']:.3f})"
        if gate.get("type") == "latents" else f"gated at {html.escape(gate['hook'])} (threshold {gate['threshold']:.3f})")
    if d.get("intervention") == "latents":
        return (f"clamp SAE latents {_cell(d['latents'])} at {html.escape(d['hook'])} to α = {d['alpha']:g} × their "
                f"typical non-speech activation, {gate_text}")
    return (f"{html.escape(str(d['meta'].get('token')))} token direction at {html.escape(d['hook'])}, first decoding "
            f"step, α = {d['alpha']:g} × {d['scale']:.2f}, {gate_text}")


def html_section(data: dict) -> str:
    """A self-contained ``<section>`` (images referenced beside it); every value not written here is escaped."""
    s, c = data["summary"], data["chosen"]
    held = c["heldout"]
    examples = [t for t in data["transcripts"] if t["kind"] != "speech"][:6]
    methods = [{"method": m, "layer": r["layer"], "alpha": r["alpha"], "fit hallucination": r["fit_hallucination_rate"],
                "held-out hallucination": _interval(r["heldout"]["hallucination"]) if "heldout" in r else
                (f"{r['heldout_subset']['hallucination_rate']:.3f} (subset)" if r.get("heldout_subset") else "—"),
                "held-out WER increase": _interval(r["heldout"]["wer_increase"], "value") if "heldout" in r else
                (f"{r['heldout_subset']['wer'] - r['heldout_subset']['baseline_wer']:+.3f} (subset)"
                 if r.get("heldout_subset") else "—")}
               for m, r in data["per_method"].items()]
    latent_rows = [{"layer": r["layer"], "latent": t["latent"], "selectivity": t["selectivity"], "frequency": t["frequency"],
                    "frequency on non-speech": t["frequency_nonspeech"]}
                   for r in data["latent_layers"] for t in r["top_latents"][:5]]
    latent_html = "" if not data["latent_layers"] else f"""<h3>SAE latents per encoder layer (fit half)</h3>
{_table(data['latent_layers'], ['layer', 'selective_latents', 'highly_selective_latents', 'latent_gate_fit_accuracy',
                                'latent_gate_heldout_accuracy'])}
{_table(latent_rows, ['layer', 'latent', 'selectivity', 'frequency', 'frequency on non-speech'])}
<img src="latents_hallucination_vs_alpha.png" alt="hallucination rate against alpha, latent clamps">
<img src="latents_wer_vs_alpha.png" alt="WER against alpha, latent clamps">
"""
    return f"""<section id="steer-study">
<h2>Steering away non-speech hallucinations ({html.escape(data['model'])})</h2>
<p>{s['heldout_nonspeech']} held-out non-speech clips, {s['heldout_speech']} held-out speech clips; rates with 95 %
intervals. Non-speech clips with a word in the transcript: Whisper {_interval(data['baseline']['hallucination'])},
its no-speech gate (P ≥ {data['whisper_gate']['threshold']}) {_interval(data['whisper_gate']['hallucination'])},
steered {_interval(held['hallucination'])} (reduction {_interval(held['reduction'], 'value')}).
WER on held-out speech: {s['wer_clean']:.3f} → {s['wer_steered']:.3f} (increase {_interval(held['wer_increase'], 'value')}).</p>
<p>Chosen on the fit half ({html.escape(s['chosen'])}): {_chosen_text(c['intervention'])}.
End-to-end agreement with the cached evaluation: {c['end_to_end_agreement']:.0%}.</p>
<img src="hallucination_vs_alpha.png" alt="hallucination rate against alpha">
<img src="wer_vs_alpha.png" alt="WER against alpha">
<h3>Each method's own fit-half choice, on held-out data</h3>
{_table(methods, ['method', 'layer', 'alpha', 'fit hallucination', 'held-out hallucination', 'held-out WER increase'])}
<h3>Encoder layers</h3>
{_table(data['encoder_layers'], ['layer', 'probe_accuracy', 'gate_fit_accuracy', 'gate_heldout_accuracy'])}
{latent_html}<h3>Naive: difference of means added in the encoder</h3>
{_table(data['naive_encoder'], ['layer', 'alpha', 'hallucination_rate', 'wer', 'baseline_hallucination_rate', 'baseline_wer'])}
<h3>Examples</h3>
{_table(examples, ['clip', 'no_speech_prob', 'baseline', 'steered'])}
</section>
"""


def write_report(out: Path, data: dict) -> None:
    """Write the plots and ``study.html`` into ``out``."""
    for key, (halluc, wer, _, _) in PLOTS.items():
        if data.get(key):
            plot_sweep(data, out / halluc, "hallucination_rate", "hallucination rate (held-out non-speech)", key)
            plot_sweep(data, out / wer, "wer", "WER (held-out speech)", key)
    write_text_atomic(out / "study.html", html_section(data))
