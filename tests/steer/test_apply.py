"""Steering by a direction on the real whisper-tiny.en: identity at α=0, exact addition, frames, projection-out, gates."""

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.steer import Direction, Gate, steering
from otoscope.steer.gate import real_frame_counts

HOOK = "encoder.blocks.2.hook_resid_post"
NEXT = "encoder.blocks.3.hook_resid_post"


@pytest.fixture(scope="module")
def clean(tiny_en, speech):
    logits, cache = tiny_en.run_with_cache(speech[0]["path"], text=" Please open", names_filter=[HOOK, NEXT])
    return logits, cache


def direction(model, kind="add", hook=HOOK, **kw):
    v = torch.randn(model.config.d_model, generator=torch.Generator().manual_seed(0))
    return Direction(v, hook, model.name, kind=kind, scale=10.0, **kw)


def test_alpha_zero_is_the_identity(tiny_en, speech, clean):
    with steering(tiny_en, direction(tiny_en), alpha=0.0):
        logits, cache = tiny_en.run_with_cache(speech[0]["path"], text=" Please open", names_filter=[HOOK])
    assert torch.equal(logits, clean[0])
    assert torch.equal(cache[HOOK], clean[1][HOOK])


def test_addition_moves_only_the_selected_frames_by_alpha_scale_v(tiny_en, speech, clean):
    d = direction(tiny_en)
    with steering(tiny_en, d, alpha=0.5, frames=slice(10, 20)):
        logits, cache = tiny_en.run_with_cache(speech[0]["path"], text=" Please open", names_filter=[HOOK, NEXT])
    change = cache[HOOK][0] - clean[1][HOOK][0]  # [frames, d_model]
    expected = 0.5 * 10.0 * d.vector
    assert torch.allclose(change[10:20], expected.expand(10, -1), atol=1e-4)
    assert torch.equal(change[:10], torch.zeros_like(change[:10]))
    assert torch.equal(change[20:], torch.zeros_like(change[20:]))
    assert not torch.allclose(logits, clean[0], atol=1e-3)  # a real model reacts to it
    # frames after the edit see it only through attention in later layers
    assert (cache[NEXT][0] - clean[1][NEXT][0]).norm(dim=-1)[100].item() > 0


def test_projection_out_leaves_no_component_along_the_direction(tiny_en, speech, clean):
    d = direction(tiny_en, kind="project_out")
    before = clean[1][HOOK][0] @ d.vector
    assert before.abs().max() > 0.1  # there was something to remove
    with steering(tiny_en, d):
        _, cache = tiny_en.run_with_cache(speech[0]["path"], text=" Please open", names_filter=[HOOK])
    after = cache[HOOK][0] @ d.vector
    assert after.abs().max() < 1e-4
    rest = cache[HOOK][0] - clean[1][HOOK][0]
    assert torch.allclose(rest, -before[:, None] * d.vector, atol=1e-4)  # nothing else changed


def test_decoder_first_position_only(tiny_en, speech):
    hook = "decoder.blocks.3.hook_resid_post"
    d = direction(tiny_en, hook=hook, positions="first")
    _, plain = tiny_en.run_with_cache(speech[0]["path"], text=" Please open", names_filter=hook)
    with steering(tiny_en, d, alpha=1.0):
        _, cache = tiny_en.run_with_cache(speech[0]["path"], text=" Please open", names_filter=hook)
    change = (cache[hook][0] - plain[hook][0]).norm(dim=-1)
    first = len(tiny_en.task_prefix()) - 1
    assert change[first] == pytest.approx(10.0, rel=1e-4)
    assert float(change.sum() - change[first]) == 0.0  # last layer: no later position is affected


def ellipsis(model):
    return model.model.proj_out.weight[model.to_tokens("...")[0]].detach()


def test_a_token_direction_at_the_first_step_sets_the_first_token(tiny_en, speech):
    d = Direction(ellipsis(tiny_en), "decoder.blocks.3.hook_resid_post", tiny_en.name, alpha=3.0, scale=10.0,
                  positions="first")
    with steering(tiny_en, d):
        steered = tiny_en.transcribe(speech[0]["path"]).text
    plain = tiny_en.transcribe(speech[0]["path"]).text  # hooks removed on exit
    assert plain == "Please open the door."
    assert steered.startswith("...") and steered != plain


def test_gate_steers_only_clips_above_threshold(tiny_en, speech):
    v = torch.randn(tiny_en.config.d_model, generator=torch.Generator().manual_seed(1))
    hook = "decoder.blocks.3.hook_resid_post"
    paths = [speech[0]["path"], speech[1]["path"]]
    for threshold, expect_open in ((-1e6, [True, True]), (1e6, [False, False])):
        d = Direction(ellipsis(tiny_en), hook, tiny_en.name, alpha=3.0, scale=10.0, positions="first",
                      gate=Gate(HOOK, v, threshold))
        with steering(tiny_en, d) as state:
            texts = [t.text for t in tiny_en.transcribe(paths)]
        assert state.open.tolist() == expect_open
        assert [t.startswith("...") for t in texts] == expect_open


def test_real_frame_counts_match_the_frame_mask(tiny_en, manifest):
    inputs = tiny_en.prepare([r["path"] for r in manifest])
    counts = real_frame_counts(inputs.features)
    expected = inputs.frame_mask.sum(1)
    # the fixtures end in 150 ms of digital silence, which the features cannot tell from padding (≤ 8 frames
    # fewer); the centred STFT's extra mel frame can add one
    assert ((expected - counts) >= -1).all() and ((expected - counts) <= 9).all()
    assert (expected - counts).float().mean() > 3  # the trailing silence really is dropped


def test_errors_are_one_line(tiny_en):
    d = direction(tiny_en)
    with pytest.raises(OtoscopeError, match="finite"):
        with steering(tiny_en, d, alpha=float("nan")):
            pass
    other = Direction(d.vector, HOOK, "whisper-base", scale=1.0)
    with pytest.raises(OtoscopeError, match="made for 'whisper-base'"):
        with steering(tiny_en, other):
            pass
