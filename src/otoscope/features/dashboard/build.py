"""``build_dashboard``: a features folder → a static HTML dashboard (``DASH/index.html``) that works from disk.

Layout of ``DASH``::

    index.html                 sortable, filterable table of the latents that got a page
    latents/{i}.html           one page per firing latent
    clips/{c}.html             one page per cited clip (latent × time heatmap)
    assets/dashboard.css|js    the one stylesheet and script
    assets/snippets/c{c}_f{f}.flac|png   ±0.5 s around frame f of clip c, and its spectrogram
    assets/clips/{c}.flac|_spec.png|_heat.png
    dashboard.json             which latent and clip has which page (read by the report's feature section)
    neuronpedia/batch-N.json   with ``neuronpedia=True``

The model runs once per cited clip (batched) with the SAE spliced in; everything is built in a temporary
folder beside ``DASH`` and swapped in at the end.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from otoscope._io import atomic_dir, check_output_dir
from otoscope.errors import OtoscopeError
from otoscope.features.dashboard import neuronpedia, pages, snippets
from otoscope.features.dashboard.activations import ClipRun, run_clips
from otoscope.features.dashboard.config import DashboardConfig
from otoscope.features.dashboard.data import (FEATURES_FILE, FeaturesFile, firing_latents, read_features, read_spans,
                                              resolve_clip)
from otoscope.features.dashboard.effects import ablate, transcripts, vocab_effects
from otoscope.features.dashboard.static import CSS, JS

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.sae.model import SparseAutoencoder

DASHBOARD_FILE = "dashboard.json"
DASHBOARD_MARKERS = ("index.html", DASHBOARD_FILE)  # an earlier dashboard, which a new one may replace
VALUE_TOLERANCE = 0.05  # relative gap between a recomputed activation and features.json's before we warn


@dataclass
class DashboardResult:
    """What was written."""

    index: Path
    """``DASH/index.html``."""
    latents: list[int]
    """Latents that got a page, in table order."""
    clips: list[int]
    """Clip indices that got a page."""
    snippets: int
    """Audio snippets written."""
    neuronpedia: Path | None
    """The Neuronpedia export folder, when asked for."""


def snippet_stem(clip_index: int, frame: int) -> str:
    """Asset path (no suffix, relative to the dashboard root) of the snippet at ``frame`` of clip ``clip_index``."""
    return f"assets/snippets/c{clip_index}_f{frame}"


def _key(example: dict) -> tuple[int, int]:
    return int(example["clip_index"]), int(example["frame"])


def _plan(features: FeaturesFile, chosen: list[int], config: DashboardConfig):
    """Which examples each page shows, and per clip which latents and frames are needed."""
    shown: dict[int, tuple[list[dict], list[tuple[float, float, list[dict]]]]] = {}
    wanted: dict[int, set[int]] = defaultdict(set)
    frames: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))  # clip → frame → latents
    cited: dict[int, None] = {}
    for i in chosen:
        record = features.latents[i]
        top = list(record["top"][:config.top_examples])
        groups = sorted(((float(g["lo"]), float(g["hi"]), list(g.get("examples", [])[:config.quantile_examples]))
                         for g in record.get("quantiles") or []), key=lambda g: -g[1])  # strongest group first
        shown[i] = (top, [g for g in groups if g[2]])
        for ex in top + [e for g in groups for e in g[2]]:
            c, f = _key(ex)
            wanted[c].add(i)
            frames[c][f].add(i)
            cited.setdefault(c, None)
    limit = config.max_clip_pages
    clip_pages = list(cited)[:limit] if limit is not None else list(cited)
    return shown, wanted, frames, clip_pages


def _window(n_frames: int, snippet: snippets.Snippet, geometry) -> tuple[np.ndarray, np.ndarray]:
    """Frames (of a clip with ``n_frames`` real frames) whose centres fall inside the snippet — half-open, so
    a 1 s snippet holds 50 Whisper frames with the example's in the middle — and their x in [0, 1)."""
    length = 2 * snippets.SNIPPET_HALF_SECONDS
    first = max(0, math.floor(geometry.convert(snippet.start, "seconds", "frames")) - 1)
    last = min(n_frames, first + int(math.ceil(length * geometry.frame_rate)) + 3)
    frames = np.arange(first, last)
    xs = (np.array([snippets.frame_centre(int(f), geometry) for f in frames]) - snippet.start) / length
    keep = (xs >= -1e-9) & (xs < 1 - 1e-9)
    return frames[keep], xs[keep]


def _words(features: FeaturesFile, spans: dict, clip: dict, path: Path, model, config: DashboardConfig) -> list[dict]:
    for key in (str(clip["clip"]), str(path), path.name):
        if key in spans:
            return spans[key]
    if config.align_words and hasattr(model, "word_timestamps") and model.has_decoder:
        return [{"word": w.word, "start": float(w.start), "end": float(w.end)} for w in model.word_timestamps(str(path)).words]
    return []


def build_dashboard(features_dir: str | Path, out: str | Path, config: DashboardConfig | None = None, *,
                    model: "HookedAudioModel | None" = None, sae: "SparseAutoencoder | None" = None) -> DashboardResult:
    """Write the dashboard for the features folder ``features_dir`` into ``out`` (replaced atomically).

    ``model`` and ``sae``: already loaded ones to use instead of those named in ``features.json``.
    """
    import otoscope
    from otoscope.sae.format import load_sae

    config = config or DashboardConfig()
    check_output_dir(out, DASHBOARD_MARKERS, "dashboard folder")  # before any work
    features = read_features(features_dir)
    spans = read_spans(config.spans) if config.spans is not None else features.spans
    chosen = firing_latents(features, config.max_latents)
    if not chosen:
        raise OtoscopeError(f"no latent fires in {Path(features_dir) / FEATURES_FILE}; nothing to show (check the "
                            "features run: its corpus, hook and SAE).")
    out = Path(out)
    model = model if model is not None else otoscope.load(config.model or features.meta["model"], device=config.device)
    if sae is None:
        sae_path = config.sae or Path(features.meta["sae"])
        if not sae_path.is_dir() and (Path(features_dir) / sae_path).is_dir():
            sae_path = Path(features_dir) / sae_path
        if not sae_path.is_dir():
            raise OtoscopeError(f"the SAE folder named in {Path(features_dir) / FEATURES_FILE} ({features.meta['sae']}) "
                                "is not there; pass --sae SAE_DIR.")
        sae = load_sae(sae_path, device=config.device)
    hook, geometry = features.hook, model.geometry
    audio = not features.is_decoder()  # decoder positions are text tokens: no audio snippets or clip heatmaps
    shown, wanted, need, clip_pages = _plan(features, chosen, config)
    page_set, clip_set = set(chosen), set(clip_pages) if audio else set()
    paths = {c: resolve_clip(features.clips[c]["clip"], features, config.audio_root) for c in wanted} if audio else {}

    with atomic_dir(out, markers=DASHBOARD_MARKERS) as tmp:
        (tmp / "assets" / "snippets").mkdir(parents=True)
        (tmp / "assets" / "clips").mkdir()
        (tmp / "latents").mkdir()
        (tmp / "clips").mkdir()
        (tmp / "assets" / "dashboard.css").write_text(CSS, encoding="utf-8")
        (tmp / "assets" / "dashboard.js").write_text(JS, encoding="utf-8")
        # kept until the pages are written: per snippet its frames, per (latent, snippet) float32 values only
        windows: dict[tuple[int, int], tuple[str, np.ndarray, np.ndarray]] = {}  # (clip, frame) → stem, frames, x
        values: dict[tuple[int, int, int], np.ndarray] = {}  # (latent, clip, frame) → activation per window frame
        worst = 0.0
        bar = tqdm(total=len(paths), desc="clips", unit="clip", disable=not config.progress or not paths)
        for run in run_clips(model, sae, hook, paths, wanted, config.clip_latents if config.clip_latents else 0,
                             config.batch_size):
            c = run.clip_index
            db = snippets.log_mel(run.samples, run.sample_rate)  # [mels, columns], once per clip
            for f, latents in need.get(c, {}).items():
                snip = snippets.cut(run.samples, f, geometry)
                stem = snippet_stem(c, f)
                snippets.write_audio(tmp / f"{stem}.flac", snip.samples, run.sample_rate)
                snippets.write_spectrogram(tmp / f"{stem}.png", snippets.window(db, snip.start), float(db.max()))
                frames, xs = _window(run.frames, snip, geometry)
                windows[(c, f)] = (stem, frames, xs)
                for latent in latents:
                    values[(latent, c, f)] = run.traces[latent][frames].astype(np.float32)
            if c in clip_set:
                _clip_page(tmp, features, spans, run, db, page_set, model, config)
            bar.update(1)
        bar.close()

        def card(latent: int, ex: dict) -> pages.Card:
            c, f = _key(ex)
            if (c, f) not in windows:  # decoder hooks: text positions, no snippet
                return pages.Card(ex, None, [], None)
            stem, frames, xs = windows[(c, f)]
            vals = values[(latent, c, f)]
            nonlocal worst
            at = vals[frames == f]
            if at.size:
                worst = max(worst, abs(float(at[0]) - float(ex["value"])) / max(abs(float(ex["value"])), 1e-6))
            return pages.Card(ex, stem, list(zip(xs.round(4).tolist(), vals.tolist())),
                              f"clips/{c}.html" if c in clip_set else None, frames.tolist())

        effects, notes = _effects(model, sae, hook, features, chosen, shown, paths, config)
        np_dir = tmp / "neuronpedia" if config.neuronpedia else None
        seconds_of = lambda f: float(geometry.convert(f, "frames", "seconds"))  # noqa: E731
        bar = tqdm(total=len(chosen), desc="latent pages", unit="page", disable=not config.progress)
        for n, start in enumerate(range(0, len(chosen), config.page_batch)):
            batch = []
            for i in chosen[start:start + config.page_batch]:
                record = features.latents[i]
                top_ex, groups = shown[i]
                top = [card(i, ex) for ex in top_ex]
                quantiles = [(lo, hi, [card(i, ex) for ex in exs]) for lo, hi, exs in groups]
                html = pages.latent_page(record, features.meta, features.edges, top, quantiles, page_set,
                                         effects.get(i), notes.get(i, ""))
                (tmp / "latents" / f"{i}.html").write_text(html, encoding="utf-8")
                if np_dir is not None:
                    vocab = effects.get(i) if features.is_decoder() else None
                    batch.append(neuronpedia.feature_json(record, features.edges, top, quantiles,
                                                          sae.W_dec[i].detach().float().cpu(), vocab, seconds_of))
                bar.update(1)
            if np_dir is not None:
                neuronpedia.write_batch(np_dir, n, features.meta, batch)
        bar.close()
        if worst > VALUE_TOLERANCE:
            warnings.warn(f"activations recomputed for the dashboard differ from {FEATURES_FILE} by up to "
                          f"{100 * worst:.0f}%; was it made with another model, SAE or dtype?", stacklevel=2)

        rows = [pages.index_row(features.latents[i]) for i in chosen]
        firing = sum(1 for r in features.latents.values() if r["frequency"] > 0)
        extra = "" if audio else ('<p class="note">This SAE reads a decoder hook: examples are text positions, so '
                                  "pages list them without audio snippets and show the latents' vocabulary effect.</p>")
        (tmp / "index.html").write_text(pages.index_page(rows, features.meta, firing, sorted(clip_set), extra), encoding="utf-8")
        summary = {"version": 1, "features": str(features_dir), "model": features.meta.get("model"), "hook": hook,
                   "sae": features.meta.get("sae"),
                   "latents": {str(i): {"page": f"latents/{i}.html", "max": features.latents[i]["max"],
                                        "explanation": (features.latents[i].get("explanation") or {}).get("text")}
                               for i in chosen},
                   "clips": {str(c): {"page": f"clips/{c}.html", "clip": features.clips[c]["clip"]} for c in clip_set},
                   "extra": config.extra}
        (tmp / DASHBOARD_FILE).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return DashboardResult(out / "index.html", chosen, sorted(clip_set), sum(len(v) for v in need.values()) if audio else 0,
                           out / "neuronpedia" if config.neuronpedia else None)


def _clip_page(tmp: Path, features: FeaturesFile, spans: dict, run: ClipRun, db, page_set: set[int], model,
               config: DashboardConfig) -> None:
    c = run.clip_index
    clip = features.clips[c]
    seconds = len(run.samples) / run.sample_rate
    snippets.write_audio(tmp / f"assets/clips/{c}.flac", run.samples, run.sample_rate)
    snippets.write_spectrogram(tmp / f"assets/clips/{c}_spec.png", db)
    rows = run.top
    if rows:
        matrix = np.stack([run.traces[i] for i, _ in rows])  # [latents, frames]
        scale = np.array([features.latents.get(i, {}).get("max") or peak for i, peak in rows], dtype=np.float32)
        snippets.write_heatmap(tmp / f"assets/clips/{c}_heat.png", matrix, scale)
    path = resolve_clip(clip["clip"], features, config.audio_root)
    words = _words(features, spans, clip, path, model, config)
    # the heatmap spans the real frames; the spectrogram the samples: both end at the clip's last sample
    frame_seconds = float(model.geometry.convert(run.frames, "frames", "seconds"))
    figure = pages.clip_figure(f"../assets/clips/{c}_spec.png", f"../assets/clips/{c}_heat.png", rows, seconds,
                               frame_seconds, words, lambda i: f"../latents/{i}.html" if i in page_set else None)
    html = pages.clip_page(clip, c, f"assets/clips/{c}.flac", figure, rows, features.latents, page_set,
                           features.meta, bool(words))
    (tmp / "clips" / f"{c}.html").write_text(html, encoding="utf-8")


def _effects(model: HookedAudioModel, sae, hook: str, features: FeaturesFile, chosen: list[int], shown, paths: dict, config: DashboardConfig):
    """Per latent: its vocabulary effect (decoder hooks) or its ablation transcripts (encoder hooks)."""
    if features.is_decoder():
        effects = vocab_effects(model, sae, chosen, config.vocab_tokens)
        note = "The model has no unembedding matching this SAE's width (per-head hook?), so no vocabulary effect."
        return effects, {i: note for i in chosen if i not in effects}
    can = model.adapter.can_transcribe
    if not can or config.ablate_latents == 0 or config.ablate_clips == 0:
        why = "the model cannot transcribe" if not can else "ablation was turned off (--ablate 0)"
        return {}, {i: f"No ablation: {why}." for i in chosen}
    tested = chosen[:config.ablate_latents]
    jobs = {}
    for i in tested:
        seen = list(dict.fromkeys(int(ex["clip_index"]) for ex in shown[i][0]))
        jobs[i] = [c for c in seen if c in paths][:config.ablate_clips]
    needed = sorted({c for cs in jobs.values() for c in cs})
    loaded = dict(zip(needed, model.clips([str(paths[c]) for c in needed]))) if needed else {}
    clean = dict(zip(needed, transcripts(model, [loaded[c] for c in needed]))) if needed else {}
    effects = {}
    bar = tqdm(total=len(tested), desc="ablations", unit="latent", disable=not config.progress)
    for i in tested:
        if jobs[i]:
            effects[i] = ablate(model, sae, hook, i, [loaded[c] for c in jobs[i]], [clean[c] for c in jobs[i]])
        bar.update(1)
    bar.close()
    note = f"Ablation is tested on the first {len(tested)} latents of the table only (raise --ablate)."
    return effects, {i: note for i in chosen if i not in effects}
