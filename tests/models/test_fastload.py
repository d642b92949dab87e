"""The fast loader gives exactly the weights, buffers and tokenizer that ``from_pretrained`` gives."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from otoscope.models import bundled, fastload
from otoscope.models.tiny import build_tiny


def _assert_same(fast, slow):
    assert type(fast) is type(slow)
    for kind in ("named_parameters", "named_buffers"):
        a, b = dict(getattr(fast, kind)()), dict(getattr(slow, kind)())
        assert a.keys() == b.keys(), kind
        for name in a:
            assert not a[name].is_meta, name
            assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    assert not fast.training
    assert fast.config._attn_implementation == slow.config._attn_implementation


def test_bundled_whisper_matches_from_pretrained():
    from transformers import AutoTokenizer, WhisperConfig, WhisperForConditionalGeneration

    folder = bundled.ensure_converted(bundled.BUNDLED["whisper-tiny.en"])
    fast = fastload.load_model(folder, WhisperForConditionalGeneration, WhisperConfig.from_pretrained(folder))
    slow = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    _assert_same(fast, slow)
    assert fast.proj_out.weight is fast.model.decoder.embed_tokens.weight  # still tied
    assert fast.generation_config.to_dict() == slow.generation_config.to_dict()
    features = torch.randn(1, fast.config.num_mel_bins, 3000)
    ids = torch.tensor([[50257, 50362, 383, 3290]])
    with torch.no_grad():
        assert torch.equal(fast(input_features=features, decoder_input_ids=ids).logits,
                           slow(input_features=features, decoder_input_ids=ids).logits)

    tok, ref = fastload.whisper_tokenizer(folder), AutoTokenizer.from_pretrained(folder)
    assert type(tok) is type(ref) and tok.get_added_vocab() == ref.get_added_vocab()
    for text in (" My name is John and I live in London.", "Héllo wörld — 日本語 <|en|>", ""):
        assert tok(text).input_ids == ref(text).input_ids
        assert tok(text, add_special_tokens=False).input_ids == ref(text, add_special_tokens=False).input_ids
    ids = ref(" test <|notimestamps|> x").input_ids
    assert tok.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("name", ["tiny-random-wav2vec2", "tiny-random-wavlm"])
def test_saved_tiny_models_match_from_pretrained(name, tmp_path):
    model, _, _ = build_tiny(name)
    model.save_pretrained(tmp_path)
    cls = type(model)
    fast = fastload.load_model(tmp_path, cls, model.config)
    _assert_same(fast, cls.from_pretrained(tmp_path).eval())
    _assert_same(fast, model.eval())


def test_unexpected_or_missing_keys_fall_back(tmp_path):
    model, _, _ = build_tiny("tiny-random-hubert")
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    renamed = {("legacy." + k if i == 0 else k): v for i, (k, v) in enumerate(state.items())}
    save_file(renamed, tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert fastload.load_model(tmp_path, type(model), model.config) is None
    del renamed[next(iter(renamed))]
    save_file(renamed, tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert fastload.load_model(tmp_path, type(model), model.config) is None


def test_other_tokenizers_are_left_to_from_pretrained(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "Wav2Vec2CTCTokenizer"}')
    assert fastload.whisper_tokenizer(tmp_path) is None
