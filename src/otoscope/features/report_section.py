"""The report's SAE feature section: which latents fire on each report clip, and when, linked to the dashboard.

``otoscope report --sae SAE_DIR`` calls :func:`feature_section`; it returns the section (title, anchor, HTML
body, JSON data) for the report to place, and writes its images under ``out_dir/assets``. For each SAE in
``SAE_DIR`` (one folder, or a training run's folder of them) and each clip: the clip's strongest latents by
peak activation over its real frames, a latent × time heatmap over the clip's spectrogram, and links to the
latents' dashboard pages when a dashboard (``otoscope sae dashboard``) is given.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Sequence

import numpy as np

from otoscope._io import atomic_path
from otoscope.errors import OtoscopeError
from otoscope.features.dashboard import pages, snippets
from otoscope.features.dashboard.activations import clip_codes
from otoscope.features.dashboard.static import FIGURE_CSS

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

DASHBOARD_FILE = "dashboard.json"


@dataclass
class FeatureSection:
    """One report section."""

    title: str
    """Heading."""
    anchor: str
    """HTML id (for the report's navigation)."""
    html: str
    """The section's body (the report wraps it in its card)."""
    data: dict = field(default_factory=dict)
    """What goes into ``report.json``."""


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _dashboard_links(dashboard: Path | None, out_dir: Path) -> tuple[dict[int, str], dict[int, str]]:
    """``(latent → href relative to out_dir, latent → explanation)`` from a dashboard's ``dashboard.json``."""
    if dashboard is None:
        return {}, {}
    file = Path(dashboard) / DASHBOARD_FILE
    if not file.is_file():
        raise OtoscopeError(f"{file} not found; pass the folder written by 'otoscope sae dashboard'.")
    summary = json.loads(file.read_text(encoding="utf-8"))
    rel = Path(os.path.relpath(Path(dashboard).resolve(), out_dir.resolve())).as_posix()
    links = {int(i): f"{rel}/{v['page']}" for i, v in summary.get("latents", {}).items()}
    notes = {int(i): v.get("explanation") or "" for i, v in summary.get("latents", {}).items()}
    return links, notes


def feature_section(model: "HookedAudioModel", clips: Sequence, sae_dir: str | Path, out_dir: str | Path, *,
                    dashboard: str | Path | None = None, top: int = 8, batch_size: int = 4) -> FeatureSection:
    """The feature section for ``clips`` (paths or loaded clips) and the SAE(s) in ``sae_dir``.

    Images go to ``out_dir/assets``; ``dashboard`` (an ``otoscope sae dashboard`` folder) adds links to
    latent pages and their explanations. ``top`` latents per clip.
    """
    from otoscope.sae.format import load_saes

    out_dir = Path(out_dir)
    assets = out_dir / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    loaded = model.clips(list(clips))
    links, notes = _dashboard_links(Path(dashboard) if dashboard is not None else None, out_dir)
    saes = load_saes(sae_dir, device=model.device)
    data: dict = {"sae": str(sae_dir), "dashboard": str(dashboard) if dashboard is not None else None, "hooks": {}}
    parts = [f"<style>{FIGURE_CSS}</style>"]
    for hook, sae in saes.items():
        parts.append(f"<h3>{pages.esc(hook)} · {sae.d_sae} latents</h3>")
        if hook.startswith("decoder."):
            parts.append('<p class="note">This SAE reads a decoder hook (text positions); its latents are not drawn '
                         "over audio time here. See its dashboard.</p>")
            data["hooks"][hook] = {"clips": [], "note": "decoder hook: not drawn over time"}
            continue
        slug = re.sub(r"[^A-Za-z0-9]+", "_", hook)
        entries = []
        for start in range(0, len(loaded), batch_size):
            chunk = loaded[start:start + batch_size]
            for offset, (clip, code) in enumerate(zip(chunk, clip_codes(model, sae, hook, chunk))):
                entries.append(_clip_block(model, clip, code, start + offset, slug, assets, top, links, notes, parts))
        data["hooks"][hook] = {"clips": entries}
    if not links:
        parts.append('<p class="note">Build a dashboard (otoscope sae features, then otoscope sae dashboard) and pass it '
                     "to link each latent to its page.</p>")
    return FeatureSection("SAE features", "features", "".join(parts), data)


def _clip_block(model, clip, code, i: int, slug: str, assets: Path, top: int, links: dict[int, str],
                notes: dict[int, str], parts: list[str]) -> dict:
    """One clip's heatmap and table (appended to ``parts``); returns its report.json entry."""
    geometry = model.geometry
    samples = np.asarray(clip.samples, dtype=np.float32)
    peak, at = code.max(dim=0) if code.shape[0] else (code.new_zeros(code.shape[1]), code.new_zeros(code.shape[1]).long())
    values, latents = peak.topk(min(top, peak.numel()))
    rows = [(int(l), float(v)) for l, v in zip(latents, values) if v > 0]
    name = PurePosixPath(str(clip.name)).name
    parts.append(f"<h3>{pages.esc(name)}</h3>")
    entry = {"clip": str(clip.name), "top": [{"index": l, "peak": v, "seconds": float(geometry.convert(int(at[l]), "frames", "seconds"))}
                                            for l, v in rows]}
    if not rows:
        parts.append('<p class="note">No latent fires on this clip.</p>')
        return entry
    db = snippets.log_mel(samples, clip.sample_rate)
    _write(assets / f"sae_{slug}_{i}_spec.png", snippets.encode_png(db[::-1], snippets.SPEC_CMAP,
                                                                    float(db.max()) - snippets.SPEC_DYNAMIC_RANGE_DB,
                                                                    float(db.max())))
    matrix = code[:, [l for l, _ in rows]].T.numpy()  # [latents, frames]
    scale = np.array([v for _, v in rows], dtype=np.float32)[:, None]
    _write(assets / f"sae_{slug}_{i}_heat.png", snippets.encode_png(np.clip(matrix / scale, 0, 1), snippets.HEAT_CMAP, 0, 1))
    seconds = len(samples) / clip.sample_rate
    frame_seconds = float(geometry.convert(code.shape[0], "frames", "seconds"))
    parts.append(pages.clip_figure(f"assets/sae_{slug}_{i}_spec.png", f"assets/sae_{slug}_{i}_heat.png", rows, seconds,
                                   frame_seconds, [], links.get))
    table_rows = [[f'<a href="{pages.esc(links[e["index"]])}">#{e["index"]}</a>' if e["index"] in links else f'#{e["index"]}',
                   pages.num(e["peak"], 3), f'{e["seconds"]:.2f} s', pages.esc(notes.get(e["index"], ""))]
                  for e in entry["top"]]
    parts.append('<p class="note">Each heatmap row is scaled to that latent\'s peak on this clip.</p>'
                 + pages.table([("latent", "text"), ("peak", "num"), ("at", "num"), ("explanation", "text")], table_rows))
    return entry
