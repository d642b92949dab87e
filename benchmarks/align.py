"""Word timestamps on whisper-tiny.en against known word boundaries of espeak-ng speech.

References. Each sentence is synthesised one word at a time with espeak-ng, every word's own leading
and trailing silence is cut (samples more than 40 dB below the word's peak), and the words are joined
with fixed 80 ms silences (0.2 s of silence at each end of the clip). The word boundaries are then
known to the sample by construction, which espeak-ng's own word events cannot give: they mark only
word starts, merge short function words into their neighbours, and place boundaries inside
coarticulated speech where no ground truth exists. The price is a list-like prosody (each word said
on its own); the pauses between words are short, as in careful read speech.

Error of one boundary. A word's predicted start is compared with the silence before it, its predicted
end with the silence after it: the error is the distance from the predicted time to that silent
interval (zero inside it, since any boundary within a pause is right). The clip's first start and last
end are compared with the exact reference times. Whisper's own transcript is aligned (as
``otoscope align`` does) and its words are matched to the reference words after normalisation
(difflib); only matched words count. ``forced_*`` aligns the reference text itself.

Baseline: what a competent user of the peer tool writes, transformers' ASR pipeline with
``return_timestamps="word"`` (the same alignment heads from the checkpoint's generation config, its own
DTW), on the same clips and model, scored the same way. Both are timed per clip, end to end from a
waveform (decode + align), same process, after one warm-up each.

Run: .venv/bin/python benchmarks/align.py. Needs espeak-ng on PATH. Last line: one JSON object.
"""

import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import otoscope
from otoscope.audio.io import read_file

SAMPLE_RATE = 16_000
GAP_S = 0.08  # silence between words
EDGE_S = 0.2  # silence before the first and after the last word
SILENCE_DB = 40.0  # a sample this far below the word's peak counts as silence

VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-x-rp"]
SENTENCES = [
    "The dog is running in the park",
    "My name is John and I live in London",
    "Please open the door",
    "I would like a cup of coffee",
    "The weather is nice today",
    "She reads a book every evening",
    "We walked along the river",
    "The children played football after school",
    "He bought fresh bread at the market",
    "Turn left at the next corner",
    "The train leaves at seven",
    "Water boils at one hundred degrees",
    "My sister works in a hospital",
    "They painted the house blue",
    "The meeting starts on Monday morning",
    "Birds sing in the garden",
    "Close the window before you leave",
    "The coffee is too hot to drink",
    "Our teacher speaks three languages",
    "The cat sleeps on the warm sofa",
]


def synthesise_word(word: str, voice: str, folder: Path) -> np.ndarray:
    """One word from espeak-ng at 16 kHz with its leading and trailing silence cut."""
    wav = folder / "word.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), word], check=True)
    clip = read_file(wav, SAMPLE_RATE)
    samples = clip.samples
    loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 10 ** (-SILENCE_DB / 20))
    return samples[loud[0] : loud[-1] + 1]


def build_clip(sentence: str, voice: str, folder: Path, index: int):
    """Write clip ``index`` and return ``(path, words, [(start, end)] in seconds)``."""
    words = sentence.split()
    edge, gap = np.zeros(int(EDGE_S * SAMPLE_RATE), np.float32), np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    pieces, spans, position = [edge], [], len(edge)
    for k, word in enumerate(words):
        audio = synthesise_word(word, voice, folder)
        spans.append((position / SAMPLE_RATE, (position + len(audio)) / SAMPLE_RATE))
        pieces.append(audio)
        position += len(audio)
        if k < len(words) - 1:
            pieces.append(gap)
            position += len(gap)
    pieces.append(edge)
    path = folder / f"clip{index:02d}.flac"
    sf.write(path, np.concatenate(pieces), SAMPLE_RATE)
    return path, words, spans


def normalise(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def distance(t: float, lo: float, hi: float) -> float:
    return max(lo - t, 0.0, t - hi)


def boundary_errors(predicted: list[tuple[str, float, float]], words: list[str], spans: list[tuple[float, float]]):
    """Errors of the starts and ends of the predicted words that match reference words."""
    matcher = difflib.SequenceMatcher(a=[normalise(w) for w in words], b=[normalise(p[0]) for p in predicted],
                                      autojunk=False)
    errors, matched = [], 0
    last = len(words) - 1
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            k, (_, start, end) = block.a + offset, predicted[block.b + offset]
            before = (spans[k][0], spans[k][0]) if k == 0 else (spans[k - 1][1], spans[k][0])
            after = (spans[k][1], spans[k][1]) if k == last else (spans[k][1], spans[k + 1][0])
            errors += [distance(start, *before), distance(end, *after)]
            matched += 1
    return errors, matched


def timed(fn, items):
    fn(items[0])  # warm-up
    out, start = [], time.perf_counter()
    for item in items:
        out.append(fn(item))
    return out, (time.perf_counter() - start) / len(items)


def main():
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed: apt-get install -y espeak-ng")
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = otoscope.load("whisper-tiny.en")
    asr = pipeline("automatic-speech-recognition", model=model.model, tokenizer=model.tokenizer,
                   feature_extractor=model.feature_extractor, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = [build_clip(s, VOICES[i % len(VOICES)], folder, i) for i, s in enumerate(SENTENCES)]
        waves = [read_file(path, SAMPLE_RATE).samples for path, _, _ in clips]

        ours, ours_s = timed(lambda w: [(x.word, x.start, x.end) for x in model.word_timestamps(w).words], waves)
        peer, peer_s = timed(lambda w: [(c["text"], *c["timestamp"]) for c in
                                        asr({"raw": w, "sampling_rate": SAMPLE_RATE}, return_timestamps="word")["chunks"]],
                             waves)
        forced = [[(x.word, x.start, x.end) for x in model.word_timestamps(w, text=" ".join(words)).words]
                  for w, (_, words, _) in zip(waves, clips)]

    def score(predictions):
        errors, matched = [], 0
        for predicted, (_, words, spans) in zip(predictions, clips):
            e, m = boundary_errors([(w, s, e if e is not None else s) for w, s, e in predicted], words, spans)
            errors += e
            matched += m
        return float(np.median(errors)), float(np.mean(np.array(errors) <= 0.1)), matched

    ours_med, ours_within, ours_words = score(ours)
    peer_med, peer_within, peer_words = score(peer)
    forced_med, forced_within, forced_words = score(forced)
    total_words = sum(len(w) for _, w, _ in clips)
    print(f"reference words: {total_words} in {len(clips)} clips ({len(VOICES)} voices)")
    print(f"otoscope   : median error {ours_med * 1000:.0f} ms, {ours_within:.0%} within 100 ms, "
          f"{ours_words} matched words, {ours_s:.2f} s/clip")
    print(f"transformers: median error {peer_med * 1000:.0f} ms, {peer_within:.0%} within 100 ms, "
          f"{peer_words} matched words, {peer_s:.2f} s/clip")
    print(f"forced (reference text): median error {forced_med * 1000:.0f} ms, {forced_within:.0%} within 100 ms")
    print(json.dumps({"median_boundary_error_s": round(ours_med, 4), "within_100ms": round(ours_within, 3),
                      "words": ours_words, "clips": len(clips), "reference_words": total_words,
                      "forced_median_boundary_error_s": round(forced_med, 4),
                      "transformers_median_boundary_error_s": round(peer_med, 4),
                      "transformers_words": peer_words, "seconds_per_clip": round(ours_s, 3),
                      "transformers_seconds_per_clip": round(peer_s, 3)}))


if __name__ == "__main__":
    main()
