"""Every hook point fires with its documented shape; hooks are exact, removable and effective."""

import re

import numpy as np
import pytest
import torch

from otoscope.errors import HookNameError, OtoscopeError
from otoscope.hooks.points import Site


def _clips(n=2, seconds=(1.0, 0.6)):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(int(16_000 * s)).astype(np.float32) * 0.1 for s in seconds[:n]]


def _axis_sizes(model, inputs, logits):
    cfg = model.config
    d_model = getattr(cfg, "d_model", None) or cfg.hidden_size
    heads = getattr(cfg, "encoder_attention_heads", None) or cfg.num_attention_heads
    sizes = {"batch": len(inputs.clips), "frames": inputs.frame_mask.shape[1], "d_model": d_model, "heads": heads,
             "d_head": d_model // heads, "vocab": logits.shape[-1]}
    sizes["d_mlp"] = getattr(cfg, "encoder_ffn_dim", None) or cfg.intermediate_size
    if model.has_decoder:
        sizes["tokens"] = inputs.decoder_input_ids.shape[1]
    else:
        sizes["d_conv"] = cfg.conv_dim[-1]
    return sizes


def test_every_hook_fires_with_documented_shape(tiny_model):
    inputs = tiny_model.prepare(_clips(), text=" ab" if tiny_model.has_decoder else None)
    names = tiny_model.hook_names()
    logits, cache = tiny_model.run_with_cache(inputs, names_filter=names)
    sizes = _axis_sizes(tiny_model, inputs, logits)
    assert set(cache.keys()) == set(names), set(names) - set(cache.keys())
    for name in names:
        axes = re.findall(r"\w+", tiny_model.points[name].shape)
        expected = tuple(sizes[a] for a in axes)
        assert tuple(cache[name].shape) == expected, (name, tuple(cache[name].shape), expected)
    patterns = [n for n in names if n.endswith("hook_pattern")]
    if patterns:
        rows = cache[patterns[0]].sum(-1)
        torch.testing.assert_close(rows, torch.ones_like(rows))


def test_pattern_hooks_only_on_request(tiny_whisper):
    assert not any("pattern" in n for n in tiny_whisper.hook_names("encoder.blocks.0.attn.*"))
    assert tiny_whisper.hook_names("*.hook_pattern")


def test_identity_hooks_leave_logits_bit_identical(tiny_model):
    inputs = tiny_model.prepare(_clips(), text=" ab" if tiny_model.has_decoder else None)
    with torch.no_grad():
        clean = tiny_model.forward_inputs(inputs)
        non_pattern = [n for n, p in tiny_model.points.items() if p.site is not Site.PATTERN]
        hooked = tiny_model.run_with_hooks(inputs, fwd_hooks=[(n, lambda t, hook: t) for n in non_pattern])
        fired = []
        copy = lambda t, hook: fired.append(hook.name) or t.clone()  # noqa: E731
        copied = tiny_model.run_with_hooks(inputs, fwd_hooks=[(n, copy) for n in non_pattern])
    assert torch.equal(clean, hooked)
    assert set(fired) == set(non_pattern)  # every hook ran and wrote its copy back
    # writing an equal copy back goes through the replacement path (resid_mid: x - residual) and stays exact
    # up to float rounding
    torch.testing.assert_close(copied, clean, atol=1e-6, rtol=1e-6)
    if any(p.site is Site.PATTERN for p in tiny_model.points.values()):
        # the eager kernel used for patterns computes the same attention up to float rounding
        eager = tiny_model.run_with_hooks(inputs, fwd_hooks=[("*.hook_pattern", lambda t, hook: t.clone())])
        torch.testing.assert_close(eager, clean, atol=1e-5, rtol=1e-4)


def test_zero_ablating_a_block_changes_logits(tiny_model):
    inputs = tiny_model.prepare(_clips(), text=" ab" if tiny_model.has_decoder else None)
    clean = tiny_model.run_with_hooks(inputs)
    zero = lambda t, hook: torch.zeros_like(t)  # noqa: E731
    ablated = tiny_model.run_with_hooks(inputs, fwd_hooks=[("encoder.blocks.0.hook_attn_out", zero),
                                                            ("encoder.blocks.0.hook_mlp_out", zero)])
    assert (clean - ablated).abs().max() > 1e-4


def test_hooks_are_removed_on_exit_even_after_errors(tiny_model):
    def counts():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tiny_model.model.modules())

    before = counts()
    with tiny_model.hooks([("encoder.blocks.*.hook_resid_mid", lambda t, h: None)]):
        assert counts() > before
    assert counts() == before

    def boom(t, hook):
        raise RuntimeError("inside hook")

    with pytest.raises(RuntimeError, match="inside hook"):
        tiny_model.run_with_hooks(_clips(1), fwd_hooks=[("encoder.blocks.0.hook_resid_pre", boom)])
    assert counts() == before
    assert not any(hasattr(m, "_otoscope_pattern_hooks") for m in tiny_model.model.modules())


def test_replacing_resid_mid_sets_the_residual(tiny_model):
    """Writing X at hook_resid_mid makes the block output X + mlp(X) (pre-norm), LN(X + mlp(X)) (post-norm)."""
    post_norm = tiny_model.points["encoder.blocks.0.hook_resid_mid"].site is Site.OUTPUT
    inputs = tiny_model.prepare(_clips(1))
    _, cache = tiny_model.run_with_cache(inputs, names_filter="encoder.blocks.0.*")
    target = torch.randn_like(cache["encoder.blocks.0.hook_resid_mid"])
    seen = {}
    hooks = [("encoder.blocks.0.hook_resid_mid", lambda t, h: target),
             ("encoder.blocks.0.hook_mlp_out", lambda t, h: seen.__setitem__("mlp", t)),
             ("encoder.blocks.0.hook_resid_post", lambda t, h: seen.__setitem__("post", t))]
    tiny_model.run_with_hooks(inputs, fwd_hooks=hooks)
    expected = target + seen["mlp"]
    if post_norm:
        expected = tiny_model.points["encoder.blocks.0.hook_resid_post"].module.final_layer_norm(expected)
    torch.testing.assert_close(seen["post"], expected, atol=1e-5, rtol=1e-5)


def test_hook_receives_its_point_and_bad_replacements_fail(tiny_whisper):
    names = []
    tiny_whisper.run_with_hooks(_clips(1), fwd_hooks=[("encoder.blocks.*.hook_resid_post", lambda t, h: names.append(h.name))])
    assert names == ["encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_resid_post"]
    with pytest.raises(OtoscopeError, match="must return None or a tensor of shape"):
        tiny_whisper.run_with_hooks(_clips(1), fwd_hooks=[("encoder.hook_embed", lambda t, h: t[:, :5])])


def test_unknown_names_suggest_the_nearest(tiny_whisper):
    with pytest.raises(HookNameError, match="Did you mean 'encoder.blocks.0.hook_resid_post'"):
        tiny_whisper.run_with_cache(_clips(1), names_filter=["encoder.blocks.0.hook_resid_pots"])
    with pytest.raises(HookNameError, match="matches no hook point"):
        tiny_whisper.run_with_cache(_clips(1), names_filter="decoder.layers.*")
    with pytest.raises(HookNameError, match="accepted no hook point"):
        tiny_whisper.run_with_cache(_clips(1), names_filter=lambda n: False)


def test_wavlm_has_no_qkv_hooks_and_says_why():
    from otoscope import load

    model = load("tiny-random-wavlm")
    assert "encoder.blocks.0.attn.hook_q" not in model.points
    with pytest.raises(HookNameError):
        model.run_with_cache(_clips(1), names_filter="encoder.blocks.0.attn.hook_q")


def test_unsupported_architecture_names_the_class():
    from torch import nn

    from otoscope.hooks.points import build_hook_points

    class MyModel(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="MyModel"):
        build_hook_points(MyModel())


def test_attention_mask_equals_renormalised_pattern(tiny_whisper):
    """The fused masked-SDPA path equals zeroing the pattern outside the mask and renormalising (eager)."""
    from otoscope.geometry.locality import band_mask

    inputs = tiny_whisper.prepare(_clips(1), text=" ab")
    mask = band_mask(1500, 3)

    def renormalise(pattern, hook):
        kept = pattern * mask
        return kept / kept.sum(-1, keepdim=True)

    plain = tiny_whisper.run_with_hooks(inputs, fwd_hooks=[("encoder.blocks.*.attn.hook_pattern", renormalise)])
    with tiny_whisper.attention_mask("encoder.blocks.*.attn.hook_pattern", mask):
        fused = tiny_whisper.run_with_hooks(inputs)
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-4)
    assert (fused - tiny_whisper.run_with_hooks(inputs)).abs().max() > 1e-5  # the mask matters
    assert not any(hasattr(m, "_otoscope_attention_mask") for m in tiny_whisper.model.modules())
    with pytest.raises(OtoscopeError, match="must be boolean"):
        with tiny_whisper.attention_mask("encoder.blocks.0.attn.hook_pattern", mask.float()):
            pass
