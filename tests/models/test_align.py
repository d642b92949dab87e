"""Word timestamps from the alignment heads, on the committed speech fixtures."""

import json

import numpy as np
import pytest
import soundfile as sf

from otoscope.cli.main import main
from otoscope.models.whisper import ALIGNMENT_HEADS, alignment_heads
from otoscope.models.words import group_words


@pytest.fixture(scope="module")
def london(tiny_en, speech):
    row = next(r for r in speech if r["path"].endswith("speech_london.flac"))
    return row, tiny_en.word_timestamps(row["path"])


def test_words_are_the_transcript_and_spans_are_ordered_inside_the_audio(london):
    row, result = london
    seconds = sf.info(row["path"]).duration
    assert result.text == row["text"] == "My name is John and I live in London."
    assert "".join(w.word for w in result.words) == " " + result.text
    assert [w.word.strip() for w in result.words] == result.text.split()
    starts = [w.start for w in result.words]
    ends = [w.end for w in result.words]
    assert all(0 <= s <= e <= seconds for s, e in zip(starts, ends))
    assert starts == sorted(starts) and ends == sorted(ends)
    assert all(e1 <= s2 for e1, s2 in zip(ends, starts[1:]))
    assert all(0 < w.probability <= 1 for w in result.words)


def test_last_word_is_near_the_end_and_words_take_time(london):
    row, result = london
    seconds = sf.info(row["path"]).duration
    last = result.words[-1]
    assert last.word.strip().rstrip(".") == "London"
    assert last.start > 0.6 * seconds and last.end > seconds - 0.6
    # no word is squeezed to nothing or swallows the clip on clean speech
    durations = [w.end - w.start for w in result.words]
    assert min(durations) >= 0.04 and max(durations) < 0.4 * seconds


def test_to_frame_and_to_dict(london):
    row, result = london
    frame = result.to_frame()
    assert list(frame.columns) == ["path", "word", "start", "end", "probability"] and len(frame) == 9
    line = result.to_dict()
    assert line["path"] == row["path"] and line["words"][-1]["word"] == " London."
    assert set(line["words"][0]) == {"word", "start", "end", "probability"}


def test_batch_equals_one_by_one(tiny_en, speech, london):
    row, alone = london
    paths = [speech[0]["path"], row["path"]]
    both = tiny_en.word_timestamps(paths, batch_size=2)
    assert [w.word for w in both[1].words] == [w.word for w in alone.words]
    assert np.allclose([(w.start, w.end) for w in both[1].words], [(w.start, w.end) for w in alone.words])
    assert np.allclose([w.probability for w in both[1].words], [w.probability for w in alone.words], atol=1e-4)
    first = tiny_en.word_timestamps(speech[0]["path"])
    assert [(w.word, w.start, w.end) for w in both[0].words] == [(w.word, w.start, w.end) for w in first.words]


def test_given_text_is_aligned_as_given(tiny_en, london):
    row, decoded = london
    forced = tiny_en.word_timestamps(row["path"], text="My name is John and I live in London.")
    assert [(w.word, w.start, w.end) for w in forced.words] == [(w.word, w.start, w.end) for w in decoded.words]
    other = tiny_en.word_timestamps(row["path"], text="Hello London")
    assert [w.word for w in other.words] == [" Hello", " London"]
    assert other.words[1].start > other.words[0].start


def test_long_clips_are_aligned_window_by_window(tiny_en, speech):
    a, _ = sf.read(speech[0]["path"], dtype="float32")
    b, _ = sf.read(speech[1]["path"], dtype="float32")
    long = np.concatenate([a, np.zeros(16_000 * 30 - len(a), np.float32), b])
    result = tiny_en.word_timestamps(long)
    door = next(w for w in result.words if "door" in w.word)
    london = next(w for w in result.words if "London" in w.word)
    assert door.end < 2.0 and 30.0 < london.start < 30.0 + len(b) / 16_000


def test_non_whisper_models_raise_naming_the_class():
    import otoscope

    model = otoscope.load("tiny-random-wav2vec2")
    with pytest.raises(NotImplementedError, match="Wav2Vec2ForCTC"):
        model.word_timestamps(np.zeros(16_000, np.float32))


def test_alignment_heads_come_from_the_checkpoint_else_the_table_else_the_last_half(tiny_en, tiny_whisper):
    assert alignment_heads(tiny_en) == list(ALIGNMENT_HEADS["openai/whisper-tiny.en"])
    # the random model has no table: every head of its last half (2 layers × 4 heads → layer 1)
    assert alignment_heads(tiny_whisper) == [(1, h) for h in range(4)]


def test_random_whisper_runs_end_to_end_with_given_text(tiny_whisper):
    result = tiny_whisper.word_timestamps(np.zeros(8_000, np.float32), text="ab cd")
    assert [w.word for w in result.words] == [" ab", " cd"]
    assert all(0 <= w.start <= w.end <= 0.5 for w in result.words)


@pytest.mark.parametrize("text, words", [
    (" My name is John.", [" My", " name", " is", " John."]),
    (" Hello, (world) don't stop!", [" Hello,", " (world)", " don't", " stop!"]),
    (' He said "yes".', [" He", " said", ' "yes".']),
    (" Café naïve", [" Café", " naïve"]),
])
def test_tokens_group_into_words_with_punctuation_attached(tiny_en, text, words):
    tokens = tiny_en.to_tokens(text)
    grouped = group_words(tiny_en.tokenizer, tokens)
    assert [w.text for w in grouped] == words
    assert grouped[0].first == 0 and all(w.first < w.stop <= len(tokens) for w in grouped)


def test_cli_json_lines(speech, capsys):
    assert main(["align", speech[0]["path"], "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["path"] == speech[0]["path"]
    assert [w["word"] for w in line["words"]] == [" Please", " open", " the", " door."]


def test_cli_rejects_encoder_only_models(speech, capsys):
    assert main(["align", speech[0]["path"], "--model", "tiny-random-wav2vec2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("otoscope: error:") and "Wav2Vec2ForCTC" in err and len(err.strip().splitlines()) == 1


def test_a_decode_that_hit_the_token_limit_is_aligned(tiny_whisper, speech):
    """The random model never emits end-of-text: its transcript fills the decoder's 64 positions, so the
    alignment drops the last token to make room for end-of-text instead of refusing the clip."""
    decoded = tiny_whisper.transcribe(speech[0]["path"], exact=True)
    assert not decoded.finished
    words = tiny_whisper.word_timestamps(speech[0]["path"]).words
    assert words and all(w.start <= w.end for w in words)
