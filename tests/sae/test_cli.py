"""`otoscope sae extract | train | eval`: the whole pipeline from the shell, and one-line errors."""

import argparse
import json
from pathlib import Path

from otoscope.cli.sae import main, register
from otoscope.sae.format import load_sae
from otoscope.sae.store import ActivationStore

HOOK = "encoder.blocks.1.hook_resid_post"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "audio"


def test_extract_train_eval(tmp_path, capsys):
    manifest = str(FIXTURES / "manifest.jsonl")
    acts, out = tmp_path / "acts", tmp_path / "saes"
    assert main(["extract", "--model", "tiny-random-whisper", "--hooks", HOOK, "--data", manifest, "--out", str(acts),
                 "--max-clips", "3", "--quiet", "--shard-mb", "0.01"]) == 0
    assert "rows × 1 hooks" in capsys.readouterr().out and len(ActivationStore(acts).clips()) == 3
    assert main(["train", "--activations", str(acts), "--out", str(out), "--k", "4", "--expansion", "2",
                 "--batch-size", "64", "--samples", "1280", "--lr", "0.01", "--checkpoint-every", "10", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"{HOOK}: FVU" in printed and "20 steps, 1280 samples" in printed
    assert load_sae(out / HOOK).cfg.k == 4
    assert main(["eval", str(out), "--data", manifest, "--max-clips", "1", "--no-transcribe"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report["hook"] == HOOK and report["clips"] == 1 and report["spliced"]["kind"] == "next-token"
    assert (out / HOOK / "eval" / "eval.json").is_file() and (out / HOOK / "eval" / "density.png").is_file()


def test_errors_are_one_line_with_exit_status_2(tmp_path, capsys):
    assert main(["train", "--activations", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("otoscope: error: no activation store at") and err.count("\n") == 1
    assert main(["extract", "--model", "tiny-random-whisper", "--hooks", "encoder.blocks.9.*", "--data",
                 str(FIXTURES), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "matches no hook point" in capsys.readouterr().err


def test_register_adds_the_sae_command_to_a_parser():
    parser = argparse.ArgumentParser(prog="otoscope")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sae", "train", "--activations", "a", "--out", "b", "--arch", "jumprelu"])
    assert args.arch == "jumprelu" and callable(args.func)


def test_the_otoscope_command_runs_sae_subcommands(tmp_path, capsys):
    from otoscope.cli.main import main as otoscope_main

    assert otoscope_main(["sae", "eval", str(tmp_path), "--data", str(FIXTURES)]) == 2
    assert "no SAE in" in capsys.readouterr().err
