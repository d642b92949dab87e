"""Heatmaps for every kind of cell, and the HTML section for the report."""

from otoscope.patching import sweep
from otoscope.patching.grounding import grounding_coefficient
from otoscope.patching.plots import plot_heatmap
from otoscope.report.sections.patching import patching_html


def test_heatmaps_for_frames_tokens_and_heads(tiny_session, london_pair, tmp_path):
    frames = sweep(tiny_session, hooks="encoder.blocks.*.hook_resid_post", window=20, words=london_pair.clean_words)
    tokens = sweep(tiny_session, hooks="decoder.blocks.*.hook_attn_out", direction="noising")
    heads = sweep(tiny_session, hooks="encoder.blocks.0.attn.hook_z", heads=True, window=None)
    for name, result in (("frames", frames), ("tokens", tokens), ("heads", heads)):
        path = plot_heatmap(result, tmp_path / f"{name}.png")
        assert path.stat().st_size > 5000
    html = patching_html(frames, tmp_path / "assets", grounding=grounding_coefficient(tiny_session))
    assert "<img src='assets/patching_heatmap.png'" in html and "Grounding coefficient" in html
    assert (tmp_path / "assets" / "patching_heatmap.png").exists()
