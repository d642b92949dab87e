"""Activation patching of a minimal pair (Whisper): the sweep's heatmap, its strongest cells and the
grounding coefficient per decoder layer (moved here from ``otoscope.patching.report``)."""

from __future__ import annotations

from pathlib import Path

from otoscope.errors import OtoscopeError
from otoscope.report import html as H
from otoscope.report.sections.context import ReportContext, Section, SectionResult


def _fmt(x) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def patching_title(result) -> str:
    """The card heading for one :class:`~otoscope.patching.PatchResult`."""
    return f"Activation patching ({result.direction}, {result.method})"


def patching_html(result, assets: str | Path, grounding=None, top: int = 8, prefix: str = "patching") -> str:
    """The body HTML for one :class:`~otoscope.patching.PatchResult` (and optionally a grounding result).

    The heatmap is written to ``assets/{prefix}_heatmap.png`` and referenced relative to the report,
    as ``{assets folder name}/{prefix}_heatmap.png``.
    """
    from otoscope.patching.plots import plot_heatmap

    assets = Path(assets)
    assets.mkdir(parents=True, exist_ok=True)
    image = plot_heatmap(result, assets / f"{prefix}_heatmap.png")
    ctx = result.context
    esc = H.esc
    rows = [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in (
        ("clean clip", ctx.get("clean")), ("corrupt clip", ctx.get("corrupt")), ("text", ctx.get("text")),
        ("answer / wrong", f"{ctx.get('answer')!r} / {ctx.get('wrong')!r}"), ("alignment", ctx.get("alignment")),
        ("metric (clean / corrupt)", f"{result.metric}: {_fmt(result.clean)} / {_fmt(result.corrupt)}"))]
    ranked = result.strongest(top)
    cells = "".join(
        f"<tr><td>{esc(c.hook)}{'' if c.head is None else f' h{c.head}'}</td>"
        f"<td>{esc(f'{c.seconds[0]:.2f}–{c.seconds[1]:.2f} s' if c.seconds else c.tokens)}</td>"
        f"<td>{_fmt(c.value)}</td><td>{_fmt(c.normalized)}</td></tr>" for c in ranked)
    notes = "".join(f"<p class='note'>{esc(n)}</p>" for n in result.notes)
    out = [f"<table>{''.join(rows)}</table>", notes,
           f"<img src='{esc(assets.name)}/{esc(image.name)}' alt='patching heatmap' style='max-width:100%'>",
           "<h3>Strongest cells</h3><table><tr><th>hook</th><th>span</th><th>value</th><th>normalised</th></tr>",
           cells, "</table>"]
    if grounding is not None:
        out.append("<h3>Grounding coefficient (listen vs guess)</h3><table><tr><th>decoder layer</th><th>gc</th>"
                   "<th>Δaudio</th><th>Δtext</th><th>note</th></tr>")
        out += [f"<tr><td>{g.layer}</td><td>{_fmt(g.gc)}</td><td>{_fmt(g.delta_audio)}</td><td>{_fmt(g.delta_text)}</td>"
                f"<td>{esc(g.note)}</td></tr>" for g in grounding.layers]
        out.append("</table>")
    return "\n".join(out)


def check(config) -> None:
    """The pair exists, reads, and has the answer and wrong tokens the section's metric needs."""
    from otoscope.stimuli.pairs import load_pair

    if config.pair:
        pair = load_pair(config.pair)
        if not (pair.answer and pair.wrong):
            raise OtoscopeError(f"{config.pair}: the pair has no answer/wrong tokens; make it with 'otoscope pairs word'.")


def build(ctx: ReportContext) -> SectionResult | None:
    """Sweep the encoder residual stream of ``config.pair`` with its answer and wrong tokens."""
    from otoscope.patching import grounding_coefficient, open_session, sweep
    from otoscope.stimuli.pairs import load_pair

    pair_path, model = ctx.config.pair, ctx.model
    if not pair_path:
        return None
    if not model.has_decoder:
        ctx.step("activation patching")
        return SectionResult("patching", "Activation patching", "Patching",
                             f'<p class="na">The patching section of the report uses a Whisper decoder metric; run '
                             f'<code>otoscope patch --metric …</code> for {H.esc(model.name)}.</p>', {})
    check(ctx.config)
    pair = load_pair(pair_path)
    session = open_session(model, pair.clean, pair.corrupt, text=pair.text, answer=pair.answer, wrong=pair.wrong)
    result = sweep(session, words=pair.clean_words)
    grounding = grounding_coefficient(session)
    body = patching_html(result, ctx.assets, grounding=grounding)
    ctx.step("activation patching")
    return SectionResult("patching", patching_title(result), "Patching", body, {"patching": result.to_json()})


SECTION = Section("patching", build, steps=lambda ctx: int(bool(ctx.config.pair)), check=check)
