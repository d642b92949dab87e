"""The exact engine against the plain computations: the per-cell TransformerLens loop and the full forward."""

import numpy as np
import pytest
import torch

from otoscope.patching import Cell, PatchConfig, open_session, patch, sweep
from otoscope.patching.naive import naive_patching, naive_run
from otoscope.patching.runner import FullForwardRunner, WhisperRunner


def naive_for(session, cells, direction="denoising"):
    p = session.pair
    if direction == "denoising":
        return naive_patching(session.model, p.corrupt, p.clean, session.metric, p.corrupt_context, p.clean_context, cells)
    return naive_patching(session.model, p.clean, p.corrupt, session.metric, p.clean_context, p.corrupt_context, cells)


def some_cells(session, config, keep):
    cells = session.cells(config, session.hook_names(config.hooks))
    step = max(1, len(cells) // keep)
    return cells[::step][:keep]


SWEEPS = [  # (config, cells kept): every way a patch enters the fast engine
    (PatchConfig(hooks="encoder.blocks.*.hook_resid_post", window=30), 4),  # resume at L+1; last layer: sparse K/V
    (PatchConfig(hooks="encoder.hook_embed", window=40), 1),
    (PatchConfig(hooks="encoder.blocks.1.hook_resid_pre", window=40), 1),
    (PatchConfig(hooks="encoder.blocks.0.hook_attn_out", window=40), 1),  # a hook inside a block
    (PatchConfig(hooks="encoder.blocks.1.attn.hook_z", window=None, heads=True), 2),
    (PatchConfig(hooks="encoder.blocks.0.mlp.hook_post", window=None, neurons=[3, 40]), 2),
    (PatchConfig(hooks="encoder.hook_ln_final", window=20), 2),
    (PatchConfig(hooks="decoder.blocks.*.hook_cross_attn_out", token_window=2), 2),  # cached K/V
    (PatchConfig(hooks="decoder.blocks.1.cross_attn.hook_v", window=40), 1),  # frame axis on the decoder side
    (PatchConfig(hooks="decoder.blocks.0.attn.hook_pattern", heads=True, token_window=None), 1),
]


@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_engine_equals_naive_loop_cell_by_cell(tiny_session, direction):
    cells = [c for config, keep in SWEEPS for c in some_cells(tiny_session, config, keep)]
    cells = cells[::3] if direction == "noising" else cells  # noising: a lighter check of the same paths
    fast = tiny_session.exact(cells, direction)
    slow = naive_for(tiny_session, cells, direction)
    np.testing.assert_allclose(fast, slow, atol=1e-5, rtol=1e-5)
    base = tiny_session.corrupt_value if direction == "denoising" else tiny_session.clean_value
    assert np.abs(slow - base).max() > 1e-3  # patches move the metric far beyond the tolerance: not vacuous


def test_unpatched_runs_equal_the_plain_forward(tiny_session):
    p = tiny_session.pair
    assert tiny_session.clean_value == pytest.approx(naive_run(tiny_session.model, p.clean, tiny_session.metric,
                                                               p.clean_context), abs=1e-5)
    assert tiny_session.corrupt_value == pytest.approx(naive_run(tiny_session.model, p.corrupt, tiny_session.metric,
                                                                 p.corrupt_context), abs=1e-5)


def test_fast_runner_equals_full_forward_runner(tiny_whisper, door, park):
    """Optimised Whisper path vs the plain batched full forward, with two-token answers (two decoder rows)."""
    args = dict(text=" M", answer="ab", wrong="cd", multi_token=True)
    fast = open_session(tiny_whisper, door, park, batch_size=4, **args)
    plain = open_session(tiny_whisper, door, park, batch_size=4, engine="full", **args)
    assert isinstance(fast.runner, WhisperRunner) and isinstance(plain.runner, FullForwardRunner)
    config = PatchConfig(hooks=["encoder.blocks.*.hook_resid_post", "decoder.blocks.1.hook_mlp_out"], window=None,
                         token_window=None)
    cells = fast.cells(config, fast.hook_names(config.hooks))
    np.testing.assert_allclose(fast.exact(cells, "denoising"), plain.exact(cells, "denoising"), atol=1e-5)
    assert fast.clean_value == pytest.approx(plain.clean_value, abs=1e-5)


def test_every_frame_at_any_layer_restores_clean(tiny_session):
    """Patching the whole residual stream at one layer gives exactly the source run: normalised 1 (denoising), 0 (noising)."""
    clean, corrupt = tiny_session.clean_value, tiny_session.corrupt_value
    assert abs(clean - corrupt) > 1e-2  # the tiny model listens: normalised values are meaningful
    result = sweep(tiny_session, hooks="encoder.blocks.*.hook_resid_post", window=None)
    assert [c.frames for c in result.cells] == [(0, 1500), (0, 1500)]
    np.testing.assert_allclose([c.value for c in result.cells], clean, rtol=1e-6)
    np.testing.assert_allclose([c.normalized for c in result.cells], 1.0, atol=1e-3)
    result = sweep(tiny_session, hooks="encoder.blocks.*.hook_resid_post", window=None, direction="noising")
    np.testing.assert_allclose([c.value for c in result.cells], corrupt, rtol=1e-6)
    result = sweep(tiny_session, hooks="decoder.blocks.1.hook_resid_post", token_window=None)
    assert result.cells[0].value == pytest.approx(clean, rel=1e-6)


def test_identity_patch_gives_zero(tiny_session):
    """Writing the base run's own activation back changes nothing: normalised 0 (denoising), 1 (noising)."""
    clean, corrupt = tiny_session.runs(["encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_mlp_out"])
    for name in ("encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_mlp_out"):
        mask = torch.ones((2, 1500, 1), dtype=torch.bool)
        for base, expected in ((corrupt, tiny_session.corrupt_value), (clean, tiny_session.clean_value)):
            out = tiny_session.runner.run_patched(base, name, mask, base.acts[name])
            np.testing.assert_allclose(tiny_session.metric.score(out).numpy(), expected, atol=1e-5)


def test_text_context_pair_leaves_encoder_cells_at_zero(tiny_whisper, door):
    """Same audio, two prompts: encoder activations are identical, so every encoder cell is an identity patch."""
    result = patch(tiny_whisper, door, door, prompt=("xy", "zw"), text=" M", answer="a", wrong="b",
                   hooks="encoder.blocks.1.hook_resid_post", window=40)
    assert abs(result.clean - result.corrupt) > 1e-3
    np.testing.assert_allclose([c.value for c in result.cells], result.corrupt, atol=1e-6)
    np.testing.assert_allclose([c.normalized for c in result.cells], 0.0, atol=1e-3)
    decoder = patch(tiny_whisper, door, door, prompt=("xy", "zw"), text=" M", answer="a", wrong="b",
                    hooks="decoder.blocks.1.hook_resid_post", token_window=None)
    assert decoder.cells[0].normalized == pytest.approx(1.0, abs=1e-3)


def test_noising_a_set_equals_denoising_its_complement(london_session):
    """At one hook, 'clean except S corrupt' and 'corrupt except the rest clean' are the same activation."""
    hook = "encoder.blocks.2.hook_resid_post"
    clean, corrupt = london_session.runs([hook])
    noised = london_session.exact([Cell(hook, 110, 140, "frames")], "noising")[0]
    complement = torch.ones((1, 1500, 1), dtype=torch.bool)  # every frame but 110..140 (a cell is one span)
    complement[:, 110:140] = False
    out = london_session.runner.run_patched(corrupt, hook, complement, clean.acts[hook])
    assert london_session.metric.score(out)[0].item() == pytest.approx(noised, abs=1e-4)
    assert london_session.clean_value - noised > 1  # noising the word's frames hurts


def test_result_frame_and_json(tiny_session):
    result = sweep(tiny_session, hooks="encoder.blocks.*.hook_resid_post", window=40, stride=20)
    frame = result.to_frame()
    n_real = tiny_session.pair.n_frames
    assert len(frame) == len(result.cells) and set(frame.layer) == {0, 1}
    assert frame.frame_start.tolist()[:3] == [0, 20, 40] and frame.frame_end.max() == n_real
    assert frame.start_s.iloc[1] == pytest.approx(0.4) and (frame.direction == "denoising").all()
    data = result.to_json()
    assert list(data) == ["direction", "metric", "clean", "corrupt", "cells"]
    assert list(data["cells"][0]) == ["hook", "layer", "frames", "seconds", "value", "normalized"]
    assert data["cells"][1]["frames"] == [20, 60] and data["cells"][1]["seconds"] == [0.4, 1.2]


def test_seconds_windows_use_the_frame_geometry(tiny_session):
    result = sweep(tiny_session, hooks="encoder.blocks.0.hook_resid_post", window=0.5, window_unit="seconds")
    assert [c.frames for c in result.cells][:2] == [(0, 25), (25, 50)]
    assert result.cells[0].seconds == (0.0, 0.5)


# ---------------------------------------------------------------------------------------------- real model
def test_real_model_engine_equals_naive(london_session):
    """whisper-tiny.en: the resume path (layer 1), the sparse-K/V path (last layer) and a decoder cell."""
    hooks = ["encoder.blocks.1.hook_resid_post", "encoder.blocks.3.hook_resid_post", "decoder.blocks.2.hook_cross_attn_out"]
    cells = [Cell(hooks[0], 110, 120, "frames"), Cell(hooks[1], 60, 70, "frames")]
    fast = london_session.exact(cells, "denoising")
    slow = naive_for(london_session, cells)
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    assert london_session.clean_value > 5 and london_session.corrupt_value < -5  # " London" vs " Paris"
    norm = (fast - london_session.corrupt_value) / (london_session.clean_value - london_session.corrupt_value)
    assert norm[0] > 0.2 and abs(norm[1]) < 0.05  # the word's frames matter, "My name" does not


def test_real_model_every_frame_restores_clean_at_each_layer(london_session):
    result = sweep(london_session, hooks="encoder.blocks.*.hook_resid_post", window=None, batch_size=4)
    np.testing.assert_allclose([c.normalized for c in result.cells], 1.0, atol=1e-4)


@pytest.mark.parametrize("hook", ["encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_mlp_out"])
def test_path_matches_one_patch_at_a_time(tiny_session, hook):
    """Several sources in one batch (one per cell): each row equals its own single patched run."""
    cell = Cell(hook, 0, 80, "frames")  # most of the clip: each path step moves the metric by ≥ 2e-4
    path = tiny_session.path(cell, "denoising", (0.0, 0.5, 1.0))
    clean, corrupt = tiny_session.runs([hook])
    mask = torch.zeros((1, 1500, 1), dtype=torch.bool)
    mask[:, 0:80] = True
    half = corrupt.acts[hook] + 0.5 * (clean.acts[hook] - corrupt.acts[hook])
    single = tiny_session.metric.score(tiny_session.runner.run_patched(corrupt, hook, mask, half))[0].item()
    # batched and single rows differ only by float32 rounding (a few ulps of values ~3), on any CPU
    assert path[1] == pytest.approx(single, rel=1e-6)
    assert path[0] == pytest.approx(tiny_session.corrupt_value, rel=1e-6)
    assert path[2] == pytest.approx(tiny_session.exact([cell], "denoising")[0], rel=1e-6)
    # three clearly different points: far more apart than the rounding above, so a path that ignored α would fail
    assert min(abs(path[1] - path[0]), abs(path[2] - path[1])) > 1e-4
