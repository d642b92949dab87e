"""Benchmark metrics against plain computations, on the real tiny.en and a tiny random CTC model."""

import numpy as np
import pytest
import torch

from otoscope.audio.io import Clip
from otoscope.bench.metrics import CTC_VOCAB, ctc_chars_metric, session_options, speech_odds_metric
from otoscope.bench.pair import BenchPair
from otoscope.errors import OtoscopeError
from otoscope.models.safeguards import no_speech_token


def _clip(seconds=1.0, seed=0):
    return Clip(np.random.default_rng(seed).normal(0, 0.05, int(16000 * seconds)).astype(np.float32), 16000)


def test_speech_odds_is_log_odds_of_no_speech(tiny_en):
    logits = torch.randn(3, 4, tiny_en.config.vocab_size) * 3
    fn = speech_odds_metric(tiny_en, 1)
    p = logits[:, 1].softmax(-1)[:, no_speech_token(tiny_en)].double()
    assert torch.allclose(fn(logits).double(), torch.log((1 - p) / p), atol=1e-4)


def test_ctc_chars_reads_the_span_and_the_letters():
    import otoscope

    model = otoscope.load("tiny-random-wav2vec2")
    pair = BenchPair("p", "ctc-word", _clip(), _clip(seed=1), "ctc_chars", answer="cat", wrong="dog", region=(0.2, 0.6))
    fn = ctc_chars_metric(model, pair)
    logits = torch.randn(2, 49, 32)
    first, last = (int(v) for v in model.geometry.convert([0.2, 0.6], "seconds", "frames"))
    logp = logits.log_softmax(-1)
    plain = []
    for b in range(2):
        best = lambda word: np.mean([logp[b, first:last, CTC_VOCAB.index(ch)].max().item() for ch in word.upper()])  # noqa: E731
        plain.append(best("cat") - best("dog"))
    assert fn(logits).numpy() == pytest.approx(np.array(plain), abs=1e-5)
    logits[:, :first] = 50.0  # outside the span: no effect
    assert fn(logits).numpy() == pytest.approx(np.array(plain), abs=1e-5)


def test_session_options_refuse_the_wrong_model_family(tiny_en):
    import otoscope

    ctc = BenchPair("p", "ctc-word", _clip(), _clip(1), "ctc_chars", answer="cat", wrong="dog")
    with pytest.raises(OtoscopeError, match="CTC"):
        session_options(tiny_en, ctc)
    word = BenchPair("p", "asr-word", _clip(), _clip(1), "logit_diff", text=" I live in", answer=" London", wrong=" Paris")
    with pytest.raises(OtoscopeError, match="encoder-only"):
        session_options(otoscope.load("tiny-random-wav2vec2"), word)
    options = session_options(tiny_en, word)
    assert options["answer"] == tiny_en.to_tokens(" London") and options["metric"] == "logit_diff"


def test_check_clean_reads_the_cached_clean_run(tiny_en):
    from pathlib import Path

    from otoscope.bench.metrics import check_clean
    from otoscope.patching import open_session
    from otoscope.stimuli.pairs import load_pair

    fixture = load_pair(Path(__file__).parents[1] / "fixtures" / "pairs" / "london_paris")
    right = BenchPair("p", "asr-word", fixture.clean, fixture.corrupt, "logit_diff", text=fixture.text,
                      answer=" London", wrong=" Paris")
    wrong = BenchPair("p", "asr-word", fixture.corrupt, fixture.clean, "logit_diff", text=fixture.text,
                      answer=" London", wrong=" Paris")  # the clips swapped: the "clean" clip says Paris
    whole = BenchPair("p", "noise", fixture.clean, fixture.corrupt, "logprob", text=None,
                      answer=" My name is John and I live in London.")
    misheard = BenchPair("p", "noise", fixture.clean, fixture.corrupt, "logprob", text=None,
                         answer=" My name is Jim and we live in Paris.")  # 3 of 10 tokens wrong: below 0.8
    results = {}
    for name, pair in (("right", right), ("wrong", wrong), ("whole", whole), ("misheard", misheard)):
        session = open_session(tiny_en, pair.clean, pair.corrupt, **session_options(tiny_en, pair))
        results[name] = check_clean(tiny_en, pair, session)
        # the plain computation: teacher-force the answer and take the argmax at each of its positions
        context = tiny_en.to_tokens(pair.text) if pair.text else []
        answer = tiny_en.to_tokens(pair.answer)[: 1 if pair.metric == "logit_diff" else None]
        with torch.no_grad():
            logits = tiny_en.forward([pair.clean], tokens=[context + answer])
        n = logits.shape[1]
        predicted = logits[0, n - len(answer) - 1 : n - 1].argmax(-1).tolist()
        accuracy = np.mean([p == a for p, a in zip(predicted, answer)])
        assert results[name].ok == (accuracy >= (1.0 if pair.metric == "logit_diff" else 0.8))
    assert results["right"].ok and results["whole"].ok and not results["misheard"].ok
    assert not results["wrong"].ok and "Paris" in results["wrong"].reason
