"""HTML for the dashboard pages: the latent index, one page per latent, one page per clip.

Every string that did not come from this file (paths, labels, explanations, transcripts, tokens) goes
through :func:`esc`. Figures are inline SVG computed here (activation traces over snippet spectrograms,
density histograms, the clip heatmap's axes and word spans), so pages need no plotting at build time and
read the same with scripts off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Sequence

from otoscope.features.dashboard.data import best_label
from otoscope.features.dashboard.effects import VOCAB_CONVENTION, Ablation, VocabEffect
from otoscope.report.html import esc  # noqa: F401 (also this module's public name: the report section uses pages.esc)


def num(value, digits: int = 3) -> str:
    """A number for a table cell; None/NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    x = float(value)
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 1e5):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}f}"


def shell(title: str, subtitle: str, body: str, depth: int) -> str:
    """A whole page; ``depth`` is how many folders below the dashboard root it sits (for asset links)."""
    up = "../" * depth
    home = f'<a href="{up}index.html">all latents</a> · ' if depth else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<link rel='stylesheet' href='{up}assets/dashboard.css'></head><body><header><h1>{esc(title)}</h1>"
            f"<p>{home}{subtitle}</p></header><main>{body}</main>"
            f"<script src='{up}assets/dashboard.js'></script></body></html>")


def section(heading: str, body: str, anchor: str = "") -> str:
    """One titled card."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{esc(heading)}</h2>{body}</section>"


def labels_text(labels: dict | None) -> str:
    """``key=value`` pills for an example's labels."""
    return "".join(f'<span class="pill">{esc(k)}={esc(v)}</span>' for k, v in (labels or {}).items())


# ------------------------------------------------------------------ snippets
@dataclass
class Card:
    """One example as a latent page shows it."""

    example: dict
    """The features.json entry (clip, clip_index, frame, seconds, value, labels)."""
    stem: str | None
    """Snippet asset path without suffix, relative to the dashboard root (None: no audio for this hook)."""
    trace: list[tuple[float, float]]
    """``(x in [0, 1] across the snippet, activation)`` of this latent over the snippet's frames."""
    clip_page: str | None
    """The clip's page, relative to the dashboard root, or None."""
    frames: list[int] = field(default_factory=list)
    """The encoder frame of each ``trace`` point."""


def trace_svg(trace: Sequence[tuple[float, float]], vmax: float) -> str:
    """The activation trace over a snippet spectrogram: x across the snippet, y from 0 to the latent's max."""
    scale = vmax if vmax > 0 else 1.0
    points = " ".join(f"{100 * x:.2f},{40 - 37 * min(max(v / scale, 0.0), 1.0):.2f}" for x, v in trace)
    line = f'<polyline class="trace" points="{points}"/>' if trace else ""
    return (f'<svg viewBox="0 0 100 40" preserveAspectRatio="none" aria-hidden="true">'
            f'<line class="centre" x1="50" y1="0" x2="50" y2="40"/>{line}</svg>')


def card_html(card: Card, vmax: float, up: str = "../") -> str:
    """A snippet card: spectrogram with the activation drawn over it, a player, and the caption."""
    ex = card.example
    name = PurePosixPath(str(ex["clip"])).name
    where = f'<a href="{up}{esc(card.clip_page)}">{esc(name)}</a>' if card.clip_page else esc(name)
    caption = (f"{where} @ {float(ex['seconds']):.2f} s · <b>{num(ex['value'], 2)}</b> "
               f"{labels_text(ex.get('labels'))}")
    if card.stem is None:
        return f'<figure class="snip"><figcaption>{caption}</figcaption></figure>'
    return (f'<figure class="snip"><div class="spec"><img src="{up}{esc(card.stem)}.png" alt="spectrogram" loading="lazy">'
            f'{trace_svg(card.trace, vmax)}</div>'
            f'<audio controls preload="none" src="{up}{esc(card.stem)}.flac"></audio><figcaption>{caption}</figcaption></figure>')


# ------------------------------------------------------------------ small figures
def histogram_svg(counts: Sequence[float], edges: Sequence[float], width: int = 520, height: int = 170) -> str:
    """Bars of ``counts`` over log10 activation ``edges`` (len(edges) = len(counts) + 1), in SVG."""
    if not counts or len(edges) != len(counts) + 1:
        return '<p class="note">No histogram in the features file.</p>'
    filled = [j for j, c in enumerate(counts) if c > 0]
    if filled:  # zoom on the occupied bins, with as many empty ones (at least 5) each side
        pad = max(5, filled[-1] - filled[0] + 1)
        a, b = max(0, filled[0] - pad), min(len(counts), filled[-1] + 1 + pad)
        counts, edges = list(counts[a:b]), list(edges[a:b + 1])
    left, bottom, top, right = 44, 30, 8, 10
    w, h = width - left - right, height - bottom - top
    peak = max(max(counts), 1)
    lo, hi = float(edges[0]), float(edges[-1])
    span = (hi - lo) or 1.0
    bars = []
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c <= 0:
            continue
        x0, x1 = left + w * (a - lo) / span, left + w * (b - lo) / span
        bh = h * c / peak
        bars.append(f'<rect class="bar" x="{x0:.1f}" y="{top + h - bh:.1f}" width="{max(x1 - x0 - 0.5, 0.5):.1f}" '
                    f'height="{bh:.1f}"><title>{num(10 ** a, 3)}–{num(10 ** b, 3)}: {int(c)}</title></rect>')
    ticks = []
    decades = [(e, f"1e{e}") for e in range(math.ceil(lo), math.floor(hi) + 1)]
    for e, label in decades or [(lo, num(10 ** lo, 3)), (hi, num(10 ** hi, 3))]:
        x = left + w * (e - lo) / span
        ticks.append(f'<line class="axis" x1="{x:.1f}" y1="{top + h}" x2="{x:.1f}" y2="{top + h + 4}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{top + h + 16}" text-anchor="middle">{label}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="activation density">{"".join(bars)}'
            f'<line class="axis" x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}"/>{"".join(ticks)}'
            f'<text class="tick" x="{left - 6}" y="{top + 10}" text-anchor="end">{int(peak)}</text>'
            f'<text class="tick" x="{left - 6}" y="{top + h}" text-anchor="end">0</text>'
            f'<text class="tick" x="{left + w / 2:.0f}" y="{height - 2}" text-anchor="middle">activation (log scale), '
            f'firing frames only</text></svg>')


def table(head: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], ident: str = "") -> str:
    """A table from already-escaped cells; ``head`` is ``(label, "num"|"text")``."""
    cls = lambda kind: ' class="text"' if kind == "text" else ""  # noqa: E731
    th = "".join(f'<th{cls(kind)} data-type="{kind}">{esc(label)}</th>' for label, kind in head)
    body = "".join("<tr>" + "".join(f"<td{cls(kind)}>{cell}</td>" for cell, (_, kind) in zip(row, head)) + "</tr>"
                   for row in rows)
    ident = f' id="{esc(ident)}"' if ident else ""
    return f"<table{ident}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def latent_link(index: int, pages: set[int], up: str = "../") -> str:
    """``#index``, linked to its page when it has one."""
    return f'<a href="{up}latents/{index}.html">#{index}</a>' if index in pages else f"#{index}"


def label_table(labels: dict, per_key: int = 10) -> str:
    """Per label key: counts among the top activations and selectivity of its ``per_key`` most selective values."""
    rows = []
    for key, stats in labels.items():
        counts, sel = stats.get("top_counts") or {}, stats.get("selectivity") or {}
        values = sorted(set(counts) | set(sel), key=lambda v: (-(sel.get(v) or 0), -counts.get(v, 0), str(v)))
        for value in values[:per_key]:
            best = " ★" if value == stats.get("best") else ""
            rows.append([esc(key), esc(value) + best, num(counts.get(value, 0)), num(sel.get(value), 2)])
    if not rows:
        return '<p class="note">No labels were given to the features run.</p>'
    return table([("key", "text"), ("value", "text"), ("in top", "num"), ("selectivity", "num")], rows)


def effect_html(effect: VocabEffect | list[Ablation] | None, note: str) -> str:
    """The effect section's body: vocabulary tokens, or transcripts with and without the latent."""
    if isinstance(effect, VocabEffect):
        tok = lambda pairs: table([("token", "text"), ("effect", "num")],  # noqa: E731
                                  [[f"<code>{esc(repr(t))}</code>", num(v, 3)] for t, v in pairs])
        return (f'<p class="note">{esc(VOCAB_CONVENTION)}.</p><div class="grid2"><div><h3>promoted</h3>{tok(effect.top)}'
                f'</div><div><h3>suppressed</h3>{tok(effect.bottom)}</div></div>')
    if effect:
        rows = [[esc(PurePosixPath(a.clip).name), esc(a.clean), f'<span class="{"changed" if a.changed else ""}">'
                 f"{esc(a.ablated)}</span>", num(a.wer, 2)] for a in effect]
        return ('<p class="note">Transcripts of the latent\'s top clips with the latent zeroed on every frame (SAE '
                'spliced with its error term, so only this latent changes).</p>'
                + table([("clip", "text"), ("transcript", "text"), ("latent zeroed", "text"), ("WER", "num")], rows))
    return f'<p class="note">{esc(note)}</p>'


# ------------------------------------------------------------------ pages
def latent_page(record: dict, meta: dict, edges: Sequence[float], top: list[Card],
                quantiles: list[tuple[float, float, list[Card]]], pages: set[int],
                effect: VocabEffect | list[Ablation] | None, effect_note: str) -> str:
    """One latent's page."""
    i = record["index"]
    vmax = float(record["max"])
    exp = record.get("explanation") or None
    stats = "".join(f"<div><b>{v}</b>{esc(k)}</div>" for k, v in [
        ("firing frequency", num(record["frequency"], 4)), ("mean (all frames)", num(record.get("mean"), 4)),
        ("max activation", num(vmax, 3)), ("temporal consistency", num(record.get("temporal_consistency"), 3))])
    body = f'<div class="stats">{stats}</div>'
    if exp:
        pr = f" (precision {num(exp.get('precision'), 2)}, recall {num(exp.get('recall'), 2)})" if exp.get("precision") is not None else ""
        body += f'<div class="explanation">{esc(exp.get("text", ""))}<span class="note">{pr}</span></div>'
    out = section(f"Latent {i}", body)
    cards = "".join(card_html(c, vmax) for c in top)
    out += section("Top activations", '<p class="note">±0.5 s around each frame; the line is this latent over the '
                   "snippet (0 to the latent's max), the dashed line the frame itself.</p>"
                   f'<div class="cards">{cards}</div>', "top")
    if quantiles:
        groups = "".join(f'<div class="quantile"><div class="range">activation {num(lo, 2)} – {num(hi, 2)}</div>'
                         f'<div class="cards small">{"".join(card_html(c, vmax) for c in cards_)}</div></div>'
                         for lo, hi, cards_ in quantiles)
        out += section("Activation quantiles", '<p class="note">Examples drawn from each tenth of the firing frames, '
                       f'strongest group first.</p><div class="quantiles">{groups}</div>', "quantiles")
    co = record.get("coactivation") or []
    co_html = table([("latent", "text"), ("score", "num")], [[latent_link(int(c["index"]), pages), num(c["score"], 3)]
                                                             for c in co]) if co else '<p class="note">None recorded.</p>'
    out += ('<div class="grid2">' + section("Density", histogram_svg(record.get("histogram") or [], edges), "density")
            + section("Co-activating latents", co_html, "coactivation") + "</div>")
    out += section("Labels", label_table(record.get("labels") or {}), "labels")
    out += section("Effect", effect_html(effect, effect_note), "effect")
    subtitle = f"{esc(meta.get('model'))} · {esc(meta.get('hook'))} · latent {i} of {esc(meta.get('d_sae'))}"
    return shell(f"Latent {i}", subtitle, out, 1)


def clip_figure(spec_src: str, heat_src: str, rows: Sequence[tuple[int, float]], seconds: float, heat_seconds: float,
                words: Sequence[dict], link: Callable[[int], str | None], width: int = 1100) -> str:
    """Spectrogram over a latent × time heatmap with word spans, as one SVG on one time axis.

    ``spec_src`` and ``heat_src`` are image hrefs relative to the page; ``link(latent)`` the href of a
    latent's page or None. ``seconds`` is the audio's length, ``heat_seconds`` the span of the heatmap's
    frames (they differ by under a frame); each image is stretched to its own span."""
    left, spec_h, row_h, words_h, axis_h = 96, 110, 20, 26, 24
    w = width - left - 8
    heat_y = spec_h + 4
    heat_h = row_h * len(rows)
    words_y = heat_y + heat_h + 4
    height = words_y + (words_h if words else 0) + axis_h
    total = max(seconds, heat_seconds, 1e-9)
    sx = lambda t: left + w * t / total  # noqa: E731
    parts = [f'<image href="{esc(spec_src)}" x="{left}" y="0" width="{sx(seconds) - left:.1f}" height="{spec_h}" '
             f'preserveAspectRatio="none" '
             f'style="image-rendering:pixelated"/>',
             f'<text class="tick" x="{left - 6}" y="{spec_h / 2:.0f}" text-anchor="end">log-mel</text>']
    if rows:
        parts.append(f'<image href="{esc(heat_src)}" x="{left}" y="{heat_y}" width="{sx(heat_seconds) - left:.1f}" '
                     f'height="{heat_h}" '
                     f'preserveAspectRatio="none" style="image-rendering:pixelated"/>')
    for r, (latent, peak) in enumerate(rows):
        y = heat_y + r * row_h + row_h * 0.7
        label = f"#{latent}  {num(peak, 1)}"
        text = f'<text class="tick" x="{left - 6}" y="{y:.1f}" text-anchor="end">{esc(label)}</text>'
        href = link(latent)
        parts.append(f'<a href="{esc(href)}">{text}</a>' if href else text)
    for word in words:
        x0, x1 = sx(word["start"]), sx(word["end"])
        parts.append(f'<rect class="word" x="{x0:.1f}" y="{words_y}" width="{max(x1 - x0, 1):.1f}" height="{words_h - 6}"/>'
                     f'<text class="wordtext" x="{(x0 + x1) / 2:.1f}" y="{words_y + 14}" text-anchor="middle">'
                     f'{esc(word["word"].strip())}</text>')
        for x in (x0, x1):
            parts.append(f'<line class="axis" x1="{x:.1f}" y1="{heat_y}" x2="{x:.1f}" y2="{words_y}" opacity=".35"/>')
    axis_y = height - axis_h + 4
    step = _tick_step(total)
    t = 0.0
    while t <= total + 1e-9:
        x = sx(t)
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">{t:g} s</text>')
        t = round(t + step, 6)
    return (f'<svg class="heat" viewBox="0 0 {width} {height}" role="img" aria-label="latents over time">'
            + "".join(parts) + "</svg>")


def _tick_step(seconds: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10):
        if seconds / step <= 12:
            return step
    return 30.0


def clip_page(clip: dict, index: int, audio_src: str, figure: str, rows: Sequence[tuple[int, float]],
              records: dict[int, dict], pages: set[int], meta: dict, has_words: bool) -> str:
    """One clip's page: which latents fire here, and when."""
    name = str(clip["clip"])
    body = (f'<p>{labels_text(clip.get("labels"))} <span class="note">{num(clip.get("seconds"), 2)} s · '
            f'{num(clip.get("frames"))} frames</span></p><audio controls preload="none" src="../{esc(audio_src)}"></audio>')
    note = "" if has_words else '<p class="note">No word spans for this clip (run otoscope align and pass --spans).</p>'
    head = f'<p class="note">The {len(rows)} latents with the highest peak on this clip; each row is scaled to the latent\'s max over the corpus.</p>'
    rows_html = [[latent_link(i, pages), num(peak, 3), num(records.get(i, {}).get("max"), 3),
                  esc((records.get(i, {}).get("explanation") or {}).get("text", ""))] for i, peak in rows]
    out = section(name, body)
    out += section("Latents over time", head + figure + note, "heatmap")
    out += section("Strongest latents", table([("latent", "text"), ("peak here", "num"), ("corpus max", "num"),
                                               ("explanation", "text")], rows_html), "latents")
    subtitle = f"{esc(meta.get('model'))} · {esc(meta.get('hook'))} · clip {index}"
    return shell(PurePosixPath(name).name, subtitle, out, 1)


def index_page(rows: list[dict], meta: dict, n_firing: int, clip_pages: Sequence[int] = (), extra: str = "") -> str:
    """The latent table: sortable (click a header) and filterable (type words), one row per latent page;
    ``clip_pages`` (clip indices) are listed under the overview."""
    head = [("latent", "num"), ("frequency", "num"), ("mean", "num"), ("max", "num"), ("top label", "text"),
            ("selectivity", "num"), ("explanation", "text")]
    body = []
    for r in rows:
        i = r["index"]
        body.append("<tr>" + f'<td data-v="{i}"><a href="latents/{i}.html">#{i}</a></td>'
                    + "".join(f'<td data-v="{r[k] if r[k] is not None else ""}">{num(r[k], 4)}</td>'
                              for k in ("frequency", "mean", "max"))
                    + f'<td class="text">{esc(r["top_label"] or "")}</td>'
                    + f'<td data-v="{r["selectivity"] if r["selectivity"] is not None else ""}">{num(r["selectivity"], 2)}</td>'
                    + f'<td class="text">{esc(r["explanation"] or "")}</td></tr>')
    th = "".join(f'<th data-type="{kind}"{" class=text" if kind == "text" else ""}>{esc(label)}</th>' for label, kind in head)
    tab = f'<div class="tablewrap"><table id="latents"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    stats = "".join(f"<div><b>{esc(v)}</b>{esc(k)}</div>" for k, v in [
        ("latents (d_sae)", meta.get("d_sae")), ("fire at least once", n_firing), ("pages", len(rows)),
        ("clips", len(meta.get("clips") or [])), ("real frames", meta.get("frames"))])
    controls = ('<p><input id="filter" class="filter" type="search" placeholder="filter: words in any column…">'
                '<span id="count" class="count"></span></p><p class="note">Click a column header to sort.</p>')
    clips = meta.get("clips") or []
    if clip_pages:
        listed = "".join(f'<a href="clips/{c}.html">{esc(PurePosixPath(str(clips[c]["clip"])).name)}</a>' for c in clip_pages)
        extra += f"<details><summary>{len(clip_pages)} clip pages (which latents fire when)</summary>{listed}</details>"
    out = section("Overview", f'<div class="stats">{stats}</div>{extra}') + section("Latents", controls + tab)
    subtitle = f"{esc(meta.get('model'))} · {esc(meta.get('hook'))} · SAE {esc(meta.get('sae'))}"
    return shell("Otoscope SAE dashboard", subtitle, out, 0)


def index_row(record: dict) -> dict:
    """The index table's values for one latent record."""
    best = best_label(record)
    exp = record.get("explanation") or {}
    return {"index": record["index"], "frequency": record["frequency"], "mean": record.get("mean"), "max": record["max"],
            "top_label": f"{best[0]}={best[1]}" if best else None, "selectivity": best[2] if best else None,
            "explanation": exp.get("text")}
