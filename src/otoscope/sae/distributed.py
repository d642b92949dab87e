"""Data parallelism under ``torchrun``: ranks, devices and the few collectives training needs.

Every rank holds a full copy of each SAE and trains on its slice of the global batch. After the backward
pass the gradients of all ranks are averaged with one flat all-reduce per SAE — what
``DistributedDataParallel`` does, done explicitly so that the sparse kernels, AuxK's optional branch and
parameters that a step does not touch need no special handling. Dead-latent statistics are all-reduced
too, so every rank makes the same decisions and the copies stay identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int
    """Global rank (0 when not distributed)."""
    world_size: int
    """Number of ranks."""
    local_rank: int
    """Rank on this machine (picks the GPU)."""

    @property
    def distributed(self) -> bool:
        """True when running with more than one rank."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """True on rank 0, which writes checkpoints, metrics and the final SAEs."""
        return self.rank == 0


def setup(backend: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes (``RANK``, ``WORLD_SIZE``…); a no-op for one process.

    The backend defaults to NCCL with GPUs and gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local = int(os.environ.get("LOCAL_RANK", rank))
    if world > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    return DistInfo(rank, world, local)


def default_device(info: DistInfo, requested: str | None) -> torch.device:
    """``requested``, else this rank's GPU when there is one, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device(f"cuda:{info.local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def average_gradients(params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
    """Average ``.grad`` of ``params`` over all ranks (one flat all-reduce)."""
    if not info.distributed:
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    start = 0
    for p in params:
        n = p.numel()
        p.grad = flat[start : start + n].view_as(p).clone()
        start += n


def all_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place, and return it."""
    if info.distributed:
        dist.all_reduce(tensor)
    return tensor


def broadcast(tensors: Iterable[torch.Tensor], info: DistInfo, src: int = 0) -> None:
    """Copy ``tensors`` from rank ``src`` to every rank, in place."""
    if info.distributed:
        for t in tensors:
            dist.broadcast(t.data if isinstance(t, torch.nn.Parameter) else t, src)


def barrier(info: DistInfo) -> None:
    """Wait for every rank."""
    if info.distributed:
        dist.barrier()
