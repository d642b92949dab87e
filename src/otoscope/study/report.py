"""The study's HTML page: one self-contained file (plots embedded as data URIs, every value escaped).

The plots are also written beside it (``plots/*.png``) for papers and slides.
"""

from __future__ import annotations

import base64
from pathlib import Path

from otoscope._io import atomic_path, write_text_atomic
from otoscope.report import html as H
from otoscope.study import plots

ABLATION_BASE = ("label", "latent", "accuracy", "accuracy_ablated", "drop", "recall", "recall_ablated")


def _img(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{H.esc(alt)}">'


def _p_text(p: float | None, n: int) -> str:
    if p is None:
        return "–"
    return f"p < {1 / (n + 1):.1e} (every permutation below)" if p <= 1 / (n + 1) + 1e-12 else f"p = {p:.3g}"


def _overview(data: dict) -> str:
    d = data["data"]
    counts = ", ".join(f"{H.esc(c)} {n}" for c, n in d["counts"].items())
    key = next((r for r in data["summary"] if r["hook"] == data.get("sae", {}).get("hook")), data["summary"][-1])
    n = data["config"]["n_permutations"]
    return (f"<p>{H.esc(data['model'])} ({H.esc(data['family'])}, reads {H.esc(d['kind'])}) on {d['items']} "
            f"{H.esc(d['kind'])} from <code>{H.esc(d['source'])}</code>: {counts}.</p>"
            f"<p>At <code>{H.esc(key['hook'])}</code>: within-group cosine {H.fmt(key['raw_within'], 3)} vs between "
            f"{H.fmt(key['raw_between'], 3)} (centered {H.fmt(key['within'], 3)} vs {H.fmt(key['between'], 3)}, "
            f"{H.esc(_p_text(key['p_value'], n))}, Cohen's d {H.fmt(key['cohens_d'], 2)}); same input + noise "
            f"{H.fmt(key['same_input'], 3)}; probe accuracy {H.fmt(key['probe_accuracy'], 3)} pooled, "
            f"{H.fmt(key['position_accuracy'], 3)} per position (chance {H.fmt(key['chance'], 3)}).</p>")


def _summary(data: dict, png: bytes) -> str:
    cols = [("hook", "hook"), ("raw_within", "within"), ("raw_between", "between"), ("raw_p_value", "p"),
            ("within", "within (centered)"), ("between", "between (centered)"), ("p_value", "p (centered)"),
            ("cohens_d", "d (centered)"), ("same_input", "same input"), ("probe_accuracy", "probe"),
            ("position_accuracy", "probe/position"), ("chance", "chance")]
    return (_img(png, "similarity and probe accuracy per hook")
            + '<p class="note">Mean cosine of mean-pooled representations within and between labels, '
            f'{data["config"]["n_permutations"]}-permutation p-values (label shuffles), Cohen\'s d of within- vs '
            'between-pair similarities; "centered" removes the mean over items first. Same input: each item against '
            f'itself with white noise at {H.fmt(data["config"]["control_snr_db"], 0)} dB SNR at the input (the ceiling). '
            f'Probes: {data["probe"]["folds"]}-fold cross-validated logistic regression on pooled representations and '
            'on single positions (folds split items).</p>'
            + H.table(cols, data["summary"], text_columns=["hook"]))


def _sae(data: dict, png: bytes) -> str:
    sae, sel = data["sae"], data["selectivity"]
    body = (f'<p>{H.esc(sae["architecture"])} SAE on <code>{H.esc(sae["hook"])}</code>: {sae["d_in"]} → {sae["d_sae"]} '
            f'latents, {sae["rows"]} rows, {sae["steps"]} steps; FVU {H.fmt(sae.get("fvu"), 3)}, L0 '
            f'{H.fmt(sae.get("l0"), 1)}, dead {H.fmt(sae.get("dead_fraction"), 3)}.</p>'
            '<p class="note">Selectivity of a latent for a label: its mean activation on the label\'s items over its '
            'mean on the other items (per item, the mean over positions; the denominator is floored at 1% of the '
            'latent\'s overall mean). Top latents fire on at least half of the label\'s items.</p>')
    body += _img(png, "selective latents per label")
    body += H.table([("label", "label"), ("items", "items"), ("live", "live latents"), ("above_2", "selectivity > 2"),
                     ("above_4", "selectivity > 4"), ("common_above_2", "> 2, on ≥ half the label"),
                     ("common_above_4", "> 4, on ≥ half the label")], sel["counts"], text_columns=["label"])
    body += "<h3>Most selective latents</h3>" + H.table(
        [("label", "label"), ("latent", "latent"), ("selectivity", "selectivity"), ("mean_on", "mean on label"),
         ("mean_off", "mean elsewhere"), ("fires_on", "fires on (fraction of label)")], sel["top"], text_columns=["label"])
    ablation = data["ablation"]
    extra = [k for k in (ablation[0] if ablation else {}) if k not in ABLATION_BASE]
    body += ("<h3>Ablating each latent</h3><p class=\"note\">The latent's decoded contribution is subtracted from "
             "the activations (the SAE error stays); the cross-validated probes trained on intact activations read "
             "the ablated held-out items. Recall: accuracy on the latent's own label." + (" Family-specific effects: " + H.esc(", ".join(extra)) + "." if extra else "")
             + "</p>")
    body += H.table([(k, k.replace("_", " ")) for k in (*ABLATION_BASE, *extra)], ablation, text_columns=["label"])
    return body


def _items(data: dict) -> str:
    rows = "".join(f"<tr><td class=\"text\">{H.esc(i['label'])}</td><td class=\"text\">{H.esc(i['name'])}</td></tr>"
                   for i in data["items"])
    return (f"<details><summary>{len(data['items'])} items</summary><table><thead><tr><th class=\"text\">label</th>"
            f"<th class=\"text\">item</th></tr></thead><tbody>{rows}</tbody></table></details>")


def write_report(folder: Path, data: dict) -> list[str]:
    """Write ``index.html`` and ``plots/*.png`` for ``data`` (a study's JSON) into ``folder``; return the files."""
    labels = [i["label"] for i in data["items"]]
    figures = {"summary.png": plots.summary_plot(data["summary"]),
               "projection.png": plots.projection_plot(data["projections"], labels)}
    matrix_hook = data.get("sae", {}).get("hook", data["hooks"][-1])
    matrix = next(m for m in data["matrices"] if m["hook"] == matrix_hook)
    figures["matrix.png"] = plots.matrix_plot(matrix)
    cards = [H.section("overview", "Overview", _overview(data)),
             H.section("summary", "Similarity and probes per hook", _summary(data, figures["summary.png"])),
             H.section("matrix", "Group × group similarity",
                       _img(figures["matrix.png"], "group by group similarity")
                       + f'<p class="note">Mean cosine between items of two labels at <code>{H.esc(matrix_hook)}</code> '
                         '(diagonal: within the label, self-pairs excluded); every hook is in study.json.</p>'
                       + H.table([(" row", ""), *[(c, c) for c in matrix["classes"]]],
                                 [{" row": c, **dict(zip(matrix["classes"], row))} for c, row in zip(matrix["classes"], matrix["raw"])],
                                 text_columns=[" row"])),
             H.section("projection", "2-D projection (PCA)", _img(figures["projection.png"], "PCA projection per hook")
                       + '<p class="note">Mean-pooled representations on their first two principal components.</p>')]
    nav = [("overview", "Overview"), ("summary", "Per hook"), ("matrix", "Matrix"), ("projection", "Projection")]
    if "sae" in data:
        figures["selectivity.png"] = plots.selectivity_plot(data["selectivity"]["counts"])
        cards.append(H.section("sae", "SAE latents: selectivity and ablation", _sae(data, figures["selectivity.png"])))
        nav.append(("sae", "SAE"))
    cards.append(H.section("items", "Items", _items(data)))
    nav.append(("items", "Items"))
    files = []
    for name, png in figures.items():
        with atomic_path(folder / "plots" / name) as tmp:
            tmp.write_bytes(png)
        files.append(f"plots/{name}")
    subtitle = f"{data['model']} · {data['data']['items']} {data['data']['kind']} · {data['created']}"
    write_text_atomic(folder / "index.html", H.page("Otoscope study: labelled groups", subtitle, nav, cards))
    return ["index.html", *files]
