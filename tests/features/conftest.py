"""Fixtures for the features tests: a brute-force features folder and a dashboard built from it, once per session."""

from __future__ import annotations

import pytest
import torch

from tests.features.synthetic import random_sae, write_features

SMALL = dict(top_examples=3, quantile_examples=1, clip_latents=6, ablate_latents=2, ablate_clips=1, progress=False)


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded torch: the test machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def features_dir(tmp_path_factory, manifest, tiny_whisper):
    """A features folder (contract version 1) for the tiny random Whisper and a random SAE over the fixture clips."""
    root = tmp_path_factory.mktemp("features")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sae = random_sae(root / "sae")
        write_features(tiny_whisper, sae, root / "sae", [dict(r) for r in manifest], root / "feat")
    finally:
        torch.set_num_threads(before)
    return root / "feat"


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory, features_dir, tiny_whisper):
    """The dashboard of :func:`features_dir` (small settings, with the Neuronpedia export)."""
    from otoscope.features.dashboard import DashboardConfig, build_dashboard

    out = tmp_path_factory.mktemp("dash") / "dash"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = build_dashboard(features_dir, out, DashboardConfig(**SMALL, neuronpedia=True), model=tiny_whisper)
    finally:
        torch.set_num_threads(before)
    return result
