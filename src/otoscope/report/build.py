"""``otoscope report``: one self-contained HTML report (``DIR/index.html`` + ``DIR/assets``).

Per clip: audio player, waveform and log-mel spectrogram, transcript, encoder logit lens (LIS, entropy,
KL) and encoder lens (transcript per layer, saturation layer), decoder logit lens. Over all clips:
residual norms per layer, layer × layer CKA, optional CKA against a second model, a tuned lens compared
with the logit lens on held-out frames, attention locality, and — given labels — group similarity with
permutation tests and linear probes. Every number also goes to ``DIR/report.json``.

The sections live in :mod:`otoscope.report.sections`; this module runs them in order and writes the page.
The report is built in a temporary folder beside ``DIR`` and swapped in whole at the end, so a failed or
interrupted run leaves an earlier report as it was, and a rerun leaves no stale assets.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from otoscope._io import atomic_dir, check_output_dir, write_text_atomic
from otoscope.errors import OtoscopeError
from otoscope.report import html as H
from otoscope.report.config import ReportConfig
from otoscope.report.sections import SECTIONS, ReportContext, SectionResult
from otoscope.report.sections.context import prepare

REPORT_FILES = ("index.html", "report.json")  # mark a folder as an earlier report, which a new one may replace


@dataclass
class ReportResult:
    """Where the report went and what it holds."""

    index: Path
    """The HTML page."""
    data: dict = field(default_factory=dict)
    """Everything in ``report.json``."""


def build_report(files: Sequence[str | Path], out: str | Path, config: ReportConfig | None = None,
                 model=None) -> ReportResult:
    """Compute every section for ``files`` and write the report into ``out`` (replacing an earlier report there).

    ``model``: an already loaded :class:`~otoscope.models.hooked.HookedAudioModel` (in a notebook), used
    instead of loading ``config.model``.
    """
    import otoscope

    config = config or ReportConfig()
    files = [str(f) for f in files]
    if not files:
        raise OtoscopeError("no audio files given; pass at least one.")
    if config.labels is not None and len(config.labels) != len(files):
        raise OtoscopeError(f"got {len(config.labels)} labels for {len(files)} files; give one label per file.")
    out = check_output_dir(out, REPORT_FILES, "report folder")
    for section in SECTIONS:
        section.check(config)
    model = model if model is not None else otoscope.load(config.model, device=config.device)
    clips = model.clips(files)  # validates every file before any work
    with atomic_dir(out, markers=REPORT_FILES) as folder:
        ctx = ReportContext(model, clips, config, folder / "assets")
        ctx.assets.mkdir()
        bar = tqdm(total=2 + sum(section.steps(ctx) for section in SECTIONS), desc="report", unit="step",
                   disable=not config.progress)

        def step(label: str):
            bar.set_postfix_str(label)
            bar.update(1)

        ctx.step = step
        data: dict = {"model": model.name, "source": model.source,
                      "created": datetime.datetime.now().isoformat(timespec="seconds"), "otoscope": otoscope.__version__}
        try:
            step("model")
            prepare(ctx)
            step("transcripts & encoder lenses")
            results = [result for section in SECTIONS if (result := section.build(ctx)) is not None]
        finally:
            bar.close()  # an error message starts on a line of its own
        for result in results:
            data.update(result.data)
        write_text_atomic(folder / "report.json", json.dumps(data, indent=1, default=float))
        subtitle = (f"{model.name} ({model.source}) · {len(clips)} clip(s) · otoscope {otoscope.__version__} · "
                    f"{data['created']}")
        nav, cards = render_cards(results)
        write_text_atomic(folder / "index.html", H.page("Otoscope report", subtitle, nav, cards))
    return ReportResult(out / "index.html", data)


def render_cards(results: Sequence[SectionResult]) -> tuple[list[tuple[str, str]], list[str]]:
    """``(nav, cards)`` for the page: one card per anchor (its first section gives title and nav label)."""
    order: list[str] = []
    first: dict[str, SectionResult] = {}
    bodies: dict[str, str] = {}
    for result in results:
        if result.anchor not in first:
            order.append(result.anchor)
            first[result.anchor] = result
            bodies[result.anchor] = ""
        bodies[result.anchor] += result.html
    nav = [(anchor, first[anchor].nav) for anchor in order]
    return nav, [H.section(anchor, first[anchor].title, bodies[anchor]) for anchor in order]


def labels_from_manifest(manifest: str | Path, key: str, files: Sequence[str]) -> list[str]:
    """Labels for ``files`` from a JSONL manifest with ``path`` and ``key`` fields (paths relative to it)."""
    path = Path(manifest)
    if not path.is_file():
        raise OtoscopeError(f"manifest not found: {path}; pass a JSONL file with path and label fields.")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OtoscopeError(f"{path} is not JSONL (one JSON object per line): {err}.") from None
    by_path = {}
    for row in rows:
        if not isinstance(row, dict) or "path" not in row:
            raise OtoscopeError(f"{path}: every line must be a JSON object with a 'path' field.")
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
