"""The patching section of ``otoscope report``: a self-contained HTML fragment with the heatmap."""

from __future__ import annotations

import html
from pathlib import Path


def _fmt(x) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def patching_section(result, assets: str | Path, grounding=None, top: int = 8, prefix: str = "patching") -> str:
    """HTML for one :class:`~otoscope.patching.PatchResult` (and optionally a grounding result).

    The heatmap is written to ``assets/{prefix}_heatmap.png`` and referenced relative to the report,
    as ``{assets folder name}/{prefix}_heatmap.png``.
    """
    from otoscope.patching.plots import plot_heatmap

    assets = Path(assets)
    assets.mkdir(parents=True, exist_ok=True)
    image = plot_heatmap(result, assets / f"{prefix}_heatmap.png")
    ctx = result.context
    esc = lambda x: html.escape(str(x))  # noqa: E731
    rows = [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in (
        ("clean clip", ctx.get("clean")), ("corrupt clip", ctx.get("corrupt")), ("text", ctx.get("text")),
        ("answer / wrong", f"{ctx.get('answer')!r} / {ctx.get('wrong')!r}"), ("alignment", ctx.get("alignment")),
        ("metric (clean / corrupt)", f"{result.metric}: {_fmt(result.clean)} / {_fmt(result.corrupt)}"))]
    share = (lambda c: c.normalized) if result.direction == "denoising" else (lambda c: 1 - c.normalized)
    ranked = sorted(result.cells, key=lambda c: -abs(share(c)) if share(c) == share(c) else 0)[:top]
    cells = "".join(
        f"<tr><td>{esc(c.hook)}{'' if c.head is None else f' h{c.head}'}</td>"
        f"<td>{esc(f'{c.seconds[0]:.2f}–{c.seconds[1]:.2f} s' if c.seconds else c.tokens)}</td>"
        f"<td>{_fmt(c.value)}</td><td>{_fmt(c.normalized)}</td></tr>" for c in ranked)
    notes = "".join(f"<p class='note'>{esc(n)}</p>" for n in result.notes)
    out = [f"<section id='{prefix}'><h2>Activation patching ({esc(result.direction)}, {esc(result.method)})</h2>",
           f"<table>{''.join(rows)}</table>", notes,
           f"<img src='{esc(assets.name)}/{esc(image.name)}' alt='patching heatmap' style='max-width:100%'>",
           "<h3>Strongest cells</h3><table><tr><th>hook</th><th>span</th><th>value</th><th>normalised</th></tr>",
           cells, "</table>"]
    if grounding is not None:
        out.append("<h3>Grounding coefficient (listen vs guess)</h3><table><tr><th>decoder layer</th><th>gc</th>"
                   "<th>Δaudio</th><th>Δtext</th><th>note</th></tr>")
        out += [f"<tr><td>{g.layer}</td><td>{_fmt(g.gc)}</td><td>{_fmt(g.delta_audio)}</td><td>{_fmt(g.delta_text)}</td>"
                f"<td>{esc(g.note)}</td></tr>" for g in grounding.layers]
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out)
