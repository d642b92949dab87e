"""Grounding coefficient: the formula on the tiny model, and 'listening' on the real one."""

import math

import pytest

from otoscope.errors import OtoscopeError
from otoscope.patching.grounding import grounding_coefficient


def test_grounding_reports_its_numbers(tiny_session):
    result = grounding_coefficient(tiny_session)
    assert [layer.layer for layer in result.layers] == [0, 1]
    clean, corrupt = result.clean, result.corrupt
    for layer in result.layers:
        assert layer.delta_audio == pytest.approx((layer.audio_value - corrupt) / (clean - corrupt))
        assert layer.delta_text == pytest.approx((layer.text_value - corrupt) / (clean - corrupt))
        if math.isnan(layer.gc):
            assert layer.note
        else:
            assert layer.gc == pytest.approx(layer.delta_audio / (layer.delta_audio + layer.delta_text))
    assert list(result.to_frame().columns) == ["layer", "audio_value", "text_value", "delta_audio", "delta_text", "gc",
                                               "note"]
    assert set(result.to_json()) == {"model", "direction", "metric", "clean", "corrupt", "layers"}


def test_whisper_listens_for_the_swapped_word(london_session):
    """London vs Paris is in the audio only: the last decoder layers carry it through cross-attention."""
    result = grounding_coefficient(london_session)
    last = result.layers[-1]
    assert last.delta_audio > 0.5 and last.gc > 0.9


def test_grounding_needs_a_decoder(tiny_whisper, door):
    import otoscope
    from otoscope.patching import open_session

    hubert = otoscope.load("tiny-random-hubert")
    session = open_session(hubert, door, door, metric=lambda out: out.sum((1, 2)))
    with pytest.raises(OtoscopeError, match="no decoder"):
        grounding_coefficient(session)
