"""Word spans from espeak-ng's word and phoneme events, on events written by hand (no espeak-ng needed)."""

from otoscope.stimuli.espeak import Event
from otoscope.stimuli.timing import split_group, word_samples
from otoscope.stimuli.words import tokens

ALONE = {"The": ["D", "@2"], "the": ["D", "@2"], "cat": ["k", "a", "t"], "sat": ["s", "a", "t"], "on": ["O2", "n"],
         "mat": ["m", "a", "t"], "of": ["0", "v"], "a": ["eI"]}


def test_split_group_aligns_each_word_alone():
    assert split_group(["O2", "n", "D", "@2"], [["O2", "n"], ["D", "@2"]]) == [0, 2]
    # said together the words change ("of a" → @v@): the alignment still finds the boundary
    assert split_group(["@", "v", "@"], [["0", "v"], ["eI"]]) == [0, 2]
    assert split_group(["a", "b", "c", "d", "e"], [["a"], ["b", "c"], ["d", "e"]]) == [0, 1, 3]


def test_split_group_falls_back_to_phoneme_counts():
    # nothing in common: the names are shared in proportion to each word's phoneme count
    assert split_group(["x", "y", "z", "w"], [["a"], ["b", "c", "d"]]) == [0, 1]
    assert split_group(["x"], [["a"], ["b"]]) == [0, 0]  # fewer phonemes than words


def test_word_samples_splits_merged_words_and_ends_words_at_pauses():
    text = "The cat sat on the mat."
    ev = [Event("word", 0, 0), Event("phoneme", 0, 330, "D"), Event("phoneme", 0, 1546, "@2"),
          Event("word", 4, 3140), Event("phoneme", 4, 4485, "k"), Event("phoneme", 4, 5717, "a"),
          Event("phoneme", 4, 11093, "t"), Event("phoneme", 7, 11800, "_"),  # a pause after "cat"
          Event("word", 8, 12305), Event("phoneme", 8, 12635, "s"), Event("phoneme", 8, 14640, "a"),
          Event("phoneme", 8, 19911, "t"),
          Event("word", 12, 20982),  # one event for "on the", said as one unit
          Event("phoneme", 12, 20982, "O2"), Event("phoneme", 12, 23030, "n"), Event("phoneme", 12, 24502, "D"),
          Event("phoneme", 12, 25654, "@2"),
          Event("word", 19, 27034), Event("phoneme", 19, 27298, "m"), Event("phoneme", 19, 30306, "a"),
          Event("phoneme", 19, 36539, "t"), Event("phoneme", 23, 37751, "_:"), Event("phoneme", 23, 38015, "_")]
    spans = word_samples(ev, tokens(text), 38000, ALONE.__getitem__)
    assert spans == [(0, 3140), (3140, 11800), (12305, 20982), (20982, 24502), (24502, 27034), (27034, 37751)]


def test_events_on_punctuation_and_missing_first_event():
    text = "(Hello) there"
    ev = [Event("word", 0, 10), Event("phoneme", 1, 20, "h"), Event("word", 8, 500), Event("phoneme", 8, 510, "D")]
    assert word_samples(ev, tokens(text), 900, lambda w: ["x"]) == [(10, 500), (500, 900)]
    ev = [Event("phoneme", 0, 20, "h"), Event("phoneme", 0, 300, "D")]  # no word event at all
    assert word_samples(ev, tokens("hi there"), 900, lambda w: [w[0]]) == [(20, 300), (300, 900)]
