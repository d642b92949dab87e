"""Reports (and every multi-file output) are replaced as a whole: a failed run changes nothing, a rerun
leaves no stale files, and temporaries of killed runs are cleaned up."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from otoscope._io import atomic_dir, check_output_dir, remove_stale_temporaries
from otoscope.errors import OtoscopeError
from otoscope.report import ReportConfig, build_report
from otoscope.report.sections import SECTIONS, Section

FAST = dict(model="tiny-random-hubert", locality_bands=(8, None), tuned_lens_steps=0, progress=False)


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def clips(tmp_path):
    paths = []
    for i, n in enumerate((16_000, 8_000, 12_000)):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, (0.1 * np.random.default_rng(i).standard_normal(n)).astype(np.float32), 16_000)
        paths.append(path)
    return paths


def test_a_report_killed_midway_leaves_the_old_one(clips, tmp_path, monkeypatch):
    out = tmp_path / "report"
    build_report(clips[:2], out, ReportConfig(detailed_clips=2, **FAST))
    before = _tree(out)
    assert "assets/clip0.wav" in before and "index.html" in before

    def boom(ctx):
        assert (ctx.assets / "clip0.wav").is_file()  # the new run had written its first clip already
        raise KeyboardInterrupt  # what Ctrl-C raises midway

    patched = [Section("cka", boom) if s.name == "cka" else s for s in SECTIONS]
    monkeypatch.setattr("otoscope.report.build.SECTIONS", patched)
    with pytest.raises(KeyboardInterrupt):
        build_report(clips[2:], out, ReportConfig(detailed_clips=1, **FAST))
    assert _tree(out) == before  # the old page still plays its own clips
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.wav", "c1.wav", "c2.wav", "report"]  # no temporaries


def test_a_rerun_with_fewer_clips_leaves_no_stale_assets(clips, tmp_path):
    out = tmp_path / "report"
    build_report(clips, out, ReportConfig(detailed_clips=3, **FAST))
    assert {"clip0.wav", "clip1.wav", "clip2.wav"} <= {p.name for p in (out / "assets").iterdir()}
    result = build_report(clips[:1], out, ReportConfig(detailed_clips=1, **FAST))
    assets = sorted(p.name for p in (out / "assets").iterdir())
    assert not any(name.startswith(("clip1", "clip2")) for name in assets), assets
    assert len(result.data["clips"]) == 1 and "clip1" not in result.index.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.wav", "c1.wav", "c2.wav", "report"]


def test_atomic_dir_swaps_whole_folders(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target, markers=["a.txt"]) as folder:
        (folder / "a.txt").write_text("old")
        (folder / "b.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, markers=["a.txt"]) as folder:
            (folder / "a.txt").write_text("new")
            raise RuntimeError("failed midway")
    assert _tree(target) == {"a.txt": b"old", "b.txt": b"old"}
    with atomic_dir(target, markers=["a.txt"]) as folder:
        (folder / "a.txt").write_text("new")
    assert _tree(target) == {"a.txt": b"new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_refuses_a_folder_that_is_not_its_own_output(tmp_path):
    """A mistyped --out naming a user's folder is refused, never moved aside and deleted."""
    mine = tmp_path / "Documents"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OtoscopeError, match="already holds other files"):
        with atomic_dir(mine, markers=["steer.json"]) as folder:
            (folder / "steer.json").write_text("{}")
    assert _tree(mine) == {"thesis.tex": b"years of work"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents"]


def test_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max, so no process has it
    stale = [tmp_path / f".out.{dead}.x1.tmp", tmp_path / f".out.{dead}.x2.old"]
    stale[0].mkdir()
    (stale[0] / "half.png").write_bytes(b"\x89PNG")
    stale[1].write_bytes(b"")
    live = tmp_path / f".out.{os.getpid()}.x3.tmp"  # a writer that still runs (this one)
    live.mkdir()
    other = tmp_path / ".out.notes.tmp"  # not ours: no pid in the name
    other.write_text("keep")
    assert sorted(remove_stale_temporaries(tmp_path / "out")) == sorted(stale)
    assert live.exists() and other.exists() and not any(p.exists() for p in stale)


def test_a_sibling_targets_temporaries_are_not_ours(tmp_path):
    """Writing 'run' must not touch '.run.7.<pid>.x.tmp', a temporary of the target 'run.7'."""
    dead = 2**22 + 12345
    sibling = tmp_path / f".run.7.{dead}.x1.tmp"
    sibling.mkdir()
    assert remove_stale_temporaries(tmp_path / "run") == [] and sibling.exists()
    assert remove_stale_temporaries(tmp_path / "run.7") == [sibling] and not sibling.exists()


def test_a_swap_killed_between_its_renames_gets_the_old_output_back(tmp_path):
    """Killed after moving the old folder aside and before renaming the new one in: the next write restores
    the old output instead of deleting it with the stale temporaries."""
    dead = 2**22 + 12345
    target = tmp_path / "out"
    old = tmp_path / f".out.{dead}.x1.old"
    (old / "out").mkdir(parents=True)
    (old / "out" / "a.txt").write_text("earlier output")
    (tmp_path / f".out.{dead}.x2.tmp").mkdir()
    remove_stale_temporaries(target)
    assert _tree(target) == {"a.txt": b"earlier output"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_output_folder_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OtoscopeError, match="is a file"):
        check_output_dir(tmp_path / "file", ["index.html"])
    with pytest.raises(OtoscopeError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file" / "sub", ["index.html"])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(OtoscopeError, match="already holds other files"):
        check_output_dir(tmp_path / "mine", ["index.html"])
    (tmp_path / "mine" / "index.html").write_text("an earlier report")
    assert check_output_dir(tmp_path / "mine", ["index.html"]) == tmp_path / "mine"
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", ["index.html"]) == tmp_path / "empty"
    assert check_output_dir(tmp_path / "new" / "deeper", ["index.html"]) == tmp_path / "new" / "deeper"
