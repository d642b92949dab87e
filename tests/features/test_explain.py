"""Label-based explanations: which label each latent gets, and its held-out precision/recall."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from otoscope.audio.frames import whisper_geometry
from otoscope.cli.main import main
from otoscope.features import FeatureStats
from otoscope.features.explain import (ExplainConfig, Explanation, detection_scores, explain_features, latent_firing,
                                       save_explanations, score_explanations)
from otoscope.features.labels import build_labels
from otoscope.sae.format import save_sae

from .conftest import random_sae

FPS = 50.0
# three clips of 50 frames; words in frames (end exclusive)
CLIPS = [
    {"clip": "a.flac", "frames": 50, "seconds": 1.0, "labels": {"kind": "speech"},
     "words": [{"word": "My", "start": 0, "end": 10}, {"word": "London", "start": 20, "end": 35}]},
    {"clip": "b.flac", "frames": 50, "seconds": 1.0, "labels": {"kind": "speech"},
     "words": [{"word": "Paris", "start": 5, "end": 20}, {"word": "London", "start": 30, "end": 45}]},
    {"clip": "c.flac", "frames": 50, "seconds": 1.0, "labels": {"kind": "nonspeech"}},
]
TOP = {  # latent → top (clip, frame) pairs, strongest first
    0: [(0, 22), (0, 30), (1, 33), (1, 40)],   # only on "London"
    1: [(2, 3), (2, 10), (2, 30), (2, 44)],    # only on non-speech
    2: [(0, 25), (1, 8), (0, 28), (1, 12)],    # London and Paris alike, not selective
    3: [],                                     # never fires
}
LABEL_STATS = [
    {"kind": {"top_counts": {"speech": 4}, "selectivity": {"speech": 1000.0}, "best": "speech", "best_selectivity": 1000.0},
     "word": {"top_counts": {"London": 4}, "selectivity": {"London": 40.0, "Paris": 0.0}, "best": "London",
              "best_selectivity": 40.0}},
    {"kind": {"top_counts": {"nonspeech": 4}, "selectivity": {"nonspeech": 1000.0}, "best": "nonspeech",
              "best_selectivity": 1000.0},
     "word": {"top_counts": {}, "selectivity": {}, "best": None, "best_selectivity": None}},
    {"kind": {"top_counts": {"speech": 4}, "selectivity": {"speech": 1.3}, "best": "speech", "best_selectivity": 1.3},
     "word": {"top_counts": {"London": 2, "Paris": 2}, "selectivity": {"London": 1.4, "Paris": 1.2}, "best": "London",
              "best_selectivity": 1.4}},
    {"kind": {"top_counts": {}, "selectivity": {}, "best": None, "best_selectivity": None},
     "word": {"top_counts": {}, "selectivity": {}, "best": None, "best_selectivity": None}},
]


def synthetic_stats() -> FeatureStats:
    """A four-latent features result over :data:`CLIPS` with the contract's every column."""
    d, n = len(TOP), 4
    top_clip = torch.full((d, n), -1, dtype=torch.int64)
    top_frame = torch.full((d, n), -1, dtype=torch.int64)
    top_value = torch.zeros(d, n)
    for i, pairs in TOP.items():
        for j, (c, f) in enumerate(pairs):
            top_clip[i, j], top_frame[i, j], top_value[i, j] = c, f, 4.0 - j
    columns = {
        "frequency": torch.tensor([0.2, 0.3, 0.4, 0.0]), "mean": torch.tensor([0.1, 0.2, 0.3, 0.0]),
        "max": top_value[:, 0].clone(), "histogram": torch.zeros(d, 4, dtype=torch.int64),
        "edges": torch.linspace(-2, 2, 5), "top_value": top_value, "top_clip": top_clip, "top_frame": top_frame,
        "quantile_lo": torch.full((d, 2), float("nan")), "quantile_hi": torch.full((d, 2), float("nan")),
        "quantile_value": torch.zeros(d, 2, 1), "quantile_clip": torch.full((d, 2, 1), -1, dtype=torch.int64),
        "quantile_frame": torch.full((d, 2, 1), -1, dtype=torch.int64),
        "coactivation_index": torch.full((d, 1), -1, dtype=torch.int64), "coactivation_score": torch.zeros(d, 1),
        "temporal_consistency": torch.full((d,), float("nan")),
    }
    return FeatureStats("sae", "encoder.blocks.1.hook_resid_post", "tiny-random-whisper", FPS,
                        json.loads(json.dumps(CLIPS)), ["kind", "word"], columns, LABEL_STATS, [None] * d)


def test_each_latent_gets_its_most_specific_selective_label():
    by_index = {e.index: e for e in explain_features(synthetic_stats())}
    assert set(by_index) == {0, 1}  # 2 is not selective, 3 never fired
    assert by_index[0].text == "fires on the word 'London'" and (by_index[0].key, by_index[0].value) == ("word", "London")
    # London fills 30 of 150 frames, speech 100: the word is the more specific label
    assert by_index[0].share == 1.0 and by_index[0].lift == pytest.approx(150 / 30)
    assert by_index[1].text == "fires on kind 'nonspeech'" and by_index[1].lift == pytest.approx(3.0)
    assert by_index[0].precision is None and by_index[0].source == "labels"


def test_thresholds_decide_what_counts_as_selective():
    assert {e.index for e in explain_features(synthetic_stats(), ExplainConfig(min_selectivity=1.1))} == {0, 1, 2}
    assert explain_features(synthetic_stats(), ExplainConfig(min_top=5)) == []
    with pytest.raises(ValueError, match="min_share"):
        ExplainConfig(min_share=0.0)


def test_a_custom_explainer_sees_the_record_and_replaces_the_text():
    seen = []

    def caption(record):
        seen.append(record)
        return "barking dogs" if record["index"] == 1 else None

    out = {e.index: e for e in explain_features(synthetic_stats(), explainer=caption)}
    assert [r["index"] for r in seen] == [0, 1, 2]  # every latent that fired, none that did not
    assert seen[0]["explanation"]["text"] == "fires on the word 'London'" and seen[2]["explanation"] is None
    assert seen[0]["top"][0]["labels"] == {"kind": "speech", "word": "London"}
    assert out[1] == Explanation(1, "barking dogs", None, None, source="custom")
    assert out[0].key == "word"  # None from the callable keeps the label rule


def _spans_file(tmp_path, words_by_clip):
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps({"path": clip, "words": words}) + "\n" for clip, words in words_by_clip.items()))
    return path


def test_a_latent_firing_exactly_on_one_word_scores_precision_and_recall_one(tmp_path):
    geometry = whisper_geometry()
    # held-out spans in seconds: "London" covers frames 10-24 of clip 0 and 30-39 of clip 1
    spans = _spans_file(tmp_path, {
        "x.flac": [{"word": " Hello", "start": 0.0, "end": 0.2, "probability": 1.0},
                   {"word": " London", "start": 0.2, "end": 0.5, "probability": 1.0}],
        "y.flac": [{"word": " London", "start": 0.6, "end": 0.8, "probability": 1.0}]})
    table = build_labels(["x.flac", "y.flac"], [{}, {}], [], spans, geometry, max_classes=100)
    frames = torch.arange(60)
    london = [(frames >= 10) & (frames < 25), (frames >= 30) & (frames < 40)]
    half = [london[0] & (frames < 18), london[1]]
    firing = [(torch.full((60,), c), frames, torch.stack([london[c], half[c], frames < 60], 1)) for c in range(2)]
    explained = explain_features(synthetic_stats())[0]
    rules = [explained, Explanation(1, "", "word", "London"), Explanation(2, "", "word", "Hello")]
    scores = detection_scores(firing, table, rules, [0, 1, 2])
    assert scores[0] == (1.0, 1.0)
    assert scores[1] == (pytest.approx(18 / 25), 1.0)  # fires on 8 + 10 of the 25 London frames
    assert scores[2] == (1.0, pytest.approx(10 / 120))  # Hello: 10 frames, latent fires on all 120


def test_score_explanations_counts_what_a_plain_forward_gives(tmp_path, tiny_whisper, manifest):
    sae = random_sae(32, 16, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper", seed=3)
    clips = manifest[:2] + manifest[-1:]
    rules = [Explanation(i, "", "kind", "nonspeech") for i in range(16)] + [Explanation(5, "custom text", None, None,
                                                                                         source="custom")]
    scored = score_explanations(tiny_whisper, sae, clips, rules, batch_size=2)
    assert scored[-1] == rules[-1]
    # brute force: one clip at a time, a plain cached forward, the SAE on the real frames
    fires, nonspeech = [], []
    for row in clips:
        _, cache = tiny_whisper.run_with_cache(row["path"], names_filter=sae.cfg.hook_name)
        acts = sae.encode(cache.real(sae.cfg.hook_name, 0))
        fires.append(acts > 0)
        nonspeech.append(torch.full((len(acts),), row["kind"] == "nonspeech"))
    fires, nonspeech = torch.cat(fires), torch.cat(nonspeech)
    for i, e in enumerate(scored[:16]):
        hits = int((fires[:, i] & nonspeech).sum())
        assert e.precision == (round(hits / int(nonspeech.sum()), 4))
        assert e.recall == (round(hits / int(fires[:, i].sum()), 4) if fires[:, i].any() else None)


def test_latent_firing_numbers_frames_per_clip(tiny_whisper, manifest):
    from otoscope.sae.corpus import open_corpus

    sae = random_sae(32, 8, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper")
    corpus = open_corpus([r["path"] for r in manifest[:3]])
    batches = list(latent_firing(tiny_whisper, sae, corpus, [0, 3], sae.cfg.hook_name, batch_size=2))
    clip = torch.cat([b[0] for b in batches])
    frame = torch.cat([b[1] for b in batches])
    assert batches[0][2].shape[1] == 2
    for c in range(3):
        n = tiny_whisper.geometry.n_frames(int(manifest[c]["seconds"] * 16000))
        assert abs(int((clip == c).sum()) - n) <= 1
        assert torch.equal(frame[clip == c], torch.arange(int((clip == c).sum())))


def test_save_writes_explanations_into_features_json(tmp_path):
    folder = synthetic_stats().save(tmp_path / "features")
    save_explanations(folder, [Explanation(0, "fires on the word 'London'", "word", "London", 1.0, 5.0, 0.9, 0.8)])
    doc = json.loads((folder / "features.json").read_text())
    assert doc["latents"][0]["explanation"] == {"text": "fires on the word 'London'", "key": "word", "value": "London",
                                                "share": 1.0, "lift": 5.0, "precision": 0.9, "recall": 0.8,
                                                "source": "labels"}
    assert doc["latents"][1]["explanation"] is None
    assert FeatureStats.load(folder).explanations[0]["precision"] == 0.9


def test_cli_explains_scores_and_writes_back(tmp_path, manifest, capsys):
    from otoscope.features import FeaturesConfig, feature_stats
    import otoscope

    model = otoscope.load("tiny-random-whisper")
    sae = random_sae(32, 12, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper", seed=1)
    sae_dir = save_sae(sae, tmp_path / "sae")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in manifest[:3] + manifest[-1:]))
    stats = feature_stats(model, sae, str(train), FeaturesConfig(top_n=5, labels=["kind"], progress=False),
                          sae_name=str(sae_dir))
    stats.save(tmp_path / "features")
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(r) + "\n" for r in manifest[3:]))
    assert main(["sae", "explain", str(tmp_path / "features"), "--heldout", str(heldout), "--min-selectivity", "0",
                 "--min-share", "0.1", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    doc = json.loads((tmp_path / "features" / "features.json").read_text())
    explained = [entry["explanation"] for entry in doc["latents"] if entry["explanation"]]
    assert summary["explained"] == len(explained) > 0
    assert all(e["key"] == "kind" and e["text"].startswith("fires on kind") for e in explained)
    assert all(e["precision"] is None or 0 <= e["precision"] <= 1 for e in explained)


def test_cli_says_how_to_fix_a_missing_sae(tmp_path, capsys):
    folder = synthetic_stats().save(tmp_path / "features")
    assert main(["sae", "explain", str(folder), "--heldout", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("otoscope: error:") and "--sae" in err
