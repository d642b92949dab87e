"""gc(k) on tiny audio-LLMs whose answer depends, by construction, only on the audio or only on the prompt."""

import math

import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.listen.engine import RESID, Cell, fast_patch, naive_patch
from otoscope.listen.grounding import gc_of, listen, normalised
from otoscope.listen.pairs import ListenPair, prepare_listen_pair

from .conftest import attend_only, noise, separating_pair, tone

PROMPT, OTHER = "The word is cat.", "The word is dog."  # same length in (byte) tokens: positions line up


def _masked(llm, kind):
    positions = llm.prepare(tone(), text=PROMPT).positions[0]
    return [("llm.blocks.*.attn.hook_pattern", attend_only(kind, positions, positions.n_tokens))]


@pytest.mark.parametrize("engine", ["fast", "naive"])
def test_answer_from_audio_only_gives_gc_one(llm, engine):
    hooks = _masked(llm, "audio")  # no position reads the prompt: only audio tokens can carry the difference
    pair = separating_pair(llm, tone(), noise(), PROMPT, OTHER, hooks)  # a conflict pair: audio and prompt differ
    with llm.hooks(hooks):
        result = listen(llm, [pair], engine=engine)
    assert pair.kind == "conflict"
    for layer in result.layers:
        assert layer.delta_text == pytest.approx(0.0, abs=1e-4)
        assert layer.delta_audio > 1e-3
        assert layer.gc == pytest.approx(1.0), layer


def test_answer_from_prompt_only_gives_gc_zero(llm):
    hooks = _masked(llm, "text")  # no position reads the audio tokens
    pair = separating_pair(llm, tone(), noise(), PROMPT, OTHER, hooks)
    with llm.hooks(hooks):
        result = listen(llm, [pair])
    for layer in result.layers:
        assert layer.delta_audio == pytest.approx(0.0, abs=1e-4)
        # 0 wherever defined (a later block's prompt positions may pull the metric slightly the other way: NaN)
        assert layer.gc == pytest.approx(0.0, abs=1e-3) or (math.isnan(layer.gc) and "negative" in layer.note), layer
    assert result.layers[0].delta_text == pytest.approx(1.0, abs=1e-4)  # block 0's input: only the prompt differs
    assert result.layers[0].gc == pytest.approx(0.0, abs=1e-3)


def test_unmasked_audio_pair_listens_at_block_zero(llm):
    pair = separating_pair(llm, tone(), noise(), PROMPT)
    result = listen(llm, [pair])
    first = result.layers[0]
    assert pair.kind == "audio" and first.delta_text == pytest.approx(0.0, abs=1e-4)
    assert first.delta_audio == pytest.approx(1.0, abs=1e-4) and first.gc == pytest.approx(1.0)
    # every position of a later block holds everything: audio + text + readout restore the whole effect
    assert sum(result.pairs[0].deltas[0][:2]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_patching_every_position_restores_the_source(llm, direction):
    prep = prepare_listen_pair(llm, separating_pair(llm, tone(), noise(), PROMPT, OTHER))
    names = [RESID.format(k=k) for k in range(llm.n_llm_layers)]
    target, source = (prep.corrupt, prep.clean) if direction == "denoising" else (prep.clean, prep.corrupt)
    source_logits, cache = llm.run_with_cache(source, names_filter=names)
    everything = tuple(range(prep.positions.n_tokens))
    cells = [Cell(name, everything) for name in names]
    for patch in (fast_patch, naive_patch):
        got = prep.score(patch(llm, target, cache, cells))
        want = prep.score(source_logits[0, prep.positions.readout])
        torch.testing.assert_close(got, want.expand_as(got), atol=1e-5, rtol=0)
        clean = float(prep.score(llm(prep.clean)[0, prep.positions.readout].detach()))
        corrupt = float(prep.score(llm(prep.corrupt)[0, prep.positions.readout].detach()))
        for value in got.tolist():
            assert normalised(value, clean, corrupt, direction) == pytest.approx(1.0, abs=1e-4)


def test_fast_engine_equals_naive_loop(llm):
    """Cells whose values differ clearly, so that a wrong prefix, layer or position would show."""
    prep = prepare_listen_pair(llm, separating_pair(llm, tone(), noise(), PROMPT, OTHER))
    pos = prep.positions
    names = [RESID.format(k=k) for k in range(llm.n_llm_layers)]
    _, cache = llm.run_with_cache(prep.clean, names_filter=names + ["projector.hook_out"])
    audio = pos.audio[: pos.real_audio]
    groups = [pos.audio, pos.text, [pos.readout], audio[: len(audio) // 2], audio[len(audio) // 2:], audio[3:5],
              pos.audio + pos.text]
    cells = [Cell(name, tuple(g)) for name in names for g in groups]
    cells.append(Cell("projector.hook_out", tuple(range(5))))  # a non-LLM hook runs the plain way inside fast_patch
    fast, naive = prep.score(fast_patch(llm, prep.corrupt, cache, cells)), prep.score(naive_patch(llm, prep.corrupt, cache, cells))
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=0)
    assert float(fast.max() - fast.min()) > 1e-2  # the cells really differ


def test_bootstrap_interval_over_pairs(llm):
    pairs = [separating_pair(llm, tone(f), noise(s), PROMPT, name=f"p{f}") for f, s in ((440, 0), (880, 1), (300, 2))]
    a = listen(llm, pairs, n_boot=200, seed=1)
    b = listen(llm, pairs, n_boot=200, seed=1)
    assert a.to_json() == b.to_json()
    assert a.n_boot == 200 and len(a.pairs) == 3
    for layer in a.layers:
        if math.isfinite(layer.gc):
            assert layer.gc_low - 1e-9 <= layer.gc <= layer.gc_high + 1e-9
    mean = np.mean([p.deltas[0][0] for p in a.pairs])
    assert a.layers[0].delta_audio == pytest.approx(mean)
    frame = a.to_frame()
    assert list(frame.layer) == list(range(llm.n_llm_layers))


def test_gc_rules():
    assert gc_of(0.3, 0.1) == (pytest.approx(0.75), "")
    assert math.isnan(gc_of(-0.5, 0.5)[0]) and "negative" in gc_of(-0.5, 0.5)[1]
    assert math.isnan(gc_of(0.0, 0.0)[0]) and gc_of(-1e-5, 0.5)[0] == 0.0
    assert math.isnan(normalised(1.0, 2.0, 2.0, "denoising"))
    assert normalised(1.5, 2.0, 1.0, "noising") == pytest.approx(0.5)


def test_bad_pairs_one_line_errors(llm):
    longer = ListenPair("x", tone(), tone(), [1], [2], PROMPT, "The word is a horse.")
    with pytest.raises(OtoscopeError, match="prompts tokenize to the same length") as err:
        prepare_listen_pair(llm, longer)
    assert "\n" not in str(err.value)
    same = ListenPair("y", tone(), noise(), [5], [5], PROMPT)
    with pytest.raises(OtoscopeError, match="first tokens differ"):
        prepare_listen_pair(llm, same)
    with pytest.raises(OtoscopeError, match="direction must be"):
        listen(llm, [separating_pair(llm, tone(), noise(), PROMPT)], direction="sideways")
    with pytest.raises(OtoscopeError, match="scores the same clean and corrupt"):
        listen(llm, [ListenPair("z", tone(), tone(), [5], [6], PROMPT)])


def test_whisper_is_refused(tiny_whisper):
    with pytest.raises(OtoscopeError, match="not an audio-LLM"):
        prepare_listen_pair(tiny_whisper, ListenPair("w", tone(), noise(), [1], [2]))


def test_audio_encoder_and_projector_units(llm):
    """Audio-encoder block × frames and projector tokens: every frame (token) patched gives the source's answer."""
    prep = prepare_listen_pair(llm, separating_pair(llm, tone(), noise(), PROMPT))
    hooks = ["audio.encoder.blocks.0.hook_resid_pre", "projector.hook_out"]
    clean_logits, cache = llm.run_with_cache(prep.clean, names_filter=hooks)
    frames = llm.geometry.window_frames
    cells = [Cell(hooks[0], tuple(range(frames))), Cell(hooks[1], tuple(range(cache[hooks[1]].shape[1]))),
             Cell(hooks[0], tuple(range(100, frames)))]  # 1 s = 50 real frames
    got = prep.score(naive_patch(llm, prep.corrupt, cache, cells))
    want = float(prep.score(clean_logits[0, prep.positions.readout]))
    corrupt = float(prep.score(llm(prep.corrupt)[0, prep.positions.readout].detach()))
    assert got[:2].tolist() == pytest.approx([want, want], abs=1e-4)
    if llm.llm_adapter.kind == "qwen2audio":
        # Qwen2-Audio masks the window's padding frames out of its encoder and feeds only real audio tokens: the
        # padding frames patched alone change nothing. (Voxtral feeds the whole window, and Whisper's log-mel
        # normalisation makes its padding depend on the clip's loudest frame: there they carry the difference.)
        assert float(got[2]) == pytest.approx(corrupt, abs=1e-5)
