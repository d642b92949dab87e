"""Factored cross-attention (queries mapped into d_model, scored against the encoder output) against the
plain HF decoder computing keys and values itself."""

import pytest
import torch

from otoscope.patching.factored import applicable, cheaper, factored_cross_attention
from otoscope.patching.metrics import Readout
from otoscope.patching.runner import WhisperRunner


def plain_decode(runner, memory, rows):
    """Logits ``[cells * rows, tokens, vocab]`` of the unmodified decoder; row ``c * rows + r`` reads cell ``c``."""
    n_rows = rows.shape[0]
    hidden = runner.decoder(input_ids=rows.repeat(memory.shape[0], 1),
                            encoder_hidden_states=memory.repeat_interleave(n_rows, dim=0), use_cache=False)
    return runner.proj_out(hidden.last_hidden_state)


def encoder_outputs(runner, model, clips, cells):
    """``cells`` different encoder outputs: the clips' own, then mixtures of them."""
    outs = [runner.encoder(model.prepare(c).features).last_hidden_state for c in clips]
    while len(outs) < cells:
        k = len(outs)
        outs.append(0.5 * (outs[k % len(clips)] + outs[(k + 1) % len(clips)]) + 0.1 * torch.randn_like(outs[0]))
    return torch.cat(outs[:cells])


def check(model, clips, texts, cells, atol):
    runner = WhisperRunner(model)
    tok = [model.prepare(clips[0], text=t).decoder_input_ids[0] for t in texts]
    width = min(len(t) for t in tok)
    rows = torch.stack([t[:width] for t in tok])  # [rows, tokens]: different token rows
    with torch.no_grad():
        memory = encoder_outputs(runner, model, clips, cells)
        plain = plain_decode(runner, memory, rows)  # [cells * rows, tokens, vocab]
        full = Readout(rows, None)
        factored = runner.decode(memory, full, cells, factored=True)
        kv = runner.decode(memory, full, cells, factored=False)
        picked = runner.decode(memory, Readout(rows, torch.tensor([[width - 1, 1]] * len(texts))), cells,
                               factored=True)  # [cells, rows, positions, vocab]
        single = runner.decode(memory[1:2], full, 1, factored=True)  # batch 1
    torch.testing.assert_close(factored, plain, atol=atol, rtol=1e-5)
    torch.testing.assert_close(kv, plain, atol=atol, rtol=1e-5)
    torch.testing.assert_close(picked.flatten(0, 1), plain[:, [width - 1, 1]], atol=atol, rtol=1e-5)
    torch.testing.assert_close(single, plain[len(texts):2 * len(texts)], atol=atol, rtol=1e-5)
    assert all("forward" not in m.__dict__ for m in runner.cross_attns)  # the modules' own forward is back


def test_factored_decode_equals_plain_decoder_tiny_random(tiny_whisper, door, park):
    check(tiny_whisper, [door, park], [" My", " Me", " A"], cells=3, atol=1e-5)


def test_factored_decode_equals_plain_decoder_whisper_tiny(tiny_en, door, park):
    check(tiny_en, [door, park], [" My name is John", " I live in a house", " The door is open"], cells=3, atol=1e-4)


def test_factored_decode_is_as_accurate_as_the_plain_one_on_whisper_tiny(tiny_en, door, park):
    """The factored form only reorders sums: against a float64 decoder, its logits are as close as the plain
    decoder's (both ~4e-5 on logits of size ~10)."""
    import copy

    runner = WhisperRunner(tiny_en)
    rows = tiny_en.prepare(door, text=" My name is John and I live in").decoder_input_ids  # [1, tokens]
    with torch.no_grad():
        memory = encoder_outputs(runner, tiny_en, [door, park], 2)
        plain = plain_decode(runner, memory, rows)
        factored = runner.decode(memory, Readout(rows, None), 2)  # by cost: factored on whisper-tiny
        hf64 = copy.deepcopy(tiny_en.model).double()
        hidden = hf64.model.decoder(input_ids=rows.repeat(2, 1), encoder_hidden_states=memory.double(), use_cache=False)
        exact = hf64.proj_out(hidden.last_hidden_state)
    assert applicable(runner.cross_attns, rows.shape[1])
    error, plain_error = (factored - exact).abs().max().item(), (plain - exact).abs().max().item()
    assert error < 1e-4 and error < 1.5 * plain_error, (error, plain_error)


def test_hooks_on_queries_and_outputs_fire_and_keys_force_the_plain_path(tiny_whisper, door):
    runner = WhisperRunner(tiny_whisper)
    rows = tiny_whisper.prepare(door, text=" M").decoder_input_ids
    seen = {"factored": [], "plain": []}
    names = ["decoder.blocks.1.cross_attn.hook_q", "decoder.blocks.1.cross_attn.hook_z",
             "decoder.blocks.0.hook_cross_attn_out"]
    with torch.no_grad():
        memory = encoder_outputs(runner, tiny_whisper, [door], 2)
        for way in seen:
            hooks = [(n, lambda t, h, way=way: seen[way].append(t.clone())) for n in names]
            with tiny_whisper.hooks(hooks):
                runner.decode(memory, Readout(rows, None), 2, factored=way == "factored")
        assert len(seen["factored"]) == len(names)
        for a, b in zip(seen["factored"], seen["plain"]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        # a hook on keys, values or probabilities needs them computed: the factored form steps aside
        keys = []
        for name in ("decoder.blocks.0.cross_attn.hook_k", "decoder.blocks.1.cross_attn.hook_pattern"):
            with tiny_whisper.hooks([(name, lambda t, h: keys.append(t.shape))]):
                assert not applicable(runner.cross_attns, rows.shape[1], True)
                runner.decode(memory, Readout(rows, None), 2, factored=True)
        assert keys == [(2, 1500, 4, 8), (2, 4, rows.shape[1], 1500)]
    assert applicable(runner.cross_attns, rows.shape[1], True)


def test_cost_rule_and_exception_safety(tiny_whisper, tiny_en):
    attn = WhisperRunner(tiny_en).cross_attns[0]  # d_model 384, 6 heads
    assert cheaper(attn, 76) and not cheaper(attn, 77)
    runner = WhisperRunner(tiny_whisper)
    with pytest.raises(ValueError), factored_cross_attention(runner.cross_attns, torch.zeros(1, 1500, 32)):
        assert all("forward" in m.__dict__ for m in runner.cross_attns)
        raise ValueError
    assert all("forward" not in m.__dict__ for m in runner.cross_attns)
