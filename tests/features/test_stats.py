"""The one-pass statistics equal a plain full-matrix computation over every real frame."""

from __future__ import annotations

import math

import pytest
import torch

from otoscope.features import FeaturesConfig, feature_stats, naive
from otoscope.features.select import pack_key

from .conftest import random_sae


def check_against_naive(stats, z, clip, frame, config: FeaturesConfig) -> None:
    """Every column of ``stats`` equals the brute-force figure from the dense matrix ``z``."""
    c = stats.columns
    ref = naive.basic(z, c["edges"])
    assert stats.frames == z.shape[0]
    assert torch.allclose(c["frequency"].double(), ref["frequency"], atol=1e-7)
    assert torch.allclose(c["mean"].double(), ref["mean"], rtol=1e-4, atol=1e-6)
    assert torch.allclose(c["max"].double(), ref["max"], rtol=1e-4, atol=1e-6)
    assert torch.equal(c["histogram"], ref["histogram"])
    for j, expected in enumerate(naive.top(z, clip, frame, config.top_n)):
        got = [(v, k, f) for v, k, f in zip(c["top_value"][j].tolist(), c["top_clip"][j].tolist(),
                                            c["top_frame"][j].tolist()) if k >= 0]
        assert [(k, f) for _, k, f in got] == [(k, f) for _, k, f in expected], j
        assert [v for v, _, _ in got] == pytest.approx([v for v, _, _ in expected], rel=1e-4, abs=1e-6)
    groups = naive.quantile_examples(z, clip, frame, c["edges"], config.quantiles, config.per_quantile, config.seed)
    for j, expected in enumerate(groups):
        lo, hi = c["quantile_lo"][j].tolist(), c["quantile_hi"][j].tolist()
        assert {q for q in range(config.quantiles) if not math.isnan(lo[q])} == set(expected), j
        for q, (e_lo, e_hi, keys) in expected.items():
            assert lo[q] == pytest.approx(e_lo, rel=1e-5) and hi[q] == pytest.approx(e_hi, rel=1e-4)
            got = {int(pack_key(torch.tensor(a), torch.tensor(b))) for a, b in
                   zip(c["quantile_clip"][j, q].tolist(), c["quantile_frame"][j, q].tolist()) if a >= 0}
            assert got == keys, (j, q)
    if config.coactivation:
        jac = naive.jaccard(z)
        for j in range(z.shape[1]):
            idx = [i for i in c["coactivation_index"][j].tolist() if i >= 0]
            row = jac[j].tolist()
            expected = [i for i in sorted(range(len(row)), key=lambda i: (-row[i], i)) if row[i] > 0]
            expected = expected[: config.coactivation_top]
            assert idx == expected, j
            assert c["coactivation_score"][j, : len(idx)].tolist() == pytest.approx(jac[j, idx].tolist(), abs=1e-6)


def test_streaming_equals_full_matrix_on_tiny_whisper(tiny_whisper, whisper_sae, manifest):
    config = FeaturesConfig(top_n=7, batch_size=2, quantiles=4, per_quantile=3, progress=False)
    stats = feature_stats(tiny_whisper, whisper_sae, [dict(r) for r in manifest], config)
    z, clip, frame = naive.dense_codes(tiny_whisper, whisper_sae, [dict(r) for r in manifest])
    frequency = stats.columns["frequency"]
    assert (frequency == 0).any() and ((frequency > 0) & (frequency < 0.5)).any() and (frequency > 0.9).any()
    check_against_naive(stats, z, clip, frame, config)


def test_topk_sae_sparse_path_equals_full_matrix(tiny_whisper, manifest):
    sae = random_sae(32, 40, "encoder.blocks.0.hook_resid_post", "tiny-random-whisper", architecture="topk", k=3)
    config = FeaturesConfig(top_n=5, batch_size=3, progress=False)
    rows = [dict(r) for r in manifest[:4]]
    stats = feature_stats(tiny_whisper, sae, rows, config)
    check_against_naive(stats, *naive.dense_codes(tiny_whisper, sae, rows), config)


def test_bundled_tiny_en_on_fixture_clips(tiny_en, manifest):
    sae = random_sae(384, 256, "encoder.blocks.0.hook_resid_post", "whisper-tiny.en", architecture="topk", k=8)
    rows = [dict(r) for r in manifest[:2]]
    config = FeaturesConfig(top_n=10, batch_size=2, progress=False)
    stats = feature_stats(tiny_en, sae, rows, config)
    check_against_naive(stats, *naive.dense_codes(tiny_en, sae, rows), config)


def test_ctc_model_encoder_hook(manifest):
    import otoscope

    model = otoscope.load("tiny-random-wav2vec2-stable")  # with an attention mask: batch padding changes nothing
    hook = "encoder.blocks.0.hook_resid_post"
    d = model.config.hidden_size
    sae = random_sae(d, 24, hook, "tiny-random-wav2vec2")
    rows = [dict(r) for r in manifest[:3]]
    config = FeaturesConfig(top_n=4, batch_size=2, progress=False)
    stats = feature_stats(model, sae, rows, config)
    check_against_naive(stats, *naive.dense_codes(model, sae, rows), config)


def test_json_entries_equal_the_per_entry_computation(tiny_whisper, manifest):
    """features.json's tables are built in bulk (seconds for the whole table, GC paused); each entry must be
    what the plain per-entry formula gives, at Whisper's 50 frames/s and at an awkward rate."""
    import gc

    sae = random_sae(32, 40, "encoder.blocks.0.hook_resid_post", "tiny-random-whisper", architecture="topk", k=3)
    stats = feature_stats(tiny_whisper, sae, [dict(r) for r in manifest[:3]], FeaturesConfig(top_n=6, progress=False))
    for fps in (50.0, 48.7):  # 48.7: seconds with many decimals, so a wrong rounding shows
        stats.frames_per_second = fps
        data = stats.to_json()
        assert gc.isenabled()
        c = stats.columns
        checked = 0
        for latent in data["latents"]:
            i = latent["index"]
            groups = [(latent["top"], c["top_frame"][i])] + [
                (g["examples"], None) for g in latent["quantiles"]]
            for entries, frames in groups:
                for j, e in enumerate(entries):
                    assert e["seconds"] == round(e["frame"] / fps, 4)
                    if frames is not None:
                        assert e["frame"] == int(frames[j]) and e["value"] == float(c["top_value"][i][j])
                    checked += 1
        assert checked > 50
