"""The real bundled whisper-tiny.en and the tiny random models, checked against independent computations."""

import numpy as np
import pytest
import torch
from torch import nn

from otoscope.errors import AudioError, OtoscopeError


def _manual_encoder(model, features):
    """Whisper's encoder run module by module, without any otoscope hook."""
    enc = model.model.model.encoder
    x = nn.functional.gelu(enc.conv1(features))
    x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1) + enc.embed_positions.weight
    outs = []
    for layer in enc.layers:
        x = layer(x, None)
        outs.append(x)
    return outs


def test_resid_post_equals_independent_computation(tiny_en, speech):
    inputs = tiny_en.prepare([speech[0]["path"], speech[1]["path"]])
    _, cache = tiny_en.run_with_cache(inputs, names_filter="encoder.blocks.*.hook_resid_post")
    with torch.no_grad():
        manual = _manual_encoder(tiny_en, inputs.features)
        hf = tiny_en.model.model.encoder(inputs.features, output_hidden_states=True)
    for layer, expected in enumerate(manual):
        torch.testing.assert_close(cache[f"encoder.blocks.{layer}.hook_resid_post"], expected, atol=1e-5, rtol=1e-5)
    # transformers' hidden_states: entry L+1 is block L's output, except the last, which is layer-normed
    for layer in range(tiny_en.n_layers - 1):
        torch.testing.assert_close(cache[f"encoder.blocks.{layer}.hook_resid_post"], hf.hidden_states[layer + 1])
    last = cache[f"encoder.blocks.{tiny_en.n_layers - 1}.hook_resid_post"]
    assert not torch.allclose(last, hf.last_hidden_state, atol=1e-2)
    torch.testing.assert_close(tiny_en.model.model.encoder.layer_norm(last), hf.last_hidden_state)


def test_decoder_resid_post_equals_hidden_states(tiny_en, speech):
    inputs = tiny_en.prepare(speech[0]["path"], text=" Please open the door.")
    _, cache = tiny_en.run_with_cache(inputs, names_filter="decoder.blocks.*.hook_resid_post")
    with torch.no_grad():
        out = tiny_en.model(input_features=inputs.features, decoder_input_ids=inputs.decoder_input_ids,
                            output_hidden_states=True)
    for layer in range(tiny_en.n_decoder_layers - 1):
        torch.testing.assert_close(cache[f"decoder.blocks.{layer}.hook_resid_post"], out.decoder_hidden_states[layer + 1])


def test_identity_hooks_leave_the_real_model_unchanged(tiny_en, speech):
    """Every hook fires and writes an equal copy back (a clone is not short-circuited as 'unchanged'): the
    logits stay the same up to float rounding, while zeroing one of them moves the logits by far more."""
    inputs = tiny_en.prepare(speech[0]["path"], text=" Please open")
    clean = tiny_en(inputs)
    names = [n for n in tiny_en.hook_names() if not n.endswith("hook_pattern")]
    fired = []

    def copy(t, hook):
        fired.append(hook.name)
        return t.clone()

    copied = tiny_en.run_with_hooks(inputs, fwd_hooks=[(n, copy) for n in names])
    assert set(fired) == set(names)
    torch.testing.assert_close(copied, clean, atol=1e-4, rtol=1e-5)
    zeroed = tiny_en.run_with_hooks(inputs, fwd_hooks=[("encoder.blocks.2.hook_mlp_out", lambda t, h: torch.zeros_like(t))])
    assert (zeroed - clean).abs().max() > 100 * 1e-4


def test_teacher_forced_logits_predict_the_transcript(tiny_en, speech):
    row = speech[0]
    text = " " + row["text"]
    inputs = tiny_en.prepare(row["path"], text=text)
    logits = tiny_en(inputs)
    prefix = inputs.prefix_len[0]
    ids = inputs.decoder_input_ids[0]
    predicted = logits[0, prefix - 1 : -1].argmax(-1)
    assert torch.equal(predicted, ids[prefix:])  # each next token of the transcript is the argmax
    assert logits[0, -1].argmax() == tiny_en.eot


def test_frame_mask_and_cache_helpers(tiny_en, speech):
    _, cache = tiny_en.run_with_cache([speech[0]["path"], speech[1]["path"]], names_filter="encoder.blocks.*.hook_resid_post",
                                      device="cpu")
    for i, row in enumerate(speech[:2]):
        assert cache.n_frames(i) == tiny_en.geometry.n_frames(round(row["seconds"] * 16_000)) or \
            abs(cache.n_frames(i) - row["seconds"] * 50) <= 1
        assert cache.real("encoder.blocks.0.hook_resid_post", i).shape == (cache.n_frames(i), 384)
    assert cache.stack("encoder.blocks.*.hook_resid_post").shape == (4, 2, 1500, 384)
    assert cache.layers("encoder.blocks.*.hook_resid_post") == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="not in this cache"):
        cache["decoder.blocks.0.hook_resid_post"]


def test_prompt_and_batched_text(tiny_en, speech):
    inputs = tiny_en.prepare([speech[0]["path"], speech[1]["path"]], text=[" Please", " My name is"], prompt="Hi.")
    assert inputs.decoder_input_ids[0, 0] == tiny_en.token_id("<|startofprev|>")
    assert inputs.token_mask.sum(1).tolist() == [inputs.prefix_len[0] + 1, inputs.prefix_len[1] + 3]
    logits = tiny_en(inputs)
    assert logits.shape[:2] == inputs.decoder_input_ids.shape
    with pytest.raises(OtoscopeError, match="3 texts for 2 clips"):
        tiny_en.prepare([speech[0]["path"], speech[1]["path"]], text=["a", "b", "c"])


def test_clips_longer_than_the_window_are_refused(tiny_whisper):
    with pytest.raises(AudioError, match="31.0 s but Whisper's encoder sees one 30 s window"):
        tiny_whisper.run_with_cache(np.zeros(16_000 * 31, np.float32))


def test_encoder_only_models_take_no_text():
    import otoscope

    model = otoscope.load("tiny-random-hubert")
    with pytest.raises(OtoscopeError, match="encoder-only"):
        model.prepare(np.zeros(16_000, np.float32), text="hello")


def test_dtype_and_device_arguments():
    import otoscope

    model = otoscope.load("tiny-random-whisper", device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    logits = model(np.zeros(16_000, np.float32))
    assert logits.dtype == torch.bfloat16
    with pytest.raises(OtoscopeError, match="unknown dtype"):
        otoscope.load("tiny-random-whisper", dtype="float13")
