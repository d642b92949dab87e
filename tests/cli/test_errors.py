"""Bad input to every subcommand: one line ``otoscope: error: ...`` on stderr, exit 2, nothing half-written.

Each row is (arguments, a piece of the message). ``{x}`` in an argument is replaced from ``paths``:
clip (a real speech clip), other (another, of a different length), pair (the committed minimal pair),
dir (an existing folder), file (an existing non-audio file), busy (a folder of someone's other files),
noise_mp3 (random bytes named .mp3), zero (a 0-byte .wav), tmp (a fresh folder for outputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from otoscope.cli.main import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
M = ["--model", "tiny-random-whisper"]
HOOK = ["--hooks", "encoder.blocks.0.hook_resid_post"]
PATCH = ["patch", "--pair", "{pair}", *M, "--out", "{tmp}/p"]

CASES = [
    # numbers: zero, negative, inf, nan where a positive finite value is needed
    (["patch", "--pair", "{pair}", "--window", "inf", *M, "--out", "{tmp}/p"], "--window: expected a finite number > 0 or 'all'"),
    ([*PATCH, "--window", "nan"], "--window"),
    ([*PATCH, "--window", "0"], "--window"),
    ([*PATCH, "--window", "-3"], "--window"),
    ([*PATCH, "--stride", "0"], "--stride: expected a finite number > 0"),
    ([*PATCH, "--token-window", "0"], "--token-window: expected a whole number >= 1"),
    ([*PATCH, "--batch-size", "0"], "--batch-size"),
    ([*PATCH, "--ig-steps", "-1"], "--ig-steps"),
    ([*PATCH, "--window", "2.5"], "--window 2.5 is not a whole number of frames; use --seconds"),
    ([*PATCH, "--neurons", "a,b"], "--neurons takes comma-separated indices"),
    (["cache", "{clip}", *M, *HOOK, "--out", "{tmp}/a.st", "--batch-size", "0"], "--batch-size: expected a whole number >= 1, got 0"),
    (["cache", "{clip}", *M, *HOOK, "--out", "{tmp}/a.st", "--batch-size", "-1"], "--batch-size"),
    (["transcribe", "{clip}", *M, "--batch-size", "many"], "--batch-size: expected a whole number >= 1, got 'many'"),
    (["report", "{clip}", *M, "--out", "{tmp}/r", "--detailed-clips", "-1"], "--detailed-clips"),
    (["report", "{clip}", *M, "--out", "{tmp}/r", "--tuned-steps", "1e3"], "--tuned-steps"),
    (["pairs", "noise", "--clean", "{clip}", "--snr", "nan", "--out", "{tmp}/n"], "--snr: expected a finite number"),
    (["pairs", "span", "--clean", "{clip}", "--start", "-1", "--end", "0.5", "--out", "{tmp}/s"], "--start"),
    (["pairs", "span", "--clean", "{clip}", "--start", "0.6", "--end", "0.2", "--out", "{tmp}/s"],
     "got --start 0.6, --end 0.2"),
    (["pairs", "noise", "--clean", "{clip}", "--speed", "0", "--out", "{tmp}/n"], "--speed"),
    (["pairs", "context", "--audio", "{clip}", "--swap", "cat", "--out", "{tmp}/c"], "--swap: expected WORD=OTHER"),
    (["pairs", "context", "--audio", "{clip}", "--swap", "a=b", "--template", "{{}}", "--out", "{tmp}/c"], "--template"),
    (["pairs", "conflict", "--clean", "{clip}", "--swap", "cat=dog", "--out", "{tmp}/c"], "--corrupt FILE"),
    (["pairs", "context", "--audio", "{tmp}/missing.wav", "--swap", "cat=dog", "--out", "{tmp}/c"], "audio file not found"),
    (["listen", "-m", "tiny-random-qwen2audio", "--pairs", "{dir}", "--out", "{tmp}/l", "--window-tokens", "0"],
     "--window-tokens: expected a whole number >= 1"),
    (["listen", "-m", "tiny-random-qwen2audio", "--pairs", "{dir}", "--out", "{tmp}/l", "--window-seconds", "inf"],
     "--window-seconds: expected a finite number > 0"),
    (["listen", "-m", "tiny-random-qwen2audio", "--pairs", "{dir}", "--out", "{tmp}/l", "--method", "guess"], "--method"),
    (["sae", "extract", *M, *HOOK, "--data", "{dir}", "--out", "{tmp}/x", "--shard-mb", "inf"], "--shard-mb"),
    (["sae", "train", "--activations", "{dir}", "--out", "{tmp}/t", "--k", "0"], "--k"),
    (["sae", "train", "--activations", "{dir}", "--out", "{tmp}/t", "--lr", "nan"], "--lr"),
    (["sae", "eval", "{dir}", "--data", "{dir}", "--max-clips", "0"], "--max-clips"),
    # outputs: a folder where a file goes, a file where a folder goes, someone else's folder
    (["cache", "{clip}", *M, *HOOK, "--out", "{dir}"], "is a folder; pass a file path"),
    (["lens", "{clip}", *M, "--out", "{file}"], "is a file; pass a folder path"),
    (["report", "{clip}", *M, "--out", "{file}"], "is a file; pass a folder path"),
    (["report", "{clip}", *M, "--out", "{busy}"], "already holds other files"),
    (["lens", "{clip}", *M, "--out", "{busy}"], "already holds other files"),
    ([*PATCH[:-1], "{busy}"], "already holds other files"),
    (["pairs", "noise", "--clean", "{clip}", "--out", "{file}"], "is a file"),
    (["pairs", "noise", "--clean", "{clip}", "--out", "{file}/sub"], "is a file, not a folder"),
    (["cache", "{clip}", *M, *HOOK, "--out", "{file}/a.st"], "is a file, not a folder"),
    (["demo", "--out", "{file}"], "is a file"),
    (["sae", "extract", *M, *HOOK, "--data", "{dir}", "--out", "{file}"], "is a file; pass a folder path"),
    (["sae", "train", "--activations", "{dir}", "--out", "{file}"], "is a file; pass a folder path"),
    (["sae", "eval", "{dir}", "--data", "{dir}", "--out", "{file}"], "no SAE in"),
    # inputs: missing, folders, corrupt, empty, unknown names
    (["transcribe", "{tmp}/missing.wav", *M], "audio file not found"),
    (["transcribe", "{dir}", *M], "is a folder, not an audio file"),
    (["transcribe", "{noise_mp3}", *M], "not a recognised audio format; the file is corrupt"),
    (["transcribe", "{zero}", *M], "is an empty file (0 bytes)"),
    (["transcribe", "{clip}", "--model", "whisper-nope"], "cannot load model 'whisper-nope'"),
    (["hooks", "no-such-model"], "cannot load model"),
    (["cache", "{clip}", *M, "--hooks", "encoder.blocks.0.hook_resid_pots", "--out", "{tmp}/a.st"], "Did you mean"),
    (["lens", "{tmp}/missing.flac", *M, "--out", "{tmp}/l"], "audio file not found"),
    (["report", "{clip}", *M, "--out", "{tmp}/r", "--manifest", "{tmp}/none.jsonl"], "manifest not found"),
    (["report", "{clip}", *M, "--out", "{tmp}/r", "--manifest", "{file}"], "is not JSONL"),
    (["report", "{clip}", *M, "--out", "{tmp}/r", "--manifest", str(FIXTURES / "audio" / "manifest.jsonl"),
      "--label-key", "colour"], "choose --label-key from"),
    (["report", "{clip}", *M, "--out", "{tmp}/r", "--pair", "{dir}"], "pair file not found"),
    (["patch", "--pair", "{tmp}/nope", *M, "--out", "{tmp}/p"], "pair file not found"),
    (["patch", "--clean", "{clip}", "--corrupt", "{other}", *M, "--text", " My", "--answer", " a", "--wrong", " b",
      "--align", "error", "--out", "{tmp}/p"], "--align pad"),
    (["patch", "--clean", "{clip}", "--corrupt", "{dir}", *M, "--out", "{tmp}/p"], "is a folder"),
    (["pairs", "noise", "--clean", "{tmp}/missing.wav", "--out", "{tmp}/n"], "audio file not found"),
    (["sae", "extract", *M, *HOOK, "--data", "{tmp}/none", "--out", "{tmp}/x"], "corpus not found"),
    (["sae", "train", "--activations", "{dir}", "--out", "{tmp}/t"], "no activation store"),
    (["sae", "eval", "{dir}", "--data", "{dir}"], "no SAE in"),
    (["transcribe", "{clip}", *M, "--device", "nope"], "--device: unknown device 'nope'"),
    (["transcribe", "{clip}", *M, "--device", "cuda:99"], "--device: cuda:99"),
    (["sae", "train", "--activations", "{dir}", "--out", "{tmp}/t", "--device", "gpu"], "unknown device 'gpu'"),
    # parsing itself
    (["transcribe"], "the following arguments are required: files"),
    (["patch", "--window"], "expected one argument"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # the feature, dashboard, explanation, alignment and steering commands check their numbers while parsing too
    (["steer", "study", "--out", "{tmp}/s", "--n-speech", "0"], "--n-speech: expected a whole number >= 1"),
    (["steer", "silence", "--speech", "a.flac", "--nonspeech", "b.flac", "--out", "{tmp}/s", "--alphas", "inf"], "--alphas"),
    (["transcribe", "a.flac", "--alpha", "nan"], "--alpha: expected a finite number"),
    (["sae", "dashboard", "{tmp}", "--out", "{tmp}/d", "--top", "-1"], "--top"),
    (["sae", "features", "{tmp}", "--data", "{tmp}", "--out", "{tmp}/f", "--batch-size", "0"], "--batch-size"),
    (["sae", "explain", "{tmp}", "--heldout", "{tmp}", "--min-share", "-0.5"], "--min-share"),
    (["align", "a.flac", "--batch-size", "0"], "--batch-size"),
]


@pytest.fixture
def paths(tmp_path, speech) -> dict[str, str]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("not audio\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("months of work\n")
    (tmp_path / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "out").mkdir()
    return {"clip": speech[0]["path"], "other": speech[2]["path"], "pair": str(FIXTURES / "pairs" / "london_paris"),
            "dir": str(tmp_path / "dir"), "file": str(tmp_path / "file"), "busy": str(tmp_path / "busy"),
            "noise_mp3": str(tmp_path / "noise.mp3"), "zero": str(tmp_path / "zero.wav"), "tmp": str(tmp_path / "out")}


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse rejects values while parsing
        return exit.code


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:3]) + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2(args, message, paths, tmp_path, capsys):
    before = _tree(tmp_path)
    status = run([a.format(**paths) for a in args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("otoscope: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err and "=None" not in err and "align='" not in err
    assert _tree(tmp_path) == before  # nothing written, nothing lost
    assert not list((tmp_path / "out").iterdir())


def test_window_all_is_one_cell(paths, capsys):
    """``--window all`` (None in Python) still parses; the messages name it instead of ``window=None``."""
    from otoscope.cli.args import in_flag_terms
    from otoscope.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["patch", "--pair", paths["pair"], "--window", "all", "--out", "x"])
    assert args.window is None
    from otoscope.cli.args import chosen_parser

    patch = chosen_parser(parser, args)
    assert in_flag_terms("use window=None for one cell; or pass align='trim'", patch) == \
        "use --window all for one cell; or pass --align trim"
    assert in_flag_terms("batch_size must be a whole number >= 1", patch) == "--batch-size must be a whole number >= 1"
    assert in_flag_terms("use window_unit='seconds'", patch) == "use --seconds"
    assert in_flag_terms("unknown name=3 stays", patch) == "unknown name=3 stays"
