import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.lens.decoder import ctc_lens, decoder_logit_lens
from otoscope.lens.tuned import TunedLens, TunedLensConfig, decoder_head, encoder_head, train_tuned_lens


def test_decoder_logit_lens_last_layer_is_the_model(tiny_en, speech):
    result = decoder_logit_lens(tiny_en, speech[0]["path"])
    assert result.transcript == "Please open the door."
    last = result.table[result.table.layer == tiny_en.n_decoder_layers - 1]
    assert (last["rank"] == 0).all()  # the final layer through the head is the model's own argmax
    summary = result.summary()
    assert summary["mean_prob"].iloc[-1] > summary["mean_prob"].iloc[0]
    # plain check of one cell: layer 1, first emitted token
    inputs = tiny_en.prepare(speech[0]["path"], text=" Please open the door.")
    _, cache = tiny_en.run_with_cache(inputs, names_filter="decoder.blocks.1.hook_resid_post")
    h = cache["decoder.blocks.1.hook_resid_post"][0, inputs.prefix_len[0] - 1]
    probs = torch.softmax(decoder_head(tiny_en)(h), -1)
    first = result.table[(result.table.layer == 1) & (result.table.position == 0)].iloc[0]
    assert first["prob"] == pytest.approx(probs[tiny_en.to_tokens(" Please")[0]].item(), rel=1e-4)
    # handing it the encoder output (as the report does) skips the encoder and changes nothing
    from otoscope.lens.encoder import encoder_lens

    lens = encoder_lens(tiny_en, speech[0]["path"])
    again = decoder_logit_lens(tiny_en, speech[0]["path"], transcription=lens.transcription, encoder_out=lens.encoder_out)
    np.testing.assert_allclose(again.table["prob"], result.table["prob"], atol=1e-5)
    assert again.table["rank"].tolist() == result.table["rank"].tolist()


def test_ctc_lens_on_tiny_ctc_model():
    import otoscope
    from tests.models.test_decode import _ctc_tokenizer

    model = otoscope.load("tiny-random-wav2vec2-stable")
    model.tokenizer = _ctc_tokenizer()
    table = ctc_lens(model, np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1).table
    assert len(table) == model.n_layers
    assert table["top1"].iloc[-1] == 1.0  # the last block through the head is the model's own output
    with pytest.raises(OtoscopeError, match="no CTC head"):
        ctc_lens(otoscope.load("tiny-random-whisper"), np.zeros(16_000, np.float32))


def test_tuned_lens_starts_as_logit_lens_and_improves(tmp_path):
    torch.manual_seed(0)
    d, vocab, n = 16, 50, 400
    unembed = torch.randn(vocab, d)
    final = torch.randn(n, d) * 2
    rotation, _ = torch.linalg.qr(torch.randn(d, d))
    residuals = torch.stack([final @ rotation + 0.05 * torch.randn(n, d), final])  # layer 0 is a rotated final
    head = lambda h: h @ unembed.T  # noqa: E731
    untrained = train_tuned_lens(residuals, head, TunedLensConfig(steps=0))
    assert untrained.table["kl_tuned_lens"].iloc[0] == pytest.approx(untrained.table["kl_logit_lens"].iloc[0])
    trained = train_tuned_lens(residuals, head, TunedLensConfig(steps=300, lr=1e-2, batch=128))
    assert trained.table["kl_tuned_lens"].iloc[0] < 0.2 * trained.table["kl_logit_lens"].iloc[0]
    path = trained.lens.save(tmp_path / "lens.safetensors")
    again = TunedLens.load(path)
    x = torch.randn(3, d)
    torch.testing.assert_close(again(x, 0), trained.lens(x, 0))


def test_encoder_tuned_lens_on_real_model(tiny_en, speech):
    from otoscope.geometry.collect import collect_layers

    items = collect_layers(tiny_en, [r["path"] for r in speech[:2]])
    blocks = torch.cat([item.acts[1:] for item in items], dim=1)
    result = train_tuned_lens(blocks, encoder_head(tiny_en), TunedLensConfig(steps=15, batch=32))
    table = result.table
    assert table["kl_tuned_lens"].iloc[0] < table["kl_logit_lens"].iloc[0]
    assert table["kl_logit_lens"].iloc[-1] == pytest.approx(0.0, abs=1e-6)


def test_fast_kl_equals_plain_kl_in_value_and_gradient():
    from otoscope.lens.tuned import _kl, _kl_fast

    torch.manual_seed(1)
    final_logp = torch.log_softmax(torch.randn(5, 300) * 3, -1)
    neg_entropy = (final_logp.exp() * final_logp).sum(-1)
    logits = (torch.randn(5, 300) * 3).requires_grad_()
    plain = _kl(final_logp, logits)
    (g_plain,) = torch.autograd.grad(plain.sum(), logits)
    fast = _kl_fast(neg_entropy, final_logp.exp(), logits)
    (g_fast,) = torch.autograd.grad(fast.sum(), logits)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_fast, g_plain, atol=1e-6, rtol=1e-5)
    assert (plain > 0.1).all()  # far from zero, so the check means something
