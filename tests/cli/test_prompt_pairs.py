"""``otoscope pairs context|conflict`` (and ``--prompt`` on the audio pairs): folders ``otoscope listen`` reads."""

import json

import numpy as np
import pytest
import soundfile as sf

from otoscope.cli.main import main
from otoscope.stimuli.espeak import espeak_available


@pytest.fixture
def clips(tmp_path):
    t = np.arange(16000) / 16000
    paths = []
    for freq in (440, 470):
        path = tmp_path / f"tone{freq}.wav"
        sf.write(path, (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
        paths.append(str(path))
    return paths


def test_context_and_conflict_from_files_then_listen(clips, tmp_path, capsys):
    root = tmp_path / "pairs"
    assert main(["pairs", "context", "--audio", clips[0], "--swap", "cat=dog", "--template", "Is it {word}?",
                 "--out", str(root / "ctx")]) == 0
    assert main(["pairs", "conflict", "--clean", clips[0], "--corrupt", clips[1], "--swap", "cat=dog",
                 "--out", str(root / "conf")]) == 0
    printed = capsys.readouterr().out
    assert "text pair: same audio" in printed and "conflict pair:" in printed and f"--pairs {root}" in printed
    ctx = json.loads((root / "ctx" / "pair.json").read_text())
    assert (ctx["prompt"], ctx["corrupt_prompt"], ctx["answer"], ctx["wrong"]) == ("Is it cat?", "Is it dog?", "cat", "dog")
    assert sorted(p.name for p in (root / "conf").iterdir()) == ["clean.flac", "corrupt.flac", "pair.json"]
    out = tmp_path / "listen"
    assert main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(root), "--out", str(out), "--boot", "20",
                 "--no-lens"]) == 0
    data = json.loads((out / "listen.json").read_text())
    assert [p["kind"] for p in data["pairs"]] == ["conflict", "text"]
    # the text pair's audio tokens are the same in both runs and come before the prompt: they carry nothing
    assert data["pairs"][1]["deltas"][0]["audio"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["pairs", "context", "--audio", "a.wav", "--swap", "cat", "--out", "o"], "--swap: expected WORD=OTHER"),
    (["pairs", "context", "--audio", "a.wav", "--swap", "cat=Cat", "--out", "o"], "the two words are the same"),
    (["pairs", "context", "--audio", "a.wav", "--swap", "a=b", "--template", "Is it?", "--out", "o"],
     "--template: the prompt template needs exactly one {word} slot"),
    (["pairs", "context", "--swap", "a=b", "--out", "o"], "one of the arguments --text --audio is required"),
    (["pairs", "context", "--audio", "a.wav", "--text", "hi", "--swap", "a=b", "--out", "o"], "not allowed with"),
    (["pairs", "conflict", "--text", "hi", "--swap", "a=b", "--speed", "0", "--out", "o"], "--speed"),
])
def test_bad_flags_fail_while_parsing(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and err.count("\n") == 1, err


def test_conflict_needs_audio_of_both_words(clips, tmp_path, capsys):
    assert main(["pairs", "conflict", "--clean", clips[0], "--swap", "a=b", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--clean FILE (says WORD) and --corrupt FILE" in err and err.count("\n") == 1
    assert main(["pairs", "conflict", "--clean", clips[0], "--corrupt", clips[1], "--text", "a b", "--swap", "a=b",
                 "--out", str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng library not installed")
def test_word_swap_with_a_prompt_is_a_listen_pair(tmp_path):
    from otoscope.listen.pairs import load_listen_pair

    out = tmp_path / "w"
    assert main(["pairs", "word", "--text", "I live in London.", "--swap", "London=Paris", "--prompt",
                 "Which city does the speaker name?", "--out", str(out)]) == 0
    pair = load_listen_pair(out)
    assert pair.prompt == "Which city does the speaker name?" and (pair.answer, pair.wrong) == ("London", "Paris")
    assert pair.kind == "audio"
