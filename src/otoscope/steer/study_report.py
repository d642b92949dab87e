"""The study's figures: hallucination rate and WER against strength per layer (PNG), and an HTML section."""

from __future__ import annotations

import html
from pathlib import Path

from otoscope._io import atomic_path, write_text_atomic

METHOD_LABELS = {"decoder_token": "ungated", "gated_decoder_token": "gated"}


def plot_sweep(data: dict, path: Path, metric: str, ylabel: str) -> Path:
    """One line per (decoder layer, gating) of ``metric`` against α, with Whisper's and its gate's levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    rows = data["decoder_sweep"]
    layers = sorted({r["layer"] for r in rows})
    colours = plt.cm.viridis([i / max(1, len(layers) - 1) for i in range(len(layers))])
    for colour, layer in zip(colours, layers):
        for method, style in (("decoder_token", "--"), ("gated_decoder_token", "-")):
            pts = sorted((r["alpha"], r[metric]) for r in rows if r["layer"] == layer and r["method"] == method)
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=colour,
                        label=f"decoder layer {layer}, {METHOD_LABELS[method]}")
    ax.axhline(data["baseline"][metric], color="black", lw=1, label="Whisper")
    ax.axhline(data["whisper_gate"][metric], color="red", lw=1, ls=":", label="no-speech gate ≥ 0.6")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("α (units of the mean residual norm at the hook)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_section(data: dict) -> str:
    """A self-contained ``<section>`` (images referenced beside it); every value not written here is escaped."""
    s, c = data["summary"], data["chosen"]
    d = c["direction"]
    gate = d["gate"]
    gate_text = (f"gated at {html.escape(gate['hook'])} (threshold {gate['threshold']:.3f})" if gate else "ungated")
    examples = [t for t in data["transcripts"] if t["kind"] != "speech"][:6]
    return f"""<section id="steer-study">
<h2>Steering away non-speech hallucinations ({html.escape(data['model'])})</h2>
<p>Held-out non-speech clips with a word in the transcript: Whisper {s['hallucination_rate_baseline']:.2f},
its no-speech gate (P ≥ {data['whisper_gate']['threshold']}) {s['hallucination_rate_gate']:.2f},
steered {s['hallucination_rate_steered']:.2f} (reduction {s['reduction']:.0%}).
WER on held-out speech: {s['wer_clean']:.3f} → {s['wer_steered']:.3f} (increase {s['wer_increase']:+.3f}).</p>
<p>Chosen on the fit half: {html.escape(str(d['meta'].get('token')))!s} token direction at {html.escape(d['hook'])},
first decoding step, α = {d['alpha']:g} × {d['scale']:.2f}, {gate_text}.
End-to-end agreement with the cached evaluation: {c['end_to_end_agreement']:.0%}.</p>
<img src="hallucination_vs_alpha.png" alt="hallucination rate against alpha">
<img src="wer_vs_alpha.png" alt="WER against alpha">
<h3>Encoder layers</h3>
{_table(data['encoder_layers'], ['layer', 'probe_accuracy', 'gate_fit_accuracy', 'gate_heldout_accuracy'])}
<h3>Naive: difference of means added in the encoder</h3>
{_table(data['naive_encoder'], ['layer', 'alpha', 'hallucination_rate', 'wer', 'baseline_hallucination_rate', 'baseline_wer'])}
<h3>Examples</h3>
{_table(examples, ['clip', 'no_speech_prob', 'baseline', 'steered'])}
</section>
"""


def write_report(out: Path, data: dict) -> None:
    """Write the two plots and ``study.html`` into ``out``."""
    plot_sweep(data, out / "hallucination_vs_alpha.png", "hallucination_rate", "hallucination rate (held-out non-speech)")
    plot_sweep(data, out / "wer_vs_alpha.png", "wer", "WER (held-out speech)")
    write_text_atomic(out / "study.html", html_section(data))
