"""The CLI: output formats, and bad input → one line on stderr, exit 2, no traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from otoscope.cli.main import main


def test_transcribe_json(speech, capsys):
    assert main(["transcribe", speech[0]["path"], speech[1]["path"], "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"] for line in lines] == [speech[0]["path"], speech[1]["path"]]
    assert lines[0]["text"] == "Please open the door."
    assert lines[0]["no_speech_prob"] < 0.3 and lines[0]["avg_logprob"] < 0 and lines[0]["compression_ratio"] > 0
    assert lines[0]["repetition_stopped"] is False and lines[0]["skipped"] is None and lines[0]["finished"] is True


def test_transcribe_json_states_the_gate_and_the_repetition_stop(manifest, capsys):
    bark = next(r["path"] for r in manifest if r["kind"] == "nonspeech")
    assert main(["transcribe", bark, "--json"]) == 0
    looped = json.loads(capsys.readouterr().out)
    assert looped["repetition_stopped"] is True and looped["text"]
    assert main(["transcribe", bark, "--json", "--no-speech-threshold", str(looped["no_speech_prob"] - 0.01)]) == 0
    gated = json.loads(capsys.readouterr().out)
    assert gated["text"] == "" and gated["skipped"] == "no_speech_threshold"


def test_models_and_hooks_listing(capsys):
    assert main(["models"]) == 0
    assert "whisper-tiny.en" in capsys.readouterr().out
    assert main(["hooks", "tiny-random-wav2vec2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first = {r["name"]: r for r in rows}
    assert first["encoder.hook_features"]["example"][2] == 16  # [batch, frames, d_conv] on 1 s
    assert first["encoder.blocks.0.attn.hook_q"]["shape"] == "[batch, frames, heads, d_head]"


def test_cache_command(speech, tmp_path, capsys):
    out = tmp_path / "acts.safetensors"
    assert main(["cache", speech[0]["path"], "--model", "tiny-random-whisper", "--hooks", "encoder.blocks.*.hook_resid_post",
                 "--out", str(out)]) == 0
    assert out.is_file() and "wrote 2 hooks" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["transcribe", "missing.wav", "--model", "tiny-random-whisper"], "audio file not found: missing.wav"),
    (["transcribe", "x.wav", "--model", "whisper-nope"], "cannot load model 'whisper-nope'"),
    (["cache", "{clip}", "--model", "tiny-random-whisper", "--hooks", "encoder.blocks.0.hook_resid_pots", "--out", "{tmp}/a"],
     "Did you mean 'encoder.blocks.0.hook_resid_post'"),
    (["cache", "{clip}", "--model", "tiny-random-whisper", "--hooks", "decoder.layers.*", "--out", "{tmp}/a"],
     "matches no hook point"),
    (["transcribe", "{corrupt}", "--model", "tiny-random-whisper"], "corrupt.flac"),
    (["transcribe", "{empty}", "--model", "tiny-random-whisper"], "is empty"),
    (["transcribe", "{nan}", "--model", "tiny-random-whisper"], "NaN/inf samples"),
])
def test_bad_input_one_line_exit_2(args, message, speech, tmp_path, capsys):
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(200)))
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    nan = np.zeros(1600, np.float32)
    nan[3] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16_000, subtype="FLOAT")
    subs = {"clip": speech[0]["path"], "tmp": str(tmp_path), "corrupt": str(tmp_path / "corrupt.flac"),
            "empty": str(tmp_path / "empty.wav"), "nan": str(tmp_path / "nan.wav")}
    assert main([a.format(**subs) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("otoscope: error: ")
    assert not (tmp_path / "a").exists()  # nothing half-written


def test_console_script_offline(speech, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "otoscope.cli.main", "transcribe", speech[1]["path"], "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["text"] == "My name is John and I live in London."
    proc = subprocess.run([sys.executable, "-m", "otoscope.cli.main", "transcribe", str(tmp_path / "nope.wav")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
