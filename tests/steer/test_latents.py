"""Editing SAE latents on the real whisper-tiny.en: empty edit = identity, edits change only what they should."""

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder
from otoscope.steer import LatentEdit, edit_latents
from otoscope.steer.latents import apply_edits

HOOK = "encoder.blocks.2.hook_resid_post"


@pytest.fixture(scope="module")
def sae():
    # random, so its reconstruction is poor: only the error term makes the splice exact
    return SparseAutoencoder(SAEConfig(d_in=384, d_sae=768, architecture="relu", hook_name=HOOK), seed=0)


def test_no_edit_is_the_identity_on_a_real_model(tiny_en, speech, sae):
    clean = tiny_en.run_with_hooks(speech[0]["path"], text=" Please open the door.")
    with edit_latents(tiny_en, sae, []):
        spliced = tiny_en.run_with_hooks(speech[0]["path"], text=" Please open the door.")
    assert (clean - spliced).abs().max() < 1e-3
    # the comparison can fail: without the error term the random SAE wrecks the logits
    with tiny_en.add_sae(sae):
        broken = tiny_en.run_with_hooks(speech[0]["path"], text=" Please open the door.")
    assert (clean - broken).abs().max() > 1.0


def test_zeroing_latents_on_chosen_frames_changes_the_hook_by_their_decoder_rows(tiny_en, speech, sae):
    _, clean = tiny_en.run_with_cache(speech[0]["path"], names_filter=HOOK)
    with edit_latents(tiny_en, sae, [LatentEdit(5, "zero"), LatentEdit(9, "scale", 3.0)], frames=slice(0, 50)):
        _, cache = tiny_en.run_with_cache(speech[0]["path"], names_filter=[HOOK, f"{HOOK}.hook_sae_input"])
    x = clean[HOOK][0]
    z = sae.encode(x)
    expected = -z[:, 5:6] * sae.W_dec[5] + 2.0 * z[:, 9:10] * sae.W_dec[9]  # [frames, d_in]
    change = cache[HOOK][0] - x
    assert torch.allclose(change[:50], expected[:50].detach(), atol=1e-4)
    assert change[50:].abs().max() < 1e-4
    assert expected[:50].abs().max() > 1e-2  # the edit was not a no-op


def test_apply_edits_brute_force():
    z = torch.rand(2, 4, 6)
    where = torch.tensor([True, False, True, False])
    out = apply_edits(z, [LatentEdit(1, "clamp", 7.0), LatentEdit(2, "scale", 0.5)], where)
    for b in range(2):
        for p in range(4):
            for i in range(6):
                want = z[b, p, i]
                if where[p] and i == 1:
                    want = torch.tensor(7.0)
                elif where[p] and i == 2:
                    want = z[b, p, i] * 0.5
                assert out[b, p, i] == pytest.approx(float(want))


def test_bad_edits(tiny_en, sae):
    with pytest.raises(OtoscopeError, match="out of range"):
        with edit_latents(tiny_en, sae, [LatentEdit(10_000)]):
            pass
    with pytest.raises(OtoscopeError, match="op"):
        LatentEdit(1, "double")
    with pytest.raises(OtoscopeError, match="finite"):
        LatentEdit(1, "clamp", float("inf"))
