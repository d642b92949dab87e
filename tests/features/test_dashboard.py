"""The SAE dashboard: pages for firing latents only, links that resolve, snippets in the right place, the table
matching features.json, escaping, atomic output, the Neuronpedia export and the rendered page in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from otoscope.audio.frames import whisper_geometry
from otoscope.errors import OtoscopeError
from otoscope.features.dashboard import DashboardConfig, build_dashboard, read_features
from otoscope.features.dashboard import snippets
from otoscope.report.screenshot import FLAGS, find_chromium, screenshot
from tests.features.conftest import SMALL
from tests.features.synthetic import DEAD, EVIL


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.links.append(value)
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body:
            self.rows.append([])
        if tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _root(dashboard) -> Path:
    return dashboard.index.parent


def test_pages_exist_only_for_latents_that_fire(dashboard, features_dir):
    features = read_features(features_dir)
    firing = {i for i, r in features.latents.items() if r["frequency"] > 0}
    assert firing and not firing & set(DEAD)
    pages = {int(p.stem) for p in (_root(dashboard) / "latents").glob("*.html")}
    assert pages == firing == set(dashboard.latents)
    order = [features.latents[i]["frequency"] for i in dashboard.latents]
    assert order == sorted(order, reverse=True)  # most frequent first


def test_every_link_and_source_points_to_an_existing_file(dashboard):
    root = _root(dashboard)
    checked = 0
    for page in root.rglob("*.html"):
        for link in _parse(page).links:
            assert not re.match(r"^[a-z]+://", link), f"{page.name} loads {link} from the network"
            target = link.split("#", 1)[0]
            if target:
                assert (page.parent / target).resolve().is_file(), f"{page.relative_to(root)} → {link} is missing"
                checked += 1
    assert checked > 100
    assert len(dashboard.clips) == 6 and all((root / "clips" / f"{c}.html").is_file() for c in dashboard.clips)


def test_snippets_are_one_second_centred_on_the_frame(dashboard, features_dir):
    features = read_features(features_dir)
    geometry = whisper_geometry()
    half = int(snippets.SNIPPET_HALF_SECONDS * 16000)
    seen = 0
    for i in dashboard.latents[:6]:
        for ex in features.latents[i]["top"][:SMALL["top_examples"]]:
            audio, rate = sf.read(_root(dashboard) / f"assets/snippets/c{ex['clip_index']}_f{ex['frame']}.flac",
                                  dtype="float32")
            clip, _ = sf.read(ex["clip"], dtype="float32")
            assert rate == 16000 and len(audio) == 2 * half
            centre = ex["frame"] * 320 + 160  # middle sample of the encoder frame
            lo = centre - half
            for j in (0, half // 2, half, half + 100, 2 * half - 1):  # same samples as the clip, padding is silence
                expected = clip[lo + j] if 0 <= lo + j < len(clip) else 0.0
                assert abs(audio[j] - expected) < 2 / 32768
            seen += 1
    assert seen >= 6
    # a frame at the very start: the first half is padding
    ramp = np.arange(1, 16001, dtype=np.float32) / 16000
    snip = snippets.cut(ramp, 0, geometry)
    assert snip.centre == pytest.approx(0.01) and len(snip.samples) == 2 * half
    assert (snip.samples[:half - 160] == 0).all() and snip.samples[half] == pytest.approx(ramp[160])


def test_index_table_matches_features_json(dashboard, features_dir):
    features = read_features(features_dir)
    rows = _parse(dashboard.index).rows
    assert len(rows) == len(dashboard.latents)
    for row in rows:
        record = features.latents[int(row[0].lstrip("#"))]
        assert float(row[1]) == pytest.approx(record["frequency"], abs=1e-4)
        assert float(row[2]) == pytest.approx(record["mean"], abs=1e-4)
        assert float(row[3]) == pytest.approx(record["max"], abs=1e-4)
        labels = record["labels"]["kind"]
        assert row[4] == f"kind={labels['best']}"
        assert float(row[5]) == pytest.approx(labels["best_selectivity"], abs=1e-2)
        assert row[6] == ((record.get("explanation") or {}).get("text") or "")


def test_traces_are_the_latents_recomputed_at_the_example_frames(dashboard, features_dir):
    """The Neuronpedia windows carry the dashboard's traces: their centre value is the features.json value."""
    features = read_features(features_dir)
    files = sorted((_root(dashboard) / "neuronpedia").glob("batch-*.json"))
    batch = json.loads(files[0].read_text())
    assert batch["hook_name"] == features.hook and batch["layer"] == 1
    exported = [f for b in files for f in json.loads(b.read_text())["features"]]
    assert [f["feature_index"] for f in exported] == dashboard.latents
    for feature in exported:
        record = features.latents[feature["feature_index"]]
        tops = [a for a in feature["activations"] if a["bin_min"] == -1]
        assert len(tops) == min(SMALL["top_examples"], len(record["top"]))
        for act, ex in zip(tops, record["top"]):
            k = act["qualifying_token_index"]
            assert 25 <= len(act["tokens"]) == len(act["values"]) <= 50  # the real frames inside one second
            assert act["values"][k] == pytest.approx(ex["value"], rel=1e-4, abs=1e-5)
            assert act["tokens"][k] == f"{ex['seconds']:.2f}s"
            assert (_root(dashboard) / act["audio"]).is_file()


def test_text_from_the_features_file_is_escaped(dashboard):
    pages = list(_root(dashboard).rglob("*.html"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    assert EVIL not in text and "<script>alert" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert all(p.read_text().count("<script") == 1 for p in pages)  # only the dashboard's own script tag


def test_ablation_and_summary(dashboard, features_dir):
    summary = json.loads((_root(dashboard) / "dashboard.json").read_text())
    assert set(summary["latents"]) == {str(i) for i in dashboard.latents}
    first = (_root(dashboard) / "latents" / f"{dashboard.latents[0]}.html").read_text()
    assert "latent zeroed" in first  # the ablation table on a tested latent
    last = (_root(dashboard) / "latents" / f"{dashboard.latents[-1]}.html").read_text()
    assert "first 2 latents" in last


def test_output_is_replaced_atomically_and_a_failed_build_leaves_the_old_one(tmp_path, features_dir, tiny_whisper):
    out = tmp_path / "dash"
    config = DashboardConfig(**{**SMALL, "max_latents": 2, "ablate_latents": 0})
    first = build_dashboard(features_dir, out, config, model=tiny_whisper)
    assert len(first.latents) == 2 and len(list((out / "latents").glob("*.html"))) == 2
    broken = tmp_path / "broken"
    shutil.copytree(features_dir, broken)
    doc = json.loads((broken / "features.json").read_text())
    doc["clips"][0]["clip"] = "missing.flac"
    (broken / "features.json").write_text(json.dumps(doc))
    with pytest.raises(OtoscopeError, match="--audio-root"):
        build_dashboard(broken, out, DashboardConfig(**SMALL), model=tiny_whisper)
    assert len(list((out / "latents").glob("*.html"))) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left


def test_word_spans_from_the_features_folder_are_drawn_escaped(tmp_path, features_dir, tiny_whisper):
    folder = tmp_path / "feat"
    shutil.copytree(features_dir, folder)
    clip = read_features(folder).clips[1]["clip"]
    words = [{"word": " My", "start": 0.1, "end": 0.3, "probability": 0.9},
             {"word": " <b>name", "start": 0.35, "end": 0.7, "probability": 0.9}]
    (folder / "spans.jsonl").write_text(json.dumps({"path": clip, "words": words}) + "\n")
    config = DashboardConfig(**{**SMALL, "max_latents": 3, "ablate_latents": 0})
    result = build_dashboard(folder, tmp_path / "dash", config, model=tiny_whisper)
    page = next((result.index.parent / "clips" / f"{c}.html").read_text() for c in result.clips
                if read_features(folder).clips[c]["clip"] == clip)
    assert page.count('class="word"') == 2 and "&lt;b&gt;name" in page and "<b>name" not in page


def test_bad_features_folders_say_how_to_fix_them(tmp_path):
    with pytest.raises(OtoscopeError, match="otoscope sae features"):
        read_features(tmp_path)
    (tmp_path / "features.json").write_text(json.dumps({"version": 9, "sae": "", "hook": "", "model": "", "d_sae": 1,
                                                        "clips": [], "latents": []}))
    with pytest.raises(OtoscopeError, match="version 9"):
        read_features(tmp_path)
    with pytest.raises(OtoscopeError, match="max_latents"):
        DashboardConfig(max_latents=0)


# ------------------------------------------------------------------ rendered in a browser
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian: apt-get install -y chromium); "
                                                               "the rendering test needs a headless browser")


def _dump_dom(page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                             capture_output=True, text=True, timeout=120)
    return run.stdout


@needs_chromium
def test_rendered_index_is_not_blank_and_sorts_and_filters(dashboard, tmp_path):
    root = _root(dashboard)
    png = screenshot(dashboard.index, tmp_path / "index.png", width=1000, height=700)
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"))
    assert pixels.std() > 10 and (pixels < 100).mean() > 0.005  # text and a dark header, not an empty page

    page = root / "index_click_test.html"
    clicks = ("<script>var th=document.querySelectorAll('#latents th');th[3].click();"
              "document.body.setAttribute('data-sorted', Array.prototype.map.call("
              "document.querySelectorAll('#latents tbody tr'), function(r){return r.cells[3].getAttribute('data-v');}).join(','));"
              "var f=document.getElementById('filter');f.value='nonspeech';f.dispatchEvent(new Event('input'));"
              "</script></body>")
    page.write_text(dashboard.index.read_text().replace("</body>", clicks))
    try:
        dom = _dump_dom(page)
    finally:
        page.unlink()
    sorted_attr = re.search(r'data-sorted="([^"]*)"', dom)
    assert sorted_attr, "the page's script did not run"
    values = [float(v) for v in sorted_attr.group(1).split(",")]
    assert len(values) == len(dashboard.latents) and values == sorted(values, reverse=True)  # max, descending
    shown = int(re.search(r'id="count"[^>]*>(\d+) of', dom).group(1))
    hidden = dom.count('style="display: none;"')
    assert 0 < shown < len(dashboard.latents) and shown + hidden == len(dashboard.latents)


@needs_chromium
def test_latent_and_clip_pages_render(dashboard, tmp_path):
    from PIL import Image

    root = _root(dashboard)
    for page in (root / "latents" / f"{dashboard.latents[0]}.html", root / "clips" / f"{dashboard.clips[0]}.html"):
        pixels = np.asarray(Image.open(screenshot(page, tmp_path / f"{page.parent.name}.png", 1100, 900)).convert("RGB"))
        colourful = (pixels.max(axis=2).astype(int) - pixels.min(axis=2)) > 60  # spectrogram and heatmap colours
        assert colourful.mean() > 0.02


def test_cli_builds_a_dashboard_and_reports_bad_input_in_one_line(tmp_path, features_dir, capsys):
    from otoscope.cli.main import main

    out = tmp_path / "dash"
    assert main(["sae", "dashboard", str(features_dir), "--out", str(out), "--max-latents", "2", "--top", "2",
                 "--per-quantile", "0", "--ablate", "0", "--neuronpedia", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 latent pages" in printed and (out / "neuronpedia" / "batch-0.json").is_file()
    assert len(list((out / "latents").glob("*.html"))) == 2
    assert main(["sae", "dashboard", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("otoscope: error:") and "otoscope sae features" in err and "\n" not in err


def test_without_spans_clip_pages_use_the_models_word_timestamps_when_it_has_them(tmp_path, features_dir, tiny_whisper,
                                                                                  monkeypatch):
    from types import SimpleNamespace

    calls = []

    def word_timestamps(audio):
        calls.append(audio)
        return SimpleNamespace(words=[SimpleNamespace(word=" hello", start=0.2, end=0.6, probability=1.0)])

    monkeypatch.setattr(tiny_whisper, "word_timestamps", word_timestamps, raising=False)
    config = DashboardConfig(**{**SMALL, "max_latents": 2, "ablate_latents": 0, "max_clip_pages": 1})
    result = build_dashboard(features_dir, tmp_path / "dash", config, model=tiny_whisper)
    page = (result.index.parent / "clips" / f"{result.clips[0]}.html").read_text()
    assert len(calls) == 1 and page.count('class="word"') == 1 and ">hello<" in page
    assert f'href="clips/{result.clips[0]}.html"' in result.index.read_text()


def test_long_clips_run_window_by_window(tiny_whisper, speech):
    """A 31 s clip: its frames past 30 s come from a second window, as if that window were its own clip."""
    import torch

    from otoscope.audio.io import Clip
    from otoscope.features.dashboard.activations import clip_codes
    from tests.features.synthetic import random_sae

    sae = random_sae(Path(tempfile.mkdtemp()) / "sae")
    short = tiny_whisper.clips([speech[0]["path"]])[0]
    head = np.zeros(30 * 16000, dtype=np.float32)
    head[:len(short.samples)] = short.samples
    long = Clip(np.concatenate([head, short.samples[:16000]]), 16000, "long")
    code = clip_codes(tiny_whisper, sae, "encoder.blocks.1.hook_resid_post", [long])[0]
    alone = clip_codes(tiny_whisper, sae, "encoder.blocks.1.hook_resid_post", [Clip(short.samples[:16000], 16000, "s")])[0]
    assert code.shape[0] == 1500 + alone.shape[0]
    assert torch.allclose(code[1500:], alone, atol=1e-5)


def test_a_features_file_from_another_sae_is_flagged(tmp_path, features_dir, tiny_whisper):
    folder = tmp_path / "feat"
    shutil.copytree(features_dir, folder)
    doc = json.loads((folder / "features.json").read_text())
    for record in doc["latents"]:
        for ex in record["top"]:
            ex["value"] *= 2  # as if computed by another SAE
    (folder / "features.json").write_text(json.dumps(doc))
    config = DashboardConfig(**{**SMALL, "max_latents": 2, "ablate_latents": 0})
    with pytest.warns(UserWarning, match="differ from features.json"):
        build_dashboard(folder, tmp_path / "dash", config, model=tiny_whisper)


def test_histogram_bars_match_the_counts_and_sit_in_their_bins():
    from otoscope.features.dashboard.pages import histogram_svg

    edges = [e / 10 for e in range(-40, 41)]  # 80 bins of 0.1 decade
    counts = [0] * 80
    counts[40], counts[42] = 7, 3  # 1.0–1.26 and 1.58–2.0
    svg = histogram_svg(counts, edges)
    bars = re.findall(r'<rect class="bar" x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="([\d.]+)"><title>([^<]*)</title>', svg)
    assert [b[3] for b in bars] == ["1.000–1.259: 7", "1.585–1.995: 3"]
    assert float(bars[0][2]) / float(bars[1][2]) == pytest.approx(7 / 3, rel=1e-2)
    assert float(bars[0][0]) < float(bars[1][0])
    assert "1e0" in svg and "1e-3" not in svg  # zoomed on the occupied decades
