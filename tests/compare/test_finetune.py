"""tiny.en fine-tuned on decoder block 2's MLP only: the comparison must find exactly that module and layer."""

from __future__ import annotations

import html
import json

import pytest

from otoscope.compare import CompareConfig, compare_models
from tests.compare.conftest import CLIP, TUNED

QUICK = dict(progress=False, positions_per_clip=64, sae=False)  # the SAE comparison is tested in test_self.py
DATA = [{"path": str(CLIP), "text": "Please open the door."}]  # the transcript given: no decoding needed


@pytest.fixture(scope="module")
def result(tiny_en, finetuned_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    return compare_models(tiny_en, finetuned_dir, DATA, out, CompareConfig(**QUICK)), out


def test_finds_exactly_the_changed_modules(result):
    r, _ = result
    assert r.kind == "checkpoint"
    assert sorted(r.changed_modules) == sorted(TUNED)
    assert r.weights.changed_blocks == ["decoder.blocks.2"]
    for m in r.weights.modules:
        if m.module in TUNED:
            assert m.delta_norm > 0 and m.rank is not None and m.rank > 0
        else:
            assert m.delta_norm == 0.0 and not m.changed, m.module
    assert not r.weights.skipped


def test_activations_move_from_the_changed_layer_on(result):
    r, _ = result
    shifts = {s.hook: s for s in r.layers}
    assert len(shifts) == 2 * (4 + 1)  # embed + 4 blocks, encoder and decoder
    assert r.first_moved_layer == {"encoder": None, "decoder": "decoder.blocks.2.hook_resid_post"}
    for hook, s in shifts.items():
        before = hook.startswith("encoder.") or hook in ("decoder.hook_embed", "decoder.blocks.0.hook_resid_post",
                                                         "decoder.blocks.1.hook_resid_post")
        if before:  # the same computation on the same inputs: bit-identical activations
            assert s.drift == 0.0 and s.cka == pytest.approx(1.0, abs=1e-9), hook
        else:
            assert s.drift > 1e-4 and s.cka < 1.0, hook
    assert shifts["decoder.blocks.2.hook_resid_post"].drift > 0


def test_writes_json_and_a_self_contained_page(result):
    r, out = result
    data = json.loads((out / "compare.json").read_text())
    assert data["summary"]["changed_blocks"] == ["decoder.blocks.2"]
    assert {layer["hook"] for layer in data["layers"]} == {s.hook for s in r.layers}
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # spectra, layers, CKA matrices
    assert 'src="assets/' not in page and "<script" not in page
    assert html.escape(r.model_b) in page
