"""Tiny random audio-LLMs and pairs whose two runs differ clearly (a tone against noise, two prompts)."""

import numpy as np
import pytest
import torch

from otoscope.audio.io import Clip
from otoscope.listen.pairs import ListenPair

FAMILIES = ["tiny-random-qwen2audio", "tiny-random-voxtral"]
SECOND = np.arange(16000) / 16000


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Small passes: one torch thread (see tests/conftest.py)."""


@pytest.fixture(scope="module", params=FAMILIES)
def llm(request):
    import otoscope

    return otoscope.load(request.param)


def tone(freq: float = 440.0) -> Clip:
    return Clip((0.5 * np.sin(2 * np.pi * freq * SECOND)).astype(np.float32), 16000, f"tone{freq:g}")


def noise(seed: int = 0) -> Clip:
    return Clip((0.3 * np.random.default_rng(seed).standard_normal(16000)).astype(np.float32), 16000, f"noise{seed}")


def separating_pair(model, clean: Clip, corrupt: Clip, prompt: str, corrupt_prompt: str | None = None,
                    hooks=(), name: str = "pair") -> ListenPair:
    """A pair whose answer/wrong tokens are the ones the two runs separate most (under ``hooks``)."""
    with torch.no_grad(), model.hooks(list(hooks)):
        a = model(clean, text=prompt)[0, -1]
        b = model(corrupt, text=corrupt_prompt or prompt)[0, -1]
    gap = a - b
    return ListenPair(name, clean, corrupt, [int(gap.argmax())], [int(gap.argmin())], prompt, corrupt_prompt)


def attend_only(kind: str, positions, tokens: int):
    """A pattern hook letting every query see only ``kind`` keys (``audio`` or ``text``) and itself, renormalised:
    exactly a mask before the softmax. Works for suffix runs (the last ``q`` query rows)."""
    allowed = torch.zeros(tokens, tokens, dtype=torch.bool)
    allowed[:, positions.audio if kind == "audio" else positions.text] = True
    allowed |= torch.eye(tokens, dtype=torch.bool)
    allowed &= torch.ones(tokens, tokens, dtype=torch.bool).tril()

    def hook(pattern, point):
        kept = pattern * allowed[-pattern.shape[-2]:].to(pattern.dtype)
        return kept / kept.sum(-1, keepdim=True)
    return hook
