"""Fixtures for the feature-statistics tests: random SAEs whose latents fire at varied rates."""

from __future__ import annotations

import pytest
import torch

from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test single-threaded (the CI machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
