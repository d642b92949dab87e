"""The steering folder: round trip, refusal for another model, bad strengths."""

import json

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.steer import Direction, Gate


def make(**kw):
    v = torch.arange(1.0, 9.0)
    gate = Gate("encoder.blocks.1.hook_resid_post", torch.ones(8), 0.25, "clip")
    args = dict(vector=v, hook="decoder.blocks.3.hook_resid_post", model="whisper-tiny.en", alpha=0.5,
                scale=7.0, positions="first", gate=gate, meta={"token": "..."})
    args.update(kw)
    return Direction(**args)


def test_round_trip(tmp_path):
    d = make()
    d.save(tmp_path / "s", created_by="test")
    info = json.loads((tmp_path / "s" / "steer.json").read_text())
    assert info["model"] == "whisper-tiny.en" and info["created_by"] == "test" and info["kind"] == "add"
    assert info["gate"] == {"hook": "encoder.blocks.1.hook_resid_post", "threshold": 0.25, "mode": "clip"}
    back = Direction.load(tmp_path / "s", "whisper-tiny.en")
    assert torch.allclose(back.vector, d.vector) and back.vector.norm() == pytest.approx(1.0)
    assert (back.hook, back.alpha, back.scale, back.positions, back.meta) == (d.hook, 0.5, 7.0, "first", {"token": "..."})
    assert torch.allclose(back.gate.vector, torch.ones(8) / 8**0.5) and back.gate.threshold == 0.25
    assert torch.allclose(back.delta(), 0.5 * 7.0 * d.vector)
    assert torch.allclose(back.delta(2.0), 2.0 * 7.0 * d.vector)
    raw = Direction(torch.tensor([3.0, 4.0]), "encoder.blocks.0.hook_resid_post", "m", alpha=2.0, units="raw", scale=9.0)
    assert torch.allclose(raw.delta(), torch.tensor([1.2, 1.6]))  # raw: α × unit vector, scale ignored


def test_loading_for_another_model_is_one_line_error(tmp_path):
    make().save(tmp_path / "s")
    with pytest.raises(OtoscopeError, match="made for model 'whisper-tiny.en', not 'whisper-base'") as err:
        Direction.load(tmp_path / "s", "whisper-base")
    assert "\n" not in str(err.value)
    with pytest.raises(OtoscopeError, match="not a steering folder"):
        Direction.load(tmp_path)


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), "strong"])
def test_alpha_must_be_finite(alpha):
    with pytest.raises(OtoscopeError, match="alpha must be"):
        make(alpha=alpha)
    with pytest.raises(OtoscopeError, match="alpha must be"):
        make().delta(alpha)


def test_bad_fields():
    with pytest.raises(OtoscopeError, match="kind"):
        make(kind="multiply")
    with pytest.raises(OtoscopeError, match="non-zero"):
        make(vector=torch.zeros(8))
    with pytest.raises(OtoscopeError, match="positions='first'"):
        make(positions="all")  # gated decoder direction
