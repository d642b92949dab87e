"""The harness: a killed run resumes where it stopped; units score methods against exact; CTC units."""

import dataclasses
import json

import numpy as np
import pytest

from otoscope.audio.io import Clip
from otoscope.bench import runner
from otoscope.bench.metrics import CTC_VOCAB
from otoscope.bench.pair import BenchPair
from otoscope.bench.runner import BenchConfig, run_bench, run_unit
from otoscope.bench.sources import espeak_available
from otoscope.bench.suite import MANIFEST, load_suite
from otoscope.errors import OtoscopeError

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@needs_espeak
def test_a_killed_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = BenchConfig(models=("whisper-tiny.en",), tasks=("keyword",), methods=("exact", "random"),
                         n_pairs=2, window=50)
    real, calls = runner.run_unit, []

    def killed_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt  # the run is killed inside its second unit
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_unit", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        run_bench(out, config, log=lambda s: None)
    units = sorted((out / "units").rglob("*.json"))
    assert len(units) == 1 and not (out / "results.json").exists()
    first = units[0].stat().st_mtime_ns

    monkeypatch.setattr(runner, "run_unit", real)
    lines = []
    results = run_bench(out, config, log=lines.append)
    assert results["run"]["units_run"] == 1 and results["run"]["units_resumed"] == 1 and results["run"]["complete"]
    assert units[0].stat().st_mtime_ns == first  # the finished unit was not redone
    assert any("resuming" in line for line in lines)
    entry = results["tasks"]["keyword"]["models"]["whisper-tiny.en"]
    assert entry["units"] == 2 and entry["dropped"] == 0
    assert entry["methods"]["exact"]["spearman"] == pytest.approx(1.0)
    assert entry["methods"]["exact"]["top_recall"] == 1.0
    assert set(entry["methods"]) == {"exact", "random"}
    assert json.loads((out / "results.json").read_text())["tasks"]["keyword"]["pairs"] == 2
    assert "Keyword spotting" in (out / "leaderboard.html").read_text()

    # the task set on disk, readable without otoscope: a manifest with relative audio paths
    manifest = json.loads((out / "suite" / MANIFEST).read_text())
    for pair in manifest["tasks"]["keyword"]["pairs"]:
        assert (out / "suite" / pair["clean"]).is_file() and (out / "suite" / pair["corrupt"]).is_file()
        assert pair["details"]["check"]["whisper-tiny.en"]["clean"] > 0
    suite = load_suite(out / "suite")
    assert [p.id for p in suite.tasks["keyword"].pairs] == [p["id"] for p in manifest["tasks"]["keyword"]["pairs"]]

    # a unit's exact scores are exact patching's own, cell for cell
    unit = json.loads(units[0].read_text())
    pair = next(p for p in suite.tasks["keyword"].pairs if p.id == unit["pair"])
    from otoscope.bench.metrics import session_options
    from otoscope.models.loader import load
    from otoscope.patching import patch

    model = load("whisper-tiny.en")
    width = unit["cells"][0]["frames"][1] - unit["cells"][0]["frames"][0]  # 50, or the whole clip when shorter
    plain = patch(model, pair.clean, pair.corrupt, hooks="encoder.blocks.*.hook_resid_post", window=width,
                  **session_options(model, pair))
    assert unit["methods"]["exact"]["normalized"] == pytest.approx([c.normalized for c in plain.cells], abs=1e-4)

    with pytest.raises(OtoscopeError, match="another suite"):
        run_bench(out, dataclasses.replace(config, window=25), log=lambda s: None)


def test_other_folders_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OtoscopeError, match="other files"):
        run_bench(tmp_path, BenchConfig(models=("whisper-tiny.en",), tasks=("keyword",)), log=lambda s: None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_config_errors():
    with pytest.raises(OtoscopeError, match="Did you mean 'keyword'"):
        BenchConfig(tasks=("keywrd",))
    with pytest.raises(OtoscopeError, match="unknown method"):
        BenchConfig(methods=("exactly",))
    assert BenchConfig(methods=("random",)).methods == ("exact", "random")  # the reference always runs
    assert BenchConfig(quick=True).frames_per_cell == 25 and BenchConfig().frames_per_cell == 10
    # what --quick trades away besides pairs and cell size (docs/benchmark.md, Quick)
    assert BenchConfig(quick=True).directions("asr-word") == ("denoising",)
    assert BenchConfig().directions("asr-word") == ("denoising", "noising")
    assert (BenchConfig(quick=True).ig_steps, BenchConfig().ig_steps) == (3, 5)


def test_ctc_unit_on_a_tiny_random_ctc_model():
    import otoscope

    model = otoscope.load("tiny-random-wav2vec2")
    rng = np.random.default_rng(0)
    clean = Clip(rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
    corrupt = Clip(rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
    region = (0.2, 0.7)
    first, last = (int(v) for v in model.geometry.convert(list(region), "seconds", "frames"))
    best = model.forward([clean])[0, first:last].log_softmax(-1).max(0).values.detach().numpy()
    letters = [i for i, c in enumerate(CTC_VOCAB) if c.isalpha()]
    order = sorted(letters, key=lambda i: best[i])
    # the clean "word" is the letter the random model favours most, the corrupt one the letter it favours least
    pair = BenchPair("ctc-word-000", "ctc-word", clean, corrupt, "ctc_chars", answer=CTC_VOCAB[order[-1]],
                     wrong=CTC_VOCAB[order[0]], region=region)
    unit = run_unit(model, "ctc-word", pair, "denoising", ("exact", "attribution", "attribution-ig", "random"), 10, 0)
    assert unit.status == "ok" and unit.clean > 0
    assert len(unit.cells) == 2 * 5  # 2 layers × 50 frames in windows of 10
    assert unit.inside == [c["seconds"][0] < 0.7 and c["seconds"][1] > 0.2 for c in unit.cells]  # overlaps the region
    assert unit.scores["exact"]["spearman"] == pytest.approx(1.0)
    assert all(len(m["normalized"]) == len(unit.cells) for m in unit.methods.values())
    for name in ("attribution", "attribution-ig", "random"):
        assert unit.scores[name]["time_fraction"] is not None


def test_tasks_apply_by_model_family():
    import otoscope
    from otoscope.bench.tasks import TASKS

    whisper, ctc = otoscope.load("tiny-random-whisper"), otoscope.load("tiny-random-wav2vec2")
    assert [n for n, t in TASKS.items() if t.applies_to(whisper)] == ["asr-word", "keyword", "noise", "context", "nonspeech"]
    assert [n for n, t in TASKS.items() if t.applies_to(ctc)] == ["ctc-word"]


def test_encoder_window_options():
    assert BenchConfig(quick=True).window_seconds == 5.0 and BenchConfig().window_seconds is None
    assert BenchConfig(quick=True, encoder_seconds=30).window_seconds is None  # 30 s is Whisper's own window
    assert "encoder_seconds" not in BenchConfig().identity()  # full-window runs of earlier versions still resume
    assert "encoder_seconds" not in BenchConfig(quick=True, encoder_seconds=30).identity()  # nor earlier quick runs
    assert BenchConfig(quick=True).identity()["encoder_seconds"] == 5.0
    for bad in (0, -2, 31):
        with pytest.raises(OtoscopeError, match="encoder_seconds"):
            BenchConfig(encoder_seconds=bad)


def test_a_suite_longer_than_the_window_is_refused():
    from otoscope.bench.suite import check_fits

    rate = 16_000
    clip = Clip(np.zeros(int(3.5 * rate), dtype=np.float32), rate, "long")
    pair = BenchPair("keyword-000", "keyword", clip, clip, "logit_diff")

    check_fits([pair], None)
    check_fits([pair], 4.0)
    with pytest.raises(OtoscopeError, match="--encoder-seconds 4 or more"):
        check_fits([pair], 3.0)


def test_windowed_sweeps_match_the_full_forward_engine(tiny_en, london_pair):
    """Under a 5 s window the prefix-reusing runner, the gradient passes and the plain full forward agree (real
    tiny.en, the London/Paris pair: effects up to ~0.5 of the logit difference)."""
    from otoscope.patching import open_session, sweep

    with runner.encoder_windows([tiny_en], 5.0):
        assert tiny_en.geometry.window_frames == 250
        maps = {}
        for engine in ("auto", "full"):
            session = open_session(tiny_en, london_pair.clean, london_pair.corrupt, answer=london_pair.answer,
                                   wrong=london_pair.wrong, text=london_pair.text, engine=engine)
            maps[engine] = {m: sweep(session, hooks="encoder.blocks.*.hook_resid_post", window=25, method=m)
                            for m in ("exact", "two-point")}
    exact = np.array([c.normalized for c in maps["full"]["exact"].cells])
    assert exact.max() > 0.3  # the word's cells carry a large share: a wrong engine would show
    for method in ("exact", "two-point"):
        np.testing.assert_allclose([c.normalized for c in maps["auto"][method].cells],
                                   [c.normalized for c in maps["full"][method].cells], atol=2e-3)
    assert tiny_en.geometry.window_frames == 1500


def test_a_window_refused_by_a_later_model_leaves_none_set(tiny_whisper):
    import otoscope

    ctc = otoscope.load("tiny-random-wav2vec2")
    free = ctc.geometry
    ctc.geometry = dataclasses.replace(free, window_frames=1500)  # as if it had a fixed window it cannot shorten
    try:
        with pytest.raises(OtoscopeError, match="encoder window"):
            runner.encoder_windows([tiny_whisper, ctc], 5.0)
    finally:
        ctc.geometry = free
    assert tiny_whisper.geometry.window_frames == 1500 and tiny_whisper.encoder_seconds is None


def test_a_candidate_longer_than_the_window_names_the_option(tiny_whisper, tmp_path, monkeypatch):
    from otoscope.bench.suite import SuiteConfig, build_suite
    from otoscope.bench.tasks import TASKS

    rate = 16_000
    clip = Clip(np.zeros(int(3.5 * rate), dtype=np.float32), rate, "long")
    pair = BenchPair("keyword-000", "keyword", clip, clip, "logit_diff")
    monkeypatch.setitem(TASKS, "keyword", dataclasses.replace(TASKS["keyword"], generate=lambda seed: iter([pair])))
    with tiny_whisper.encoder_window(3):  # refused before any model check or file
        with pytest.raises(OtoscopeError, match="--encoder-seconds 4 or more"):
            build_suite(tmp_path / "suite", SuiteConfig(("keyword",), n_pairs=1), [tiny_whisper])
    assert not (tmp_path / "suite").exists()


@needs_espeak
def test_a_quick_run_of_ctc_models_only_records_no_encoder_window(tmp_path):
    # --quick's 5 s window applies to Whisper only; a run without one must not claim it used one
    results = run_bench(tmp_path / "run", BenchConfig(models=("tiny-random-wav2vec2",), tasks=("ctc-word",),
                                                       methods=("exact",), quick=True, n_pairs=1), log=lambda s: None)
    assert results["suite"]["encoder_seconds"] is None and results["suite"]["windowed_models"] == []
    assert results["run"]["complete"] and results["tasks"]["ctc-word"]["models"]["tiny-random-wav2vec2"]["units"] == 1
    assert "encoder window" not in (tmp_path / "run" / "leaderboard.html").read_text()
