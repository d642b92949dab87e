"""Weight deltas on small modules: exact change detection, effective ranks against known ranks, skipped parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from otoscope.compare.weights import block_of, compare_weights, effective_ranks, module_delta, rounding_floor


def _net(seed: int = 0, width: int = 24) -> nn.Module:
    torch.manual_seed(seed)
    return nn.ModuleDict({"encoder": nn.ModuleDict({"layers": nn.ModuleList([nn.Linear(width, 2 * width) for _ in range(2)])}),
                          "head": nn.Linear(2 * width, 5)})


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_low_rank_update_in_float32_has_its_rank(rank):
    torch.manual_seed(rank)
    w = torch.randn(64, 48)
    left, right = torch.randn(64, rank, dtype=torch.float64), torch.randn(rank, 48, dtype=torch.float64)
    update = left @ right * 0.01  # exact rank ``rank``
    merged = (w.double() + update).float()  # rounded to float32 like a merged adapter
    d = module_delta("layer", {"weight": w}, {"weight": merged})
    assert d.changed and d.rank == rank
    assert 1 <= d.erank <= rank + 1e-9
    plain = torch.linalg.matrix_rank(update).item()  # the textbook rank of the exact update
    assert d.rank == plain


def test_equal_singular_values_give_erank_equal_to_rank():
    sv = torch.tensor([2.0, 2.0, 2.0, 1e-12], dtype=torch.float64)
    rank, erank = effective_ranks(sv, floor=1e-9, rtol=1e-3)
    assert rank == 3 and erank == pytest.approx(3.0)


def test_rounding_only_delta_has_rank_zero():
    torch.manual_seed(0)
    w = torch.randn(32, 32)
    nudged = torch.nextafter(w, torch.full_like(w, float("inf")))  # one ulp up: the largest pure rounding change
    d = module_delta("layer", {"weight": w}, {"weight": nudged})
    assert d.changed and d.rank == 0 and d.erank == 0.0
    assert d.singular_values[0] <= rounding_floor(w)


def test_only_the_touched_module_changes_and_unchanged_ones_are_exactly_zero():
    a, b = _net(), _net()
    with torch.no_grad():
        b["encoder"]["layers"][1].bias.add_(0.5)
    result = compare_weights(a, b)
    assert [m.module for m in result.changed] == ["encoder.layers.1"]
    assert result.changed_blocks == ["encoder.blocks.1"]
    changed = result.changed[0]
    assert changed.delta_norm == pytest.approx(0.5 * 48 ** 0.5)
    assert changed.rank == 0  # its weight matrix did not move, only the bias
    assert all(m.delta_norm == 0 and m.rank == 0 for m in result.modules if m is not changed)


def test_mismatched_parameters_are_listed_not_compared():
    a, b = _net(width=24), _net()
    b["head"] = nn.Linear(48, 7)
    b["extra"] = nn.Linear(3, 3)
    result = compare_weights(a, b)
    reasons = {s["param"]: s["reason"] for s in result.skipped}
    assert reasons["head.weight"] == "shape [5, 48] in A, [7, 48] in B"
    assert reasons["extra.weight"] == "only in model B"
    assert "head" not in [m.module for m in result.modules]
    assert not result.changed


def test_block_names():
    assert block_of("model.decoder.layers.2.fc1") == "decoder.blocks.2"
    assert block_of("wav2vec2.encoder.layers.11.attention.q_proj") == "encoder.blocks.11"
    assert block_of("model.encoder.conv1") is None
