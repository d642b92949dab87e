"""``otoscope bench``: names checked before work (one line, exit 2), and a task set built without a model."""

import json

import pytest

from otoscope.bench.sources import espeak_available
from otoscope.cli.main import main


@pytest.mark.parametrize("argv, message", [
    (["bench", "run", "--tasks", "keywrd"], "Did you mean 'keyword'"),
    (["bench", "run", "--methods", "exact,atribution"], "Did you mean 'attribution'"),
    (["bench", "build", "--tasks", "asr-word,nois"], "Did you mean 'noise'"),
    (["bench", "run", "--n-pairs", "0"], "--n-pairs"),
])
def test_bad_names_fail_before_work(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    try:
        code = main([*argv, "--out", str(out)])
    except SystemExit as stop:  # argparse's own checks exit while parsing
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_build_writes_audio_and_a_manifest(tmp_path, capsys):
    out = tmp_path / "suite"
    assert main(["bench", "build", "--tasks", "keyword,nonspeech", "--n-pairs", "2", "--check-models", "",
                 "--out", str(out)]) == 0
    assert "wrote 4 pairs of 2 tasks" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == "2" and list(manifest["tasks"]) == ["keyword", "nonspeech"]
    for task in manifest["tasks"].values():
        assert task["kept"] == 2 and task["checked_by"] == [] and task["dropped"] == []
        for pair in task["pairs"]:
            assert (out / pair["clean"]).is_file() and (out / pair["corrupt"]).is_file()
    # building again replaces the folder as a whole; a folder of other files is refused
    assert main(["bench", "build", "--tasks", "keyword", "--n-pairs", "1", "--check-models", "", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["keyword", "manifest.json"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    assert main(["bench", "build", "--tasks", "keyword", "--check-models", "", "--out", str(tmp_path / "mine")]) == 2


def test_run_flags_are_bench_config_fields(tmp_path, monkeypatch, capsys):
    """``bench run``'s flags come from BenchConfig: same defaults, every task and method named in the help."""
    import dataclasses

    import otoscope.bench.runner as runner
    from otoscope.bench.config import BenchConfig
    from otoscope.bench.methods import METHODS
    from otoscope.bench.tasks import TASKS

    seen = []

    def fake_run(out, config, log=print):
        seen.append(config)
        return {"overall": {}, "run": {}}

    monkeypatch.setattr(runner, "run_bench", fake_run)
    assert main(["bench", "run", "--out", str(tmp_path / "a")]) == 0
    assert main(["bench", "run", "--models", "whisper-tiny.en", "--tasks", "keyword", "--methods", "random",
                 "--n-pairs", "3", "--window", "5", "--seed", "2", "--quick", "--encoder-seconds", "8",
                 "--out", str(tmp_path / "b")]) == 0
    assert seen[0] == BenchConfig()
    assert seen[1] == BenchConfig(models=("whisper-tiny.en",), tasks=("keyword",), methods=("exact", "random"),
                                  quick=True, seed=2, n_pairs=3, window=5, encoder_seconds=8.0)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["bench", "run", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(BenchConfig):
        assert "--" + field.name.replace("_", "-") in helptext
    for name in (*TASKS, *METHODS):
        assert name in helptext, f"{name} is missing from BenchConfig's docstrings (the --help text)"
