"""Whisper's safeguards: figures checked against a plain full forward, the repetition guard, the no-speech gates."""

import zlib

import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.models.safeguards import (GATE_NO_SPEECH, GATE_NO_SPEECH_AND_LOGPROB, RepetitionGuard, SpeechGates,
                                        compression_ratio)


def _plain_figures(model, path, tokens, finished):
    """no_speech_prob and avg_logprob from one uncached forward over prefix + tokens (+ EOT), full log-softmax."""
    prefix = model.task_prefix()
    ids = prefix + tokens + ([model.eot] if finished else [])
    features = model.prepare(path).features
    with torch.no_grad():
        logits = model.model(input_features=features, decoder_input_ids=torch.tensor([ids])).logits[0].double()
    no_speech = logits[0].softmax(-1)[model.token_id("<|nocaptions|>")].item()
    gen = model.model.generation_config
    total = 0.0
    for step, token in enumerate(ids[len(prefix):]):
        row = logits[len(prefix) - 1 + step].clone()
        row[list(gen.suppress_tokens or [])] = -float("inf")
        if step == 0:
            row[list(gen.begin_suppress_tokens or [])] = -float("inf")
        assert row.argmax().item() == token  # the decode really was greedy
        total += row.log_softmax(-1)[token].item()
    return no_speech, total / (len(tokens) + 1)


LIMIT = 40  # tokens: enough for the dog bark to show its loop, few enough to keep the tests fast


@pytest.fixture(scope="module")
def bark_and_speech(tiny_en, manifest):
    """Paths of the dog bark (tiny.en loops "Ha ha ha …" on it) and a speech clip, with their exact decodes."""
    paths = [next(r["path"] for r in manifest if r["kind"] == kind) for kind in ("nonspeech", "speech")]
    return paths, tiny_en.transcribe(paths, batch_size=2, exact=True, max_new_tokens=LIMIT)


@pytest.mark.parametrize("row", [0, 1], ids=["bark", "speech"])
def test_figures_equal_a_plain_forward(tiny_en, bark_and_speech, row):
    path, result = bark_and_speech[0][row], bark_and_speech[1][row]
    no_speech, avg = _plain_figures(tiny_en, path, result.tokens, result.finished)
    assert result.no_speech_prob == pytest.approx(no_speech, abs=1e-5)
    assert result.avg_logprob == pytest.approx(avg, abs=1e-4)
    data = result.text.encode()
    assert result.compression_ratio == len(data) / len(zlib.compress(data))
    if row == 1:
        assert result.no_speech_prob < 0.3 and result.avg_logprob > -1.0


def test_exact_decoding_is_plain_greedy_and_the_guard_stops_the_loop(tiny_en, bark_and_speech):
    paths, exact = bark_and_speech
    with torch.no_grad():
        generated = tiny_en.model.generate(tiny_en.prepare(paths).features, do_sample=False, num_beams=1,
                                           max_new_tokens=LIMIT)
    for result, row in zip(exact, generated):
        assert result.text == tiny_en.tokenizer.decode(row, skip_special_tokens=True).strip()
    assert not exact[0].finished and len(exact[0].tokens) == LIMIT and not exact[0].repetition_stopped
    assert exact[0].compression_ratio > 2.4  # openai/whisper's own loop flag agrees

    guarded = tiny_en.transcribe(paths, batch_size=2, max_new_tokens=LIMIT)  # the guard is on by default
    bark, speech = guarded
    assert bark.repetition_stopped and not bark.finished
    assert 0 < len(bark.tokens) < LIMIT and bark.tokens == exact[0].tokens[: len(bark.tokens)]
    assert exact[0].text.startswith(bark.text)
    assert RepetitionGuard().looped(bark.tokens) and not RepetitionGuard().looped(bark.tokens[:-1])
    # the row that stopped left the batch; the speech row still decodes exactly
    assert speech.tokens == exact[1].tokens and speech.finished and not speech.repetition_stopped
    assert speech.avg_logprob == pytest.approx(exact[1].avg_logprob, abs=1e-5)


def test_no_speech_gate_empties_the_bark_not_the_speech(tiny_en, bark_and_speech):
    paths, exact = bark_and_speech
    bark_p, speech_p = exact[0].no_speech_prob, exact[1].no_speech_prob
    threshold = (bark_p + speech_p) / 2
    assert speech_p < threshold < bark_p
    bark, speech = tiny_en.transcribe(paths, batch_size=2, max_new_tokens=LIMIT, no_speech_threshold=threshold)
    assert bark.text == "" and bark.tokens == [] and bark.skipped == GATE_NO_SPEECH
    assert bark.no_speech_prob == pytest.approx(bark_p, abs=1e-6)  # the figures stay
    assert speech.text == exact[1].text and speech.skipped is None
    with pytest.raises(OtoscopeError, match="exact=True"):
        tiny_en.transcribe(paths[1], exact=True, no_speech_threshold=0.6)


def test_repetition_guard_rule():
    guard = RepetitionGuard(max_ngram=8, min_repeats=4, min_tokens=16)
    assert not guard.looped([7] * 15) and guard.looped([1, 2] + [7] * 16)
    assert not guard.looped([1, 2] * 7) and guard.looped([9] + [1, 2] * 8)
    assert not guard.looped([1, 2, 3, 4] * 3) and guard.looped([1, 2, 3, 4] * 4)
    assert not guard.looped(list(range(9)) * 4)  # a 9-token block is longer than max_ngram
    assert not guard.looped([5, 1, 2, 3, 1, 2, 3, 1, 2, 4] * 3)
    with pytest.raises(OtoscopeError, match="min_repeats"):
        RepetitionGuard(min_repeats=1)


def test_gates_follow_openai_rule():
    assert SpeechGates().fired(0.99, -5.0) is None
    only = SpeechGates(no_speech_threshold=0.6)
    assert only.fired(0.7, 0.0) == GATE_NO_SPEECH and only.fired(0.6, -5.0) is None
    both = SpeechGates(no_speech_threshold=0.6, logprob_threshold=-1.0)
    assert both.fired(0.7, -1.5) == GATE_NO_SPEECH_AND_LOGPROB
    assert both.fired(0.7, -0.5) is None  # a confident decode vetoes the skip
    assert both.fired(0.5, -3.0) is None
    with pytest.raises(OtoscopeError, match="set no_speech_threshold too"):
        SpeechGates(logprob_threshold=-1.0)
    with pytest.raises(OtoscopeError, match="probability"):
        SpeechGates(no_speech_threshold=1.5)


def test_compression_ratio_flags_loops():
    assert compression_ratio("A" * 200) > 2.4 > compression_ratio("The dog is running in the park.")
    assert compression_ratio("") == 0.0


def test_ctc_models_have_no_whisper_figures():
    import otoscope

    model = otoscope.load("tiny-random-wav2vec2")
    from tests.models.test_decode import _ctc_tokenizer

    model.tokenizer = _ctc_tokenizer()
    out = model.transcribe(np.zeros(8_000, np.float32))
    assert (out.no_speech_prob, out.avg_logprob, out.compression_ratio, out.skipped) == (None, None, None, None)
    with pytest.raises(OtoscopeError, match="Whisper only"):
        model.transcribe(np.zeros(8_000, np.float32), no_speech_threshold=0.6)
