"""MusicGen in a study: the decoder read with shared codes, the sides kept apart, the code-logit latent effect."""

from __future__ import annotations

import pytest
import torch

import otoscope
from otoscope.errors import HookNameError
from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder
from otoscope.study.effects import latent_effect
from otoscope.study.inputs import LabelledData
from otoscope.study.musicgen import MusicgenSubject, code_logit_effect
from otoscope.study.subjects import load_subject

PROMPTS = ["a happy ukulele tune", "a sad cello lament", "a happy brass fanfare", "a sad slow piano"]


@pytest.fixture(scope="module")
def subject():
    return MusicgenSubject(otoscope.load("tiny-random-musicgen"), decoder_seconds=0.1)


@pytest.fixture(scope="module")
def data():
    return LabelledData("prompts", PROMPTS, PROMPTS, ["happy", "sad", "happy", "sad"])


def test_load_subject_picks_the_musicgen_subject():
    chosen = load_subject("tiny-random-musicgen")
    assert isinstance(chosen, MusicgenSubject) and chosen.family == "musicgen"
    assert latent_effect("musicgen") is code_logit_effect


def test_decoder_reads_the_same_codes_for_every_prompt(subject, data):
    hooks = subject.resolve_hooks("decoder.blocks.*.hook_resid_post")
    assert hooks == ["decoder.blocks.0.hook_resid_post", "decoder.blocks.1.hook_resid_post"]
    items = subject.collect(data, hooks, batch_size=3)  # two batches: the shared codes must not depend on them
    positions = subject.shared_codes().shape[1]
    assert positions == 5 + 4 - 1  # delayed layout of 0.1 s (5 frames, 4 codebooks) is 5 + 4 wide; its last column is not read
    assert [tuple(i.acts.shape) for i in items] == [(2, positions, 32)] * 4
    # the same prompt twice gives the same states; two prompts differ, only through the prompt
    again = subject._decoder_items(data, hooks, batch_size=4)  # one batch this time
    torch.testing.assert_close(again[0].acts, items[0].acts)
    assert (items[0].acts - items[1].acts).abs().max() > 1e-3
    control = subject.same_input_control(data, hooks, snr_db=40.0, clean=items)
    assert list(control["hook"]) == hooks and (control["same_input_cosine"] > 0.9).all()


def test_sides_are_studied_apart(subject):
    with pytest.raises(HookNameError, match="study each side in its own run"):
        subject.resolve_hooks("text_encoder.hook_ln_final,decoder.hook_ln_final")
    assert subject.resolve_hooks("text_encoder.hook_ln_final") == ["text_encoder.hook_ln_final"]


def test_code_logit_effect(subject, data):
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=16, architecture="relu"), seed=0)
    sae.b_enc.data.fill_(1.0)  # every latent fires, so removing one changes the stream
    hook = "decoder.blocks.0.hook_resid_post"
    moved = code_logit_effect(subject, data, hook, sae, 3)
    assert moved["code_kl"] > 1e-6 and 0 <= moved["code_top1_changed"] <= 1
    sae.W_dec.data[3] = 0  # a latent that decodes to nothing removes nothing
    assert code_logit_effect(subject, data, hook, sae, 3) == {"code_kl": 0.0, "code_top1_changed": 0.0}
