"""Latent effects: the vocabulary effect of a decoder direction (checked against a plain dot product per token),
the ablation that zeroes one latent and nothing else, and a decoder-hook dashboard."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from otoscope.features.dashboard import DashboardConfig, build_dashboard
from otoscope.features.dashboard.effects import ablate, transcripts, unembedding, vocab_effects, zero_latent
from otoscope.sae.format import load_sae
from tests.features.conftest import SMALL
from tests.features.synthetic import DEAD, HOOK


def test_vocab_effect_is_the_decoder_direction_through_the_unembedding(features_dir, tiny_whisper):
    sae = load_sae(features_dir.parent / "sae")
    W_U = unembedding(tiny_whisper).numpy()
    W_dec = sae.W_dec.detach().numpy()
    effects = vocab_effects(tiny_whisper, sae, [0, 5], n=4)
    for latent in (0, 5):
        plain = np.array([sum(float(W_dec[latent, d]) * float(W_U[t, d]) for d in range(W_dec.shape[1]))
                          for t in range(W_U.shape[0])])
        order = np.argsort(-plain, kind="stable")
        got = effects[latent]
        assert [v for _, v in got.top] == pytest.approx(plain[order[:4]].tolist(), rel=1e-4, abs=1e-5)
        assert [v for _, v in got.bottom] == pytest.approx(plain[order[::-1][:4]].tolist(), rel=1e-4, abs=1e-5)
        assert [t for t, _ in got.top] == [tiny_whisper.tokenizer.decode([int(t)]) for t in order[:4]]


def test_ablating_a_latent_changes_only_that_latent(speech, features_dir, tiny_whisper):
    sae = load_sae(features_dir.parent / "sae")
    clips = tiny_whisper.clips([speech[0]["path"]])
    clean = transcripts(tiny_whisper, clips)
    dead = ablate(tiny_whisper, sae, HOOK, DEAD[0], clips, clean)  # never fires: zeroing it changes nothing
    assert dead[0].clean == dead[0].ablated and not dead[0].changed and dead[0].wer == 0
    # what the model receives is x − z_i · W_dec[i]: only that latent's contribution is gone
    name = f"{HOOK}.hook_sae_acts"
    with torch.no_grad():
        _, plain = tiny_whisper.run_with_cache(clips, names_filter=HOOK)
        with tiny_whisper.add_sae(sae, HOOK):
            _, cache = tiny_whisper.run_with_cache(clips, names_filter=name)
        x, z = plain[HOOK][0], cache[name][0]  # [frames, d_model], [frames, d_sae]
        latent = int(z.sum(0).argmax())
        with tiny_whisper.add_sae(sae, HOOK, use_error_term=True), tiny_whisper.hooks([(name, zero_latent(latent))]):
            _, edited = tiny_whisper.run_with_cache(clips, names_filter=HOOK)  # installed inside: sees the SAE's output
    expected = x - z[:, latent:latent + 1] * sae.W_dec[latent]
    assert z[:, latent].abs().max() > 0.1
    assert torch.allclose(edited[HOOK][0], expected, atol=1e-4)


def test_decoder_hook_dashboard_lists_examples_and_vocabulary(tmp_path, features_dir, tiny_whisper):
    folder = tmp_path / "feat"
    shutil.copytree(features_dir, folder)
    doc = json.loads((folder / "features.json").read_text())
    doc["hook"] = "decoder.blocks.0.hook_resid_post"
    (folder / "features.json").write_text(json.dumps(doc))
    result = build_dashboard(folder, tmp_path / "dash", DashboardConfig(**{**SMALL, "max_latents": 3}),
                             model=tiny_whisper, sae=load_sae(features_dir.parent / "sae"))
    page = (result.index.parent / "latents" / f"{result.latents[0]}.html").read_text()
    assert "promoted" in page and "suppressed" in page and "W_U" in page
    assert result.clips == [] and result.snippets == 0 and "<audio" not in page
    assert "decoder hook" in result.index.read_text()


def test_ablating_the_residuals_main_direction_breaks_the_real_transcript(tiny_en, speech):
    """whisper-tiny.en: a 2-latent SAE reading ±(mean residual direction) at block 2. Removing the latent that
    carries that direction wrecks the transcript; removing its mirror (which never fires) changes nothing."""
    from otoscope.sae.config import SAEConfig
    from otoscope.sae.model import SparseAutoencoder

    hook = "encoder.blocks.2.hook_resid_post"
    clips = tiny_en.clips([speech[1]["path"]])
    _, cache = tiny_en.run_with_cache(clips, names_filter=hook)
    u = cache.real(hook, 0).mean(0)
    u = u / u.norm()
    sae = SparseAutoencoder(SAEConfig(d_in=u.numel(), d_sae=2, architecture="relu", hook_name=hook))
    with torch.no_grad():
        sae.W_enc.copy_(torch.stack([u, -u], 1))
        sae.W_dec.copy_(torch.stack([u, -u], 0))
        sae.b_dec.zero_()
    clean = transcripts(tiny_en, clips)
    assert clean == ["My name is John and I live in London."]
    carrying, mirror = (ablate(tiny_en, sae, hook, i, clips, clean)[0] for i in (0, 1))
    assert carrying.changed and carrying.wer > 0.5
    assert not mirror.changed
