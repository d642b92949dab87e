"""The leaderboard: everything from the run is escaped, heatmaps are drawn, and Chromium renders it."""

import copy

import pytest

from otoscope.bench.leaderboard import _colour, heatmap, render, write_leaderboard
from otoscope.report.screenshot import find_chromium, screenshot

HOSTILE = '<script>alert("x")</script>'


def _results(model="whisper-tiny.en", reason="fine"):
    cells = [{"hook": f"encoder.blocks.{k}.hook_resid_post", "layer": k, "frames": [f, f + 10],
              "seconds": [f / 50, (f + 10) / 50], "tokens": None} for k in range(2) for f in (0, 10, 20)]
    scores = {"spearman": 0.5, "pearson": 0.4, "top_recall": 0.6, "region_share": None, "time_fraction": 0.1}
    entry = {"units": 3, "dropped": 1, "dropped_reasons": [{"pair": "p1", "reason": reason}], "clean": 2.0,
             "corrupt": -1.0, "grounding": [{"layer": 0, "gc": 0.9, "delta_audio": 0.9, "delta_text": 0.1, "n": 3, "pairs": 3}],
             "methods": {m: {**scores, "n": 3, "seconds": 1.0, "spearman_by_direction": {"denoising": 0.5}}
                         for m in ("exact", "random")},
             "example": {"pair": "p0", "direction": "denoising", "cells": cells, "inside": [False, True, False] * 2,
                         "effects": {"exact": [0.1, 0.9, -0.5, 0.0, 1.2, None], "random": [0.3] * 6}}}
    return {"suite": {"name": "otoscope-audio-causal", "version": "1", "seed": 0, "quick": True, "pairs_per_task": 5,
                      "frames_per_cell": 25},
            "models": [model], "methods": ["exact", "random"],
            "method_descriptions": {"exact": "reference", "random": "floor"},
            "tasks": {"keyword": {"title": "Keyword spotting", "question": "Where?", "directions": ["denoising"],
                                  "hooks": "encoder.blocks.*.hook_resid_post", "pairs": 5, "candidates": 6,
                                  "dropped_at_build": {model: 1}, "models": {model: entry}}},
            "overall": {model: {m: scores for m in ("exact", "random")}}}


def test_everything_from_the_run_is_escaped():
    html = render(_results(model=HOSTILE, reason=HOSTILE))
    assert "<script>" not in html and "&lt;script&gt;" in html
    results = _results()
    results["tasks"]["keyword"]["question"] = HOSTILE
    results["method_descriptions"]["random"] = HOSTILE
    assert "<script>" not in render(results)


def test_a_partial_run_says_so():
    results = _results()
    results["run"] = {"units_run": 3, "units_resumed": 0, "seconds": 1.0, "complete": False}
    assert "Partial run: 3 units" in render(results)
    results["run"]["complete"] = True
    assert "Partial run" not in render(results)


def test_heatmap_cells_and_colours():
    example = _results()["tasks"]["keyword"]["models"]["whisper-tiny.en"]["example"]
    html = heatmap(example, "exact")
    assert html.count("<td") == 6 and html.count("<tr>") == 2 and html.count('class="in"') == 2
    assert _colour(1.2) == _colour(1.0) == "rgb(255,0,0)" and _colour(0.0) == "rgb(255,255,255)"
    assert _colour(-1.0) == "rgb(0,0,255)" and _colour(None) == "#eeeeee"


def test_missing_model_entries_render_as_dashes():
    results = copy.deepcopy(_results())
    results["models"].append("whisper-base")
    results["overall"]["whisper-base"] = {m: dict.fromkeys(results["overall"]["whisper-tiny.en"]["exact"]) for m in
                                          ("exact", "random")}
    assert "whisper-base" in render(results)


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_renders_in_headless_chromium(tmp_path):
    page = write_leaderboard(tmp_path / "leaderboard.html", _results())
    png = screenshot(page, tmp_path / "shot.png", width=1000, height=1200)
    from PIL import Image

    import numpy as np

    image = Image.open(png).convert("RGB")
    colours = {tuple(int(v) for v in px) for px in np.asarray(image).reshape(-1, 3)}
    assert image.size == (1000, 1200) and len(colours) > 20  # text, tables and coloured heatmap cells drawn
    assert (255, 0, 0) in colours or any(r > 240 and g < 30 and b < 30 for r, g, b in colours)  # a red heatmap cell


def test_the_header_says_what_the_encoder_saw():
    results = _results()
    assert "the whole 30 s encoder window" in render(results)  # older results files have no encoder_seconds
    results["suite"]["encoder_seconds"] = 5.0
    assert "a 5 s encoder window" in render(results) and "whole 30 s" not in render(results)
    results["suite"]["windowed_models"] = []  # a run of CTC models only: no encoder window to speak of
    assert "encoder window" not in render(results) and "frames per cell, models: whisper-tiny.en" in render(results)
    results["suite"]["windowed_models"] = ["whisper-tiny.en"]
    assert "a 5 s encoder window; models:" in render(results)
