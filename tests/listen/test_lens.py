"""The audio-LLM logit lens: its last block reads exactly the model's own next-token distribution."""

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.listen.lens import audio_llm_lens

from .conftest import noise, tone

PROMPT = "Which word?"


def test_last_block_is_the_models_own_reading(llm):
    clip = tone()
    with torch.no_grad():
        logits = llm(clip, text=PROMPT)[0]
    pos = llm.prepare(clip, text=PROMPT).positions[0]
    probs = logits[pos.readout].softmax(-1)
    answer = int(logits[pos.readout].argsort()[-3])  # the third most likely token: rank 2
    result = audio_llm_lens(llm, clip, PROMPT, answer=[answer])
    last = result.layers[-1]
    assert len(result.layers) == llm.n_llm_layers
    assert last.answer_rank == 2
    assert last.answer_prob == pytest.approx(float(probs[answer]), abs=1e-6)
    assert last.top_tokens[0] == int(probs.argmax())
    audio = pos.audio[: pos.real_audio]
    assert result.audio_top.shape == (llm.n_llm_layers, len(audio))
    assert result.audio_top[-1].tolist() == logits[audio].argmax(-1).tolist()
    assert len(result.audio_seconds) == len(audio)
    # an earlier block reads something else: the lens is not the last reading copied
    assert result.layers[0].top_probs != last.top_probs


def test_lens_json_and_errors(llm, tiny_whisper):
    result = audio_llm_lens(llm, noise(), PROMPT, answer="a")
    data = result.to_json()
    assert data["answer_text"] == "a" and len(data["layers"]) == llm.n_llm_layers
    assert all(len(row["top_text"]) == 5 for row in data["layers"])
    assert list(result.to_frame().layer) == list(range(llm.n_llm_layers))
    with pytest.raises(OtoscopeError, match="not an audio-LLM"):
        audio_llm_lens(tiny_whisper, noise(), PROMPT)
    with pytest.raises(OtoscopeError, match="one clip at a time"):
        audio_llm_lens(llm, [noise(), tone()], PROMPT)
