"""Fixtures for the SAE tests: one thread per test (the CI machine is shared), synthetic and extracted stores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs single-threaded (tests/conftest.py: one_torch_thread)."""


@pytest.fixture(scope="session")
def whisper_store(tmp_path_factory, manifest):
    """Encoder blocks 0 and 1 of the tiny random Whisper over the fixture clips, in several shards."""
    import otoscope
    from otoscope.sae.extract import ExtractConfig, extract_activations

    model = otoscope.load("tiny-random-whisper")
    path = tmp_path_factory.mktemp("whisper_store")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extract_activations(model, [dict(r) for r in manifest], path,
                            ExtractConfig(hooks="encoder.blocks.*.hook_resid_post", batch_size=2, shard_mb=0.02,
                                          progress=False))
    finally:
        torch.set_num_threads(before)
    return path
