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
    a = adapter.generate_audio("happy ukulele", seconds=0.1, seed=3, top_k=20)
    b = adapter.generate_audio("happy ukulele", seconds=0.1, seed=3, top_k=20)
    c = adapter.generate_audio("happy ukulele", seconds=0.1, seed=4, top_k=20)
    assert a.codes.shape == (adapter.codebooks, 5)  # 0.1 s at 50 frames/s
    assert torch.equal(a.codes, b.codes) and not torch.equal(a.codes, c.codes)
    assert a.samples.shape == (5 * 640,) and a.sample_rate == 32000
    state = torch.random.get_rng_state()
    adapter.generate_audio("happy ukulele", seconds=0.1, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched


def test_greedy_generation_is_the_argmax_of_teacher_forcing(adapter):
    """Teacher-forcing the generated codes reproduces them as the argmax: our forward and HF generate agree."""
    out = adapter.generate_audio("sad strings", seconds=0.2, seed=0, top_k=1, guidance_scale=1.0)
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
        adapter.generate_audio("x", seconds=float("nan"))


# ---------------------------------------------------------------------------- through HookedAudioModel
@pytest.fixture(scope="module")
def model():
    import otoscope

    return otoscope.load("tiny-random-musicgen")


def test_cache_equals_hf_hidden_states(model):
    k, pad = model.adapter.codebooks, model.adapter.pad_id
    codes = delay_codes(torch.randint(0, pad, (2 * k, 5), generator=torch.Generator().manual_seed(1)), k, pad)
    prompts = ["a calm piano", "an energetic drum solo with brass"]  # different lengths: the text mask matters
    logits, cache = model.run_with_cache(text=prompts, audio_codes=codes)
    enc = model.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, decoder_input_ids=codes,
                          output_hidden_states=True)
    torch.testing.assert_close(logits, out.logits)
    n_dec = model.n_decoder_layers
    assert n_dec == 2 and model.family == "musicgen"
    for i in range(n_dec):  # HF's decoder_hidden_states[i + 1] is block i's output (the last one after the final norm)
        ours = cache[f"decoder.blocks.{i}.hook_resid_post"]
        if i < n_dec - 1:
            torch.testing.assert_close(ours, out.decoder_hidden_states[i + 1])
    torch.testing.assert_close(cache["decoder.hook_ln_final"], out.decoder_hidden_states[-1])
    torch.testing.assert_close(cache["text_encoder.hook_ln_final"], out.encoder_hidden_states[-1])
    assert cache["decoder.blocks.0.hook_resid_post"].shape == (2, codes.shape[1], 32)
    assert cache.real("text_encoder.hook_ln_final", 0).shape[0] == int(enc.attention_mask[0].sum())
    assert cache.real("decoder.hook_ln_final", 0).shape[0] == codes.shape[1]  # every code position is real
    assert cache["decoder.hook_logits"].shape == (2 * k, codes.shape[1], 64)


def test_hooks_replace_logits_and_steer_generation(model):
    codes = delay_codes(torch.zeros((model.adapter.codebooks, 2), dtype=torch.long), model.adapter.codebooks,
                        model.adapter.pad_id)
    zeroed = model.run_with_hooks(text="happy", audio_codes=codes,
                                  fwd_hooks=[("decoder.hook_logits", lambda t, h: torch.zeros_like(t))])
    assert zeroed.abs().max() == 0  # a replacement on the whole decoder's output reaches the caller
    plain = model.generate_audio("happy", seconds=0.1, seed=0, top_k=1, guidance_scale=1.0)
    push = 5 * torch.randn(32, generator=torch.Generator().manual_seed(0))  # not constant: the layer norms remove that
    with model.hooks([("decoder.blocks.1.hook_cross_attn_out", lambda t, h: t + push)]):
        steered = model.generate_audio("happy", seconds=0.1, seed=0, top_k=1, guidance_scale=1.0)
    assert not torch.equal(plain.codes, steered.codes)


def test_hook_table_and_bad_input(model):
    table = {row.name: row for row in model.hook_table()}
    assert table["decoder.hook_embed"].example == (1, 7, 32)  # 3 frames of 4 codebooks: 3 + 4 positions
    assert table["text_encoder.hook_proj"].example == (1, 4, 32)
    with pytest.raises(OtoscopeError, match="not audio"):
        model.run_with_cache(torch.zeros(32000), text="x")
    with pytest.raises(OtoscopeError, match="takes no language_model"):
        model.run_with_cache(text="x", language_model=1)
    import otoscope

    whisper = otoscope.load("tiny-random-whisper")
    with pytest.raises(OtoscopeError, match="does not generate audio"):
        whisper.generate_audio("x")


def test_loads_from_a_saved_folder(model, tmp_path):
    """The path a real checkpoint takes (facebook/musicgen-small from the HF cache is a folder like this)."""
    import otoscope

    model.model.save_pretrained(tmp_path, safe_serialization=True)
    model.tokenizer.save_pretrained(tmp_path)
    model.feature_extractor.save_pretrained(tmp_path)
    again = otoscope.load(str(tmp_path))
    assert again.family == "musicgen" and again.source == "local"
    codes = delay_codes(torch.ones((4, 2), dtype=torch.long), 4, 64)
    torch.testing.assert_close(again(text="calm", audio_codes=codes), model(text="calm", audio_codes=codes))
