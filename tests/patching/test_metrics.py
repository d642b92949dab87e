"""Metrics read the right logits: each one against a direct computation from the full forward."""

import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.patching import open_session
from otoscope.patching.metrics import CallableMetric, make_metric, normalise


@pytest.fixture(scope="module")
def logits_after(tiny_whisper, door):
    """Full-forward log-probs of tiny-random-whisper after a context, for any appended tokens."""
    import functools

    @functools.lru_cache(maxsize=None)
    def run(text, extra=()):
        inputs = tiny_whisper.prepare(door, text=text)
        ids = torch.cat([inputs.decoder_input_ids, torch.tensor([list(extra)], dtype=torch.long)], 1)
        with torch.no_grad():
            out = tiny_whisper.model(input_features=inputs.features, decoder_input_ids=ids).logits[0]
        return out, len(inputs.decoder_input_ids[0])
    return run


@pytest.mark.parametrize("name", ["logit_diff", "logprob", "prob", "accuracy"])
def test_single_token_metrics(tiny_whisper, tiny_session, logits_after, name):
    clean_run, _ = tiny_session.runs()  # one-token answers: every metric reads the same position
    value = make_metric(tiny_whisper, name, "a", "b").score(clean_run.outputs)[0]
    logits, n = logits_after(" My")
    a, b = tiny_whisper.to_tokens("a")[0], tiny_whisper.to_tokens("b")[0]
    last = logits[n - 1]
    expected = {"logit_diff": last[a] - last[b], "logprob": last.log_softmax(-1)[a],
                "prob": last.softmax(-1)[a], "accuracy": float(last.argmax() == a)}[name]
    assert float(value) == pytest.approx(float(expected), abs=1e-5)


def test_multi_token_answer_is_a_summed_log_prob(tiny_whisper, door, park, logits_after):
    session = open_session(tiny_whisper, door, park, text=" M", answer="abc", wrong="xy", multi_token=True)
    ids_a, ids_w = tiny_whisper.to_tokens("abc"), tiny_whisper.to_tokens("xy")
    logits, n = logits_after(" M", tuple(ids_a[:-1]))
    lp = logits.log_softmax(-1)
    answer = sum(lp[n - 1 + i, t] for i, t in enumerate(ids_a))
    logits, _ = logits_after(" M", tuple(ids_w[:-1]))
    lp = logits.log_softmax(-1)
    wrong = sum(lp[n - 1 + i, t] for i, t in enumerate(ids_w))
    assert session.clean_value == pytest.approx(float(answer - wrong), abs=1e-4)
    assert session.runs()[0].readout.rows.shape == (2, n + 2)  # one decoder row per answer, padded


def test_kl_is_zero_on_clean_and_positive_on_corrupt(tiny_whisper, tiny_session, park, logits_after):
    clean_run, corrupt_run = tiny_session.runs()
    kl = make_metric(tiny_whisper, "kl")
    kl.bind_clean(clean_run.outputs)
    assert float(kl.score(clean_run.outputs)[0]) == pytest.approx(0.0, abs=1e-6)
    clean, n = logits_after(" My")
    with torch.no_grad():
        corrupt = tiny_whisper(tiny_whisper.prepare(park, text=" My"))[0, n - 1]
    p, q = clean[n - 1].log_softmax(-1), corrupt.log_softmax(-1)
    assert float(kl.score(corrupt_run.outputs)[0]) == pytest.approx(float((p.exp() * (p - q)).sum()), abs=1e-6)


def test_answer_of_several_tokens_says_how_it_tokenised(tiny_en):
    with pytest.raises(OtoscopeError) as err:
        make_metric(tiny_en, "logit_diff", " New York", " Paris")
    message = str(err.value)
    assert "2 tokens" in message and "' New'" in message and "' York'" in message and "multi_token" in message
    assert "\n" not in message
    with pytest.raises(OtoscopeError, match="start with a space"):
        make_metric(tiny_en, "logprob", "Mississippi")


def test_metric_needs_and_validation(tiny_whisper):
    import otoscope

    with pytest.raises(OtoscopeError, match="needs an answer"):
        make_metric(tiny_whisper, "logprob")
    with pytest.raises(OtoscopeError, match="wrong answer"):
        make_metric(tiny_whisper, "logit_diff", "a")
    with pytest.raises(OtoscopeError, match="same ids"):
        make_metric(tiny_whisper, "logit_diff", "a", [tiny_whisper.to_tokens("a")[0]])
    with pytest.raises(OtoscopeError, match="encoder-only"):
        make_metric(otoscope.load("tiny-random-hubert"), "logit_diff", "a", "b")


def test_callable_metric_per_batch_or_per_row():
    out = torch.arange(12.0).view(3, 4)
    assert CallableMetric(lambda o: o.sum(-1)).score(out).tolist() == [6.0, 22.0, 38.0]
    assert CallableMetric(lambda o: o.sum()).score(out).tolist() == [6.0, 22.0, 38.0]  # scalar: called per row
    with pytest.raises(OtoscopeError, match="one value per batch row"):
        CallableMetric(lambda o: o[:, :2]).score(out)


def test_normalise():
    np.testing.assert_allclose(normalise([0.0, 1.0, 2.0], clean=2.0, corrupt=0.0), [0, 0.5, 1])
    assert np.isnan(normalise([1.0], 3.0, 3.0)).all()
