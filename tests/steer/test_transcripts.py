"""What counts as a hallucination."""

import pytest

from otoscope.steer.transcripts import hallucination_rate, is_hallucination, strip_tags


@pytest.mark.parametrize("text,expected", [
    ("you", True), ("Ha ha ha!", True), ("", False), ("...", False), ("[Music]", False), ("(dog barking)", False),
    ("♪ ♪", False), ("[MUSIC PLAYING, SOUND", False), ("(music) thank you", True), ("*laughs*", False),
    ("... I forgot my umbrella.", True), ("- ", False), ("Aaaaah", True),
])
def test_is_hallucination(text, expected):
    assert is_hallucination(text) is expected


def test_rate_and_strip():
    assert hallucination_rate(["you", "...", "[Music]", "Ha!"]) == 0.5
    assert hallucination_rate([]) == 0.0
    assert strip_tags("[Music] ♪ hello (laughs)") == "hello"
