"""The report is a list of sections: their anchors and order, and report.json numbers against the library."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

from otoscope.report import ReportConfig, build_report
from otoscope.report.build import render_cards
from otoscope.report.sections import SECTIONS, SectionResult


def test_section_list_and_anchors():
    assert [s.name for s in SECTIONS] == ["clips", "norms", "cka", "cross-model CKA", "tuned lens",
                                          "attention locality", "groups & probes", "patching", "features"]
    results = [SectionResult("clips", "Clips", "Clips", "<p>a</p>", {"clips": []}),
               SectionResult("geometry", "Geometry card", "Geometry", "<p>norms</p>", {"norms": 1}),
               SectionResult("geometry", "ignored", "ignored", "<p>cka</p>", {"cka": 2}),
               SectionResult("patching", "Patching <x>", "Patching", "<p>p</p>", {})]
    nav, cards = render_cards(results)
    assert nav == [("clips", "Clips"), ("geometry", "Geometry"), ("patching", "Patching")]
    assert cards[1] == '<section id="geometry"><h2>Geometry card</h2><p>norms</p><p>cka</p></section>'
    assert "Patching &lt;x&gt;" in cards[2]


@pytest.fixture(scope="module")
def hubert_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hubert")
    files = []
    for i, n in enumerate((16_000, 8_000, 12_000)):
        files.append(tmp / f"c{i}.wav")
        sf.write(files[-1], (0.1 * np.random.default_rng(i).standard_normal(n)).astype(np.float32), 16_000)
    import otoscope

    model = otoscope.load("tiny-random-hubert")
    labels = ["a", "b", "a"]
    result = build_report(files, tmp / "r", ReportConfig(model="tiny-random-hubert", labels=labels, detailed_clips=1,
                                                         progress=False), model=model)
    return model, files, labels, result


def test_encoder_only_report_anchors_and_numbers(hubert_report):
    from otoscope.geometry.cka import cka_layers
    from otoscope.geometry.collect import collect_layers
    from otoscope.geometry.norms import layer_norms, summarise_norms

    model, files, labels, result = hubert_report
    html = result.index.read_text()
    assert re.findall(r'<section id="([^"]+)"', html) == ["clips", "geometry", "groups"]
    assert re.findall(r'<a href="#([^"]+)"', html) == ["clips", "geometry", "groups"]
    data = json.loads((result.index.parent / "report.json").read_text())
    assert data == json.loads(json.dumps(result.data, default=float))
    # the numbers are the library's on the same clips, computed the plain way (no shared caches)
    items = collect_layers(model, model.clips([str(f) for f in files]), labels)
    norms = summarise_norms(layer_norms(items))
    np.testing.assert_allclose([row["mean_norm"] for row in data["norms"]], norms["mean_norm"], rtol=1e-5)
    cka = cka_layers(items)
    np.testing.assert_allclose(data["cka"]["matrix"], cka.matrix.round(5), atol=2e-5)
    assert data["cka"]["frames"] == cka.n_examples
    assert [c["path"] for c in data["clips"]] == [str(f) for f in files]


def test_report_images_are_drawn(hubert_report):
    from PIL import Image

    *_, result = hubert_report
    assets = result.index.parent / "assets"
    for name in ("norms.png", "cka.png", "clip0_wave.png"):
        image = np.asarray(Image.open(assets / name).convert("L"), dtype=np.float32)
        assert image.shape[0] > 300 and image.shape[1] > 500, (name, image.shape)
        assert (image < 128).mean() > 0.01 and image.std() > 20, name  # ink on the page, not a blank canvas
    wav, rate = sf.read(assets / "clip0.wav")
    assert rate == 16_000 and len(wav) == 16_000
