"""Shuffled training batches from an activation store, reproducible from a single number.

Consecutive frames of one clip are nearly identical, so training needs rows mixed across clips. The reader
streams the store epoch after epoch: each epoch visits the shards in a seeded random order, loads them a
mixing buffer at a time (whole shards until ``buffer_rows`` rows are in memory), shuffles the buffer's rows
with a seeded permutation and cuts the result into batches. The row stream is thus a fixed function of
the seed, and a batch is fixed by its position in the stream: a resumed run asks for ``start=position``
and gets exactly the batches an uninterrupted run would have had. The next buffer loads in a background
thread while the current one is used.

Under data parallelism every rank reads the same global batch and keeps its own contiguous slice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.store import INDEX_KEYS, ActivationStore


@dataclass
class Batch:
    """One training batch."""

    acts: dict[str, torch.Tensor]
    """``{hook: [rows, d_in]}``: this rank's rows of the global batch, float32 on the reader's device."""
    position: int
    """Stream position (rows of all ranks) of the global batch's first row."""


@dataclass
class RowSource:
    """Where one stream row came from."""

    shard: str
    """Shard file."""
    clip: int
    """Clip id (corpus position)."""
    clip_name: str
    """Clip path or id."""
    frame: int
    """Frame (or token) within the clip."""


class ShuffledReader:
    """Iterate shuffled batches of ``hooks`` from ``store`` forever, starting at stream position ``start``."""

    def __init__(self, store: ActivationStore, hooks: list[str], batch_size: int, *, seed: int = 0,
                 buffer_rows: int = 1 << 18, start: int = 0, rank: int = 0, world_size: int = 1,
                 device: str | torch.device = "cpu", prefetch: bool = True):
        if batch_size % world_size:
            raise OtoscopeError(f"batch_size {batch_size} does not split over {world_size} ranks; make it a multiple.")
        if buffer_rows < 1:
            raise OtoscopeError(f"buffer_rows must be positive, got {buffer_rows}.")
        self.store = store
        self.hooks = store.check_hooks(hooks)
        self.batch_size = batch_size
        self.seed = seed
        self.buffer_rows = buffer_rows
        self.position = start
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)
        self.prefetch = prefetch
        self.n_rows = store.n_rows

    # ------------------------------------------------------------------ the stream
    def _generator(self, *keys: int) -> torch.Generator:
        seed = self.seed
        for key in keys:
            seed = (seed * 1_000_003 + key + 1) % (2**63 - 1)
        return torch.Generator().manual_seed(seed)

    def groups(self, epoch: int) -> list[list[int]]:
        """Shard indices of each mixing buffer of ``epoch``, in stream order."""
        order = torch.randperm(len(self.store.shards), generator=self._generator(epoch)).tolist()
        groups, current, rows = [], [], 0
        for shard in order:
            current.append(shard)
            rows += self.store.shards[shard].rows
            if rows >= self.buffer_rows:
                groups.append(current)
                current, rows = [], 0
        if current:
            groups.append(current)
        return groups

    def _permutation(self, epoch: int, group: int, rows: int) -> torch.Tensor:
        return torch.randperm(rows, generator=self._generator(epoch, group, 7))

    def _load(self, epoch: int, group: int, shards: list[int]) -> dict[str, torch.Tensor]:
        parts = [self.store.read(i, self.hooks) for i in shards]
        rows = sum(self.store.shards[i].rows for i in shards)
        perm = self._permutation(epoch, group, rows)
        return {h: torch.cat([p[h] for p in parts]).index_select(0, perm) for h in self.hooks}

    def _locate_group(self, position: int) -> tuple[int, int, int]:
        """``(epoch, group, offset in group)`` of stream row ``position``."""
        epoch, offset = divmod(position, self.n_rows)
        for g, shards in enumerate(self.groups(epoch)):
            rows = sum(self.store.shards[i].rows for i in shards)
            if offset < rows:
                return epoch, g, offset
            offset -= rows
        raise AssertionError("offset beyond the epoch")

    def _buffers(self, position: int) -> Iterator[dict[str, torch.Tensor]]:
        """Shuffled buffers from ``position`` on (the first one cut at the offset)."""
        epoch, group, offset = self._locate_group(position)
        plan = self.groups(epoch)
        pool = ThreadPoolExecutor(1) if self.prefetch else None

        def next_key(e, g, p):
            return (e, g + 1, p) if g + 1 < len(p) else (e + 1, 0, self.groups(e + 1))

        def submit(e, g, p):
            return pool.submit(self._load, e, g, p[g]) if pool else (e, g, p[g])

        try:
            pending = submit(epoch, group, plan)
            key = (epoch, group, plan)
            while True:
                buffer = pending.result() if pool else self._load(*pending)
                key = next_key(*key)
                pending = submit(*key)
                if offset:
                    buffer = {h: t[offset:] for h, t in buffer.items()}
                    offset = 0
                yield buffer
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self) -> Iterator[Batch]:
        local = self.batch_size // self.world_size
        lo, hi = self.rank * local, (self.rank + 1) * local
        carry: dict[str, list[torch.Tensor]] = {h: [] for h in self.hooks}
        have = 0
        for buffer in self._buffers(self.position):
            n = next(iter(buffer.values())).shape[0]
            start = 0
            while start < n:
                take = min(self.batch_size - have, n - start)
                for h in self.hooks:
                    carry[h].append(buffer[h][start : start + take])
                have += take
                start += take
                if have == self.batch_size:
                    acts = {}
                    for h in self.hooks:
                        full = carry[h][0] if len(carry[h]) == 1 else torch.cat(carry[h])
                        acts[h] = full[lo:hi].to(self.device, torch.float32, non_blocking=True)
                    batch = Batch(acts, self.position)
                    self.position += self.batch_size
                    carry, have = {h: [] for h in self.hooks}, 0
                    yield batch

    # ------------------------------------------------------------------ provenance
    def locate(self, position: int) -> RowSource:
        """Where stream row ``position`` came from (for error messages about bad rows)."""
        epoch, group, offset = self._locate_group(position)
        shards = self.groups(epoch)[group]
        rows = sum(self.store.shards[i].rows for i in shards)
        row = int(self._permutation(epoch, group, rows)[offset])
        for shard in shards:
            size = self.store.shards[shard].rows
            if row < size:
                index = self.store.read(shard, hooks=[], index=True)
                clip = int(index[INDEX_KEYS[0]][row])
                names = {c["id"]: c["name"] for c in self.store.shard_clips(shard)}
                return RowSource(self.store.shards[shard].path.name, clip, names.get(clip, "?"),
                                 int(index[INDEX_KEYS[1]][row]))
            row -= size
        raise AssertionError("row beyond the group")
