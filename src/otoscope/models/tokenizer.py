"""A small Whisper-style byte-level tokenizer for the random tiny Whisper (no download needed).

It has the 256 byte tokens plus Whisper's special tokens, so prompts, teacher forcing and decoding
run exactly as with a real checkpoint.
"""

from __future__ import annotations

SPECIAL_TOKENS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
                  "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


def byte_tokenizer():
    """A ``PreTrainedTokenizerFast`` over bytes with Whisper's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    return tok


def chat_byte_tokenizer(specials: list[str], eos: str, chat_template: str | None = None):
    """A byte-level ``PreTrainedTokenizerFast`` with ``specials`` as added special tokens (ids 256 on, in order)
    and ``eos`` (one of them) as end and padding token: the tiny random audio-LLMs' stand-in for their real
    tokenizers (chat markers and the audio placeholder stay single tokens, as in the real ones)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core)
    tok.add_special_tokens({"additional_special_tokens": list(specials)})
    tok.eos_token = tok.pad_token = eos
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok
