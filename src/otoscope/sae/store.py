"""The activation store on disk: sharded safetensors with a per-row index, and its reader.

Layout of a store folder::

    store.json                        model, hooks, widths, dtype, frame geometry, corpus, ranks
    progress-r00.json                 per extraction rank: finished shards (rows, clip range, CRC32s)
    shard-r00-00000.safetensors       one tensor per hook [rows, d_in] + index tensors clip, frame, time

Every shard holds whole clips, and the rows of all hooks are aligned: row ``i`` of every hook tensor is
the same frame (or token). ``clip`` is the clip's position in the corpus, ``frame`` the encoder frame (or
text token) within the clip and ``time`` its start in seconds (NaN for tokens). The shard's metadata lists
its clips (path, transcript, labels). CRC32s recorded at write time detect damaged shards; a truncated or
corrupt shard is reported by name.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from otoscope.errors import OtoscopeError

STORE_FORMAT = "otoscope-activations"
STORE_VERSION = 1
INDEX_KEYS = ("clip", "frame", "time")


def crc32(tensor: torch.Tensor) -> int:
    """CRC32 of a tensor's bytes (any dtype)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return zlib.crc32(flat.view(torch.uint8).numpy()) if flat.numel() else 0


def shard_name(rank: int, number: int) -> str:
    """File name of shard ``number`` written by extraction rank ``rank``."""
    return f"shard-r{rank:02d}-{number:05d}.safetensors"


def progress_name(rank: int) -> str:
    """File name of rank ``rank``'s progress record."""
    return f"progress-r{rank:02d}.json"


@dataclass
class StoreInfo:
    """What ``store.json`` records."""

    model: str
    """Model name the activations come from."""
    hooks: list[str]
    """Hook names, in forward order; every shard has one tensor per hook."""
    d_in: dict[str, int]
    """Row width per hook (trailing axes flattened)."""
    dtype: str
    """Storage dtype: ``float16``, ``bfloat16`` or ``float32``."""
    positions: str
    """``frames`` (encoder time steps) or ``tokens`` (decoder text tokens)."""
    corpus: dict[str, Any]
    """``description``, ``n_clips`` and ``fingerprint`` of the corpus."""
    world_size: int = 1
    """Extraction ranks; each writes its own shards and progress file."""
    shard_rows: int = 65536
    """Rows after which a shard is closed (at the next clip boundary)."""
    hook_shapes: dict[str, list[int]] = field(default_factory=dict)
    """Trailing shape per hook before flattening (e.g. ``[heads, d_head]``), when not flat."""
    source: str = ""
    """Where the model weights came from."""
    sample_rate: int = 16000
    """Audio samples per second."""
    samples_per_frame: int = 320
    """Hop between encoder frames, in samples."""
    format: str = STORE_FORMAT
    """Always ``otoscope-activations``."""
    version: int = STORE_VERSION
    """Layout version."""

    IDENTITY = ("model", "hooks", "dtype", "positions", "corpus", "world_size", "shard_rows")

    def mismatch(self, other: "StoreInfo") -> list[str]:
        """Fields that differ in ways a resumed extraction cannot accept."""
        return [f for f in self.IDENTITY if getattr(self, f) != getattr(other, f)]


@dataclass
class ShardEntry:
    """One finished shard, as listed in a progress file."""

    name: str
    """File name inside the store folder."""
    rows: int
    """Rows in every hook tensor."""
    first_item: int
    """Rank-local position of its first clip."""
    end_item: int
    """Rank-local position after its last clip."""
    crc: dict[str, int]
    """CRC32 of every tensor."""


@dataclass
class Progress:
    """One extraction rank's progress: what is finished and where to resume."""

    rank: int
    """Extraction rank."""
    next_item: int = 0
    """Rank-local clips done (the resume point)."""
    shards: list[ShardEntry] = field(default_factory=list)
    """Finished shards, in order."""
    skipped: list[str] = field(default_factory=list)
    """Clips that could not be read (with ``on_error='skip'``)."""
    done: bool = False
    """True once every clip of this rank is in a shard."""

    @classmethod
    def load(cls, path: Path) -> "Progress":
        """Read a progress file."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["shards"] = [ShardEntry(**s) for s in raw["shards"]]
            return cls(**raw)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise OtoscopeError(f"cannot read {path} ({err}); the store's progress record is damaged. "
                                "Re-extract into a new folder (or pass overwrite).") from None

    def to_json(self) -> str:
        """JSON text of this record."""
        return json.dumps(asdict(self), indent=1)


def read_info(folder: Path) -> StoreInfo | None:
    """``store.json`` of ``folder``, or None when there is none."""
    path = folder / "store.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != STORE_FORMAT:
            raise ValueError(f"format is {raw.get('format')!r}")
        return StoreInfo(**raw)
    except (ValueError, TypeError) as err:
        raise OtoscopeError(f"{path} is not an otoscope activation store ({err}).") from None


@dataclass
class ShardRef:
    """A shard the reader can load."""

    path: Path
    """File path."""
    rows: int
    """Rows per tensor."""
    crc: dict[str, int]
    """Expected CRC32s."""


def read_shard(ref: ShardRef, keys: list[str], *, verify: bool = True) -> dict[str, torch.Tensor]:
    """Load ``keys`` from one shard, checking row counts and CRC32s; damage is reported naming the file."""
    from safetensors import safe_open

    out = {}
    try:
        with safe_open(str(ref.path), framework="pt") as handle:
            for key in keys:
                out[key] = handle.get_tensor(key)
    except FileNotFoundError:
        raise OtoscopeError(f"activation shard {ref.path} is missing; rerun the extraction with repair to "
                            "re-extract it.") from None
    except Exception as err:  # safetensors raises its own error types on truncated or garbled files
        raise OtoscopeError(f"activation shard {ref.path} is corrupt or truncated ({err}); rerun the extraction "
                            "with repair to re-extract it.") from None
    for key, tensor in out.items():
        if tensor.shape[0] != ref.rows:
            raise OtoscopeError(f"activation shard {ref.path}: '{key}' has {tensor.shape[0]} rows, the index says "
                                f"{ref.rows}; the shard is damaged. Rerun the extraction with repair.")
        if verify and key in ref.crc and crc32(tensor) != ref.crc[key]:
            raise OtoscopeError(f"activation shard {ref.path} is corrupt (checksum of '{key}' does not match); "
                                "rerun the extraction with repair to re-extract it.")
    return out


class ActivationStore:
    """Read access to a finished activation store."""

    def __init__(self, path: str | Path, *, allow_incomplete: bool = False):
        self.path = Path(path)
        info = read_info(self.path) if self.path.is_dir() else None
        if info is None:
            raise OtoscopeError(f"no activation store at {self.path} (no store.json); create one with "
                                "'otoscope sae extract' or otoscope.sae.extract_activations.")
        self.info = info
        self.shards: list[ShardRef] = []
        for rank in range(info.world_size):
            file = self.path / progress_name(rank)
            progress = Progress.load(file) if file.is_file() else Progress(rank)
            if not progress.done and not allow_incomplete:
                raise OtoscopeError(f"the activation store {self.path} is incomplete: rank {rank} has finished "
                                    f"{progress.next_item} of its clips. Rerun the same extraction to resume it.")
            self.shards += [ShardRef(self.path / s.name, s.rows, s.crc) for s in progress.shards]
        if not self.shards:
            raise OtoscopeError(f"the activation store {self.path} has no shards (no audio frames were extracted).")

    # ------------------------------------------------------------------ properties
    @property
    def hooks(self) -> list[str]:
        """Hook names in the store."""
        return list(self.info.hooks)

    @property
    def n_rows(self) -> int:
        """Rows per hook over all shards."""
        return sum(s.rows for s in self.shards)

    def d_in(self, hook: str) -> int:
        """Row width of ``hook``."""
        self.check_hooks([hook])
        return int(self.info.d_in[hook])

    def check_hooks(self, hooks) -> list[str]:
        """Return ``hooks`` if all are in the store, else raise naming the missing one."""
        for hook in hooks:
            if hook not in self.info.hooks:
                raise OtoscopeError(f"hook '{hook}' is not in the activation store {self.path}; "
                                    f"it holds: {', '.join(self.info.hooks)}.")
        return list(hooks)

    # ------------------------------------------------------------------ reading
    def read(self, shard: int, hooks=None, *, index: bool = False, verify: bool = True) -> dict[str, torch.Tensor]:
        """Tensors of shard ``shard``: ``{hook: [rows, d_in]}`` (plus ``clip``, ``frame``, ``time`` with ``index``).

        Each tensor's CRC32 is checked against the one recorded at write time (``verify``).
        """
        keys = self.check_hooks(hooks if hooks is not None else self.info.hooks) + (list(INDEX_KEYS) if index else [])
        return read_shard(self.shards[shard], keys, verify=verify)

    def shard_clips(self, shard: int) -> list[dict]:
        """The clips of one shard: ``id``, ``name``, ``text``, ``labels``, ``seconds``, ``rows`` ``[start, end)``."""
        from safetensors import safe_open

        with safe_open(str(self.shards[shard].path), framework="pt") as handle:
            return json.loads(handle.metadata()["otoscope"])["clips"]

    def clips(self) -> list[dict]:
        """Every clip in the store, in shard order."""
        return [clip for i in range(len(self.shards)) for clip in self.shard_clips(i)]

    def index(self):
        """A pandas DataFrame with one row per activation row: ``clip``, ``frame``, ``time``, ``shard``, ``row``."""
        import pandas as pd

        frames = []
        for i in range(len(self.shards)):
            t = self.read(i, hooks=[], index=True)
            frames.append(pd.DataFrame({"clip": t["clip"].numpy(), "frame": t["frame"].numpy(), "time": t["time"].numpy(),
                                        "shard": i, "row": range(self.shards[i].rows)}))
        return pd.concat(frames, ignore_index=True)

    def activations(self, hook: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """All rows of ``hook`` in one tensor ``[n_rows, d_in]`` (for small stores and evaluation)."""
        return torch.cat([self.read(i, [hook])[hook].to(dtype) for i in range(len(self.shards))])

    def verify(self) -> list[tuple[Path, str]]:
        """Check every shard → ``[(path, problem)]`` (empty when all are sound)."""
        problems = []
        for i, ref in enumerate(self.shards):
            try:
                self.read(i, index=True)
            except OtoscopeError as err:
                problems.append((ref.path, str(err)))
        return problems
