"""Label breakdowns (clip keys and word spans) and temporal consistency equal brute-force computations;
padding frames never count."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from otoscope.features import FeaturesConfig, feature_stats, naive
from otoscope.features.labels import OTHER
from otoscope.features.run import hook_activations

from .conftest import random_sae

WORDS = ["alpha", "beta", "gamma", "beta", "delta"]


def _spans(manifest, path):
    """Made-up word spans: 0.3 s words with 0.1 s gaps, cycling through WORDS (speech clips only)."""
    lines, words = [], {}
    for r in manifest:
        if r["kind"] != "speech":
            continue
        spans, t, i = [], 0.05, 0
        while t + 0.3 < r["seconds"]:
            spans.append({"word": " " + WORDS[i % len(WORDS)], "start": round(t, 3), "end": round(t + 0.3, 3),
                          "probability": 0.9})
            t, i = t + 0.4, i + 1
        lines.append(json.dumps({"path": r["path"], "words": spans}))
        words[r["path"]] = spans
    path.write_text("\n".join(lines) + "\n")
    return words


def test_labels_selectivity_and_temporal_consistency_equal_brute_force(tiny_whisper, whisper_sae, manifest, tmp_path):
    rows = [dict(r) for r in manifest]
    words = _spans(rows, tmp_path / "spans.jsonl")
    config = FeaturesConfig(top_n=6, batch_size=4, labels=["kind"], spans=tmp_path / "spans.jsonl", progress=False)
    stats = feature_stats(tiny_whisper, whisper_sae, rows, config)
    z, clip, frame = naive.dense_codes(tiny_whisper, whisper_sae, rows)
    kinds = sorted({r["kind"] for r in rows}, key=lambda k: (-sum(r["kind"] == k for r in rows), k))
    kind = torch.tensor([kinds.index(rows[c]["kind"]) for c in clip.tolist()])
    vocab = sorted(Counter(w.strip() for spans in words.values() for w in (s["word"] for s in spans)).items(),
                   key=lambda item: (-item[1], item[0]))
    vocab = [w for w, _ in vocab]
    word, span = torch.full_like(clip, -1), torch.full_like(clip, -1)
    next_id = 0
    for c, r in enumerate(rows):
        for s in words.get(r["path"], []):
            a, b = math.floor(s["start"] * 50 + 1e-9), math.floor(s["end"] * 50 + 1e-9)
            sel = (clip == c) & (frame >= a) & (frame < max(b, a + 1))
            word[sel], span[sel] = vocab.index(s["word"].strip()), next_id
            next_id += 1
    assert stats.label_keys == ["kind", "word"] and (span >= 0).sum() > 100
    for key, classes, names in (("kind", kind, kinds), ("word", word, vocab)):
        ref = naive.selectivity(z, classes, len(names))
        for j in range(z.shape[1]):
            got = stats.label_stats[j][key]
            expected = {names[c]: min(float(ref[j, c]), 1000.0) for c in range(len(names)) if not math.isnan(ref[j, c])}
            assert got["selectivity"] == pytest.approx(expected, rel=1e-4, abs=1e-6), (key, j)
            if expected:
                best = max(expected.values())
                assert got["best_selectivity"] == pytest.approx(best, rel=1e-4)
                assert expected[got["best"]] == pytest.approx(best, rel=1e-4)
            tops = naive.top(z, clip, frame, config.top_n, latents=[j])[0]
            counts = Counter(names[int(classes[(clip == c) & (frame == f)][0])] for _, c, f in tops
                             if classes[(clip == c) & (frame == f)][0] >= 0)
            assert got["top_counts"] == dict(counts), (key, j)
    ref = naive.temporal_consistency(z, span)
    got = stats.columns["temporal_consistency"].double()
    assert torch.equal(torch.isnan(got), torch.isnan(ref))
    assert torch.allclose(got[~torch.isnan(ref)], ref[~torch.isnan(ref)], atol=1e-4)
    assert (ref[~torch.isnan(ref)] > 0.5).any() and (ref[~torch.isnan(ref)] < 0.5).any()  # informative spread
    data = stats.to_json()
    entry = data["latents"][int(torch.argmax(stats.columns["frequency"]))]["top"][0]
    assert set(entry) == {"clip", "clip_index", "frame", "seconds", "value", "labels"}
    assert entry["labels"]["kind"] == rows[entry["clip_index"]]["kind"]
    assert entry["seconds"] == pytest.approx(entry["frame"] / 50)


def test_rare_words_fold_into_other(tiny_whisper, whisper_sae, manifest, tmp_path):
    rows = [dict(r) for r in manifest[:2]]
    _spans(rows, tmp_path / "spans.jsonl")
    stats = feature_stats(tiny_whisper, whisper_sae, rows, FeaturesConfig(spans=tmp_path / "spans.jsonl", max_classes=2,
                                                                          progress=False))
    listed = {w for s in stats.label_stats for w in s["word"]["selectivity"]}
    assert listed <= {"beta", OTHER} and OTHER in listed  # the most frequent word, the rest as <other>


def test_padding_frames_never_count(tiny_whisper, manifest):
    hook = "encoder.blocks.1.hook_resid_post"
    rows = [dict(r) for r in manifest]
    x, mask = hook_activations(tiny_whisper, tiny_whisper.clips([r["path"] for r in rows]), hook)
    real, pad = x[mask], x[~mask]
    w = pad.mean(0) - real.mean(0)
    sae = random_sae(32, 8, hook, "tiny-random-whisper")
    with torch.no_grad():
        sae.W_enc[:, 0] = w
        sae.b_enc[0] = -float((real @ w).max()) - 1e-3
        sae.b_dec.zero_()
    assert (sae.encode(pad)[:, 0] > 0).float().mean() > 0.5  # it does fire on most padding frames
    stats = feature_stats(tiny_whisper, sae, rows, FeaturesConfig(batch_size=3, progress=False))
    assert stats.frames == int(mask.sum())
    assert float(stats.columns["frequency"][0]) == 0.0 and float(stats.columns["max"][0]) == 0.0
    assert stats.latent(0)["top"] == [] and stats.latent(0)["quantiles"] == []


def test_long_clip_windows_number_frames_from_the_clip_start(tiny_whisper, whisper_sae, manifest):
    import numpy as np

    from otoscope.audio.io import to_clip

    piece = to_clip(manifest[1]["path"], 16000).samples
    long = np.concatenate([piece] * 11)[: 16000 * 32]  # 32 s: a full 30 s window and 2 s more
    stats = feature_stats(tiny_whisper, whisper_sae, [long], FeaturesConfig(progress=False))
    geometry = tiny_whisper.geometry
    assert stats.clips[0]["frames"] == geometry.n_frames(16000 * 30) + geometry.n_frames(16000 * 2) == 1600
    assert stats.clips[0]["seconds"] == pytest.approx(32.0)
    assert int(stats.columns["top_frame"].max()) >= 1500  # frames of the second window follow the first


@pytest.mark.parametrize("raw, label", [(" door.", "door"), ("Hello,", "Hello"), (" don't", "don't"),
                                        ('"well-known"', "well-known"), (" ...", ""), (" —", ""), ("(London)!", "London")])
def test_word_label_strips_surrounding_punctuation(raw, label):
    from otoscope.features.labels import word_label

    assert word_label(raw) == label


def test_word_spans_are_labelled_without_punctuation(tmp_path):
    from otoscope.audio.frames import whisper_geometry
    from otoscope.features.labels import WORD, build_labels

    spans = [{"word": " Open", "start": 0.0, "end": 0.3}, {"word": " the", "start": 0.3, "end": 0.5},
             {"word": " door.", "start": 0.5, "end": 0.9}, {"word": " ...", "start": 0.9, "end": 1.0},
             {"word": " door!", "start": 1.0, "end": 1.2}]
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps({"path": "a.flac", "words": spans}) + "\n")
    table = build_labels(["a.flac"], [{}], [WORD], path, whisper_geometry(), 10)
    assert table.spans[0].words == ["Open", "the", "door", "door"]  # "..." is no word; "door." and "door!" are one class
    assert table.classes[WORD][0] == "door"
