"""Text-context and conflict pairs for audio-LLMs: built from given clips (no espeak-ng needed) or from espeak-ng,
saved in the folder format ``otoscope listen`` loads, and positioned so that patching lines up."""

import json

import numpy as np
import pytest

from otoscope.audio.io import Clip
from otoscope.errors import OtoscopeError
from otoscope.listen.pairs import load_listen_pair, prepare_listen_pair
from otoscope.stimuli.espeak import espeak_available
from otoscope.stimuli.prompt_pairs import conflict_pair, context_pair, speech_conflict_pair, speech_context_pair
from otoscope.stimuli.templates import DEFAULT_TEMPLATE, fill

RATE = 16000
needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng library not installed")


def tone(freq: float, seconds: float = 1.0) -> Clip:
    t = np.arange(int(seconds * RATE)) / RATE
    return Clip((0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE, f"tone{freq:g}")


def test_context_pair_keeps_the_audio_and_swaps_the_prompt(tmp_path):
    pair = context_pair(tone(440), " cat ", "dog", "Is it {word}?")
    assert (pair.prompt, pair.corrupt_prompt, pair.answer, pair.wrong) == ("Is it cat?", "Is it dog?", "cat", "dog")
    assert pair.kind == "text" and pair.same_audio
    paths = pair.save(tmp_path / "ctx")
    assert sorted(p.name for p in paths) == ["clean.flac", "pair.json"]  # one clip: both runs hear it
    data = json.loads((tmp_path / "ctx" / "pair.json").read_text())
    assert "corrupt" not in data and data["kind"] == "text" and data["details"]["template"] == "Is it {word}?"
    loaded = load_listen_pair(tmp_path / "ctx")
    assert loaded.kind == "text" and (loaded.prompt, loaded.corrupt_prompt) == ("Is it cat?", "Is it dog?")
    assert np.array_equal(loaded.clean.samples, loaded.corrupt.samples)
    assert np.abs(loaded.clean.samples - pair.clean.samples).max() < 1e-4  # 16-bit FLAC


def test_conflict_pair_crosses_audio_and_prompt(tmp_path):
    pair = conflict_pair(tone(440, 1.0), tone(470, 0.8), "cat", "dog")
    # clean: audio 'cat', prompt asserting 'dog'; corrupt: audio 'dog', prompt asserting 'cat'; answer: the audio's
    assert pair.prompt == fill(DEFAULT_TEMPLATE, "dog") and pair.corrupt_prompt == fill(DEFAULT_TEMPLATE, "cat")
    assert (pair.answer, pair.wrong, pair.kind) == ("cat", "dog", "conflict")
    assert len(pair.clean.samples) == len(pair.corrupt.samples) == RATE and "padded" in pair.details["alignment"]
    pair.save(tmp_path / "c")
    loaded = load_listen_pair(tmp_path / "c")
    assert loaded.kind == "conflict" and loaded.answer == "cat" and loaded.wrong == "dog"


@pytest.mark.parametrize("name", ["tiny-random-qwen2audio", "tiny-random-voxtral"])
def test_pairs_line_up_on_audio_llms(name, tmp_path):
    """Prompts that differ by a word of as many tokens prepare without an alignment error; a longer word is refused."""
    import otoscope

    model = otoscope.load(name)
    for pair in (context_pair(tone(440), "cat", "dog"), conflict_pair(tone(440), tone(470), "cat", "dog")):
        pair.save(tmp_path / pair.kind)
        prep = prepare_listen_pair(model, load_listen_pair(tmp_path / pair.kind))
        assert prep.clean.input_ids.shape == prep.corrupt.input_ids.shape
        differ = (prep.clean.input_ids != prep.corrupt.input_ids)[0].nonzero().flatten().tolist()
        assert differ and set(differ) <= set(prep.positions.text)  # only prompt tokens differ
    longer = context_pair(tone(440), "cat", "horse")
    longer.save(tmp_path / "longer")
    with pytest.raises(OtoscopeError, match="tokenize to the same length"):
        prepare_listen_pair(model, load_listen_pair(tmp_path / "longer"))


def test_bad_templates_and_words():
    with pytest.raises(OtoscopeError, match="exactly one {word} slot"):
        fill("no slot here", "cat")
    with pytest.raises(OtoscopeError, match="exactly one {word} slot"):
        fill("{word} and {word2}", "cat")
    with pytest.raises(OtoscopeError, match="does not parse"):
        fill("an open { brace", "cat")
    with pytest.raises(OtoscopeError, match="same word"):
        context_pair(tone(440), "Cat", "cat")
    with pytest.raises(OtoscopeError, match="non-empty"):
        conflict_pair(tone(440), tone(470), "", "dog")


def test_word_swap_fixture_reads_as_an_audio_pair(london_pair):
    """The committed word-swap pair (written by 'otoscope pairs word') loads in the listen format: its Whisper-style
    answers lose their leading space, the prompt is the default question."""
    from pathlib import Path

    from otoscope.listen.pairs import DEFAULT_PROMPT

    loaded = load_listen_pair(Path(__file__).parents[1] / "fixtures" / "pairs" / "london_paris")
    assert london_pair.answer.startswith(" ") and loaded.answer == london_pair.answer.strip()
    assert loaded.kind == "audio" and loaded.prompt == DEFAULT_PROMPT


@needs_espeak
def test_speech_pairs_from_espeak(tmp_path):
    text = "The cat is sleeping on the sofa."
    ctx = speech_context_pair(text, "cat", "dog")
    assert ctx.same_audio and ctx.clean.seconds > 1.0 and ctx.details["voice"] == "en-us"
    assert [w["word"] for w in ctx.details["words"]][:2] == ["The", "cat"]
    conf = speech_conflict_pair(text, "cat", "dog")
    assert not conf.same_audio and len(conf.clean.samples) == len(conf.corrupt.samples)
    assert "cat" in conf.details["swap"] and conf.kind == "conflict"
    with pytest.raises(OtoscopeError, match="is not a word of the text"):
        speech_context_pair(text, "horse", "dog")
    conf.save(tmp_path / "c")
    assert load_listen_pair(tmp_path / "c").kind == "conflict"


def test_audio_pair_with_a_prompt_round_trips(london_pair, tmp_path):
    """A word-swap pair given an audio-LLM prompt saves it in pair.json; without one, pair.json has no "prompt"."""
    import dataclasses

    from otoscope.stimuli.pairs import load_pair

    london_pair.save(tmp_path / "plain")
    assert "prompt" not in json.loads((tmp_path / "plain" / "pair.json").read_text())
    asked = dataclasses.replace(london_pair, prompt="Where does John live? Answer with one word.")
    asked.save(tmp_path / "asked")
    assert load_pair(tmp_path / "asked").prompt == asked.prompt
    listen_pair = load_listen_pair(tmp_path / "asked")
    assert listen_pair.prompt == asked.prompt and (listen_pair.answer, listen_pair.wrong) == ("London", "Paris")
