"""`otoscope patch` and `otoscope pairs` through the `otoscope` command (bad values end in one line, exit 2)."""

import json

import pytest

from otoscope.cli.main import main
from otoscope.stimuli.espeak import espeak_available


def run(argv, capsys):
    """Run through the `otoscope` command: (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse rejected a value
        status = exit.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_patch_writes_the_documented_json_and_heatmap(door, park, tmp_path, capsys):
    status, out, _ = run(["patch", "--clean", door, "--corrupt", park, "--model", "tiny-random-whisper", "--text", " My",
                          "--answer", "a", "--wrong", "b", "--hooks", "encoder.blocks.*.hook_resid_post", "--window", "40",
                          "--out", str(tmp_path)], capsys)
    assert status == 0 and "denoising · exact · logit_diff" in out
    data = json.loads((tmp_path / "patch.json").read_text())
    assert list(data) == ["direction", "metric", "clean", "corrupt", "cells"]
    assert data["direction"] == "denoising" and data["metric"] == "logit_diff"
    cell = data["cells"][0]
    assert list(cell) == ["hook", "layer", "frames", "seconds", "value", "normalized"]
    assert cell["hook"] == "encoder.blocks.0.hook_resid_post" and cell["frames"] == [0, 40] and cell["seconds"] == [0.0, 0.8]
    assert (tmp_path / "heatmap.png").stat().st_size > 5000
    meta = json.loads((tmp_path / "patch_meta.json").read_text())
    assert meta["context"]["alignment"].startswith("padded")


def test_patch_from_a_pair_file_with_attribution_and_agreement(tmp_path, capsys, london_pair):
    london_pair.save(tmp_path / "pair")
    status, out, _ = run(["patch", "--pair", str(tmp_path / "pair"), "--model", "tiny-random-whisper", "--multi-token",
                          "--hooks", "encoder.blocks.1.hook_resid_post", "--window", "50", "--method", "attribution",
                          "--compare", "--direction", "noising", "--out", str(tmp_path / "out")], capsys)
    assert status == 0 and "attribution vs exact" in out
    meta = json.loads((tmp_path / "out" / "patch_meta.json").read_text())
    assert meta["method"] == "attribution" and "spearman" in meta["context"]["agreement"]
    assert meta["words"][-1]["word"] == "London" and meta["context"]["text"] == " My name is John and I live in"


def test_patch_with_integrated_gradients(door, park, tmp_path, capsys):
    status, out, _ = run(["patch", "--clean", door, "--corrupt", park, "--model", "tiny-random-whisper", "--text", " My",
                          "--answer", "a", "--wrong", "b", "--hooks", "encoder.blocks.1.hook_resid_post", "--window", "50",
                          "--method", "attribution-ig", "--ig-steps", "2", "--compare", "--out", str(tmp_path)], capsys)
    assert status == 0 and "denoising · attribution-ig · logit_diff" in out and "attribution-ig vs exact" in out
    meta = json.loads((tmp_path / "patch_meta.json").read_text())
    assert meta["method"] == "attribution-ig" and meta["context"]["config"]["ig_steps"] == 2
    status, _, err = run(["patch", "--clean", door, "--corrupt", park, "--model", "tiny-random-whisper", "--answer", "a",
                          "--wrong", "b", "--method", "attribution-ig", "--ig-steps", "0", "--out", str(tmp_path)], capsys)
    assert status == 2 and err.count("\n") == 1 and "--ig-steps" in err


def test_patch_bad_input_is_one_line(door, tmp_path, capsys):
    status, _, err = run(["patch", "--clean", door, "--corrupt", door, "--model", "tiny-random-whisper", "--answer", "ab",
                          "--wrong", "b", "--out", str(tmp_path)], capsys)
    assert status == 2 and err.count("\n") == 1 and "2 tokens" in err
    status, _, err = run(["patch", "--clean", door, "--model", "tiny-random-whisper", "--out", str(tmp_path)], capsys)
    assert status == 2 and "--corrupt" in err


def test_pairs_noise_and_span_from_a_file(door, tmp_path, capsys):
    status, out, _ = run(["pairs", "noise", "--clean", door, "--snr", "3", "--out", str(tmp_path / "n")], capsys)
    assert status == 0 and "3 dB SNR" in out
    data = json.loads((tmp_path / "n" / "pair.json").read_text())
    assert data["factor"] == "noise" and (tmp_path / "n" / "corrupt.flac").exists()
    status, out, _ = run(["pairs", "span", "--clean", door, "--start", "0.2", "--end", "0.6", "--fill", "noise",
                          "--out", str(tmp_path / "s")], capsys)
    assert status == 0 and json.loads((tmp_path / "s" / "pair.json").read_text())["details"]["fill"] == "noise"
    status, _, err = run(["pairs", "word", "--swap", "a=b", "--out", str(tmp_path / "w")], capsys)
    assert status == 2 and "--text" in err


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng library not installed")
def test_pairs_word_swap(tmp_path, capsys):
    status, out, _ = run(["pairs", "word", "--text", "I live in London.", "--swap", "London=Paris", "--out",
                          str(tmp_path)], capsys)
    assert status == 0 and "patch it: otoscope patch --pair" in out and "London[" in out
    data = json.loads((tmp_path / "pair.json").read_text())
    assert data["answer"] == " London" and data["wrong"] == " Paris" and data["text"] == " I live in"
