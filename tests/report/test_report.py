import json
import re

import numpy as np
import pytest
import soundfile as sf

from otoscope.errors import OtoscopeError
from otoscope.report import ReportConfig, build_report, labels_from_manifest
from otoscope.report.screenshot import find_chromium, screenshot

FAST = dict(locality_bands=(8, None), tuned_lens_steps=5, progress=False)


def _assets_exist(index):
    html = index.read_text()
    refs = re.findall(r'(?:src)="(assets/[^"]+)"', html)
    assert refs
    for ref in refs:
        assert (index.parent / ref).is_file(), ref
    return html


def test_report_on_real_model_with_labels(tiny_en, manifest, tmp_path):
    files = [r["path"] for r in manifest[:2]] + [manifest[-1]["path"]]
    labels = labels_from_manifest(manifest[0]["path"].rsplit("/", 1)[0] + "/manifest.jsonl", "kind", files)
    result = build_report(files, tmp_path, ReportConfig(labels=labels, detailed_clips=1, tuned_lens_min_examples=8, **FAST),
                          model=tiny_en)
    html = _assets_exist(result.index)
    for heading in ("Clips, transcripts and lenses", "Representation geometry", "Tuned lens", "Attention locality",
                    "Groups and probes"):
        assert heading in html
    assert "Please open the door." in html
    assert re.findall(r'<section id="([^"]+)"', html) == ["clips", "geometry", "tuned", "locality", "groups"]
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["clips"][0]["encoder_lens"]["saturation_layer"] == 3
    assert len(data["cka"]["matrix"]) == 5 and data["cka"]["layers"][0] == "embed"
    assert [row["layer"] for row in data["tuned_lens"]["encoder"]] == [0, 1, 2, 3]
    assert [row["layer"] for row in data["tuned_lens"]["decoder"]] == [0, 1, 2, 3]
    assert (tmp_path / "assets" / "tuned_lens_decoder.safetensors").is_file()
    assert all(row["same_input_cosine"] > 0.9 for row in data["same_input_control"])
    assert data["locality"][-1]["wer"] == 0.0


def test_report_with_a_minimal_pair(tiny_en, speech, tmp_path):
    from pathlib import Path

    pair = Path(__file__).parents[1] / "fixtures" / "pairs" / "london_paris"
    result = build_report([pair / "clean.flac"], tmp_path, ReportConfig(pair=str(pair), detailed_clips=0,
                                                                         locality_clips=0, tuned_lens_steps=0, progress=False))
    html = _assets_exist(result.index)
    assert "Activation patching (denoising" in html
    cells = result.data["patching"]["cells"]
    assert cells and all({"hook", "layer", "frames", "seconds", "value", "normalized"} <= set(c) for c in cells)


def test_report_survives_silent_and_tiny_clips(tiny_en, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(16_000, np.float32), 16_000)
    sf.write(tmp_path / "blip.wav", (0.1 * np.random.default_rng(0).standard_normal(1_600)).astype(np.float32), 16_000)
    result = build_report([tmp_path / "silence.wav", tmp_path / "blip.wav"], tmp_path / "r", ReportConfig(**FAST),
                          model=tiny_en)
    _assets_exist(result.index)
    assert len(result.data["clips"]) == 2
    # 55 real frames train an encoder tuned lens; a handful of tokens is too few for the decoder's, which says so
    assert [row["layer"] for row in result.data["tuned_lens"]["encoder"]] == [0, 1, 2, 3]
    assert "too few transcript tokens" in result.data["tuned_lens"]["decoder"]["skipped"]
    assert "too few transcript tokens" in result.index.read_text()


def test_encoder_only_model_gets_what_applies(tmp_path):
    sf.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32), 16_000)
    sf.write(tmp_path / "b.wav", (0.1 * np.random.default_rng(1).standard_normal(8_000)).astype(np.float32), 16_000)
    result = build_report([tmp_path / "a.wav", tmp_path / "b.wav"], tmp_path / "r", ReportConfig(model="tiny-random-hubert", **FAST))
    html = _assets_exist(result.index)
    assert "Not applicable to tiny-random-hubert: encoder logit lens, encoder lens and decoder logit lens (no decoder)" in html
    assert "Representation geometry" in html and "Tuned lens" not in html


def test_bad_report_input(tmp_path):
    with pytest.raises(OtoscopeError, match="no audio files"):
        build_report([], tmp_path)
    with pytest.raises(OtoscopeError, match="2 labels for 1 files"):
        build_report(["x.wav"], tmp_path, ReportConfig(labels=["a", "b"]))
    with pytest.raises(OtoscopeError, match="audio file not found"):
        build_report([tmp_path / "missing.wav"], tmp_path, ReportConfig(model="tiny-random-whisper", progress=False))
    assert not (tmp_path / "index.html").exists()


def test_report_cli(speech, tmp_path, capsys):
    from otoscope.cli.main import main

    assert main(["report", speech[0]["path"], "--model", "tiny-random-whisper", "--out", str(tmp_path),
                 "--tuned-steps", "2", "--locality-clips", "0"]) == 0
    assert "report:" in capsys.readouterr().out and (tmp_path / "index.html").is_file()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_screenshot_in_headless_chromium(speech, tmp_path):
    result = build_report([speech[0]["path"]], tmp_path, ReportConfig(model="tiny-random-whisper", **FAST))
    png = screenshot(result.index, tmp_path / "shot.png", height=1200)
    from PIL import Image

    image = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert image.shape == (1200, 1280)
    assert image.std() > 10  # a rendered page, not a blank canvas
