"""The report's feature section: each clip's strongest latents (checked against a plain per-clip run), images,
links into a dashboard, escaping."""

from __future__ import annotations

import re

import numpy as np
import pytest

from otoscope.errors import OtoscopeError
from otoscope.features.report_section import FeatureSection, feature_section
from tests.features.synthetic import HOOK, codes


def test_section_lists_each_clips_strongest_latents_and_links_the_dashboard(tmp_path, speech, features_dir, dashboard,
                                                                            tiny_whisper):
    from otoscope.sae.format import load_sae

    paths = [speech[0]["path"], speech[1]["path"]]
    out = tmp_path / "report"
    section = feature_section(tiny_whisper, paths, features_dir.parent / "sae", out, dashboard=dashboard.index.parent,
                              top=5)
    assert isinstance(section, FeatureSection) and section.anchor == "features" and section.title
    entries = section.data["hooks"][HOOK]["clips"]
    sae = load_sae(features_dir.parent / "sae")
    for entry, code in zip(entries, codes(tiny_whisper, sae, HOOK, paths)):  # brute force: one clip per forward
        peak = code.max(axis=0)
        expected = [int(i) for i in np.argsort(-peak, kind="stable")[:5]]
        assert [e["index"] for e in entry["top"]] == expected
        assert [e["peak"] for e in entry["top"]] == pytest.approx(peak[expected].tolist(), rel=1e-5)
        first = entry["top"][0]
        assert first["seconds"] == pytest.approx(int(code[:, first["index"]].argmax()) / 50)
    out.joinpath("index.html").write_text(f"<html><body>{section.html}</body></html>")
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', section.html)
    assert any("latents/" in h for h in hrefs)
    for href in hrefs:
        assert (out / href).resolve().is_file(), href


def test_section_without_a_dashboard_says_how_to_get_links(tmp_path, speech, features_dir, tiny_whisper):
    section = feature_section(tiny_whisper, [speech[0]["path"]], features_dir.parent / "sae", tmp_path, top=3)
    assert "latents/" not in section.html and "otoscope sae dashboard" in section.html
    assert len(list((tmp_path / "assets").glob("*.png"))) == 2
    with pytest.raises(OtoscopeError, match="otoscope sae dashboard"):
        feature_section(tiny_whisper, [speech[0]["path"]], features_dir.parent / "sae", tmp_path, dashboard=tmp_path)


def test_clip_names_are_escaped(tmp_path, speech, features_dir, tiny_whisper):
    import shutil

    odd = tmp_path / "<i>odd&name.flac"
    shutil.copy(speech[0]["path"], odd)
    section = feature_section(tiny_whisper, [str(odd)], features_dir.parent / "sae", tmp_path / "r", top=2)
    assert "<i>odd" not in section.html and "&lt;i&gt;odd&amp;name.flac" in section.html


def test_report_with_sae_places_the_feature_section(tmp_path, speech, features_dir, dashboard, tiny_whisper):
    """``build_report(..., ReportConfig(sae=..., sae_dashboard=...))``: the report gets a features card whose links
    resolve from the report folder, and report.json holds the same top latents as the section on its own."""
    from otoscope.report import ReportConfig, build_report

    paths = [speech[0]["path"]]
    sae_dir = features_dir.parent / "sae"
    config = ReportConfig(model="tiny-random-whisper", sae=str(sae_dir), sae_dashboard=str(dashboard.index.parent),
                          detailed_clips=0, locality_clips=0, tuned_lens_steps=0, progress=False)
    result = build_report(paths, tmp_path / "report", config, model=tiny_whisper)
    page = result.index.read_text()
    assert 'id="features"' in page
    alone = feature_section(tiny_whisper, paths, sae_dir, tmp_path / "alone", dashboard=dashboard.index.parent)
    assert result.data["features"]["hooks"][HOOK]["clips"] == alone.data["hooks"][HOOK]["clips"]
    for href in re.findall(r'(?:href|src)="([^"]+)"', page):
        if not href.startswith(("#", "http")):
            assert (result.index.parent / href).resolve().exists(), href


def test_report_refuses_a_missing_sae_before_work(tmp_path, speech, tiny_whisper):
    from otoscope.report import ReportConfig, build_report

    with pytest.raises(OtoscopeError, match="SAE folder not found"):
        build_report([speech[0]["path"]], tmp_path / "r", ReportConfig(sae=str(tmp_path / "nope"), progress=False),
                     model=tiny_whisper)
    assert not (tmp_path / "r").exists()
    with pytest.raises(OtoscopeError, match="--sae SAE_DIR"):
        ReportConfig(sae_dashboard=str(tmp_path))
