"""Text-encoder embeddings (MusicGen's T5) go through the same store and trainer as audio activations."""

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.models.tokenizer import byte_tokenizer
from otoscope.sae.store import ActivationStore
from otoscope.sae.text_encoder import extract_text_embeddings
from otoscope.sae.train_config import TrainConfig
from otoscope.sae.trainer import Trainer


@pytest.fixture(scope="module")
def t5():
    from transformers import T5Config, T5EncoderModel

    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=2,
                      pad_token_id=tokenizer.pad_token_id)
    return T5EncoderModel(config).eval(), tokenizer


def test_prompt_tokens_are_stored_with_labels_and_match_the_encoder(tmp_path, t5):
    encoder, tokenizer = t5
    prompts = [{"text": "a joyful upbeat song", "emotion": "joy"}, {"text": "slow sad piano", "emotion": "sadness"},
               "angry drums"]
    result = extract_text_embeddings(encoder, tokenizer, prompts, tmp_path, hooks="text_encoder.*", batch_size=2)
    store = ActivationStore(tmp_path)
    assert store.hooks == ["text_encoder.hook_embed", "text_encoder.blocks.0.hook_resid_post",
                           "text_encoder.blocks.1.hook_resid_post", "text_encoder.hook_ln_final"]
    lengths = [len(tokenizer(p if isinstance(p, str) else p["text"]).input_ids) for p in prompts]
    assert result.rows == store.n_rows == sum(lengths)  # real tokens only, no padding
    assert store.clips()[1]["labels"] == {"emotion": "sadness"} and store.info.positions == "tokens"
    with torch.no_grad():
        ids = tokenizer(["slow sad piano"], return_tensors="pt")
        out = encoder(**ids, output_hidden_states=True)
    rows = slice(lengths[0], lengths[0] + lengths[1])
    assert torch.allclose(store.activations("text_encoder.hook_ln_final")[rows], out.last_hidden_state[0], atol=1e-6)
    assert torch.allclose(store.activations("text_encoder.hook_embed")[rows], out.hidden_states[0][0], atol=1e-6)
    assert torch.allclose(store.activations("text_encoder.blocks.0.hook_resid_post")[rows], out.hidden_states[1][0], atol=1e-6)
    trained = Trainer(store, tmp_path / "sae", TrainConfig(k=2, expansion=2, batch_size=8, total_samples=80, lr=1e-2,
                                                           checkpoint_every=None, init_samples=16)).fit(progress=False)
    assert set(trained.saes) == set(store.hooks)


def test_bad_prompts_are_explained(tmp_path, t5):
    with pytest.raises(OtoscopeError, match="prompt 1 has no text"):
        extract_text_embeddings(*t5, ["fine", {"emotion": "joy"}], tmp_path)
    with pytest.raises(OtoscopeError, match="matches no text-encoder hook"):
        extract_text_embeddings(*t5, ["fine"], tmp_path, hooks="encoder.*")
