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
