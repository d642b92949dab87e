import numpy as np
import torch

from otoscope.geometry.locality import attention_locality, band_mask


def test_band_mask():
    m = band_mask(6, 1)
    assert m.sum().item() == 6 + 2 * 5 and m[0, 1] and not m[0, 2]
    assert band_mask(4, None).all()


def test_band_mask_equals_pre_softmax_masking(tiny_whisper, speech):
    """otoscope's band mask through the pattern hook equals adding -inf outside the band before the softmax,
    computed by hand from the layer's own queries and keys; and it changes the model's output."""
    name, layer = "encoder.blocks.0.attn.hook_pattern", 0
    inputs = tiny_whisper.prepare(speech[0]["path"])
    band = band_mask(1500, 2)
    with tiny_whisper.attention_mask(name, band):
        masked_logits, cache = tiny_whisper.run_with_cache(inputs, names_filter=[name, "encoder.blocks.0.hook_resid_pre"])
    attn = tiny_whisper.model.model.encoder.layers[layer]
    with torch.no_grad():
        x = attn.self_attn_layer_norm(cache["encoder.blocks.0.hook_resid_pre"])
        heads = attn.self_attn.num_heads
        q = attn.self_attn.q_proj(x).unflatten(-1, (heads, -1)).transpose(1, 2)  # [batch, heads, frames, d_head]
        k = attn.self_attn.k_proj(x).unflatten(-1, (heads, -1)).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) * attn.self_attn.scaling
        expected = torch.softmax(scores.masked_fill(~band, -float("inf")), -1)
    torch.testing.assert_close(cache[name], expected, atol=1e-5, rtol=1e-4)
    assert (cache[name] * ~band).abs().max() == 0  # nothing outside the band
    assert (masked_logits - tiny_whisper(inputs)).abs().max() > 1e-3


def test_locality_on_real_speech(tiny_en, speech):
    result = attention_locality(tiny_en, speech[1]["path"], bands=(1, 32))
    table = result.table
    assert list(table["k"].iloc[:2]) == [1, 32] and np.isnan(table["k"].iloc[2])
    assert result.reference == tiny_en.transcribe(speech[1]["path"]).text
    wer = dict(zip(table["k"].iloc[:2], table["wer"].iloc[:2]))
    assert wer[1] > wer[32]  # ±1 frame destroys the transcript, ±32 frames (0.64 s) keeps it
    assert wer[32] <= 0.2
    # a known unrestricted transcript skips that row's run and gives the same table
    again = attention_locality(tiny_en, speech[1]["path"], bands=(1, 32), reference=result.reference)
    assert again.table.drop(columns="k").equals(table.drop(columns="k"))
    assert list(again.table["k"].iloc[:2]) == [1, 32]
