import numpy as np
import torch

from otoscope.geometry.locality import attention_locality, band_mask


def test_band_mask():
    m = band_mask(6, 1)
    assert m.sum().item() == 6 + 2 * 5 and m[0, 1] and not m[0, 2]
    assert band_mask(4, None).all()


def test_band_restriction_equals_pre_softmax_masking(tiny_whisper):
    # restricting via the pattern hook equals adding -inf outside the band before the softmax
    scores = torch.randn(1, 2, 7, 7)
    mask = band_mask(7, 2)
    kept = torch.softmax(scores, -1) * mask
    kept = kept / kept.sum(-1, keepdim=True)
    torch.testing.assert_close(kept, torch.softmax(scores.masked_fill(~mask, -float("inf")), -1))


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
