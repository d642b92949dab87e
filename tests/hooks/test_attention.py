import torch
from torch import nn

from otoscope.geometry.locality import band_mask
from otoscope.hooks.attention import key_spans


def _blockwise(q, k, v, mask, spans):
    return torch.cat([nn.functional.scaled_dot_product_attention(q[:, :, a:b], k[:, :, c:d], v[:, :, c:d],
                                                                  attn_mask=mask[..., a:b, c:d]) for a, b, c, d in spans], 2)


def test_local_masks_attend_block_by_block_exactly():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 300, 16) for _ in range(3))
    window = torch.zeros(300, 300, dtype=torch.bool)
    window[:, 100:140] = True  # every query sees one stretch of keys
    per_row = torch.stack([band_mask(300, 4), band_mask(300, 20)])[:, None]  # a different band per batch row
    for mask in (band_mask(300, 1)[None, None], band_mask(300, 30)[None, None], window[None, None], per_row):
        spans = key_spans(mask, block=64)
        assert spans is not None and spans[0][0] == 0 and spans[-1][1] == 300
        full = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(_blockwise(q, k, v, mask, spans), full, atol=1e-5, rtol=1e-5)
    k0, k1 = key_spans(band_mask(300, 30)[None, None], block=64)[1][2:]
    assert (k0, k1) == (64 - 30, 128 + 30)


def test_masks_that_would_not_save_work_keep_the_plain_kernel():
    assert key_spans(band_mask(300, None)[None, None]) is None  # unrestricted
    scattered = torch.zeros(300, 300, dtype=torch.bool)
    scattered[:, ::50] = True  # every block reaches from the first to the last key
    assert key_spans(scattered[None, None]) is None
    empty = band_mask(300, 2).clone()
    empty[:64] = False  # a block that may attend nowhere: NaN rows stay the plain kernel's business
    assert key_spans(empty[None, None], block=64) is None
