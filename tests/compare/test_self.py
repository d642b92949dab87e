"""tiny.en compared with itself: zero deltas, CKA 1, no drift, FVU increase 0, the same patching map."""

from __future__ import annotations

import pytest

from otoscope.compare import CompareConfig, compare_models
from tests.compare.conftest import CLIP, FIXTURES

HOOKS = ["encoder.blocks.3.hook_resid_post", "decoder.blocks.1.hook_resid_post"]  # two layers keep the SAE step short


@pytest.fixture(scope="module")
def result(tiny_en):
    config = CompareConfig(hooks=HOOKS, progress=False, positions_per_clip=64, sae_steps=5, sae_expansion=2,
                           pairs=str(FIXTURES / "pairs"), patch_hooks="encoder.blocks.1.hook_resid_post", patch_window=40)
    return compare_models(tiny_en, tiny_en, [{"path": str(CLIP), "text": "Please open the door."}], config=config)


def test_weights_are_identical(result):
    assert result.changed_modules == [] and result.weights.changed_blocks == []
    assert all(m.delta_norm == 0.0 and m.rank == 0 for m in result.weights.modules if m.rank is not None)
    assert len(result.weights.modules) > 50 and not result.weights.skipped


def test_layers_do_not_move(result):
    assert [s.hook for s in result.layers] == HOOKS
    for s in result.layers:
        assert s.cka == pytest.approx(1.0, abs=1e-9)
        assert s.drift == 0.0 and s.cosine == pytest.approx(1.0)
        assert s.fvu_a is not None and 0 < s.fvu_a < 2  # an SAE was trained and used
        assert s.fvu_increase == 0.0
    assert result.first_moved_layer == {"encoder": None, "decoder": None}


def test_patching_map_is_the_same(result):
    (pair,) = result.pairs
    assert pair.metric == "logit_diff" and pair.cells == 4  # 2.95 s = 148 real frames in windows of 40
    assert pair.clean_a == pair.clean_b and pair.corrupt_a == pair.corrupt_b
    assert pair.clean_a > 5 > -5 > pair.corrupt_a  # tiny.en hears London vs Paris
    assert pair.max_abs_change == 0.0
    assert pair.correlation is None or pair.correlation == pytest.approx(1.0)
