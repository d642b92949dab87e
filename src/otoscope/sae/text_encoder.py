"""Text-encoder embeddings of text-conditioned audio models (MusicGen's T5) into the same activation store.

A text-to-audio model reads its prompt through a text encoder; SAEs on those embeddings (for example over
emotion prompts) are trained and evaluated exactly like SAEs on audio activations. Hook names follow the
audio ones: ``text_encoder.hook_embed`` (token embeddings), ``text_encoder.blocks.{L}.hook_resid_post``
and ``text_encoder.hook_ln_final`` (the encoder output the audio model attends to). Rows are the prompt's
real tokens; the index's ``clip`` is the prompt's position and ``frame`` the token position.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Sequence

import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.extract import ExtractResult
from otoscope.sae.store import StoreInfo
from otoscope.sae.writer import ShardWriter, index_rows


def text_encoder_of(model) -> torch.nn.Module:
    """The text encoder of ``model``: MusicGen's ``text_encoder``, or ``model`` itself (e.g. a T5EncoderModel)."""
    return getattr(model, "text_encoder", None) or model


def read_prompts(source) -> list[dict]:
    """Prompts as ``{"text": ..., "labels": {...}}`` from strings, dicts, or a .jsonl / .csv file with a ``text`` column."""
    if isinstance(source, (str, Path)) and Path(source).is_file():
        path = Path(source)
        if path.suffix.lower() == ".csv":
            import csv

            with path.open(newline="", encoding="utf-8") as handle:
                source = list(csv.DictReader(handle))
        else:
            source = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    for i, item in enumerate(source):
        if isinstance(item, str):
            rows.append({"text": item, "labels": {}})
        elif isinstance(item, dict) and item.get("text"):
            rows.append({"text": str(item["text"]), "labels": {k: v for k, v in item.items() if k != "text"}})
        else:
            raise OtoscopeError(f"prompt {i} has no text; give each prompt a 'text' field.")
    if not rows:
        raise OtoscopeError("no prompts given; pass at least one.")
    return rows


def _blocks(encoder: torch.nn.Module) -> torch.nn.ModuleList:
    """The encoder's blocks (T5: ``encoder.block``; BERT-like: ``encoder.layer``)."""
    stack = getattr(encoder, "encoder", encoder)
    for name in ("block", "layer", "layers"):
        blocks = getattr(stack, name, None)
        if isinstance(blocks, torch.nn.ModuleList):
            return blocks
    raise NotImplementedError(f"cannot find the blocks of {type(encoder).__name__}; supported: T5 encoders "
                              "(MusicGen's text encoder) and BERT-like encoders.")


def _hooks(n_layers: int, patterns: str | Sequence[str]) -> list[str]:
    names = ["text_encoder.hook_embed", *[f"text_encoder.blocks.{i}.hook_resid_post" for i in range(n_layers)],
             "text_encoder.hook_ln_final"]
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not chosen:
        raise OtoscopeError(f"hook filter {patterns} matches no text-encoder hook; they are: {', '.join(names)}.")
    return chosen


@torch.no_grad()
def extract_text_embeddings(model, tokenizer, prompts, out: str | Path, *, hooks: str | Sequence[str] = "text_encoder.hook_ln_final",
                            model_name: str = "text-encoder", dtype: str = "float32", batch_size: int = 32,
                            shard_mb: float = 256.0, overwrite: bool = False) -> ExtractResult:
    """Store the text-encoder activations of ``prompts`` (see :func:`read_prompts`) in ``out``.

    ``model`` is a MusicGen model or a bare text encoder; ``tokenizer`` its tokenizer. Resumes like audio extraction.
    """
    encoder = text_encoder_of(model).eval()
    rows = read_prompts(prompts)
    blocks = _blocks(encoder)
    n_layers = len(blocks)
    names = _hooks(n_layers, hooks)
    storage = getattr(torch, dtype)
    from otoscope.sae.corpus import _fingerprint

    corpus = {"description": "prompts", "n_clips": len(rows), "fingerprint": _fingerprint(r["text"] for r in rows)}
    width = int(encoder.config.d_model if hasattr(encoder.config, "d_model") else encoder.config.hidden_size)
    shard_rows = max(1, int(shard_mb * 2**20 // (len(names) * width * torch.finfo(storage).bits // 8 + 16)))
    expected = {"model": model_name, "hooks": names, "dtype": dtype, "positions": "tokens", "corpus": corpus,
                "world_size": 1, "shard_rows": shard_rows}
    writer = ShardWriter(out, 0, 1, shard_rows)
    progress = writer.open(expected, overwrite=overwrite)
    resumed = progress.next_item
    if progress.done:
        return ExtractResult(writer.folder, names, sum(s.rows for s in progress.shards), len(progress.shards), len(rows), resumed)
    device = next(encoder.parameters()).device
    position = resumed
    while position < len(rows):
        batch = rows[position : position + batch_size]
        enc = tokenizer([r["text"] for r in batch], return_tensors="pt", padding=True)
        outputs: dict[int, torch.Tensor] = {}
        handles = [block.register_forward_hook(lambda m, a, o, i=i: outputs.__setitem__(i, o[0] if isinstance(o, tuple) else o))
                   for i, block in enumerate(blocks)]
        try:
            result = encoder(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                             output_hidden_states=True)
        finally:
            for handle in handles:
                handle.remove()
        states = {"text_encoder.hook_embed": result.hidden_states[0], "text_encoder.hook_ln_final": result.last_hidden_state,
                  **{f"text_encoder.blocks.{i}.hook_resid_post": outputs[i] for i in range(n_layers)}}
        for j, row in enumerate(batch):
            real = enc["attention_mask"][j].bool()
            tensors = {n: states[n][j][real.to(device)].to("cpu", storage) for n in names}
            for name, tensor in tensors.items():
                if not torch.isfinite(tensor).all():
                    raise OtoscopeError(f"non-finite text-encoder activation at {name} for prompt {position + j} "
                                        f"({row['text'][:40]!r}); store as float32 or check the weights.")
            if writer.info is None:
                writer.write_info(StoreInfo(model=model_name, hooks=names, d_in={n: int(t.shape[1]) for n, t in tensors.items()},
                                            dtype=dtype, positions="tokens", corpus=corpus, shard_rows=shard_rows,
                                            source="text-encoder"))
            writer.add_clip({"id": position + j, "name": f"prompt {position + j}", "text": row["text"],
                             "labels": row["labels"], "seconds": 0.0},
                            tensors, index_rows(position + j, torch.arange(int(real.sum())), None))
        position += len(batch)
        writer.advance(position)
    writer.finish(position)
    p = writer.progress
    return ExtractResult(writer.folder, names, sum(s.rows for s in p.shards), len(p.shards), len(rows), resumed)
