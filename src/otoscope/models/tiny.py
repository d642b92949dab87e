"""Tiny random-weight models of every supported architecture, for tests and quick experiments.

They are built in-process from small configs with a fixed seed (no download), keep each family's real
structure (Whisper's 30 s window and 1500 frames, the wav2vec2 CNN front end with its 320-sample hop,
post-norm and pre-norm ("stable layer norm") encoders, WavLM's gated relative position bias), and make
noise instead of sense.
"""

from __future__ import annotations

TINY_MODELS = ("tiny-random-whisper", "tiny-random-wav2vec2", "tiny-random-wav2vec2-stable",
               "tiny-random-hubert", "tiny-random-wavlm", "tiny-random-musicgen")

_W2V_COMMON = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    conv_dim=(16, 16, 16, 16, 16, 16, 16), conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=32,
    hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
    layerdrop=0.0, mask_time_prob=0.0, pad_token_id=0,
)


def _whisper():
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from otoscope.models.tokenizer import byte_tokenizer

    tokenizer = byte_tokenizer()
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=64,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
        begin_suppress_tokens=None, suppress_tokens=None,
        # weights 15× the default init scale: with std 0.02 the decoder barely listens (logit differences between
        # two clips ~2e-4, the size of float32 rounding on some CPUs), so tests could not tell a broken patching
        # engine from a right one; at 0.3 two clips differ by ~0.5 in a logit difference.
        init_std=0.1,
    )
    return WhisperForConditionalGeneration(config), WhisperFeatureExtractor(feature_size=80), tokenizer


def _w2v(kind: str):
    from transformers import (HubertConfig, HubertForCTC, Wav2Vec2Config, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC, WavLMConfig, WavLMForCTC)

    if kind == "hubert":
        config, cls = HubertConfig(**_W2V_COMMON, feat_extract_norm="group"), HubertForCTC
    elif kind == "wavlm":
        config, cls = WavLMConfig(**_W2V_COMMON, feat_extract_norm="group", num_buckets=32, max_bucket_distance=64), WavLMForCTC
    elif kind == "wav2vec2-stable":
        config, cls = Wav2Vec2Config(**_W2V_COMMON, feat_extract_norm="layer", do_stable_layer_norm=True), Wav2Vec2ForCTC
    else:
        config, cls = Wav2Vec2Config(**_W2V_COMMON, feat_extract_norm="group"), Wav2Vec2ForCTC
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=config.feat_extract_norm == "layer")
    return cls(config), extractor, None


def _musicgen():
    """MusicGen with the released checkpoints' shape of things (32 kHz EnCodec at 50 frames/s, 4 codebooks, a T5
    text encoder narrower than the decoder, so ``enc_to_dec_proj`` exists) at a few hundred thousand weights."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (EncodecConfig, EncodecFeatureExtractor, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, PreTrainedTokenizerFast, T5Config)
    from transformers.utils import logging

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    core = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(alphabet))}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", pad_token="<pad>")
    text = T5Config(vocab_size=len(tokenizer), d_model=24, d_kv=8, d_ff=48, num_layers=2, num_heads=3,
                    relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id, initializer_factor=3.0)
    codec = EncodecConfig(target_bandwidths=[2.2], sampling_rate=32000, audio_channels=1, num_filters=4,
                          num_residual_layers=1, upsampling_ratios=[8, 5, 4, 4], codebook_size=64, hidden_size=16,
                          codebook_dim=16, num_lstm_layers=1, compress=2)
    # codes 0..63, the pad/start token is 64 (the embeddings have vocab + 1 rows), as in the real checkpoints
    decoder = MusicgenDecoderConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    ffn_dim=64, num_codebooks=4, max_position_embeddings=256, pad_token_id=64,
                                    bos_token_id=64, decoder_start_token_id=64, dropout=0.0, attention_dropout=0.0,
                                    activation_dropout=0.0, initializer_factor=0.1)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the pad id equals the code vocabulary size by design; spare the warning
    try:
        config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
        model = MusicgenForConditionalGeneration(config)
    finally:
        logging.set_verbosity(verbosity)
    model.generation_config.pad_token_id = model.generation_config.decoder_start_token_id = 64
    extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=32000)
    return model, extractor, tokenizer


def build_tiny(name: str):
    """``(hf_model, feature_extractor, tokenizer)`` for one of :data:`TINY_MODELS`, seeded for repeatability."""
    if name not in TINY_MODELS:
        raise KeyError(name)
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        if name == "tiny-random-whisper":
            return _whisper()
        if name == "tiny-random-musicgen":
            return _musicgen()
        return _w2v(name.removeprefix("tiny-random-"))
    finally:
        torch.random.set_rng_state(state)
