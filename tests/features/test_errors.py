"""Bad input fails with one line saying how to fix it."""

from __future__ import annotations

import pytest

from otoscope.errors import OtoscopeError
from otoscope.features import FeaturesConfig, feature_stats

from .conftest import random_sae

QUIET = FeaturesConfig(progress=False)


def test_sae_width_that_does_not_match_the_hook(tiny_whisper, manifest):
    sae = random_sae(48, 16, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper")
    with pytest.raises(OtoscopeError, match="width 32 but the SAE reads d_in=48"):
        feature_stats(tiny_whisper, sae, [manifest[0]["path"]], QUIET)


def test_sae_hook_the_model_does_not_have(tiny_whisper, manifest):
    sae = random_sae(32, 16, "encoder.blocks.9.hook_resid_post", "whisper-base")
    with pytest.raises(OtoscopeError, match="no hook point encoder.blocks.9.hook_resid_post.*whisper-base"):
        feature_stats(tiny_whisper, sae, [manifest[0]["path"]], QUIET)


def test_decoder_hook_is_refused(tiny_whisper, manifest):
    sae = random_sae(32, 16, "decoder.blocks.0.hook_resid_post", "tiny-random-whisper")
    with pytest.raises(OtoscopeError, match="decoder hook"):
        feature_stats(tiny_whisper, sae, [manifest[0]["path"]], QUIET)


def test_empty_corpus(tiny_whisper, whisper_sae, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(OtoscopeError, match="corpus is empty"):
        feature_stats(tiny_whisper, whisper_sae, tmp_path / "empty.jsonl", QUIET)
    (tmp_path / "folder").mkdir()
    with pytest.raises(OtoscopeError, match="no audio files"):
        feature_stats(tiny_whisper, whisper_sae, tmp_path / "folder", QUIET)


def test_label_key_that_no_clip_has(tiny_whisper, whisper_sae, manifest):
    with pytest.raises(OtoscopeError, match="no clip has the label 'speaker'; the clips have .*kind"):
        feature_stats(tiny_whisper, whisper_sae, [dict(r) for r in manifest[:2]],
                      FeaturesConfig(labels=["speaker"], progress=False))


def test_spans_of_other_files(tiny_whisper, whisper_sae, manifest, tmp_path):
    (tmp_path / "spans.jsonl").write_text('{"path": "elsewhere.wav", "words": []}\n')
    with pytest.raises(OtoscopeError, match="is a clip of the corpus"):
        feature_stats(tiny_whisper, whisper_sae, [dict(r) for r in manifest[:2]],
                      FeaturesConfig(spans=tmp_path / "spans.jsonl", progress=False))


@pytest.mark.parametrize("field, value", [("top_n", 0), ("hist_bins", 0), ("hist_min", 9.0), ("spans", "/nope.jsonl")])
def test_config_is_validated(field, value):
    with pytest.raises(OtoscopeError):
        FeaturesConfig(**{field: value})
