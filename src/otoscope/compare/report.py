"""The comparison as one self-contained HTML page: every plot embedded as a PNG data URI, every string escaped.

Sections: summary (what changed, where the activations first move, notes), weights (changed modules with
their effective ranks, singular-value spectra, skipped parameters), layers (CKA, drift and SAE FVU per
layer, the A × B CKA matrices), and patching (how each minimal pair's map moved).
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from otoscope.compare.result import CompareResult
from otoscope.report import html as H

MAX_SPECTRA = 8  # singular-value curves drawn (the modules that changed most)
MAX_MODULE_ROWS = 60  # changed modules listed in the table


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _embed(fig, alt: str) -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI (the page needs no other file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _plt().close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{H.esc(alt)}">'


def _short(hook: str) -> str:
    """``dec.2`` for ``decoder.blocks.2.hook_resid_post``, ``enc.embed`` for ``encoder.hook_embed``."""
    parts = hook.split(".")
    stack = parts[0][:3]
    return f"{stack}.embed" if parts[1] == "hook_embed" else (f"{stack}.{parts[2]}" if parts[1] == "blocks" else hook)


def _finite(value) -> float:
    return value if isinstance(value, (int, float)) and value is not None and math.isfinite(value) else float("nan")


def spectra_plot(result: CompareResult) -> str | None:
    """Singular values of the weight deltas that changed most (log scale)."""
    changed = sorted((m for m in result.weights.changed if m.singular_values), key=lambda m: -m.delta_norm)[:MAX_SPECTRA]
    if not changed:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    for m in changed:
        sv = np.asarray(m.singular_values[:64])
        ax.semilogy(np.arange(1, len(sv) + 1), np.maximum(sv, 1e-30), marker=".", label=f"{m.module} (rank {m.rank})")
    ax.set_xlabel("singular value index")
    ax.set_ylabel("σ of ΔW")
    ax.set_title("Weight-delta spectra (a rank-r update drops after index r)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _embed(fig, "singular values of the weight deltas")


def layers_plot(result: CompareResult) -> str | None:
    """Drift, 1 − CKA and the FVU increase per layer hook."""
    if not result.layers:
        return None
    plt = _plt()
    labels = [_short(s.hook) for s in result.layers]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(labels) + 2), 3.6), constrained_layout=True)
    ax.plot(x, [_finite(s.drift) for s in result.layers], marker="o", label="drift  mean‖h_B − h_A‖ / mean‖h_A‖")
    ax.plot(x, [1 - _finite(s.cka) for s in result.layers], marker="s", label="1 − CKA")
    if any(s.fvu_increase is not None for s in result.layers):
        ax.plot(x, [_finite(s.fvu_increase) for s in result.layers], marker="^", label="SAE FVU increase")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_xlabel("layer (residual stream after the block)")
    ax.set_title("How far each layer moved")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _embed(fig, "drift, CKA and FVU increase per layer")


def cka_plot(matrix) -> str:
    """One stack's A-layer × B-layer CKA heatmap."""
    plt = _plt()
    values = np.asarray(matrix.matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(matrix.cols) + 2.5), max(3, 0.45 * len(matrix.rows) + 1.5)),
                           constrained_layout=True)
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(matrix.cols)), [_short(c) for c in matrix.cols], rotation=45, ha="right")
    ax.set_yticks(range(len(matrix.rows)), [_short(r) for r in matrix.rows])
    ax.set_xlabel("model B layer")
    ax.set_ylabel("model A layer")
    ax.set_title(f"{matrix.stack}: linear CKA, A × B")
    if values.size <= 400:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] < 0.5 else "black")
    fig.colorbar(im, ax=ax, label="CKA")
    return _embed(fig, f"{matrix.stack} CKA matrix")


def pair_plot(shift) -> str:
    """Normalised patching scores of every cell, model A against model B."""
    plt = _plt()
    a = np.array([c["a"] for c in shift.map], dtype=float)
    b = np.array([c["b"] for c in shift.map], dtype=float)
    fig, ax = plt.subplots(figsize=(4.2, 4), constrained_layout=True)
    ax.scatter(a, b, s=12)
    finite = np.isfinite(np.concatenate([a, b]))
    lo, hi = (float(np.nanmin(np.concatenate([a, b]))), float(np.nanmax(np.concatenate([a, b])))) if finite.any() else (0, 1)
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set_xlabel("model A: normalised score")
    ax.set_ylabel("model B: normalised score")
    ax.set_title("Patching cells, A vs B")
    ax.grid(alpha=0.3)
    return _embed(fig, "patching scores of model A against model B")


def _summary(result: CompareResult) -> str:
    s = result.summary()
    rows = [("model A", result.model_a), ("model B", result.model_b), ("kind", result.kind),
            ("modules compared", s["compared_modules"]), ("modules changed", s["changed_modules"]),
            ("blocks changed", ", ".join(s["changed_blocks"]) or "none"),
            ("first layer that moved", "; ".join(f"{k}: {v or 'none'}" for k, v in s["first_moved_layer"].items()) or "–"),
            ("clips", len(result.clips))]
    if result.adapter:
        rows += [("adapter", result.adapter.get("path")), ("PEFT type", result.adapter.get("peft_type")),
                 ("LoRA r", result.adapter.get("r")), ("adapter base", result.adapter.get("base_model"))]
    body = H.table([("k", ""), ("v", "")], [{"k": k, "v": v} for k, v in rows], text_columns=("k", "v"))
    if result.notes:
        body += "".join(f'<p class="na">{H.esc(n)}</p>' for n in result.notes)
    return H.section("summary", "Summary", body)


def _weights(result: CompareResult) -> str:
    changed = sorted(result.weights.changed, key=lambda m: -m.relative)
    rows = [{"module": m.module, "block": m.block or "", "shape": "×".join(map(str, m.shape)), "relative": m.relative,
             "delta_norm": m.delta_norm, "rank": m.rank, "erank": m.erank,
             "s1": m.singular_values[0] if m.singular_values else None} for m in changed[:MAX_MODULE_ROWS]]
    body = (f'<p class="note">{len(changed)} of {len(result.weights.modules)} modules changed. rank: singular values of '
            f'ΔW above {result.config.get("rank_rtol", 1e-3):g}·σ₁ and the float rounding floor; erank: entropy '
            "effective rank exp(H(σ/Σσ)).</p>")
    body += H.table([("module", "module"), ("block", "block"), ("shape", "shape"), ("relative", "‖ΔW‖/‖W_A‖"),
                     ("delta_norm", "‖ΔW‖"), ("rank", "rank"), ("erank", "erank"), ("s1", "σ₁")], rows,
                    text_columns=("module", "block", "shape")) if rows else ""
    body += spectra_plot(result) or ""
    if result.weights.skipped:
        body += "<h3>Not compared</h3>" + H.table([("param", "parameter"), ("reason", "reason")],
                                                  result.weights.skipped[:200], text_columns=("param", "reason"))
    return H.section("weights", "Weights", body)


def _layers(result: CompareResult) -> str:
    if not result.layers:
        return H.section("layers", "Layers", '<p class="na">no clips given: weights only.</p>')
    body = layers_plot(result) or ""
    body += H.table([("hook", "hook"), ("rows", "positions"), ("cka", "CKA"), ("drift", "drift"),
                     ("cosine", "cosine"), ("fvu_a", "FVU on A"), ("fvu_b", "FVU on B"), ("fvu_increase", "FVU increase")],
                    [s.to_json() for s in result.layers], text_columns=("hook",))
    body += "".join(cka_plot(m) for m in result.cka)
    if result.skipped_layers:
        body += "<h3>Layers in only one model</h3>" + H.table([("hook", "hook"), ("reason", "reason")],
                                                              result.skipped_layers, text_columns=("hook", "reason"))
    return H.section("layers", "Layers", body)


def _pairs(result: CompareResult) -> str:
    if not result.pairs:
        return ""
    body = ""
    for p in result.pairs:
        body += f"<h3>{H.esc(p.description or p.pair)}</h3>"
        body += (f'<p class="note">{H.esc(p.metric)}: A clean {H.fmt(p.clean_a, 3)}, corrupt {H.fmt(p.corrupt_a, 3)}; '
                 f"B clean {H.fmt(p.clean_b, 3)}, corrupt {H.fmt(p.corrupt_b, 3)}; {p.cells} cells; correlation "
                 f"{H.fmt(p.correlation, 3)}; largest change {H.fmt(p.max_abs_change, 3)}</p>")
        body += pair_plot(p)
        body += H.table([("hook", "hook"), ("seconds", "seconds"), ("a", "A"), ("b", "B"), ("change", "B − A")],
                        [{**t, "seconds": "–".join(f"{s:.2f}" for s in t["seconds"]) if t["seconds"] else ""} for t in p.top],
                        text_columns=("hook", "seconds"))
        body += "".join(f'<p class="na">{H.esc(n)}</p>' for n in p.notes)
    return H.section("patching", "Patching maps", body)


def render(result: CompareResult) -> str:
    """The whole page."""
    cards = [_summary(result), _weights(result), _layers(result), _pairs(result)]
    nav = [("summary", "Summary"), ("weights", "Weights"), ("layers", "Layers")] + \
        ([("patching", "Patching")] if result.pairs else [])
    return H.page("Otoscope compare", f"{result.model_a} → {result.model_b}", nav, [c for c in cards if c])
