"""Extract activations of any hook points over an audio corpus into a sharded, resumable store.

Only real positions are kept: Whisper's padding frames are dropped (and so are wav2vec2-family batch
padding frames); decoder hooks keep the teacher-forced text tokens. Clips longer than Whisper's 30 s
window are cut into consecutive windows whose frames are numbered from the clip's start. When every hook
is an encoder hook, the forward pass stops right after the last one (no decoder, no later blocks).

Under ``torchrun`` each rank takes every ``world_size``-th clip and writes its own shards; the store is
complete when every rank has finished. A killed run resumes where its last shard ended.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from otoscope.audio.io import Clip, split_windows, to_clip
from otoscope.errors import AudioError, OtoscopeError
from otoscope.hooks.cache import ActivationCache
from otoscope.hooks.points import Site
from otoscope.hooks.select import select
from otoscope.sae.corpus import Corpus, CorpusItem, open_corpus
from otoscope.sae.store import StoreInfo
from otoscope.sae.writer import ShardWriter, index_rows

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

STORAGE_DTYPES = ("float16", "bfloat16", "float32")


@dataclass
class ExtractConfig:
    """How to extract a store."""

    hooks: str | list[str]
    """Hook names or globs, e.g. ``encoder.blocks.*.hook_resid_post``. Encoder and decoder hooks cannot be mixed
    (their rows are frames and tokens); attention patterns are not stored."""
    dtype: str = "float16"
    """Storage dtype: ``float16`` (default), ``bfloat16`` (wider range) or ``float32``."""
    batch_size: int = 8
    """Clips (or 30 s windows) per forward pass."""
    shard_mb: float = 256.0
    """Approximate shard size in MiB (all hooks together); a shard closes at the next clip boundary."""
    on_error: str = "raise"
    """``raise`` stops at an unreadable clip; ``skip`` records it in the progress file and goes on."""
    overwrite: bool = False
    """Replace an existing store in the output folder instead of resuming it."""
    repair: bool = False
    """Check this rank's finished shards first and re-extract from the first damaged one."""
    progress: bool = True
    """Show a progress bar."""
    extra: dict = field(default_factory=dict)
    """Free-form notes kept in ``store.json``'s corpus record."""

    def __post_init__(self):
        if self.dtype not in STORAGE_DTYPES:
            raise OtoscopeError(f"storage dtype must be one of {', '.join(STORAGE_DTYPES)}, got '{self.dtype}'.")
        if self.batch_size < 1:
            raise OtoscopeError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.shard_mb <= 0:
            raise OtoscopeError(f"shard_mb must be positive, got {self.shard_mb}.")
        if self.on_error not in ("raise", "skip"):
            raise OtoscopeError(f"on_error must be 'raise' or 'skip', got '{self.on_error}'.")


@dataclass
class ExtractResult:
    """What one rank's extraction did."""

    path: Path
    """The store folder."""
    hooks: list[str]
    """Hooks extracted."""
    rows: int
    """Rows this rank has in the store (resumed shards included)."""
    shards: int
    """Shards this rank has written (resumed shards included)."""
    clips: int
    """Clips this rank was given."""
    resumed_from: int
    """Rank-local clips already done when this run started (0 for a fresh store)."""
    skipped: list[str] = field(default_factory=list)
    """Clips that could not be read (``on_error='skip'``)."""


class _Stop(Exception):
    """Raised by the last hook to end the forward pass early."""


def _positions(model: HookedAudioModel, names: list[str]) -> str:
    token = [n for n in names if n.startswith("decoder.") and ".cross_attn.hook_k" not in n
             and ".cross_attn.hook_v" not in n]
    if token and len(token) != len(names):
        raise OtoscopeError("encoder and decoder hooks have different rows (frames vs tokens); extract them into "
                            f"separate stores. Decoder hooks here: {', '.join(token[:3])}.")
    for name in names:
        if model.points[name].site is Site.PATTERN:
            raise OtoscopeError(f"{name} is an attention pattern; patterns are not stored (their key axis varies).")
    return "tokens" if token else "frames"


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise OtoscopeError(f"rank {rank} is outside world_size {world_size}.")
    return rank, world_size


def _pieces(model: HookedAudioModel, item: CorpusItem, positions: str) -> list[tuple[Clip, int]]:
    """The clip (or its 30 s windows) with each piece's first frame."""
    clip = to_clip(item.audio, model.geometry.sample_rate, item.sample_rate)
    clip = Clip(clip.samples, clip.sample_rate, item.name)
    window = model.geometry.window_samples
    if window is None or len(clip.samples) <= window:
        return [(clip, 0)]
    if positions == "tokens":
        raise AudioError(f"{item.name} is {clip.seconds:.1f} s; decoder hooks need clips of at most 30 s (the "
                         "transcript cannot be aligned to windows). Split the audio and its text.")
    hop = model.geometry.samples_per_frame
    return [(piece, start // hop) for piece, start in zip(split_windows(clip, window), range(0, len(clip.samples), window))]


def _forward(model: HookedAudioModel, clips: list[Clip], texts, names: list[str], early_stop: bool) -> tuple[ActivationCache, list[int] | None]:
    store: dict[str, torch.Tensor] = {}
    last = names[-1]

    def grab(tensor, hook):
        store[hook.name] = tensor.detach()
        if early_stop and hook.name == last:
            raise _Stop

    inputs = model.prepare(clips, texts) if model.has_decoder else model.prepare(clips)
    with torch.no_grad(), model.hooks([(n, grab) for n in names]):
        try:
            model.forward_inputs(inputs)
        except _Stop:
            pass
    cache = ActivationCache(store, inputs.frame_mask, model.geometry, inputs.token_mask)
    return cache, inputs.prefix_len


def extract_activations(model: HookedAudioModel, corpus, out: str | Path, config: ExtractConfig, *, rank: int | None = None,
                        world_size: int | None = None) -> ExtractResult:
    """Run ``model`` over ``corpus`` (see :func:`otoscope.sae.corpus.open_corpus`) and store the activations of
    ``config.hooks`` in ``out``; resumes a store that a previous run of the same extraction left unfinished.

    ``rank`` / ``world_size`` default to torchrun's ``RANK`` / ``WORLD_SIZE``.
    """
    from tqdm.auto import tqdm

    corpus = corpus if isinstance(corpus, Corpus) else open_corpus(corpus)
    rank, world_size = _rank_world(rank, world_size)
    names = select(model.points, config.hooks)
    positions = _positions(model, names)
    early_stop = all(n.startswith("encoder.") for n in names)
    dtype = getattr(torch, config.dtype)
    seconds_per_frame = model.geometry.samples_per_frame / model.geometry.sample_rate
    width = _row_bytes(model, names, dtype)
    shard_rows = max(1, int(config.shard_mb * 2**20 // width))
    corpus_record = {"description": corpus.description, "n_clips": len(corpus), "fingerprint": corpus.fingerprint,
                     **config.extra}
    expected = {"model": model.name, "hooks": names, "dtype": config.dtype, "positions": positions,
                "corpus": corpus_record, "world_size": world_size, "shard_rows": shard_rows}
    writer = ShardWriter(out, rank, world_size, shard_rows)
    progress = writer.open(expected, overwrite=config.overwrite, repair=config.repair)
    mine = list(range(rank, len(corpus), world_size))  # this rank's clips, by corpus position
    resumed_from = progress.next_item
    if progress.done:
        return _result(writer, names, len(mine), resumed_from)
    bar = tqdm(total=len(mine), initial=resumed_from, desc=f"extract r{rank}" if world_size > 1 else "extract",
               unit="clip", disable=not config.progress)
    position = resumed_from
    while position < len(mine):
        group, pieces = [], []
        while position < len(mine) and len(pieces) < config.batch_size:
            item = corpus[mine[position]]
            position += 1
            try:
                item_pieces = _pieces(model, item, positions)
                if positions == "tokens" and not item.text:
                    raise OtoscopeError(f"{item.name} has no transcript; decoder hooks need one per clip (a 'text' column).")
            except AudioError:
                if config.on_error == "raise":
                    raise
                writer.skip(item.name)
                continue
            group.append((item, len(item_pieces)))
            pieces += [(len(group) - 1, clip, offset) for clip, offset in item_pieces]
        rows: dict[int, list] = {i: [] for i in range(len(group))}
        for start in range(0, len(pieces), config.batch_size):
            batch = pieces[start : start + config.batch_size]
            texts = [group[g][0].text for g, _, _ in batch] if positions == "tokens" else None
            cache, prefix_len = _forward(model, [clip for _, clip, _ in batch], texts, names, early_stop)
            skip = prefix_len if positions == "tokens" else None  # decoder rows: the transcript's tokens only
            for j, (g, clip, offset) in enumerate(batch):
                rows[g].append(_clip_rows(cache, names, j, skip, offset, dtype, group[g][0]))
        for g, (item, _) in enumerate(group):
            tensors = {n: torch.cat([r[0][n] for r in rows[g]]) for n in names}
            frames = torch.cat([r[1] for r in rows[g]])
            if frames.numel() == 0:
                continue
            if writer.info is None:
                writer.write_info(StoreInfo(model=model.name, hooks=names, d_in={n: int(tensors[n].shape[1]) for n in names},
                                            dtype=config.dtype, positions=positions, corpus=corpus_record,
                                            world_size=world_size, shard_rows=shard_rows,
                                            hook_shapes=_hook_shapes(rows[g][0][2]), source=model.source,
                                            sample_rate=model.geometry.sample_rate,
                                            samples_per_frame=model.geometry.samples_per_frame))
            seconds = sum(clip.seconds for gi, clip, _ in pieces if gi == g)
            clip_meta = {"id": item.index, "name": item.name, "text": item.text, "labels": item.labels,
                         "seconds": round(seconds, 4)}
            writer.add_clip(clip_meta, tensors, index_rows(item.index, frames,
                                                           seconds_per_frame if positions == "frames" else None))
        writer.advance(position)
        bar.update(position - bar.n)
    bar.close()
    if writer.info is None and world_size == 1:
        raise OtoscopeError(f"no activations were extracted from {corpus.description}: every clip was skipped or "
                            "had no frames.")
    writer.finish(position)
    return _result(writer, names, len(mine), resumed_from)


def _row_bytes(model: HookedAudioModel, names: list[str], dtype: torch.dtype) -> int:
    """Approximate bytes per row (all hooks), from the model config, to size shards."""
    config = model.config
    d_model = getattr(config, "d_model", None) or getattr(config, "hidden_size", 512)
    return max(1, len(names)) * int(d_model) * torch.finfo(dtype).bits // 8 + 16


def _clip_rows(cache: ActivationCache, names: list[str], j: int, skip: list[int] | None, offset: int,
               dtype: torch.dtype, item):
    """Clip ``j``'s real rows per hook (flattened, cast, checked), their frame numbers and trailing shapes."""
    out, shapes = {}, {}
    n_rows = None
    for name in names:
        real = cache.real(name, j)  # [n, ...]
        if skip is not None:
            real = real[skip[j]:]  # drop the decoder prompt and task prefix
        shapes[name] = list(real.shape[1:])
        flat = real.reshape(real.shape[0], -1).to("cpu", dtype)
        if not torch.isfinite(flat).all():
            bad = (~torch.isfinite(flat)).any(1).nonzero()[0, 0].item()
            raise OtoscopeError(f"non-finite activation (NaN/inf) at {name}, clip {item.name}, row {offset + bad} "
                                f"after casting to {str(dtype).removeprefix('torch.')}; store as bfloat16 or float32 "
                                "if the values overflow, or check the model's weights.")
        out[name] = flat
        n_rows = flat.shape[0]
    frames = offset + torch.arange(n_rows or 0)
    return out, frames, shapes


def _hook_shapes(shapes: dict[str, list[int]]) -> dict[str, list[int]]:
    return {n: s for n, s in shapes.items() if len(s) > 1}


def _result(writer: ShardWriter, names, n_clips: int, resumed_from: int) -> ExtractResult:
    p = writer.progress
    return ExtractResult(writer.folder, names, sum(s.rows for s in p.shards), len(p.shards), n_clips, resumed_from,
                         list(p.skipped))

