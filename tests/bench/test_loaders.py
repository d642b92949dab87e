"""Dataset loaders on tiny fake folders built here: Speech Commands v2, ESC-50 and Hugging Face rows."""

import numpy as np
import pytest
import soundfile as sf

from otoscope.audio.io import Clip
from otoscope.bench.loaders import esc50_pairs, hf_keyword_pairs, speech_commands_pairs
from otoscope.errors import OtoscopeError

RATE = 16_000


def _tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def speech_commands(tmp_path):
    """yes/, no/, up/ folders; speaker aaa says yes and no, bbb says up only (cannot be paired)."""
    for word, speakers in {"yes": ["aaa"], "no": ["aaa"], "up": ["bbb"], "_background_noise_": ["x"]}.items():
        (tmp_path / word).mkdir()
        for k, speaker in enumerate(speakers):
            sf.write(tmp_path / word / f"{speaker}_nohash_{k}.wav", _tone(200 + 50 * len(word), 0.5 + 0.1 * len(word)), RATE)
    return tmp_path


def _check_pair_format(pair, task):
    assert pair.task == task and len(pair.clean.samples) == len(pair.corrupt.samples)
    assert pair.clean.sample_rate == pair.corrupt.sample_rate == RATE


def test_speech_commands_pairs_within_one_speaker(speech_commands):
    pairs = speech_commands_pairs(speech_commands, n=5, seed=1)
    assert len(pairs) == 2  # only aaa says two words: yes→no and no→yes
    for p in pairs:
        _check_pair_format(p, "keyword")
        assert p.details["speaker"] == "aaa" and p.metric == "logit_diff"
        assert {p.answer, p.wrong} == {" Yes", " No"}
    assert [p.answer for p in speech_commands_pairs(speech_commands, n=5, seed=1)] == [p.answer for p in pairs]


def test_speech_commands_errors(tmp_path):
    with pytest.raises(OtoscopeError, match="Speech Commands"):
        speech_commands_pairs(tmp_path)
    (tmp_path / "yes").mkdir()
    sf.write(tmp_path / "yes" / "a_nohash_0.wav", _tone(300, 0.3), RATE)
    with pytest.raises(OtoscopeError, match="two different command words"):
        speech_commands_pairs(tmp_path)


def test_hf_rows_with_class_indices():
    names = ["yes", "no", "up", "_silence_"]
    rows = [{"audio": {"array": _tone(300 + 10 * i, 0.4 + 0.05 * i), "sampling_rate": 8000}, "label": i % 4,
             "speaker_id": "s1"} for i in range(8)]
    pairs = hf_keyword_pairs(rows, n=3, seed=0, label_names=names)
    assert len(pairs) == 3
    for p in pairs:
        _check_pair_format(p, "keyword")
        assert p.answer.strip().lower() in names[:3] and p.wrong.strip().lower() in names[:3]
    # 8 kHz input was resampled: a 0.4 s clip is 6400 samples at 16 kHz
    assert max(len(p.clean.samples) for p in pairs) >= 6400
    with pytest.raises(OtoscopeError, match="command word"):
        hf_keyword_pairs([{"audio": {"array": _tone(300, 0.2), "sampling_rate": RATE}, "label": "cat"}])


def test_esc50_pairs_have_the_sound_length(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for k, category in enumerate(["dog", "rain", "clock_tick"]):
        name = f"1-{k}-A-{k}.wav"
        sf.write(tmp_path / "audio" / name, _tone(500 + 100 * k, 1.0 + 0.5 * k), RATE)
        lines.append(f"{name},1,{k},{category},False,{k},A")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    speech = [Clip(_tone(150, 1.2), RATE, "speech-a")]
    pairs = esc50_pairs(tmp_path, speech, n=3, seed=0)
    assert len(pairs) == 3
    for p in pairs:
        _check_pair_format(p, "nonspeech")
        assert p.metric == "speech_odds" and p.details["nonspeech"].startswith("esc50:")
        n = len(p.corrupt.samples)
        expected = np.zeros(n, np.float32)
        expected[: min(n, len(speech[0].samples))] = speech[0].samples[:n]
        assert np.array_equal(p.clean.samples, expected)  # speech cut or padded to the sound's length
    with pytest.raises(OtoscopeError, match="esc50.csv"):
        esc50_pairs(tmp_path / "audio", speech)
