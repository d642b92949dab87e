"""``compare_runs`` / ``otoscope bench compare``: two run folders compared unit by unit, on hand-made runs."""

import json

import numpy as np
import pytest

from otoscope.bench.compare import compare_runs
from otoscope.cli.main import main
from otoscope.errors import OtoscopeError

HOOK = "encoder.blocks.0.hook_resid_post"


def _cells(n, window=10):
    return [{"hook": HOOK, "layer": 0, "frames": [i * window, (i + 1) * window],
             "seconds": [i * window / 50, (i + 1) * window / 50], "tokens": None} for i in range(n)]


def _write_run(root, units, audio=b"clean-bytes", pair_text="a cat sat"):
    """A run folder: a manifest of the units' pairs (asr-word) and one unit file per ``units`` entry.

    ``units``: ``(pair, direction, exact normalised scores, {method: (normalised, spearman)}, status, window)``."""
    pairs = sorted({u[0] for u in units})
    (root / "suite" / "asr-word").mkdir(parents=True)
    entries = []
    for pair in pairs:
        for side in ("clean", "corrupt"):
            (root / "suite" / "asr-word" / f"{pair}.{side}.flac").write_bytes(audio + side.encode())
        entries.append({"id": pair, "task": "asr-word", "clean": f"asr-word/{pair}.clean.flac",
                        "corrupt": f"asr-word/{pair}.corrupt.flac", "metric": "logit_diff", "text": pair_text,
                        "details": {"voice": "en-us", "check": {"m": {"clean": float(len(root.name))}}}})
    (root / "suite" / "manifest.json").write_text(json.dumps({"tasks": {"asr-word": {"pairs": entries}}}))
    folder = root / "units" / "m" / "asr-word"
    folder.mkdir(parents=True)
    for pair, direction, exact, others, status, window in units:
        methods = {"exact": {"normalized": list(exact), "seconds": 1.0}}
        scores = {"exact": {"spearman": 1.0}}
        for name, (normalized, rho) in others.items():
            methods[name] = {"normalized": list(normalized), "seconds": 0.1}
            scores[name] = {"spearman": rho}
        unit = {"model": "m", "task": "asr-word", "pair": pair, "direction": direction, "status": status,
                "cells": _cells(len(exact), window), "methods": methods, "scores": scores}
        (folder / f"{pair}.{direction}.json").write_text(json.dumps(unit))
    return root


EXACT = [0.9, 0.05, 0.6, -0.2, 0.01, 0.3, 0.0, 0.45]


def test_identical_runs_agree_exactly(tmp_path):
    unit = ("p0", "denoising", EXACT, {"attribution": (EXACT, 0.4)}, "ok", 10)
    a, b = _write_run(tmp_path / "a", [unit]), _write_run(tmp_path / "b", [unit])
    c = compare_runs(a, b)
    maps = c.maps().iloc[0]
    assert (maps.units, maps.exact_spearman, maps.exact_pearson, maps.exact_top_overlap) == (1, 1.0, 1.0, 1.0)
    row = c.methods().iloc[0]
    assert (row.method, row.spearman_a, row.spearman_b, row.spearman_shift) == ("attribution", 0.4, 0.4, 0.0)
    assert c.skipped == []  # the build's check scores differ between the folders and do not count


def test_maps_and_shifts_are_the_plain_computation(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 12))
    y = x + rng.normal(scale=[[0.1], [1.0], [3.0]], size=(3, 12))  # three pairs, agreeing less and less
    rho_a, rho_b = [0.2, 0.5, 0.7], [0.3, 0.1, 0.9]
    a = _write_run(tmp_path / "a", [(f"p{i}", "denoising", x[i], {"two-point": (x[i], rho_a[i])}, "ok", 10)
                                    for i in range(3)])
    b = _write_run(tmp_path / "b", [(f"p{i}", "denoising", y[i], {"two-point": (y[i], rho_b[i])}, "ok", 10)
                                    for i in range(3)])
    c = compare_runs(a, b)

    def ranks(v):
        return np.argsort(np.argsort(v)).astype(float)  # no ties in continuous draws

    rhos = [np.corrcoef(ranks(x[i]), ranks(y[i]))[0, 1] for i in range(3)]
    tops = [len(set(np.argsort(-np.abs(x[i]))[:5]) & set(np.argsort(-np.abs(y[i]))[:5])) / 5 for i in range(3)]
    assert c.units["exact_spearman"].tolist() == pytest.approx(rhos)
    assert c.units["exact_pearson"].tolist() == pytest.approx([np.corrcoef(x[i], y[i])[0, 1] for i in range(3)])
    assert c.units["exact_top_overlap"].tolist() == pytest.approx(tops)
    assert rhos[0] > rhos[2]  # the noisier pair agrees less: the test inputs can tell a wrong answer
    maps = c.maps().iloc[0]
    assert maps.exact_spearman == pytest.approx(np.mean(rhos)) and maps.exact_spearman_min == pytest.approx(min(rhos))
    row = c.methods().iloc[0]
    assert row.spearman_a == pytest.approx(np.mean(rho_a)) and row.spearman_b == pytest.approx(np.mean(rho_b))
    assert row.spearman_shift == pytest.approx(np.mean(np.subtract(rho_b, rho_a)))
    assert row.largest_unit_shift == pytest.approx(0.4)


def test_noising_units_rank_cells_by_effect_not_by_normalised_score(tmp_path):
    # noising effect = 1 - normalised: cell 0 (normalised 1.0) has no effect, cell 1 (normalised -2) the largest
    a_scores = [1.0, -2.0, 0.5, 0.9, 0.8, 0.7]
    b_scores = [3.0, -2.0, 0.5, 0.9, 0.8, 0.7]  # cell 0's |normalised| is largest in b, its |effect| is 2
    a = _write_run(tmp_path / "a", [("p0", "noising", a_scores, {}, "ok", 10)])
    b = _write_run(tmp_path / "b", [("p0", "noising", b_scores, {}, "ok", 10)])
    overlap = compare_runs(a, b).units["exact_top_overlap"].iloc[0]
    effects_a, effects_b = 1 - np.array(a_scores), 1 - np.array(b_scores)
    expected = len(set(np.argsort(-np.abs(effects_a))[:5]) & set(np.argsort(-np.abs(effects_b))[:5])) / 5
    assert overlap == pytest.approx(expected) and expected == 0.8


def test_units_that_cannot_be_compared_are_skipped_with_the_reason(tmp_path):
    ok = ("p0", "denoising", EXACT, {}, "ok", 10)
    a = _write_run(tmp_path / "a", [ok, ("p1", "denoising", EXACT, {}, "ok", 10),
                                    ("p2", "denoising", EXACT, {}, "dropped", 10), ("p3", "noising", EXACT, {}, "ok", 10)])
    b = _write_run(tmp_path / "b", [ok, ("p1", "denoising", EXACT, {}, "ok", 25),
                                    ("p2", "denoising", EXACT, {}, "ok", 10), ("p4", "noising", EXACT, {}, "ok", 10)])
    reasons = {s["unit"]: s["reason"] for s in compare_runs(a, b).skipped}
    assert "different cells" in reasons["m/asr-word/p1.denoising.json"]
    assert "not scored in both" in reasons["m/asr-word/p2.denoising.json"]
    assert reasons["m/asr-word/p3.noising.json"] == f"only in {a}" and reasons["m/asr-word/p4.noising.json"] == f"only in {b}"
    assert len(reasons) == 4

    other_audio = _write_run(tmp_path / "c", [ok], audio=b"other-bytes")
    other_text = _write_run(tmp_path / "d", [ok], pair_text="a bat sat")
    for folder in (other_audio, other_text):
        with pytest.raises(OtoscopeError, match="share no comparable unit.*different pair"):
            compare_runs(a, folder)


def test_cli_prints_both_tables_writes_json_and_refuses_a_non_run(tmp_path, capsys):
    unit = ("p0", "denoising", EXACT, {"hybrid": (EXACT, 0.8)}, "ok", 10)
    a, b = _write_run(tmp_path / "a", [unit]), _write_run(tmp_path / "b", [unit])
    assert main(["bench", "compare", str(a), str(b), "--json", str(tmp_path / "cmp.json")]) == 0
    out = capsys.readouterr().out
    assert "1 units compared" in out and "Spearman 1.00 (1.00)" in out and "hybrid 0.80->0.80" in out
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["methods_compared"] == ["hybrid"] and saved["maps"][0]["exact_top_overlap"] == 1.0

    (tmp_path / "empty").mkdir()
    assert main(["bench", "compare", str(tmp_path / "empty"), str(b)]) == 2
    err = capsys.readouterr().err
    assert "holds no unit files" in err and len(err.strip().splitlines()) == 1
