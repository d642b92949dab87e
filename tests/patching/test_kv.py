"""The cross-attention key/value shortcut against the plain HF decoder."""

import torch

from otoscope.patching.kv import cross_kv, cross_kv_rows, kv_modules, substituted
from otoscope.patching.metrics import Readout
from otoscope.patching.runner import WhisperRunner


def test_decode_with_precomputed_kv_equals_hf_forward(tiny_whisper, door):
    inputs = tiny_whisper.prepare(door, text=" Mx")
    runner = WhisperRunner(tiny_whisper)
    with torch.no_grad():
        plain = tiny_whisper(inputs)  # [1, tokens, vocab]
        enc = runner.encoder(inputs.features).last_hidden_state
        fast = runner.decode(cross_kv(runner.kv_mods, enc), Readout(inputs.decoder_input_ids, None), 1)
        picked = runner.decode(cross_kv(runner.kv_mods, enc), Readout(inputs.decoder_input_ids, torch.tensor([[1, 3]])), 1)
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(picked[0, 0], plain[0, [1, 3]], atol=1e-6, rtol=1e-5)


def test_row_updates_equal_full_recompute(tiny_whisper, door):
    runner = WhisperRunner(tiny_whisper)
    mods = kv_modules(tiny_whisper)
    enc = torch.randn(1, 1500, 32)
    new = enc.expand(2, -1, -1).clone()
    new[0, 10:14] += 1.0
    new[1, 700:702] -= 2.0
    index = torch.tensor([[10, 11, 12, 13], [700, 701, 700, 700]])  # padded with repeats
    rows = new.gather(1, index[..., None].expand(-1, -1, 32))
    with torch.no_grad():
        sparse = cross_kv_rows(mods, cross_kv(mods, enc), rows, index)
        full = cross_kv(mods, new)
    for (k1, v1), (k2, v2) in zip(sparse, full):
        torch.testing.assert_close(k1, k2, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(v1, v2, atol=1e-6, rtol=1e-5)
    assert runner.sparse_fraction == 0.5


def test_user_hooks_see_the_substituted_keys_once(tiny_whisper, door):
    """A hook on cross_attn.hook_k fires once per forward with the full keys, exactly as without the shortcut."""
    inputs = tiny_whisper.prepare(door, text=" M")
    runner = WhisperRunner(tiny_whisper)
    seen = []
    hook = ("decoder.blocks.1.cross_attn.hook_k", lambda t, h: seen.append(t.clone()))
    with torch.no_grad():
        with tiny_whisper.hooks([hook]):
            tiny_whisper(inputs)
            enc = runner.encoder(inputs.features).last_hidden_state
            kv = cross_kv(runner.kv_mods, enc)
            runner.decode(kv, Readout(inputs.decoder_input_ids, None), 1)
    assert len(seen) == 2 and seen[0].shape == (1, 1500, 4, 8)
    torch.testing.assert_close(seen[0], seen[1], atol=1e-6, rtol=1e-5)
    with substituted(runner.kv_mods, kv):
        pass
    assert not runner.kv_mods[0][0]._forward_hooks and not runner.kv_mods[0][0]._forward_pre_hooks  # removed


def test_changed_index_and_reused_projections(tiny_whisper):
    from otoscope.patching.rows import changed_frames_only, changed_index

    mask = torch.zeros(3, 10, 1, dtype=torch.bool)
    mask[0, 2:5] = True
    mask[1, 7] = True
    assert changed_index(mask, 0.5).tolist() == [[2, 3, 4], [7, 7, 7], [0, 0, 0]]
    assert changed_index(torch.ones(1, 10, 1, dtype=torch.bool), 0.5) is None
    linear = tiny_whisper.points["encoder.blocks.0.attn.hook_q"].module
    x = torch.randn(1, 1500, 32)
    new = x.expand(2, -1, -1).clone()
    new[0, 3:6] += 1
    new[1, 900] -= 1
    with torch.no_grad():
        base = linear(x)
        index = changed_index((new != x).any(-1, keepdim=True), 0.5)
        with changed_frames_only([(linear, base)], index):
            fast = linear(new)
        plain = linear(new)
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    assert not linear._forward_pre_hooks
