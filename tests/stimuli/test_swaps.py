"""Word swaps that are true minimal pairs (the clean samples outside the word), voice swaps, `otoscope pairs word`."""

import json

import numpy as np
import pytest

from otoscope.cli.main import main
from otoscope.errors import OtoscopeError
from otoscope.stimuli.espeak import espeak_available
from otoscope.stimuli.pairs import load_pair
from otoscope.stimuli.speech import synthesize
from otoscope.stimuli.swaps import voice_swap, word_swap

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng library not installed")
RATE = 16000


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("text,old,new", [("The cat sat on the mat.", "cat", "bat"),
                                          ("I saw a cat on the roof.", "cat", "bat"),
                                          ("The cat sat on the mat.", "on", "under"),
                                          ("My name is John and I live in London.", "London", "Paris")])
def test_outside_the_word_and_crossfades_the_clips_are_the_same_samples(text, old, new):
    pair = word_swap(text, old, new)
    clean = synthesize(text).clip.samples
    np.testing.assert_array_equal(pair.clean.samples[:len(clean)], clean)  # the clean clip is the plain synthesis
    s = pair.details["splice"]
    i = pair.details["word_index"]
    a, b = s["clean_span"]
    assert (a, b) == (round(pair.clean_words[i].start * RATE), round(pair.clean_words[i].end * RATE))
    assert s["corrupt_span"][0] == a and s["crossfade"] == round(0.03 * RATE)
    assert s["shift"] == (s["corrupt_span"][1] - a) - (b - a)
    before = s["same_before"]
    assert before == a - s["crossfade"]
    np.testing.assert_array_equal(pair.corrupt.samples[:before], pair.clean.samples[:before])
    after_clean, after_corrupt = s["same_after"]
    n = len(clean) - after_clean
    np.testing.assert_array_equal(pair.corrupt.samples[after_corrupt:after_corrupt + n], clean[after_clean:])
    assert not np.array_equal(pair.corrupt.samples[a:s["corrupt_span"][1]][:b - a], clean[a:b])
    # the stated words: unchanged before, the new word on the splice, the rest moved by the shift
    assert pair.corrupt_words[:i] == pair.clean_words[:i] and pair.corrupt_words[i].word == new
    assert (pair.corrupt_words[i].start, pair.corrupt_words[i].end) == tuple(s["corrupt_span_s"])
    for c, k in zip(pair.clean_words[i + 1:], pair.corrupt_words[i + 1:]):
        assert round(k.start * RATE) == round(c.start * RATE) + s["shift"] and k.word == c.word
    assert len(pair.clean.samples) == len(pair.corrupt.samples) and f"{s['shift']:+d} samples" in pair.alignment


def test_whole_renderings_differ_before_the_word_and_the_splice_does_not():
    """What splicing fixes: espeak-ng's two renderings differ before the swapped word (prosody planned per sentence)."""
    whole = word_swap("The cat sat on the mat.", "cat", "bat", splice=False)
    spliced = word_swap("The cat sat on the mat.", "cat", "bat")
    cut = spliced.details["splice"]["same_before"]
    assert rms(whole.corrupt.samples[:cut] - whole.clean.samples[:cut]) > 0.2 * rms(whole.clean.samples[:cut])
    assert rms(spliced.corrupt.samples[:cut] - spliced.clean.samples[:cut]) == 0.0
    assert "splice" not in whole.details and whole.alignment.startswith("padded")


def test_pair_contract_text_voice_answers():
    pair = word_swap("I have 3 cats on the sofa.", "3", "4", voice="en-gb", speed=150)
    assert pair.answer == " three" and pair.wrong == " four" and pair.text == " I have"
    assert pair.details["corrupt_text"] == "I have four cats on the sofa."
    assert pair.details["spoken_text"] == "I have three cats on the sofa."
    assert pair.details["voice"] == "en-gb" and pair.details["speed"] == 150
    assert [w.word for w in pair.corrupt_words] == ["I", "have", "four", "cats", "on", "the", "sofa"]
    phrase = word_swap("The cat sat on the mat.", "on the", "under a")
    assert phrase.answer == " on the" and phrase.wrong == " under a"
    assert [w.word for w in phrase.corrupt_words] == ["The", "cat", "sat", "under", "a", "mat"]
    assert phrase.corrupt_words[3].start < phrase.corrupt_words[4].start < phrase.corrupt_words[5].start
    with pytest.raises(OtoscopeError, match="not in the text"):
        word_swap("I live in London.", "Rome", "Paris")
    with pytest.raises(OtoscopeError, match="same word"):
        word_swap("I live in London.", "London", "london")


def test_spliced_pair_is_heard_as_the_new_word(tiny_en, one_thread):
    pair = word_swap("My name is John and I live in London.", "London", "Paris")
    assert "Paris" in tiny_en.transcribe(pair.corrupt).text and "London" in tiny_en.transcribe(pair.clean).text


def test_voice_swap_changes_only_the_voice():
    pair = voice_swap("I saw 2 cats on the roof.", "en-us", "en-gb", speed=140)
    for clip, voice in ((pair.clean, "en-us"), (pair.corrupt, "en-gb")):  # each the plain synthesis, padded
        alone = synthesize("I saw two cats on the roof.", voice, 140).clip.samples
        np.testing.assert_array_equal(clip.samples[:len(alone)], alone)
        assert not clip.samples[len(alone):].any()
    assert [w.word for w in pair.clean_words] == [w.word for w in pair.corrupt_words]
    assert pair.details["speed"] == 140 and pair.details["pitch"] == 50 and pair.answer == " roof"
    assert len(pair.clean.samples) == len(pair.corrupt.samples)
    with pytest.raises(OtoscopeError, match="both voices"):
        voice_swap("Hello.", "en-us", "en-us")


def test_pairs_word_command_on_sentences_that_failed(tmp_path, capsys):
    for i, text in enumerate(["The cat sat on the mat.", "I saw a cat on the roof."]):
        assert main(["pairs", "word", "--text", text, "--swap", "cat=bat", "--out", str(tmp_path / str(i))]) == 0
        out = capsys.readouterr().out
        assert "spliced" in out and "cat[" in out
        data = json.loads((tmp_path / str(i) / "pair.json").read_text())
        assert data["answer"] == " cat" and data["wrong"] == " bat" and data["details"]["splice"]["unit"] == "samples"
        again = load_pair(tmp_path / str(i))
        assert again.details["splice"] == data["details"]["splice"]
        assert [w.word for w in again.corrupt_words] == [{"cat": "bat"}.get(w.word, w.word) for w in again.clean_words]
