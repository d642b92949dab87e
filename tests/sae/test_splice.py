"""Splicing an SAE into a model: hook points for its latents, exact pass-through, steering, real frames only."""

import pytest
import torch

import otoscope
from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.splice import splice

HOOK = "encoder.blocks.0.hook_resid_post"


def identity_sae(d: int, hook: str = HOOK) -> SparseAutoencoder:
    """A ReLU SAE that reconstructs exactly: z = relu([x, −x]), x̂ = z₊ − z₋."""
    sae = SparseAutoencoder(SAEConfig(d_in=d, d_sae=2 * d, architecture="relu", hook_name=hook))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
    return sae


@pytest.fixture(scope="module")
def tiny():
    return otoscope.load("tiny-random-whisper")


@pytest.fixture(scope="module")
def clip(speech):
    return speech[0]["path"]


def test_an_exact_sae_leaves_the_model_unchanged_and_exposes_its_latents(tiny, clip):
    clean, clean_cache = tiny.run_with_cache(clip, text=" Please", names_filter=HOOK)
    with splice(tiny, identity_sae(32)) as spliced:
        assert spliced.names() == [f"{HOOK}.hook_sae_input", f"{HOOK}.hook_sae_acts", f"{HOOK}.hook_sae_recons"]
        names = list(tiny.points)
        assert names[names.index(HOOK) + 1] == f"{HOOK}.hook_sae_input"  # forward order
        logits, cache = tiny.run_with_cache(clip, text=" Please", names_filter="*.hook_sae_*")
    assert torch.allclose(logits, clean, atol=1e-5)
    acts = cache[f"{HOOK}.hook_sae_acts"]
    assert acts.shape == (1, 1500, 64) and (acts >= 0).all()
    assert torch.allclose(cache[f"{HOOK}.hook_sae_input"], clean_cache[HOOK])
    assert cache.real(f"{HOOK}.hook_sae_acts", 0).shape[0] == clean_cache.n_frames(0)
    assert f"{HOOK}.hook_sae_acts" not in tiny.points  # removed on exit


def test_error_term_passes_the_input_through_until_latents_are_edited(tiny, clip):
    clean = tiny(clip, text=" Please")
    random_sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=128, k=4, hook_name=HOOK), seed=0)
    with splice(tiny, random_sae, use_error_term=True):
        assert torch.allclose(tiny(clip, text=" Please"), clean, atol=1e-4)
        steered = tiny.run_with_hooks(clip, text=" Please",
                                      fwd_hooks=[(f"{HOOK}.hook_sae_acts", lambda z, hook: z * 3.0)])
    assert not torch.allclose(steered, clean, atol=1e-3)
    with splice(tiny, random_sae):
        assert not torch.allclose(tiny(clip, text=" Please"), clean, atol=1e-3)  # the reconstruction error shows


def test_mask_replaces_real_frames_only(tiny, clip):
    random_sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=128, k=4, hook_name=HOOK), seed=0)
    _, clean = tiny.run_with_cache(clip, names_filter=HOOK)
    inputs = tiny.prepare(clip)
    with splice(tiny, random_sae) as spliced:
        spliced.mask = inputs.frame_mask
        _, after = tiny.run_with_cache(inputs, names_filter=HOOK)  # installed inside: sees the SAE's output
    n = clean.n_frames(0)
    assert torch.equal(after[HOOK][0, n:], clean[HOOK][0, n:])
    assert not torch.allclose(after[HOOK][0, :n], clean[HOOK][0, :n])


def test_per_head_hooks_are_flattened(tiny, clip):
    hook = "encoder.blocks.1.attn.hook_z"
    clean = tiny(clip, text=" Please")
    with splice(tiny, identity_sae(32, hook)):
        _, cache = tiny.run_with_cache(clip, text=" Please", names_filter=f"{hook}.hook_sae_acts")
        assert torch.allclose(tiny(clip, text=" Please"), clean, atol=1e-5)
    assert cache[f"{hook}.hook_sae_acts"].shape == (1, 1500, 64)


def test_wav2vec2_family(clip):
    model = otoscope.load("tiny-random-hubert")
    clean = model(clip)
    with splice(model, identity_sae(32)):
        _, cache = model.run_with_cache(clip, names_filter=f"{HOOK}.hook_sae_acts")
        assert torch.allclose(model(clip), clean, atol=1e-5)
    assert cache[f"{HOOK}.hook_sae_acts"].shape[-1] == 64


def test_bad_splices_are_explained(tiny, clip):
    with pytest.raises(OtoscopeError, match="width 32 but the SAE reads d_in=16"):
        with splice(tiny, identity_sae(16)):
            tiny(clip, text=" Please")
    with pytest.raises(OtoscopeError, match="unknown hook point"):
        with splice(tiny, identity_sae(32, "encoder.blocks.9.hook_resid_post")):
            pass
    with pytest.raises(OtoscopeError, match="already spliced"):
        with splice(tiny, identity_sae(32)), splice(tiny, identity_sae(32)):
            pass
    assert not any("hook_sae" in name for name in tiny.points)


def test_topk_sparse_path_matches_the_dense_one(tiny, clip):
    # Nobody reading hook_sae_acts → the sparse path (no [batch, pos, d_sae] tensor); reading it → dense.
    topk = SparseAutoencoder(SAEConfig(d_in=32, d_sae=128, k=4, hook_name=HOOK), seed=3)
    with splice(tiny, topk):
        sparse = tiny(clip, text=" Please")
        dense, cache = tiny.run_with_cache(clip, text=" Please", names_filter=f"{HOOK}.hook_sae_acts")
    assert torch.allclose(sparse, dense, atol=1e-5)
    assert ((cache[f"{HOOK}.hook_sae_acts"] > 0).sum(-1) <= 4).all()
