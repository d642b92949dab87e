"""One pass over a corpus: the model runs up to the SAE's hook, the SAE encodes the real frames, the
accumulator takes the sparse codes. Under ``torchrun`` each rank takes every ``world_size``-th clip and the
states are combined at the end (sums all-reduced, top-k and samples all-gathered and merged), so the result
equals one process's.

Only real frames are encoded: Whisper's encoder runs on 1500 frames per window, but the padding frames are
dropped before the SAE (and never counted). Clips longer than the 30 s window are cut into windows whose
frames are numbered from the clip's start; a clip's windows are always in the same update, so word spans
that cross a window boundary stay whole.
"""

from __future__ import annotations

import math
import os
from collections import Counter

import torch

from otoscope.audio.io import Clip, split_windows, to_clip
from otoscope.errors import OtoscopeError
from otoscope.features.config import FeaturesConfig
from otoscope.features.labels import WORD, LabelTable, build_labels
from otoscope.features.result import LISTED_CLASSES, SELECTIVITY_CAP, FeatureStats
from otoscope.features.select import EMPTY_KEY, unpack_key
from otoscope.features.stats import FeatureAccumulator
from otoscope.sae.corpus import Corpus, open_corpus
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.splice import sae_hook


class _Stop(Exception):
    """Raised by the hook to end the forward pass once the activation is taken."""


def _check_hook(model, sae: SparseAutoencoder, hook: str | None) -> str:
    hook = sae_hook(model, sae, hook)
    if hook.startswith("decoder.") and ".cross_attn.hook_k" not in hook and ".cross_attn.hook_v" not in hook:
        raise OtoscopeError(f"{hook} is a decoder hook (rows are text tokens); feature statistics are per encoder "
                            "frame: use an SAE on an encoder hook.")
    return hook


def clip_pieces(model, item) -> list[tuple[Clip, int]]:
    """The clip (or its 30 s windows) with each piece's first frame."""
    clip = to_clip(item.audio, model.geometry.sample_rate, item.sample_rate)
    clip = Clip(clip.samples, clip.sample_rate, item.name)
    window = model.geometry.window_samples
    if window is None or len(clip.samples) <= window:
        return [(clip, 0)]
    hop = model.geometry.samples_per_frame
    return [(piece, start // hop) for piece, start in zip(split_windows(clip, window), range(0, len(clip.samples), window))]


def hook_activations(model, clips: list[Clip], hook: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``([batch, pos, d_in] activation, [batch, pos] real-frame mask)``; the pass stops at ``hook``."""
    grabbed = {}

    def grab(tensor, point):
        grabbed["x"] = tensor.detach()
        raise _Stop

    inputs = model.prepare(clips)
    with torch.no_grad(), model.hooks([(hook, grab)]):
        try:
            model.forward_inputs(inputs)
        except _Stop:
            pass
    x = grabbed["x"]
    return x.reshape(*x.shape[:2], -1), inputs.frame_mask


def _encode(sae: SparseAutoencoder, x: torch.Tensor, chunk: int = 16384):
    """Sparse code of ``x`` ``[n, d_in]`` as CPU ``(rows, latents, values)``, rows ascending."""
    rows, latents, values = [], [], []
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk]
        if sae.cfg.architecture == "topk":
            code = sae.encode_sparse(part)
            r, lat, v = code.rows(), code.latents, code.values
        else:
            dense = sae.encode(part)  # [n, d_sae]
            r, lat = dense.nonzero(as_tuple=True)
            v = dense[r, lat]
        rows.append(r.cpu() + start)
        latents.append(lat.cpu())
        values.append(v.float().cpu())
    return torch.cat(rows), torch.cat(latents), torch.cat(values)


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def corpus_meta(corpus: Corpus) -> tuple[list[str], list[dict]]:
    """Names and labels of every clip without decoding audio where the source allows."""
    dataset = getattr(corpus, "_dataset", None)
    if dataset is not None:
        audio = getattr(corpus, "_audio_column", "audio")
        rows = dataset.remove_columns([audio]) if audio in dataset.column_names else dataset
        labels = [{k: v for k, v in r.items() if isinstance(v, (str, int, float, bool))} for r in rows]
        return [f"#{i}" for i in range(len(labels))], labels
    items = [corpus[i] for i in range(len(corpus))]
    return [item.name for item in items], [dict(item.labels) for item in items]


@torch.no_grad()
def feature_stats(model, sae: SparseAutoencoder, corpus, config: FeaturesConfig | None = None, *,
                  sae_name: str = "<sae>") -> FeatureStats:
    """Statistics of every latent of ``sae`` over the real frames of ``corpus`` (a folder, manifest,
    ``hf:NAME`` or list; see :func:`otoscope.sae.open_corpus`), in one pass: see :class:`FeatureStats`.

    Under ``torchrun`` (an initialised process group) each rank reads its share of the clips; every rank
    returns the combined statistics.
    """
    from tqdm.auto import tqdm

    from otoscope.sae.distributed import DistInfo

    config = config or FeaturesConfig()
    hook = _check_hook(model, sae, config.hook)
    corpus = corpus if isinstance(corpus, Corpus) else open_corpus(corpus, limit=config.max_clips)
    if config.max_clips is not None and len(corpus) > config.max_clips:
        corpus = open_corpus(corpus, limit=config.max_clips)
    if len(corpus) == 0:
        raise OtoscopeError("the corpus is empty; pass a folder or manifest with at least one clip.")
    rank, world = _rank_world()
    info = DistInfo(rank, world, rank)
    if info.distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise OtoscopeError("WORLD_SIZE > 1 but no process group; run under torchrun via `otoscope sae features`.")
    labels = LabelTable()
    if config.labels or config.spans is not None:
        names, clip_labels = corpus_meta(corpus)
        labels = build_labels(names, clip_labels, config.labels, config.spans, model.geometry, config.max_classes)
    sae = sae.to(model.device).eval()
    acc = FeatureAccumulator(sae.d_sae, config, labels)
    mine = list(range(rank, len(corpus), world))
    records: dict[int, dict] = {}
    bar = tqdm(total=len(mine), desc=f"features r{rank}" if world > 1 else "features", unit="clip",
               disable=not config.progress)
    position = 0
    while position < len(mine):
        pieces = []  # (clip index, piece, first frame)
        while position < len(mine) and len(pieces) < config.batch_size:
            item = corpus[mine[position]]
            position += 1
            item_pieces = clip_pieces(model, item)
            seconds = sum(c.seconds for c, _ in item_pieces)
            records[item.index] = {"clip": item.name, "frames": 0, "seconds": round(seconds, 4),
                                   "labels": {k: v for k, v in item.labels.items()
                                              if k in labels.clip_class and v not in (None, "")}}
            pieces += [(item.index, c, f) for c, f in item_pieces]
        xs, clips, frames = [], [], []
        for start in range(0, len(pieces), config.batch_size):
            batch = pieces[start : start + config.batch_size]
            x, mask = hook_activations(model, [c for _, c, _ in batch], hook)
            if x.shape[-1] != sae.d_in:
                raise OtoscopeError(f"{hook} of {model.name} has width {x.shape[-1]} but the SAE reads d_in={sae.d_in}; "
                                    "use the model and hook the SAE was trained on (--model, --hook).")
            for j, (index, _, first) in enumerate(batch):
                n = int(mask[j].sum())
                xs.append(x[j, :n])  # real frames only: padding never reaches the SAE
                clips.append(torch.full((n,), index, dtype=torch.int64))
                frames.append(first + torch.arange(n))
                records[index]["frames"] += n
        x = torch.cat(xs).to(sae.device, sae.W_enc.dtype)
        rows, latents, values = _encode(sae, x)
        acc.update(rows, latents, values, torch.cat(clips), torch.cat(frames))
        bar.update(position - bar.n)
    bar.close()
    if info.distributed:
        import torch.distributed as dist

        gathered = [None] * world
        dist.all_gather_object(gathered, records)
        records = {k: v for part in gathered for k, v in part.items()}
        acc.all_reduce(info)
    if acc.frames == 0:
        raise OtoscopeError(f"no real frames in {corpus.description}; the clips are too short to fill one frame.")
    clip_list = []
    for i in range(len(corpus)):
        rec = records[i]
        if i in labels.spans:
            s = labels.spans[i]
            rec["words"] = [{"word": w, "start": int(a), "end": int(b)} for w, a, b in zip(s.words, s.starts, s.ends)]
        clip_list.append(rec)
    return _finish(acc, model, hook, sae_name, clip_list, labels)


def _finish(acc: FeatureAccumulator, model, hook: str, sae_name: str, clips: list[dict], labels: LabelTable) -> FeatureStats:
    frames = max(acc.frames, 1)
    top_clip, top_frame = unpack_key(acc.top.key)
    empty = acc.top.key == EMPTY_KEY
    lo, hi, examples = acc.quantile_groups()
    Q, P = acc.config.quantiles, acc.config.per_quantile
    order = torch.argsort(examples.key, dim=1, stable=True)  # show each group's examples by value, then clip, frame
    order = order.gather(1, torch.argsort(examples.payload.gather(1, order), dim=1, descending=True, stable=True))
    examples = type(examples)(*(t.gather(1, order) for t in examples))
    q_clip, q_frame = unpack_key(examples.key)
    q_empty = examples.key == EMPTY_KEY
    co_index, co_score = acc.coactivation(acc.config.coactivation_top)
    columns = {
        "frequency": (acc.count.double() / frames).float(), "mean": (acc.total / frames).float(),
        "max": acc.top.payload[:, 0].where(~empty[:, 0], torch.zeros(())).float(),
        "histogram": acc.hist, "edges": acc.edges,
        "top_value": acc.top.payload.where(~empty, torch.zeros(())), "top_clip": top_clip.where(~empty, -1),
        "top_frame": top_frame.where(~empty, -1),
        "quantile_lo": lo, "quantile_hi": hi,
        "quantile_value": examples.payload.where(~q_empty, torch.zeros(())).view(acc.d_sae, Q, P),
        "quantile_clip": q_clip.where(~q_empty, -1).view(acc.d_sae, Q, P),
        "quantile_frame": q_frame.where(~q_empty, -1).view(acc.d_sae, Q, P),
        "coactivation_index": co_index, "coactivation_score": co_score,
        "temporal_consistency": acc.temporal_consistency().float(),
    }
    stats = FeatureStats(sae_name, hook, model.name, float(model.geometry.frame_rate), clips, list(labels.keys), columns)
    stats.label_stats = _label_stats(acc, stats, labels) if labels.keys else [{} for _ in range(acc.d_sae)]
    stats.explanations = [None] * acc.d_sae
    return stats


def _label_stats(acc: FeatureAccumulator, stats: FeatureStats, labels: LabelTable) -> list[dict]:
    """Per latent and key: label counts among the top activations, selectivity per value, the best value."""
    listed = {}
    for key in labels.keys:
        ratio = acc.selectivity(key, SELECTIVITY_CAP)  # [d_sae, classes]
        ranked = torch.nan_to_num(ratio, nan=-math.inf)
        order = torch.argsort(ranked, dim=1, descending=True, stable=True)[:, :LISTED_CLASSES]  # ties: frequent first
        listed[key] = (order.tolist(), ratio.gather(1, order).tolist())
    out = []
    top_clip, top_frame = stats.columns["top_clip"].tolist(), stats.columns["top_frame"].tolist()
    for i in range(acc.d_sae):
        entry_labels = [stats._labels_at(c, f) for c, f in zip(top_clip[i], top_frame[i]) if c >= 0]
        per_key = {}
        for key in labels.keys:
            classes = labels.classes[key]
            order, values = listed[key][0][i], listed[key][1][i]
            chosen = {classes[c]: float(f"{v:.6g}") for c, v in zip(order, values) if not math.isnan(v)}
            best = next(iter(chosen), None)
            per_key[key] = {"top_counts": dict(Counter(e[key] for e in entry_labels if key in e).most_common()),
                            "selectivity": chosen, "best": best, "best_selectivity": chosen.get(best)}
        out.append(per_key)
    return out
