"""Shared fixtures: the committed clips and London/Paris pair, tiny random models of every architecture, the bundled tiny.en."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Tests never touch the network: every model comes from the bundled packages or is built in-process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OTOSCOPE_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures" / "audio"
PAIRS = Path(__file__).parent / "fixtures" / "pairs"
TINY = ["tiny-random-whisper", "tiny-random-wav2vec2", "tiny-random-wav2vec2-stable", "tiny-random-hubert",
        "tiny-random-wavlm"]


@pytest.fixture(scope="session")
def manifest() -> list[dict]:
    """The fixture clips' manifest rows, with absolute paths."""
    rows = [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = str(FIXTURES / row["path"])
    return rows


@pytest.fixture(scope="session")
def speech(manifest) -> list[dict]:
    """The clean speech clips."""
    return [r for r in manifest if r["kind"] == "speech"]


@pytest.fixture(scope="session")
def london_pair():
    """The committed word-swap pair: "... I live in London." vs "... Paris." (whisper-tiny.en gets both right)."""
    from otoscope.stimuli.pairs import load_pair

    return load_pair(PAIRS / "london_paris")


@pytest.fixture(scope="session")
def tiny_en():
    """The real whisper-tiny.en from the bundled weights."""
    import otoscope

    return otoscope.load("whisper-tiny.en")


_tiny_cache: dict = {}


@pytest.fixture(params=TINY)
def tiny_model(request):
    """Each tiny random-weight architecture in turn (built once per session)."""
    import otoscope

    if request.param not in _tiny_cache:
        _tiny_cache[request.param] = otoscope.load(request.param)
    return _tiny_cache[request.param]


@pytest.fixture(scope="session")
def tiny_whisper():
    """The tiny random Whisper."""
    import otoscope

    return otoscope.load("tiny-random-whisper")


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored after: on a busy 2-core machine OpenMP's thread hand-offs
    dominate small operations. Sub-packages make it autouse where their tests are many small passes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
