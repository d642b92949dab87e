"""Numbers, currency and symbols spelled out as they are spoken."""

import pytest

from otoscope.stimuli.normalize import number_words, ordinal_words, spell_out, year_words
from otoscope.stimuli.words import split_words, tokens


@pytest.mark.parametrize("n,words", [(0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty-two"),
                                     (100, "one hundred"), (121, "one hundred twenty-one"),
                                     (1250, "one thousand two hundred fifty"), (2_000_005, "two million five"),
                                     (-4, "minus four")])
def test_number_words(n, words):
    assert number_words(n) == words


def test_years_and_ordinals():
    assert year_words(1999) == "nineteen ninety-nine" and year_words(1905) == "nineteen oh five"
    assert year_words(1500) == "fifteen hundred"
    assert [ordinal_words(n) for n in (1, 2, 3, 12, 21, 40, 100)] == [
        "first", "second", "third", "twelfth", "twenty-first", "fortieth", "one hundredth"]


@pytest.mark.parametrize("text,spoken", [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("I have 3 cats.", "I have three cats."),
    ("It is 50% off.", "It is fifty percent off."),
    ("It costs $3.50, or £1.", "It costs three dollars fifty, or one pound."),
    ("We met at 7:30 in 1999.", "We met at seven thirty in nineteen ninety-nine."),
    ("Pi is 3.14 and I came 21st.", "Pi is three point one four and I came twenty-first."),
    ("Salt & pepper + 1,250 = more", "Salt and pepper plus one thousand two hundred fifty equals more"),
    ("It was -4 °C — cold.", "It was minus four degrees C, cold."),
    ("I’m “here” [now]…", "I'm \"here\" (now)..."),
    ("Born in 2005, not 2024.", "Born in two thousand five, not twenty twenty-four."),
])
def test_spell_out(text, spoken):
    assert spell_out(text) == spoken
    assert spell_out(spoken) == spoken  # already spoken text is left alone


def test_no_digit_or_symbol_survives():
    spoken = spell_out("Call 555-0199 at 10:05 about item #4 @ 20% ♥ 3rd mp3 x^2")
    assert not any(c.isdigit() for c in spoken)
    assert all(c.isalpha() or c in " ,.'-" for c in spoken), spoken
    assert "number four" in spoken and "black heart suit" in spoken and "third" in spoken


def test_tokens_keep_positions():
    text = "Well, it's a well-known fact - really."
    found = tokens(text)
    assert [t.word for t in found] == ["Well", "it's", "a", "well-known", "fact", "really"]
    assert all(text[t.start:t.end] == t.word for t in found)
    assert split_words(text) == [t.word for t in found]
