"""Writing an activation store shard by shard, so that a killed extraction resumes without loss or duplicates.

Each rank buffers whole clips and, once it holds ``shard_rows`` rows, writes them as one shard (atomic
rename) and then records the shard in its progress file (atomic rename). A kill between the two leaves a
shard no progress file lists; resuming deletes it and extracts the same clips into the same shard again.
Memory stays at about one shard whatever the corpus size.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import torch

from otoscope._io import atomic_path, write_text_atomic
from otoscope.errors import OtoscopeError
from otoscope.sae.store import (INDEX_KEYS, Progress, ShardEntry, ShardRef, StoreInfo, crc32, progress_name, read_info,
                                read_shard, shard_name)

_SHARD = re.compile(r"shard-r(\d+)-(\d+)\.safetensors$")


class ShardWriter:
    """Appends clips' activations to one rank's shards and keeps its progress file."""

    def __init__(self, folder: str | Path, rank: int = 0, world_size: int = 1, shard_rows: int = 65536):
        self.folder = Path(folder)
        self.rank = rank
        self.world_size = world_size
        self.shard_rows = shard_rows
        self.info: StoreInfo | None = None
        self.progress = Progress(rank)
        self._buffer: dict[str, list[torch.Tensor]] = {}
        self._clips: list[dict] = []
        self._rows = 0
        self._first_item = 0

    # ------------------------------------------------------------------ opening
    def open(self, expected: dict, *, overwrite: bool = False, repair: bool = False) -> Progress:
        """Start or resume; ``expected`` holds the :attr:`StoreInfo.IDENTITY` fields of this extraction."""
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = read_info(self.folder)
        if existing is not None and not overwrite:
            wrong = [f for f in StoreInfo.IDENTITY if f in expected and getattr(existing, f) != expected[f]]
            if wrong:
                detail = "; ".join(f"{f}: store has {getattr(existing, f)!r}, this run {expected[f]!r}" for f in wrong)
                raise OtoscopeError(f"{self.folder} holds a different extraction ({detail}). Use another output "
                                    "folder, or overwrite to replace it.")
            self.info = existing
        if overwrite and self.rank == 0:
            self._clear()
        path = self.folder / progress_name(self.rank)
        if path.is_file() and not overwrite:
            self.progress = Progress.load(path)
        if repair and self.progress.shards:
            self._repair()
        self._drop_orphans()
        return self.progress

    def _clear(self) -> None:
        for file in self.folder.iterdir():
            if _SHARD.search(file.name) or file.name == "store.json" or re.match(r"progress-r\d+\.json$", file.name):
                file.unlink()

    def _drop_orphans(self) -> None:
        listed = {s.name for s in self.progress.shards}
        for file in self.folder.glob(f"shard-r{self.rank:02d}-*.safetensors"):
            if file.name not in listed:
                file.unlink()  # written after the last progress record: its clips are redone

    def _repair(self) -> None:
        keys = list(self.info.hooks if self.info else []) + list(INDEX_KEYS)
        for i, entry in enumerate(self.progress.shards):
            try:
                read_shard(ShardRef(self.folder / entry.name, entry.rows, entry.crc), keys)
            except OtoscopeError:
                self.progress.shards = self.progress.shards[:i]
                self.progress.next_item = entry.first_item
                self.progress.done = False
                self._save_progress()
                return

    def write_info(self, info: StoreInfo) -> None:
        """Write ``store.json`` (first data of a new store) or check widths against the existing one."""
        if self.info is not None:
            if self.info.d_in != info.d_in:
                raise OtoscopeError(f"activation widths {info.d_in} differ from the store's {self.info.d_in}; "
                                    "the model is not the one this store was extracted with.")
            return
        write_text_atomic(self.folder / "store.json", json.dumps(asdict(info), indent=1))
        self.info = info

    # ------------------------------------------------------------------ appending
    def add_clip(self, clip: dict, tensors: dict[str, torch.Tensor], index: dict[str, torch.Tensor]) -> None:
        """Buffer one clip's rows: ``tensors`` ``{hook: [n, d_in]}`` and ``index`` ``{clip, frame, time: [n]}``."""
        n = next(iter(index.values())).shape[0]
        if not self._clips:
            self._first_item = self.progress.next_item
        for key, tensor in {**tensors, **index}.items():
            self._buffer.setdefault(key, []).append(tensor)
        self._clips.append({**clip, "rows": [self._rows, self._rows + n]})
        self._rows += n

    def advance(self, next_item: int, *, final: bool = False) -> None:
        """Mark rank-local clips before ``next_item`` as buffered; write a shard when enough rows are waiting."""
        if self._rows >= self.shard_rows or (final and self._clips):
            self._flush(next_item)
        elif final or not self._clips:
            self.progress.next_item = next_item  # nothing buffered: clips without rows (or skipped) are done
            self._save_progress()

    def _flush(self, next_item: int) -> None:
        from safetensors.torch import save_file

        tensors = {key: torch.cat(parts).contiguous() for key, parts in self._buffer.items()}
        name = shard_name(self.rank, len(self.progress.shards))
        meta = {"otoscope": json.dumps({"rank": self.rank, "number": len(self.progress.shards), "clips": self._clips})}
        with atomic_path(self.folder / name) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        crcs = {key: crc32(t) for key, t in tensors.items()}
        self.progress.shards.append(ShardEntry(name, self._rows, self._first_item, next_item, crcs))
        self.progress.next_item = next_item
        self._save_progress()
        self._buffer, self._clips, self._rows = {}, [], 0

    def skip(self, name: str) -> None:
        """Record a clip that could not be read."""
        self.progress.skipped.append(name)

    def finish(self, next_item: int) -> Progress:
        """Write what is buffered and mark this rank done."""
        self.advance(next_item, final=True)
        self.progress.done = True
        self._save_progress()
        return self.progress

    def _save_progress(self) -> None:
        write_text_atomic(self.folder / progress_name(self.rank), self.progress.to_json())


def index_rows(clip_id: int, frames: torch.Tensor, seconds_per_frame: float | None) -> dict[str, torch.Tensor]:
    """Index tensors for one clip's rows: ``clip`` (int64), ``frame`` (int32), ``time`` (float32 seconds; NaN for tokens)."""
    n = frames.shape[0]
    time = frames.double() * seconds_per_frame if seconds_per_frame is not None else torch.full((n,), float("nan"))
    return {"clip": torch.full((n,), clip_id, dtype=torch.int64), "frame": frames.to(torch.int32),
            "time": time.to(torch.float32)}

