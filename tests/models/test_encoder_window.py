"""``model.encoder_window``: Whisper's encoder over the first seconds of its window, checked against a hand-run
encoder, restored exactly after, and refused where it does not apply."""

import pytest
import torch
from torch import nn

from otoscope.errors import AudioError, OtoscopeError


def _hand_encoder(model, features, frames):
    """The encoder run module by module on the first ``2 · frames`` mel frames with the first ``frames`` positions."""
    enc = model.model.model.encoder
    x = nn.functional.gelu(enc.conv1(features[..., : 2 * frames]))
    x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1) + enc.embed_positions.weight[:frames]
    for layer in enc.layers:
        x = layer(x, None)
    return enc.layer_norm(x)  # [batch, frames, d_model]


def test_window_equals_the_hand_run_encoder_and_is_restored(tiny_whisper, speech):
    model = tiny_whisper
    full_inputs = model.prepare(speech[0]["path"], text=" Please open the door.")
    full_logits = model.forward_inputs(full_inputs).detach()
    with model.encoder_window(3) as windowed:  # 3 s: 150 frames
        assert windowed is model and model.geometry.window_frames == 150
        inputs = model.prepare(speech[0]["path"], text=" Please open the door.")
        assert inputs.features.shape[-1] == 300 and inputs.frame_mask.shape == (1, 150)
        assert int(inputs.frame_mask.sum()) == int(full_inputs.frame_mask.sum())  # the same real frames
        torch.testing.assert_close(inputs.features, full_inputs.features[..., :300])  # same normalisation
        logits, cache = model.run_with_cache(inputs, names_filter="encoder.hook_ln_final")
        with torch.no_grad():
            expected = _hand_encoder(model, full_inputs.features, 150)
        torch.testing.assert_close(cache["encoder.hook_ln_final"], expected)
        # the positions are the window's first ones: the last 150 would give another encoding
        assert not torch.allclose(logits, full_logits, atol=1e-3)
    # everything back: config, positions, geometry, and the same logits bit for bit
    assert model.model.config.max_source_positions == 1500 and model.geometry.window_frames == 1500
    assert model.adapter.geometry.window_frames == 1500
    assert model.model.model.encoder.embed_positions.num_embeddings == 1500
    assert torch.equal(model.forward_inputs(model.prepare(speech[0]["path"], text=" Please open the door.")).detach(),
                       full_logits)


def test_the_whole_window_changes_nothing(tiny_whisper, speech):
    inputs = tiny_whisper.prepare(speech[1]["path"])
    plain = tiny_whisper.forward_inputs(inputs).detach()
    with tiny_whisper.encoder_window(30):
        assert torch.equal(tiny_whisper.forward_inputs(tiny_whisper.prepare(speech[1]["path"])).detach(), plain)


def test_restored_after_an_error(tiny_whisper):
    with pytest.raises(RuntimeError, match="inside"):
        with tiny_whisper.encoder_window(2):
            raise RuntimeError("inside")
    assert tiny_whisper.geometry.window_frames == 1500 and tiny_whisper.model.config.max_source_positions == 1500


def test_bad_windows_and_long_clips_are_refused(tiny_whisper, speech):
    for bad in (0, -1, 31):
        with pytest.raises(OtoscopeError, match="encoder window"):
            with tiny_whisper.encoder_window(bad):
                pass
    with tiny_whisper.encoder_window(1):  # the fixture clips are 1.7–3 s
        with pytest.raises(AudioError, match="1 s window"):
            tiny_whisper.prepare(speech[1]["path"])
    assert tiny_whisper.geometry.window_frames == 1500


def test_models_without_a_fixed_window_say_so():
    import otoscope

    ctc = otoscope.load("tiny-random-wav2vec2")
    with pytest.raises(OtoscopeError, match="no fixed encoder window"):
        with ctc.encoder_window(5):
            pass


def test_real_whisper_in_a_short_window_still_hears_the_words(tiny_en, speech):
    """The bundled tiny.en in a 5 s window: the same transcript, ~6× less encoder work (docs/benchmark.md)."""
    row = next(r for r in speech if "London" in r["text"])
    full = tiny_en.transcribe(row["path"]).text
    with tiny_en.encoder_window(5):
        short = tiny_en.transcribe(row["path"]).text
    assert full.strip() == short.strip() == row["text"]
