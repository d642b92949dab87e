"""Labelled inputs: the bundled emotion prompts, manifests and folders, and the bad-input errors."""

import json
from collections import Counter

import numpy as np
import pytest

from otoscope.errors import OtoscopeError
from otoscope.study.inputs import LabelledData, emotion_prompts_path, read_labelled_clips, read_labelled_prompts


def test_the_bundled_emotion_set_has_100_distinct_prompts_25_per_label():
    data = read_labelled_prompts(emotion_prompts_path())
    assert Counter(data.labels) == {"happy": 25, "sad": 25, "calm": 25, "energetic": 25}
    assert len(set(data.items)) == 100 and all(len(t.split()) >= 5 for t in data.items)
    assert data.kind == "prompts" and data.classes == ["calm", "energetic", "happy", "sad"]
    assert read_labelled_prompts("emotions").items == data.items  # the name the CLI takes


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prompts_without_the_label_key_name_the_keys_they_have(tmp_path):
    rows = [{"text": f"a {mood} song {i}", "mood": mood} for mood in ("happy", "sad") for i in range(2)]
    path = _write(tmp_path / "p.jsonl", rows)
    with pytest.raises(OtoscopeError, match=r"prompt 1 .* has no 'label' label; choose --label-key from: mood\.$"):
        read_labelled_prompts(path)
    assert read_labelled_prompts(path, "mood").labels == ["happy", "happy", "sad", "sad"]
    path = _write(tmp_path / "q.jsonl", [{"text": "a happy song"}])
    with pytest.raises(OtoscopeError, match="add a 'label' field to every line"):
        read_labelled_prompts(path)
    with pytest.raises(OtoscopeError, match="prompts file not found"):
        read_labelled_prompts(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"text": "x", "label"\n', encoding="utf-8")
    with pytest.raises(OtoscopeError, match="is not JSONL"):
        read_labelled_prompts(tmp_path / "bad.jsonl")


def test_a_label_with_one_example_or_a_single_label_is_refused_with_the_reason(tmp_path):
    rows = [{"text": f"song {i}", "label": "happy"} for i in range(3)] + [{"text": "a lonely sad song", "label": "sad"}]
    with pytest.raises(OtoscopeError, match=r"label 'sad' has only 1 example \('a lonely sad song'\).*permutation test "
                                            r"need at least 2 per label: add examples or drop it\.$"):
        read_labelled_prompts(_write(tmp_path / "p.jsonl", rows))
    with pytest.raises(OtoscopeError, match="only 'happy' as label; a study compares groups"):
        LabelledData("prompts", ["a", "b"], ["a", "b"], ["happy", "happy"])


def test_clips_from_a_manifest_or_label_folders(tmp_path):
    import soundfile as sf

    tone = np.sin(np.arange(8000) / 5).astype(np.float32)
    for label in ("low", "high"):
        for i in range(2):
            (tmp_path / "d" / label).mkdir(parents=True, exist_ok=True)
            sf.write(str(tmp_path / "d" / label / f"{i}.wav"), tone, 16000)
    data = read_labelled_clips(tmp_path / "d")
    assert data.labels == ["high", "high", "low", "low"] and data.kind == "clips"
    _write(tmp_path / "d" / "manifest.jsonl", [{"path": f"{lab}/{i}.wav", "speaker": lab} for lab in ("low", "high") for i in range(2)])
    assert read_labelled_clips(tmp_path / "d", "speaker").labels == ["low", "low", "high", "high"]
    with pytest.raises(OtoscopeError, match="has no 'label' label; choose --label-key from: speaker"):
        read_labelled_clips(tmp_path / "d" / "manifest.jsonl")
    sf.write(str(tmp_path / "loose.wav"), tone, 16000)
    with pytest.raises(OtoscopeError, match="not in a label sub-folder"):
        read_labelled_clips(tmp_path)
