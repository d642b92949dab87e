"""Fixtures for the features tests: random SAEs whose latents fire at varied rates; a features folder and a
dashboard built from it, once per session."""

from __future__ import annotations

import pytest
import torch

from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder
from tests.conftest import FIXTURES
from tests.features import synthetic

SMALL = dict(top_examples=3, quantile_examples=1, clip_latents=6, ablate_latents=2, ablate_clips=1, progress=False)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs single-threaded (tests/conftest.py: one_torch_thread)."""


def random_sae(d_in: int, d_sae: int, hook: str, model: str, architecture: str = "relu", k: int = 4,
               seed: int = 0) -> SparseAutoencoder:
    """A random SAE whose encoder biases spread the latents from never firing to firing almost always."""
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=architecture, k=k, hook_name=hook, model_name=model)
    sae = SparseAutoencoder(cfg, seed=seed)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=generator) / d_in**0.5)
        sae.b_enc.copy_(torch.linspace(-3.0, 1.0, d_sae)[torch.randperm(d_sae, generator=generator)])
    return sae


@pytest.fixture(scope="session")
def whisper_sae():
    """A 48-latent ReLU SAE on block 1 of the tiny random Whisper (d_model 32)."""
    return random_sae(32, 48, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper")


@pytest.fixture(scope="session")
def features_dir(tmp_path_factory, manifest, tiny_whisper):
    """A features folder (contract version 1) for the tiny random Whisper and a random SAE over the fixture clips."""
    root = tmp_path_factory.mktemp("features")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sae = synthetic.random_sae(root / "sae")
        synthetic.write_features(tiny_whisper, sae, root / "sae", FIXTURES / "manifest.jsonl", root / "feat")
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
