"""Read CTranslate2 ``model.bin`` files and convert Whisper ones to a transformers state dict.

CTranslate2's binary layout (``python/ctranslate2/specs/model_spec.py`` writes it), little-endian:

    uint32 binary_version; [v>=2] string spec_name; uint32 spec_revision
    uint32 n_variables, then per variable:
        string name; uint8 rank; uint32 dims[rank]; [v>=4] uint8 dtype, uint32 n_bytes; bytes data
    [v>=3] uint32 n_aliases, then per alias: string alias; string target

where ``string`` is a uint16 byte count followed by that many bytes (NUL-terminated).

The Whisper spec fuses projections that transformers keeps apart: self-attention q/k/v live in one
``linear_0`` of shape ``[3 * d_model, d_model]`` (the k part of the bias is zero: Whisper's k has no bias),
and cross-attention k/v in one ``linear_1`` of shape ``[2 * d_model, d_model]``.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from otoscope.errors import OtoscopeError

# CTranslate2's DataType enum (include/ctranslate2/types.h).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def sha256_of(paths: list[Path], chunk: int = 1 << 22) -> str:
    """SHA-256 of the concatenation of ``paths`` (a model split over several files hashes as one)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


class _Reader:
    """Sequential reader over one or more files, as if they were concatenated."""

    def __init__(self, paths: list[Path]):
        self._handles: list[BinaryIO] = [open(p, "rb") for p in paths]
        self._i = 0
        self.name = " + ".join(str(p) for p in paths)

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n and self._i < len(self._handles):
            block = self._handles[self._i].read(n - len(out))
            if not block:
                self._i += 1
                continue
            out += block
        if len(out) != n:
            raise OtoscopeError(f"{self.name} is truncated: reinstall the package that ships it.")
        return bytes(out)

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("H")
        return self.read(n).rstrip(b"\0").decode("utf-8")

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


def read_ct2_model(paths: list[Path]) -> tuple[str, dict[str, torch.Tensor]]:
    """Read a CTranslate2 model file (possibly split in parts) → ``(spec_name, {name: tensor})``.

    Aliases are resolved to the tensor they point to. Scalars come back as 0-d tensors.
    """
    reader = _Reader(paths)
    try:
        (version,) = reader.unpack("I")
        if version < 4 or version > 6:
            raise OtoscopeError(
                f"{reader.name}: CTranslate2 binary version {version} is not supported (4–6 are); "
                "convert the model again with a recent ctranslate2."
            )
        spec = reader.string()
        reader.unpack("I")  # spec revision: the Whisper layout has not changed across revisions
        (count,) = reader.unpack("I")
        variables: dict[str, torch.Tensor] = {}
        for _ in range(count):
            name = reader.string()
            (rank,) = reader.unpack("B")
            dims = reader.unpack("I" * rank)
            dtype_id, n_bytes = reader.unpack("BI")
            raw = reader.read(n_bytes)
            if dtype_id not in _CT2_DTYPES:
                raise OtoscopeError(f"{reader.name}: variable {name} has unknown dtype id {dtype_id}.")
            np_dtype = _CT2_DTYPES[dtype_id]
            if np_dtype == "bfloat16":
                array = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16)
            else:
                array = torch.from_numpy(np.frombuffer(raw, dtype=np_dtype).copy())
            variables[name] = array.reshape(dims)
        (n_aliases,) = reader.unpack("I")
        for _ in range(n_aliases):
            alias, target = reader.string(), reader.string()
            if target in variables:
                variables[alias] = variables[target]
        return spec, variables
    finally:
        reader.close()


def _split(tensor: torch.Tensor, parts: int) -> list[torch.Tensor]:
    # [parts * d_model, ...] → parts × [d_model, ...]
    return list(torch.chunk(tensor, parts, dim=0))


def _linear(sd: dict, dst: str, src: dict, prefix: str, bias: bool = True) -> None:
    sd[f"{dst}.weight"] = src[f"{prefix}/weight"]
    if bias:
        sd[f"{dst}.bias"] = src[f"{prefix}/bias"]


def _norm(sd: dict, dst: str, src: dict, prefix: str) -> None:
    sd[f"{dst}.weight"] = src[f"{prefix}/gamma"]
    sd[f"{dst}.bias"] = src[f"{prefix}/beta"]


def _fused_self_attention(sd: dict, dst: str, src: dict, prefix: str) -> None:
    q_w, k_w, v_w = _split(src[f"{prefix}/linear_0/weight"], 3)
    q_b, k_b, v_b = _split(src[f"{prefix}/linear_0/bias"], 3)
    if torch.count_nonzero(k_b):
        raise OtoscopeError(f"{prefix}: Whisper's key projection has no bias, but this file's is non-zero.")
    sd[f"{dst}.q_proj.weight"], sd[f"{dst}.q_proj.bias"] = q_w, q_b
    sd[f"{dst}.k_proj.weight"] = k_w
    sd[f"{dst}.v_proj.weight"], sd[f"{dst}.v_proj.bias"] = v_w, v_b
    _linear(sd, f"{dst}.out_proj", src, f"{prefix}/linear_1")


def _cross_attention(sd: dict, dst: str, src: dict, prefix: str) -> None:
    _linear(sd, f"{dst}.q_proj", src, f"{prefix}/linear_0")
    k_w, v_w = _split(src[f"{prefix}/linear_1/weight"], 2)
    k_b, v_b = _split(src[f"{prefix}/linear_1/bias"], 2)
    if torch.count_nonzero(k_b):
        raise OtoscopeError(f"{prefix}: Whisper's key projection has no bias, but this file's is non-zero.")
    sd[f"{dst}.k_proj.weight"] = k_w
    sd[f"{dst}.v_proj.weight"], sd[f"{dst}.v_proj.bias"] = v_w, v_b
    _linear(sd, f"{dst}.out_proj", src, f"{prefix}/linear_2")


def _ffn(sd: dict, dst: str, src: dict, prefix: str) -> None:
    _norm(sd, f"{dst}.final_layer_norm", src, f"{prefix}/layer_norm")
    _linear(sd, f"{dst}.fc1", src, f"{prefix}/linear_0")
    _linear(sd, f"{dst}.fc2", src, f"{prefix}/linear_1")


def _count_layers(src: dict, side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in src:
        n += 1
    return n


def whisper_state_dict(src: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Map CTranslate2 Whisper variables to a ``WhisperForConditionalGeneration`` state dict.

    Returns ``(state_dict, config_kwargs)`` where ``config_kwargs`` holds the architecture sizes read off
    the tensors (d_model, layers, heads, vocabulary, mel bins, positions) for ``WhisperConfig``.
    """
    sd: dict[str, torch.Tensor] = {}
    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        _linear(sd, f"{enc}.{conv}", src, f"encoder/{conv}")
    sd[f"{enc}.embed_positions.weight"] = src["encoder/position_encodings/encodings"]
    n_enc = _count_layers(src, "encoder")
    for i in range(n_enc):
        p, d = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        _norm(sd, f"{d}.self_attn_layer_norm", src, f"{p}/self_attention/layer_norm")
        _fused_self_attention(sd, f"{d}.self_attn", src, f"{p}/self_attention")
        _ffn(sd, d, src, f"{p}/ffn")
    _norm(sd, f"{enc}.layer_norm", src, "encoder/layer_norm")

    sd[f"{dec}.embed_tokens.weight"] = src["decoder/embeddings/weight"]
    sd[f"{dec}.embed_positions.weight"] = src["decoder/position_encodings/encodings"]
    n_dec = _count_layers(src, "decoder")
    for i in range(n_dec):
        p, d = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        _norm(sd, f"{d}.self_attn_layer_norm", src, f"{p}/self_attention/layer_norm")
        _fused_self_attention(sd, f"{d}.self_attn", src, f"{p}/self_attention")
        _norm(sd, f"{d}.encoder_attn_layer_norm", src, f"{p}/attention/layer_norm")
        _cross_attention(sd, f"{d}.encoder_attn", src, f"{p}/attention")
        _ffn(sd, d, src, f"{p}/ffn")
    _norm(sd, f"{dec}.layer_norm", src, "decoder/layer_norm")
    sd["proj_out.weight"] = sd[f"{dec}.embed_tokens.weight"]

    vocab, d_model = src["decoder/embeddings/weight"].shape
    config = dict(
        vocab_size=int(vocab),
        d_model=int(d_model),
        num_mel_bins=int(src["encoder/conv1/weight"].shape[1]),
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(src["encoder/num_heads"]),
        decoder_attention_heads=int(src["decoder/num_heads"]),
        encoder_ffn_dim=int(src["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(src["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(src["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(src["decoder/position_encodings/encodings"].shape[0]),
    )
    return sd, config
