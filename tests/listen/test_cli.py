"""``otoscope listen`` on a tiny random audio-LLM: files written, block 0 listens, bad folders refused."""

import json

import numpy as np
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


def test_listen_window_sweep_by_attribution(pairs_dir, tmp_path, capsys):
    out = tmp_path / "win"
    assert main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(pairs_dir), "--out", str(out), "--boot", "0",
                 "--no-lens", "--window-seconds", "0.2", "--method", "attribution"]) == 0
    assert {p.name for p in out.iterdir()} == {"listen.json", "listen.csv", "listen.png", "windows.json", "windows.csv",
                                               "windows.png"}
    assert (out / "windows.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "windows.json").read_text())
    assert data["method"] == "attribution" and data["estimate"] and data["window"] == {"seconds": 0.2}
    assert json.loads((out / "listen.json").read_text())["estimate"] is True
    # 1 s of audio at 40 ms a token, 0.2 s windows: 5 windows × 2 blocks × 2 pairs
    assert len(data["cells"]) == 20 and len(data["mean_effect"]) == 2 and len(data["mean_effect"][0]) == 5
    assert data["window_start_s"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    mean = np.nanmean([[c["effect"] for c in data["cells"] if c["layer"] == 0 and c["window"] == w] for w in range(5)], 1)
    assert data["mean_effect"][0] == pytest.approx(mean.tolist())
    printed = capsys.readouterr().out
    assert "first-order estimate" in printed and "audio windows of 0.2 s" in printed and "windows.png" in printed
    # exact, by tokens, into the same folder (an earlier listen folder is replaced as a whole)
    assert main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(pairs_dir / "p0"), "--out", str(out),
                 "--boot", "0", "--no-lens", "--window-tokens", "10"]) == 0
    data = json.loads((out / "windows.json").read_text())
    assert data["method"] == "exact" and not data["estimate"] and data["window"] == {"tokens": 10}
    assert [c["n_tokens"] for c in data["cells"] if c["layer"] == 0] == [10, 10, 5]


@pytest.mark.parametrize("flags, message", [
    (["--window-tokens", "0"], "--window-tokens: expected a whole number >= 1"),
    (["--window-seconds", "-0.5"], "--window-seconds: expected a finite number > 0"),
    (["--window-seconds", "nan"], "--window-seconds: expected a finite number > 0"),
    (["--window-tokens", "4", "--window-seconds", "0.2"], "not allowed with argument"),
    (["--method", "guess"], "--method: invalid choice"),
])
def test_listen_bad_window_flags_fail_at_parse_time(flags, message, pairs_dir, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit:
        main(["listen", "-m", "tiny-random-qwen2audio", "--pairs", str(pairs_dir), "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_run_listen_checks_the_window_before_any_work(tmp_path):
    from otoscope.errors import OtoscopeError
    from otoscope.listen.output import run_listen

    for kwargs, message in (({"window_tokens": 4, "window_seconds": 0.2}, "not both"),
                            ({"window_tokens": 0}, "at least 1 token"), ({"window_seconds": float("nan")}, "positive")):
        with pytest.raises(OtoscopeError, match=message):
            run_listen(None, tmp_path / "pairs", tmp_path / "out", **kwargs)  # no model needed to refuse it
    assert not (tmp_path / "out").exists()
