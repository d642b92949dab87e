import json

import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.lens.encoder import encoder_lens, logit_lens_stats, word_error_rate
from otoscope.lens.naive import encoder_lens_per_layer


def test_logit_lens_stats_equal_plain_computation(tiny_en, speech):
    _, cache = tiny_en.run_with_cache(speech[0]["path"], names_filter="encoder.blocks.*.hook_resid_post")
    n = cache.n_frames(0)
    stack = cache.stack("encoder.blocks.*.hook_resid_post")[:, 0, :n]
    lis, ent, kl = logit_lens_stats(tiny_en, stack, chunk=7)  # odd chunk: exercises the chunk seams
    enc, dec = tiny_en.model.model.encoder, tiny_en.model.model.decoder
    final = torch.softmax(enc.layer_norm(stack[-1]) @ dec.embed_tokens.weight.T, -1).double()
    for layer in range(stack.shape[0]):
        p = torch.softmax(enc.layer_norm(stack[layer]) @ dec.embed_tokens.weight.T, -1).double()
        assert lis[layer] == pytest.approx(torch.nn.functional.cosine_similarity(p, final, dim=-1).mean().item(), abs=1e-5)
        assert ent[layer] == pytest.approx((-(p * p.log()).sum(-1)).mean().item(), abs=1e-4)
        assert kl[layer] == pytest.approx((final * (final.log() - p.log())).sum(-1).mean().item(), abs=1e-4)
    assert lis[-1] == pytest.approx(1.0) and kl[-1] == pytest.approx(0.0, abs=1e-6)
    assert 0.9 < min(lis) < 1.0  # compressed near 1 on tiny, as the literature reports


def test_encoder_lens_equals_one_forward_per_layer(tiny_en, speech):
    path = speech[1]["path"]
    result = encoder_lens(tiny_en, path)
    naive = encoder_lens_per_layer(tiny_en, path)
    assert [layer.encoder_lens_text for layer in result.layers] == [layer.encoder_lens_text for layer in naive]
    for fast, plain in zip(result.layers, naive):
        assert fast.lis == pytest.approx(plain.lis, abs=1e-6)
        assert fast.entropy == pytest.approx(plain.entropy, abs=1e-5)
        assert fast.kl_to_final == pytest.approx(plain.kl_to_final, abs=1e-6)
    full = tiny_en.transcribe(path)
    assert result.transcript == full.text
    assert result.transcription.tokens == full.tokens  # the report uses it as the clip's transcription
    assert result.layers[-1].encoder_lens_wer == 0.0
    assert result.saturation_layer == tiny_en.n_layers - 1  # tiny.en only reads out at its last layer
    assert len(result.frame_seconds) == round(speech[1]["seconds"] * 50) or \
        abs(len(result.frame_seconds) - speech[1]["seconds"] * 50) <= 1


def test_lens_json_and_plot(tmp_path, speech):
    from otoscope.cli.main import main

    assert main(["lens", speech[0]["path"], "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "lens.json").read_text())
    assert set(data) >= {"model", "transcript", "saturation_layer", "layers"}
    assert [layer["layer"] for layer in data["layers"]] == [0, 1, 2, 3]
    assert set(data["layers"][0]) == {"layer", "lis", "entropy", "kl_to_final", "encoder_lens_text", "encoder_lens_wer"}
    assert (tmp_path / "lens_layers.png").stat().st_size > 10_000
    assert data["decoder_lens"][-1]["top1"] == 1.0


def test_lens_on_encoder_only_models(tmp_path, capsys):
    import otoscope
    from otoscope.cli.main import main
    from otoscope.lens.run import run_lens
    from tests.models.test_decode import _ctc_tokenizer

    model = otoscope.load("tiny-random-hubert")
    model.tokenizer = _ctc_tokenizer()
    data = run_lens(model, np.zeros(16_000, np.float32), tmp_path)
    assert len(data["ctc_lens"]) == 2 and "no decoder" in data["not_applicable"][0]
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(16_000, np.float32), 16_000)
    assert main(["lens", str(tmp_path / "a.wav"), "--model", "tiny-random-wav2vec2", "--out", str(tmp_path / "x")]) == 2
    assert "no lens applies" in capsys.readouterr().err


def test_silent_and_short_clips_do_not_crash(tiny_en):
    for clip in (np.zeros(16_000, np.float32), np.zeros(1_600, np.float32)):
        result = encoder_lens(tiny_en, clip, top_k_layers=(0,))
        assert len(result.layers) == 4 and all(np.isfinite(layer.lis) for layer in result.layers)
        assert len(result.top_tokens[0]) == tiny_en.geometry.n_frames(len(clip))


def test_encoder_only_models_are_told_which_lenses_apply():
    import otoscope

    with pytest.raises(OtoscopeError, match="has no decoder"):
        encoder_lens(otoscope.load("tiny-random-hubert"), np.zeros(16_000, np.float32))


def test_word_error_rate_edges():
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "words") == 1.0
    assert word_error_rate("The cat.", "the cat") == 0.0
    assert word_error_rate("a b c d", "a b x d") == 0.25


def test_encoder_lens_carries_the_clip_residuals_and_encoder_output(tiny_en, speech):
    from otoscope.geometry.collect import collect_layers

    path = speech[2]["path"]
    result = encoder_lens(tiny_en, path, decode=False)
    plain = collect_layers(tiny_en, [path])[0]
    assert result.residuals.shape == plain.acts.shape
    torch.testing.assert_close(result.residuals, plain.acts, atol=1e-5, rtol=1e-5)
    _, cache = tiny_en.run_with_cache(path, text=" x", names_filter="encoder.hook_ln_final")
    torch.testing.assert_close(result.encoder_out, cache["encoder.hook_ln_final"], atol=1e-5, rtol=1e-5)
