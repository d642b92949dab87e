"""How different a word-swap pair is *before* the swapped word, before and after splicing.

A minimal pair should differ only in the swapped word. For ten ordinary sentences (one word swapped in
each, en-us, 130 wpm) this measures the RMS of ``corrupt - clean`` over the audio before the swapped
word, relative to the RMS of the clean audio there (``pre_rms_diff``; 0 = the same samples):

* ``one_process`` — the generator before issue 11: both sentences synthesised by espeak-ng's library in
  one process, one after the other (the library's state carries over from one synthesis to the next);
* ``whole`` — ``word_swap(..., splice=False)``: both sentences synthesised in fresh processes, so the
  only difference left is espeak-ng planning each sentence's prosody as a whole;
* ``spliced`` — ``word_swap(...)`` (the default): the clean samples with only the word replaced. Over
  the audio before the word's crossfade (``[:a - X]``) it is 0 by construction (and asserted); the
  figure over ``[:a]`` includes the 30 ms crossfade.

It also counts how many of the ten sentences the old word-event timing could not give spans for
(espeak-ng reporting fewer word events than words), how many corrupt clips whisper-tiny.en hears with
the new word, spliced and whole (``heard_new_word``; tiny.en mishears espeak-ng's speech often either
way), and the teacher-forced logit difference ``logit(old) - logit(new)`` after the words before it on
each corrupt clip (``corrupt_logit_diff``; negative = the model takes the new word): the splice should
keep the new word as recognisable as the whole rendering does.

Run: .venv/bin/python benchmarks/stimuli.py (needs the espeak-ng library). Last line: one JSON object.
"""

import json
import os
import sys
import time

import numpy as np
import soxr

from otoscope.stimuli._espeak_worker import Engine
from otoscope.stimuli.speech import PAD_SECONDS, SAMPLE_RATE
from otoscope.stimuli.swaps import word_swap
from otoscope.stimuli.words import split_words

PAIRS = [("The cat sat on the mat.", "cat", "bat"), ("I saw a cat on the roof.", "cat", "dog"),
         ("My name is John and I live in London.", "London", "Paris"), ("She reads a book every night.", "book", "poem"),
         ("We walked along the river.", "river", "beach"), ("The children are playing outside.", "outside", "inside"),
         ("My brother works in a bank.", "bank", "shop"), ("He bought a new bicycle last week.", "bicycle", "guitar"),
         ("Put the keys on the kitchen table.", "keys", "cups"), ("The doctor will see you now.", "doctor", "teacher")]


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def one_process(engine: Engine, text: str) -> tuple[np.ndarray, int]:
    """The old generator's synthesis (library in this process), trimmed, resampled and padded the same way;
    also the number of word events it reported."""
    engine.audio, engine.events = bytearray(), []
    engine.set_voice("en-us")
    engine.synth(text, 130, 50)
    audio = np.frombuffer(bytes(engine.audio), dtype=np.int16).astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    speech = soxr.resample(audio[loud[0]:loud[-1] + 1], engine.rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    pad = np.zeros(int(round(PAD_SECONDS * SAMPLE_RATE)), np.float32)
    return np.concatenate([pad, speech, pad]), sum(1 for e in engine.events if e[0] == "word")


def main() -> None:
    import otoscope

    from otoscope.patching import patch

    model = otoscope.load("whisper-tiny.en")

    def corrupt_logit_diff(pair) -> float:
        # one cell over the whole clip: the sweep's own clean and corrupt metric values are what we want
        return patch(model, **pair.patch_args(), hooks="encoder.blocks.0.hook_resid_post", window=None,
                     multi_token=True).corrupt

    engine = Engine()
    rows, started = [], time.perf_counter()
    for text, old, new in PAIRS:
        spliced = word_swap(text, old, new)
        whole = word_swap(text, old, new, splice=False)
        s = spliced.details["splice"]
        a, before = s["clean_span"][0], s["same_before"]
        clean = spliced.clean.samples
        assert not np.any(spliced.corrupt.samples[:before] != clean[:before])
        np.testing.assert_array_equal(whole.clean.samples[:a], clean[:a])  # the same clean synthesis
        old_clean, n_events = one_process(engine, text)
        old_corrupt, _ = one_process(engine, spliced.details["corrupt_text"])
        heard, heard_whole = model.transcribe(spliced.corrupt).text, model.transcribe(whole.corrupt).text
        rows.append({"text": text, "swap": f"{old}={new}", "word_start_s": round(a / SAMPLE_RATE, 3),
                     "pre_rms_diff": {
                         "one_process": round(rms(old_corrupt[:a] - old_clean[:a]) / rms(old_clean[:a]), 3),
                         "whole": round(rms(whole.corrupt.samples[:a] - clean[:a]) / rms(clean[:a]), 3),
                         "spliced": round(rms(spliced.corrupt.samples[:a] - clean[:a]) / rms(clean[:a]), 3),
                         "spliced_before_crossfade": rms(spliced.corrupt.samples[:before] - clean[:before])},
                     "old_word_events_ok": n_events == len(split_words(text)), "shift_samples": s["shift"],
                     "heard": heard, "heard_new_word": new.lower() in heard.lower(),
                     "heard_whole": heard_whole, "heard_new_word_whole": new.lower() in heard_whole.lower(),
                     "corrupt_logit_diff": {"spliced": round(corrupt_logit_diff(spliced), 2),
                                            "whole": round(corrupt_logit_diff(whole), 2)}})
    for row in rows:
        print(json.dumps(row), file=sys.stderr)
    mean = lambda key: round(float(np.mean([r["pre_rms_diff"][key] for r in rows])), 3)  # noqa: E731
    load = os.getloadavg()[0]
    print(json.dumps({"sentences": len(rows), "pre_rms_diff_mean": {k: mean(k) for k in
                                                                    ("one_process", "whole", "spliced")},
                      "pre_rms_diff_before_crossfade_max": max(r["pre_rms_diff"]["spliced_before_crossfade"]
                                                               for r in rows),
                      "old_word_events_failed": sum(not r["old_word_events_ok"] for r in rows),
                      "heard_new_word": {"spliced": sum(r["heard_new_word"] for r in rows),
                                         "whole": sum(r["heard_new_word_whole"] for r in rows)},
                      "corrupt_logit_diff_mean": {k: round(float(np.mean([r["corrupt_logit_diff"][k] for r in rows])), 2)
                                                  for k in ("spliced", "whole")},
                      "corrupt_prefers_new_word": {k: sum(r["corrupt_logit_diff"][k] < 0 for r in rows)
                                                   for k in ("spliced", "whole")},
                      "seconds": round(time.perf_counter() - started, 1), "load_1min": round(load, 1)}))


if __name__ == "__main__":
    main()
