"""The streaming accumulator behind :func:`otoscope.features.feature_stats`: every latent at once, fixed memory.

Each update takes the sparse code of a group of whole clips (entries ``(row, latent, value > 0)`` with each
row's clip and frame) and adds, per latent:

* firing count, activation sum (float64), and a histogram of ``log10(value)`` over shared edges
  (values below the first edge count in the first bin, above the last in the last);
* the top-N entries (highest value; ties: smaller clip, then frame) — :mod:`otoscope.features.select`;
* a quantile sample: per (latent, histogram bin) a bottom-k sample by a hash priority of
  ``(clip, frame, latent, seed)``, i.e. a uniform sample without replacement of the bin's frames that
  merges exactly across batches and ranks. At the end the bins are cut into ``quantiles`` groups by the
  histogram's cumulative count (a bin joins the group of the count decile its first frame falls in, so
  groups are whole bins: a bin holding more than a decile leaves the next group(s) empty) and each group's
  examples are the lowest-priority samples of its bins;
* co-activation: ``C[i, j]`` = frames where latents i and j both fire, the Gram matrix of the firing
  indicators, built from each row's active pairs (``Σ_rows nnz_row²`` scatter-adds, no dense product);
* with labels, per key and class: the activation sum on frames of that class (selectivity);
* with word spans, per latent: Σa, Σa² and ``Σ_spans (Σ_{f∈s} a_f)² / |s|`` over frames inside spans
  (temporal consistency, see :class:`otoscope.features.result.FeatureStats`).

The state is ``O(d_sae · (top_n + bins · per_quantile + classes) + d_sae²)``: it does not grow with the corpus.
"""

from __future__ import annotations

import math

import torch

from otoscope.features import select
from otoscope.features.config import FeaturesConfig
from otoscope.features.labels import LabelTable


class FeatureAccumulator:
    """Running statistics of ``d_sae`` latents over real frames."""

    def __init__(self, d_sae: int, config: FeaturesConfig, labels: LabelTable | None = None):
        self.d_sae = d_sae
        self.config = config
        self.labels = labels or LabelTable()
        bins = config.hist_bins
        self.edges = torch.linspace(config.hist_min, config.hist_max, bins + 1, dtype=torch.float64)
        """``[bins + 1]`` log10 activation edges."""
        self.frames = 0
        self.count = torch.zeros(d_sae, dtype=torch.int64)
        self.total = torch.zeros(d_sae, dtype=torch.float64)
        self.hist = torch.zeros(d_sae, bins, dtype=torch.int64)
        self.top = select.empty(d_sae, config.top_n, descending=True)
        self.sample = select.empty(d_sae * bins, config.per_quantile, descending=False)
        self.coact = torch.zeros(d_sae, d_sae, dtype=torch.int32) if config.coactivation else None
        self.class_sum = {k: torch.zeros(d_sae, len(self.labels.classes[k]), dtype=torch.float64) for k in self.labels.keys}
        self.class_frames = {k: torch.zeros(len(self.labels.classes[k]), dtype=torch.int64) for k in self.labels.keys}
        self.span_frames = torch.zeros((), dtype=torch.int64)
        self.span_sum = torch.zeros(d_sae, dtype=torch.float64)
        self.span_sq = torch.zeros(d_sae, dtype=torch.float64)
        self.span_between = torch.zeros(d_sae, dtype=torch.float64)

    # ------------------------------------------------------------------ per batch
    @torch.no_grad()
    def update(self, rows: torch.Tensor, latents: torch.Tensor, values: torch.Tensor, clips: torch.Tensor,
               frames: torch.Tensor) -> None:
        """Add a group of whole clips: entries ``rows, latents, values`` (``[nnz]``, rows ascending) of a code over
        ``[n, d_sae]``, whose row ``r`` is ``frames[r]`` of corpus clip ``clips[r]`` (``[n]`` each)."""
        on = values > 0
        rows, latents, values = rows[on], latents[on].to(torch.int64), values[on].to(torch.float32)
        n = clips.shape[0]
        self.frames += n
        self.count += torch.bincount(latents, minlength=self.d_sae)
        self.total.index_add_(0, latents, values.to(torch.float64))
        bins = self._bin(values)
        self.hist.view(-1).index_add_(0, latents * self.hist.shape[1] + bins, torch.ones_like(latents))
        key = select.pack_key(clips, frames)[rows]
        select.merge(self.top, latents, values, key, values, descending=True)
        group = latents * self.hist.shape[1] + bins
        select.merge(self.sample, group, select.priority(key, latents, self.config.seed), key, values, descending=False)
        if self.coact is not None:
            self._coactivation(rows, latents, n)
        if self.labels.keys:
            self._labels(rows, latents, values, clips, frames)

    def _bin(self, values: torch.Tensor) -> torch.Tensor:
        bins = torch.bucketize(torch.log10(values.to(torch.float64)), self.edges, right=True) - 1
        return bins.clamp_(0, self.hist.shape[1] - 1)

    def _coactivation(self, rows: torch.Tensor, latents: torch.Tensor, n: int) -> None:
        per_row = torch.bincount(rows, minlength=n)  # [n] active latents per row
        starts = per_row.cumsum(0) - per_row
        m = per_row[rows]  # [nnz] each entry pairs with its row's m entries
        left = torch.repeat_interleave(torch.arange(len(rows)), m)  # [pairs]
        block = torch.repeat_interleave(m.cumsum(0) - m, m)
        right = starts[rows[left]] + (torch.arange(len(left)) - block)
        flat = latents[left] * self.d_sae + latents[right]
        self.coact.view(-1).index_put_((flat,), torch.ones(1, dtype=torch.int32).expand(len(flat)), accumulate=True)

    def _labels(self, rows, latents, values, clips, frames) -> None:
        classes, span = self.labels.rows(clips, frames)
        for key, cls in classes.items():
            n_classes = self.class_frames[key].shape[0]
            if n_classes == 0:
                continue
            self.class_frames[key] += torch.bincount(cls[cls >= 0], minlength=n_classes)
            c = cls[rows]
            has = c >= 0
            self.class_sum[key].view(-1).index_add_(0, latents[has] * n_classes + c[has], values[has].to(torch.float64))
        if self.labels.spans:
            inside = span[rows] >= 0
            self.span_frames += int((span >= 0).sum())
            v = values[inside].to(torch.float64)
            lat = latents[inside]
            self.span_sum.index_add_(0, lat, v)
            self.span_sq.index_add_(0, lat, v * v)
            ids, length = torch.unique(span[span >= 0], return_counts=True)  # spans of these clips, frames in each
            local = torch.searchsorted(ids, span[rows][inside])
            cell, inverse = torch.unique(local * self.d_sae + lat, return_inverse=True)
            sums = torch.zeros(len(cell), dtype=torch.float64).index_add_(0, inverse, v)
            self.span_between.index_add_(0, cell % self.d_sae, sums * sums / length[cell // self.d_sae])

    # ------------------------------------------------------------------ ranks
    def all_reduce(self, info) -> None:
        """Combine every rank's state into every rank's accumulator (gloo/NCCL collectives, CPU tensors)."""
        if not info.distributed:
            return
        import torch.distributed as dist

        frames = torch.tensor([self.frames], dtype=torch.int64)
        sums = [frames, self.count, self.total, self.hist, self.span_frames.view(1), self.span_sum, self.span_sq,
                self.span_between, *self.class_sum.values(), *self.class_frames.values()]
        if self.coact is not None:
            sums.append(self.coact)
        for tensor in sums:
            dist.all_reduce(tensor)
        self.frames = int(frames)
        for best, descending in ((self.top, True), (self.sample, False)):
            gathered = [[torch.empty_like(t) for _ in range(info.world_size)] for t in best]
            for parts, t in zip(gathered, best):
                dist.all_gather(parts, t.contiguous())
            merged = select.empty(*best.key.shape, descending=descending)
            for r in range(info.world_size):
                select.merge_all(merged, select.Best(*(parts[r] for parts in gathered)), descending)
            for t, m in zip(best, merged):
                t.copy_(m)

    # ------------------------------------------------------------------ results
    def quantile_groups(self) -> tuple[torch.Tensor, torch.Tensor, select.Best]:
        """``(lo [d_sae, Q], hi [d_sae, Q], examples Best[d_sae·Q, per_quantile])``; empty groups have NaN bounds."""
        Q, bins = self.config.quantiles, self.hist.shape[1]
        hist = self.hist
        total = hist.sum(1, keepdim=True).clamp_min(1)
        before = hist.cumsum(1) - hist
        group = torch.div(before * Q, total, rounding_mode="floor").clamp_max(Q - 1)  # [d_sae, bins]
        group[hist == 0] = -1
        latent = torch.arange(self.d_sae)[:, None].expand(-1, bins)
        # Bounds: the lowest and highest edge of the group's bins (open ends at the histogram's extremes)
        edges = 10 ** self.edges
        lo_edge = edges[:-1].clone()
        lo_edge[0] = 0.0
        hi_edge = edges[1:].clone()
        hi_edge[-1] = math.inf
        flat = (latent * Q + group)[group >= 0]
        lo = torch.full((self.d_sae * Q,), math.inf, dtype=torch.float64)
        hi = torch.full((self.d_sae * Q,), -math.inf, dtype=torch.float64)
        lo.scatter_reduce_(0, flat, lo_edge.expand(self.d_sae, -1)[group >= 0], "amin")
        hi.scatter_reduce_(0, flat, hi_edge.expand(self.d_sae, -1)[group >= 0], "amax")
        peak = self.top.payload[:, 0].to(torch.float64).repeat_interleave(Q)
        hi = torch.minimum(hi, peak)
        empty = ~torch.isfinite(lo)
        lo[empty], hi[empty] = math.nan, math.nan
        # Examples: per group, the lowest-priority samples of its bins
        examples = select.empty(self.d_sae * Q, self.config.per_quantile, descending=False)
        s = self.sample
        valid = s.key != select.EMPTY_KEY  # [d_sae·bins, per_q]
        slot_group = (latent * Q + group).reshape(-1)[:, None].expand_as(s.key)
        select.merge(examples, slot_group[valid], s.score[valid], s.key[valid], s.payload[valid], descending=False)
        return lo.view(self.d_sae, Q), hi.view(self.d_sae, Q), examples

    def coactivation(self, top: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """Most co-activating latents: ``(index [d_sae, top] (-1 none), jaccard [d_sae, top])``.

        Jaccard of firing frames ``|i ∧ j| / |i ∨ j|`` (a latent is not its own partner); ties: smaller index.
        """
        top = max(min(top, self.d_sae - 1), 0)
        index = torch.full((self.d_sae, top), -1, dtype=torch.int64)
        score = torch.zeros(self.d_sae, top, dtype=torch.float32)
        if self.coact is None or top <= 0:
            return index, score
        n = self.count.to(torch.float64)
        for start in range(0, self.d_sae, chunk):
            both = self.coact[start : start + chunk].to(torch.float64)  # [c, d_sae]
            union = n[start : start + chunk, None] + n[None, :] - both
            jac = torch.where(union > 0, both / union.clamp_min(1), torch.zeros_like(both))
            jac[torch.arange(len(jac)), torch.arange(start, start + len(jac))] = 0.0
            order = torch.argsort(jac, dim=1, descending=True, stable=True)[:, :top]
            best = jac.gather(1, order)
            index[start : start + chunk] = torch.where(best > 0, order, torch.full_like(order, -1))
            score[start : start + chunk] = best.to(torch.float32)
        return index, score

    def selectivity(self, key: str, cap: float) -> torch.Tensor:
        """``[d_sae, classes]`` mean activation on the class / mean activation on the key's other labelled
        frames (capped at ``cap``; NaN when undefined: no frames of the class, or none elsewhere, or 0/0)."""
        s, n = self.class_sum[key], self.class_frames[key].to(torch.float64)
        mean_in = s / n
        mean_out = (s.sum(1, keepdim=True) - s) / (n.sum() - n)
        ratio = mean_in / mean_out
        ratio = torch.where(mean_out > 0, ratio, torch.where(mean_in > 0, torch.full_like(ratio, math.inf), ratio))
        return ratio.clamp_max(cap)

    def temporal_consistency(self) -> torch.Tensor:
        """``[d_sae]`` η²: between-span variance / total variance of activation over frames inside word spans
        (NaN when the latent's activation there does not vary)."""
        n = float(self.span_frames)
        if n == 0:
            return torch.full((self.d_sae,), math.nan, dtype=torch.float64)
        grand = self.span_sum**2 / n
        total = self.span_sq - grand
        between = self.span_between - grand
        ok = total > 1e-12 * self.span_sq.clamp_min(1e-300)
        return torch.where(ok, (between / total.where(ok, torch.ones_like(total))).clamp(0.0, 1.0),
                           torch.full_like(total, math.nan))
