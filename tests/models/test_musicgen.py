"""MusicGen through its adapter: the delay pattern, teacher forcing, hooks against HF's own outputs, sampling."""

from __future__ import annotations

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.models.adapters.musicgen import MusicgenAdapter, delay_codes, undelay_codes
from otoscope.models.tiny import build_tiny


@pytest.fixture(scope="module")
def adapter():
    model, extractor, tokenizer = build_tiny("tiny-random-musicgen")
    return MusicgenAdapter(model.eval(), extractor, tokenizer)


def test_delay_layout_matches_hf_delay_pattern(adapter):
    """Our delayed layout is what HF's own generation builds from a prompt of frame-aligned codes."""
    k, pad = adapter.codebooks, adapter.pad_id
    frames = torch.randint(0, pad, (2 * k, 6))
    ours = delay_codes(frames, k, pad)  # [rows, 6 + k]
    # HF's own pattern for a prompt of (start column + those codes), as long as ours: identical, end pads included
    prompt = torch.cat([torch.full((2 * k, 1), pad), frames], dim=1)
    _, pattern = adapter.model.decoder.build_delay_pattern_mask(prompt, pad_token_id=pad, max_length=ours.shape[1])
    assert torch.equal(pattern, ours)
    assert torch.equal(undelay_codes(ours, k), frames)


def test_forward_is_hf_forward(adapter):
    k, pad = adapter.codebooks, adapter.pad_id
    codes = delay_codes(torch.randint(0, pad, (k, 8)), k, pad)
    inputs = adapter.prepare([], "a calm piano", audio_codes=codes)
    ours = adapter.forward(inputs)
    enc = adapter.tokenizer(["a calm piano"], return_tensors="pt")
    with torch.no_grad():
        theirs = adapter.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, decoder_input_ids=codes).logits
    assert ours.shape == (k, codes.shape[1], adapter.model.config.decoder.vocab_size)
    torch.testing.assert_close(ours, theirs)
    # the prompt matters: another prompt moves the logits well beyond rounding
    other = adapter.forward(adapter.prepare([], "an energetic drum solo", audio_codes=codes))
    assert (other - ours).abs().max() > 1e-2


def test_generate_is_seeded_and_sized(adapter):
    a = adapter.generate("happy ukulele", seconds=0.3, seed=3, top_k=20)
    b = adapter.generate("happy ukulele", seconds=0.3, seed=3, top_k=20)
    c = adapter.generate("happy ukulele", seconds=0.3, seed=4, top_k=20)
    assert a.codes.shape == (adapter.codebooks, 15)  # 0.3 s at 50 frames/s
    assert torch.equal(a.codes, b.codes) and not torch.equal(a.codes, c.codes)
    assert a.samples.shape == (15 * 640,) and a.sample_rate == 32000
    state = torch.random.get_rng_state()
    adapter.generate("happy ukulele", seconds=0.1, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched


def test_greedy_generation_is_the_argmax_of_teacher_forcing(adapter):
    """Teacher-forcing the generated codes reproduces them as the argmax: our forward and HF generate agree."""
    out = adapter.generate("sad strings", seconds=0.2, seed=0, top_k=1, guidance_scale=1.0)
    k, pad = adapter.codebooks, adapter.pad_id
    delayed = delay_codes(out.codes.reshape(k, -1), k, pad)  # [k, frames + k]
    logits = adapter.forward(adapter.prepare([], "sad strings", audio_codes=delayed[:, :-1]))
    predicted = logits.argmax(-1)  # position t predicts position t + 1
    for k_ in range(k):
        span = slice(k_, k_ + out.codes.shape[1])  # positions whose next token is a real code of codebook k
        assert torch.equal(predicted[k_, span], delayed[k_, k_ + 1: k_ + 1 + out.codes.shape[1]])


def test_bad_inputs(adapter):
    with pytest.raises(OtoscopeError, match="text=PROMPT"):
        adapter.prepare([])
    with pytest.raises(OtoscopeError, match=r"\[batch × codebooks, positions\]"):
        adapter.prepare([], "x", audio_codes=torch.zeros((3, 2), dtype=torch.long))
    with pytest.raises(OtoscopeError, match="0..64"):
        adapter.prepare([], "x", audio_codes=torch.full((4, 2), 99))
    with pytest.raises(OtoscopeError, match="positive"):
        adapter.generate("x", seconds=float("nan"))
