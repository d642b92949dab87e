"""Audio-LLMs (Qwen2-Audio, Voxtral) on tiny random models: hooks against HF's own outputs, prompts, generation."""

import numpy as np
import pytest
import torch

import otoscope
from otoscope.errors import AudioError, OtoscopeError

FAMILIES = ["tiny-random-qwen2audio", "tiny-random-voxtral"]


@pytest.fixture(scope="module", params=FAMILIES)
def llm(request):
    return otoscope.load(request.param)


def _clip(seconds=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def test_hook_table_names_and_gqa_shapes(llm):
    names = llm.hook_names()
    for name in ("audio.encoder.hook_embed", "audio.encoder.blocks.1.hook_resid_post", "audio.encoder.blocks.0.attn.hook_q",
                 "audio.encoder.blocks.0.mlp.hook_post", "projector.hook_out", "llm.hook_embed",
                 "llm.blocks.1.hook_resid_mid", "llm.blocks.0.hook_attn_out", "llm.blocks.0.hook_mlp_out",
                 "llm.blocks.0.attn.hook_z", "llm.blocks.0.mlp.hook_post", "llm.hook_ln_final", "llm.hook_logits"):
        assert name in names
    _, cache = llm.run_with_cache(_clip(), text="Which word?", names_filter=[f"llm.blocks.0.attn.hook_{k}" for k in ("q", "k", "pattern")])
    tokens = cache.positions[0].n_tokens
    assert cache["llm.blocks.0.attn.hook_q"].shape == (1, tokens, 4, 8)
    assert cache["llm.blocks.0.attn.hook_k"].shape == (1, tokens, 2, 8)  # 2 key-value heads serve 4 query heads
    assert cache["llm.blocks.0.attn.hook_pattern"].shape == (1, 4, tokens, tokens)
    torch.testing.assert_close(cache["llm.blocks.0.attn.hook_pattern"].sum(-1), torch.ones(1, 4, tokens))


def test_cached_resid_equals_hf_hidden_states(llm):
    inputs = llm.prepare(_clip(), text="Which word?")
    logits, cache = llm.run_with_cache(inputs)
    with torch.no_grad():
        hf = llm.model(**llm.llm_adapter.model_kwargs(inputs), output_hidden_states=True)
    for layer in range(llm.n_llm_layers):
        torch.testing.assert_close(cache[f"llm.blocks.{layer}.hook_resid_pre"], hf.hidden_states[layer])
    torch.testing.assert_close(cache["llm.hook_embed"], hf.hidden_states[0])
    torch.testing.assert_close(cache["llm.hook_ln_final"], hf.hidden_states[-1])  # HF's last entry is normed
    torch.testing.assert_close(logits, hf.logits)
    torch.testing.assert_close(cache["llm.hook_logits"], hf.logits)
    # the audio embeddings the projector made are what sits at the audio positions of the LLM input
    pos = cache.positions[0]
    audio_in = cache["llm.hook_embed"][0, pos.audio]
    torch.testing.assert_close(audio_in, cache["projector.hook_out"][0, : len(pos.audio)])


def test_positions_and_time_spans(llm):
    _, cache = llm.run_with_cache(_clip(1.0), text="Which word?", answer=" yes", names_filter="llm.hook_embed")
    pos = cache.positions[0]
    step = 0.04 if "qwen" in llm.name else 0.08
    assert pos.audio == list(range(pos.audio[0], pos.audio[0] + len(pos.audio)))
    assert pos.audio_seconds[1, 0] == pytest.approx(step) and pos.audio_seconds[0, 1] == pytest.approx(step)
    assert pos.real_audio == (25 if "qwen" in llm.name else 13)  # 1 s: 25 tokens of 40 ms, 13 of 80 ms
    assert len(pos.audio) == (25 if "qwen" in llm.name else 375)  # Voxtral feeds its whole 30 s window
    assert pos.answer == [pos.readout + 1 + i for i in range(4)]  # " yes": four byte tokens
    assert not set(pos.text) & set(pos.audio) and max(pos.text) < pos.readout
    assert pos.audio_window(0.0, 2 * step - 1e-6) == pos.audio[:2]
    ids = cache["llm.hook_embed"].shape[1]
    assert ids == pos.n_tokens


def test_input_ids_without_tokenizer_match_text(llm):
    by_text = llm.prepare(_clip(), text="Which word?")
    ids = by_text.input_ids[0].tolist()
    placeholder = llm.llm_adapter.placeholder
    one = [t for i, t in enumerate(ids) if t != placeholder or ids[i - 1] != placeholder]  # collapse to one placeholder
    tokenizer, llm.llm_adapter.tokenizer = llm.llm_adapter.tokenizer, None
    try:
        for given in (one, ids):
            logits = llm(_clip(), input_ids=given)
            torch.testing.assert_close(logits, llm(by_text))
        with pytest.raises(OtoscopeError, match="no tokenizer; pass input_ids"):
            llm(_clip(), text="Which word?")
    finally:
        llm.llm_adapter.tokenizer = tokenizer


def test_generate_text_token_identical_to_hf_generate(llm):
    for seed in (0, 1):
        out = llm.generate_text(_clip(seed=seed), "Say the word.", max_new_tokens=12)
        kwargs = llm.llm_adapter.model_kwargs(llm.prepare(_clip(seed=seed), text="Say the word."))
        with torch.no_grad():
            hf = llm.model.generate(**kwargs, max_new_tokens=12, do_sample=False)
        assert out.tokens == hf[0, kwargs["input_ids"].shape[1]:].tolist()
        assert out.text == llm.tokenizer.decode(out.tokens, skip_special_tokens=True)


def test_projector_hook_replaces_audio_embeddings(llm):
    clean = llm(_clip(), text="Which word?")
    same = llm.run_with_hooks(_clip(), text="Which word?", fwd_hooks=[("projector.hook_out", lambda t, h: t.clone())])
    torch.testing.assert_close(same, clean)
    _, cache = llm.run_with_cache(_clip(seed=3), text="Which word?", names_filter="projector.hook_out")
    other = llm(_clip(seed=3), text="Which word?")
    swapped = llm.run_with_hooks(_clip(), text="Which word?",
                                 fwd_hooks=[("projector.hook_out", lambda t, h: cache["projector.hook_out"])])
    torch.testing.assert_close(swapped, other)  # the LLM only hears the audio through the projector
    assert (clean - other).abs().max() > 1e-3


def test_bad_input_one_line_errors(llm):
    placeholder = llm.llm_adapter.placeholder
    cases = [
        (dict(input_ids=[1, 2, 3]), "no audio placeholder"),
        (dict(input_ids=[placeholder, 5, placeholder, placeholder, 7]), "holds 3 audio placeholders"),
        (dict(text="Hi", chat=False), "no audio placeholder"),
        (dict(), "needs a prompt"),
        (dict(input_ids=[1, placeholder]), "ends with the audio placeholder"),
    ]
    for kwargs, match in cases:
        with pytest.raises(OtoscopeError, match=match) as err:
            llm(_clip(), **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(AudioError, match="30 s window; trim or split"):
        llm(_clip(31.0), text="Hi")


def test_whisper_refuses_llm_arguments():
    whisper = otoscope.load("tiny-random-whisper")
    with pytest.raises(OtoscopeError, match="takes no input_ids"):
        whisper(_clip(), input_ids=[1, 2])
    with pytest.raises(OtoscopeError, match="not an audio-LLM"):
        whisper.generate_text(_clip(), "Hi")


def test_loads_from_local_folder(tmp_path):
    from otoscope.models.tiny import build_tiny

    model, extractor, tokenizer = build_tiny("tiny-random-qwen2audio")
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = otoscope.load(str(tmp_path))
    assert loaded.source == "local" and loaded.llm_adapter.kind == "qwen2audio"
    reference = otoscope.load("tiny-random-qwen2audio")
    torch.testing.assert_close(loaded(_clip(), text="Hi"), reference(_clip(), text="Hi"))
