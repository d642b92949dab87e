"""``otoscope listen`` on a tiny random audio-LLM: files written, block 0 listens, bad folders refused."""

import json

import pytest
import soundfile as sf

from otoscope.cli.main import main

from .conftest import noise, tone


@pytest.fixture
def pairs_dir(tmp_path):
    root = tmp_path / "pairs"
    for i, (clean, corrupt) in enumerate(((tone(440), noise(0)), (tone(880), noise(1)))):
        folder = root / f"p{i}"
        folder.mkdir(parents=True)
        sf.write(folder / "clean.wav", clean.samples, 16000)
        sf.write(folder / "corrupt.wav", corrupt.samples, 16000)
        (folder / "pair.json").write_text(json.dumps({"clean": "clean.wav", "corrupt": "corrupt.wav",
                                                      "prompt": "Which word?", "answer": "a", "wrong": "b"}))
    return root


def test_listen_writes_curve_and_lens(pairs_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["listen", "--model", "tiny-random-qwen2audio", "--pairs", str(pairs_dir), "--out", str(out),
                 "--boot", "50"]) == 0
    assert {p.name for p in out.iterdir()} == {"listen.json", "listen.csv", "listen.png", "lens.json"}
    data = json.loads((out / "listen.json").read_text())
    assert len(data["layers"]) == 2 and [p["name"] for p in data["pairs"]] == ["p0", "p1"]
    # block 0's input differs only at the audio tokens (same prompt): patching them restores everything
    assert data["layers"][0]["gc"] == pytest.approx(1.0) and data["layers"][0]["delta_audio"] == pytest.approx(1.0, abs=1e-4)
    assert data["pairs"][0]["kind"] == "audio" and data["n_boot"] == 50
    where = data["pairs"][0]["positions"]
    assert where["audio"][1] - where["audio"][0] == where["real_audio_tokens"] == 25 and where["seconds_per_audio_token"] == 0.04
    assert "gc(k) over 2 pair(s)" in capsys.readouterr().out
    # an earlier listen folder is replaced; a folder of other files is refused before any work
    assert main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(pairs_dir / "p0"), "--out", str(out),
                 "--no-lens", "--boot", "0"]) == 0
    assert not (out / "lens.json").exists()


def test_listen_bad_input_is_one_line(pairs_dir, tmp_path, capsys):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(pairs_dir), "--out", str(other)]) != 0
    err = capsys.readouterr().err.strip()
    assert "already holds other files" in err and "\n" not in err
    assert (other / "notes.txt").exists()
    assert main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o2")]) != 0
    assert "pairs folder not found" in capsys.readouterr().err
    assert main(["listen", "-m", "tiny-random-whisper", "--pairs", str(pairs_dir), "--out", str(tmp_path / "o3")]) != 0
    assert "not an audio-LLM" in capsys.readouterr().err
