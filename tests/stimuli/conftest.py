"""Fixtures for the stimuli tests."""

import pytest


@pytest.fixture
def one_thread():
    """Small forward passes: one torch thread is faster than two that wait on each other on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
