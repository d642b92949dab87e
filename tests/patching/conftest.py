"""Fixtures for the patching tests: committed clips, sessions (the London/Paris pair is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tests run many small forward passes: one torch thread is faster than two that wait on each other
    (several times faster on a shared 2-core machine). Restored after each module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def door() -> str:
    """A 1.74 s speech clip."""
    return str(AUDIO / "speech_door.flac")


@pytest.fixture(scope="session")
def park() -> str:
    """A 2.01 s speech clip in another voice."""
    return str(AUDIO / "speech_park.flac")


@pytest.fixture(scope="session")
def tiny_session(tiny_whisper, door, park):
    """tiny-random-whisper on two different clips, logit diff 'a' − 'b' after ' My'."""
    from otoscope.patching import open_session

    session = open_session(tiny_whisper, door, park, text=" My", answer="a", wrong="b", batch_size=3)
    session.runs(tiny_whisper.hook_names() + ["decoder.blocks.0.attn.hook_pattern"])  # every hook the tests touch, once
    return session


@pytest.fixture(scope="session")
def london_session(tiny_en, london_pair):
    """whisper-tiny.en on the London/Paris pair, logit diff ' London' − ' Paris'."""
    from otoscope.patching import open_session

    p = london_pair
    session = open_session(tiny_en, p.clean, p.corrupt, text=p.text, answer=p.answer, wrong=p.wrong)
    # every hook the tests touch, cached in one clean and one corrupt run
    session.runs(session.hook_names(["encoder.blocks.*.hook_resid_post", "decoder.blocks.*.hook_cross_attn_out",
                                     "decoder.blocks.*.hook_attn_out"]))
    return session
