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
from typing import Iterator, Sequence

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


def _token_embedding(encoder: torch.nn.Module) -> torch.nn.Module:
    """The embedding module the encoder's stack calls (T5: ``encoder.embed_tokens``, not always ``shared`` itself)."""
    stack = getattr(encoder, "encoder", encoder)
    return getattr(stack, "embed_tokens", None) or encoder.get_input_embeddings()


def text_hook_names(model) -> list[str]:
    """Every text-encoder hook of ``model`` (MusicGen or a bare text encoder), in forward order."""
    n_layers = len(_blocks(text_encoder_of(model)))
    return ["text_encoder.hook_embed", *[f"text_encoder.blocks.{i}.hook_resid_post" for i in range(n_layers)],
            "text_encoder.hook_ln_final"]


def _hooks(names: list[str], patterns: str | Sequence[str]) -> list[str]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not chosen:
        raise OtoscopeError(f"hook filter {patterns} matches no text-encoder hook; they are: {', '.join(names)}.")
    return chosen


@torch.no_grad()
def iter_prompt_states(model, tokenizer, texts: Sequence[str], hooks: Sequence[str], *, batch_size: int = 32,
                       embed_hook=None) -> Iterator[dict[str, torch.Tensor]]:
    """Yield, prompt by prompt, ``{hook: [tokens_real, d_model]}`` float32 CPU tensors of the text encoder.

    ``hooks`` are names from :func:`text_hook_names`; only the prompt's real tokens are kept (no padding).
    ``embed_hook``: an optional forward hook on the token-embedding module (it may return a replacement,
    e.g. the embeddings with a trace of noise for the same-input control).
    """
    encoder = text_encoder_of(model).eval()
    blocks = _blocks(encoder)
    device = next(encoder.parameters()).device
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        enc = tokenizer(batch, return_tensors="pt", padding=True)
        outputs: dict[int, torch.Tensor] = {}
        handles = [block.register_forward_hook(lambda m, a, o, i=i: outputs.__setitem__(i, o[0] if isinstance(o, tuple) else o))
                   for i, block in enumerate(blocks)]
        if embed_hook is not None:
            handles.append(_token_embedding(encoder).register_forward_hook(embed_hook))
        try:
            result = encoder(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                             output_hidden_states=True)
        finally:
            for handle in handles:
                handle.remove()
        states = {"text_encoder.hook_embed": result.hidden_states[0], "text_encoder.hook_ln_final": result.last_hidden_state,
                  **{f"text_encoder.blocks.{i}.hook_resid_post": outputs[i] for i in range(len(blocks))}}
        for j in range(len(batch)):
            real = enc["attention_mask"][j].bool().to(device)
            yield {n: states[n][j][real].to("cpu", torch.float32) for n in hooks}


@torch.no_grad()
def extract_text_embeddings(model, tokenizer, prompts, out: str | Path, *, hooks: str | Sequence[str] = "text_encoder.hook_ln_final",
                            model_name: str = "text-encoder", dtype: str = "float32", batch_size: int = 32,
                            shard_mb: float = 256.0, overwrite: bool = False) -> ExtractResult:
    """Store the text-encoder activations of ``prompts`` (see :func:`read_prompts`) in ``out``.

    ``model`` is a MusicGen model or a bare text encoder; ``tokenizer`` its tokenizer. Resumes like audio extraction.
    """
    encoder = text_encoder_of(model).eval()
    rows = read_prompts(prompts)
    names = _hooks(text_hook_names(encoder), hooks)
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
    states = iter_prompt_states(encoder, tokenizer, [r["text"] for r in rows[resumed:]], names, batch_size=batch_size)
    for position, tensors in enumerate(states, resumed):
        tensors = {n: t.to(storage) for n, t in tensors.items()}
        for name, tensor in tensors.items():
            if not torch.isfinite(tensor).all():
                raise OtoscopeError(f"non-finite text-encoder activation at {name} for prompt {position} "
                                    f"({rows[position]['text'][:40]!r}); store as float32 or check the weights.")
        if writer.info is None:
            writer.write_info(StoreInfo(model=model_name, hooks=names, d_in={n: int(t.shape[1]) for n, t in tensors.items()},
                                        dtype=dtype, positions="tokens", corpus=corpus, shard_rows=shard_rows,
                                        source="text-encoder"))
        n_tokens = next(iter(tensors.values())).shape[0]
        writer.add_clip({"id": position, "name": f"prompt {position}", "text": rows[position]["text"],
                         "labels": rows[position]["labels"], "seconds": 0.0},
                        tensors, index_rows(position, torch.arange(n_tokens), None))
        if (position + 1) % batch_size == 0 or position + 1 == len(rows):
            writer.advance(position + 1)
    position = len(rows)
    writer.finish(position)
    p = writer.progress
    return ExtractResult(writer.folder, names, sum(s.rows for s in p.shards), len(p.shards), len(rows), resumed)
