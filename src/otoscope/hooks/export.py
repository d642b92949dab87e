"""Export cached activations to one safetensors file: real frames only, with per-clip frame ranges.

Layout: for each hook a tensor ``[total_positions, ...]`` with every clip's rows one after another.
For encoder hooks a clip contributes its real frames (or all 1500 with ``keep_padding``), for decoder
hooks its real tokens. The JSON metadata (key ``otoscope``) records the model, hooks, frame rate and,
per clip, its path and row range ``[start, end)`` in each tensor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from tqdm.auto import tqdm

from otoscope._io import atomic_path, check_output_file
from otoscope.errors import OtoscopeError
from otoscope.hooks.select import NamesFilter, select

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel


@dataclass
class ExportResult:
    """What :func:`export_activations` wrote."""

    path: Path
    """The safetensors file."""
    hooks: list[str]
    """Hook names exported."""
    rows: dict[str, int]
    """Rows per hook tensor."""
    clips: list[dict]
    """Per clip: path, seconds, frames and row ranges."""


def _positions(name: str, cache, clip: int, keep_padding: bool) -> torch.Tensor:
    tensor = cache[name][clip]
    if name.endswith("hook_pattern"):
        raise ValueError("attention patterns are not exported (their key axis varies); cache them in Python instead.")
    if keep_padding and name.startswith("encoder."):
        return tensor
    return cache.real(name, clip)


def export_activations(model: HookedAudioModel, audio: Sequence, path: str | Path, names_filter: NamesFilter, *, text=None,
                       keep_padding: bool = False, batch_size: int = 4, dtype: torch.dtype = torch.float32,
                       progress: bool = True) -> ExportResult:
    """Run ``model`` over ``audio`` and write the activations of ``names_filter`` to ``path`` atomically."""
    from safetensors.torch import save_file

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise OtoscopeError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    path = check_output_file(path, "acts.safetensors")
    names = select(model.points, names_filter)
    clips = model.clips(list(audio))
    chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    rows = {n: 0 for n in names}
    meta_clips = []
    bar = tqdm(total=len(clips), desc="cache", unit="clip", disable=not progress)
    for start in range(0, len(clips), batch_size):
        batch = clips[start : start + batch_size]
        texts = None if text is None else (text[start : start + batch_size] if isinstance(text, list) else text)
        _, cache = model.run_with_cache(batch, texts, names_filter=names, device="cpu") if model.has_decoder \
            else model.run_with_cache(batch, names_filter=names, device="cpu")
        for i, clip in enumerate(batch):
            ranges = {}
            for name in names:
                block = _positions(name, cache, i, keep_padding).to(dtype).contiguous()
                chunks[name].append(block)
                ranges[name] = [rows[name], rows[name] + block.shape[0]]
                rows[name] += block.shape[0]
            meta_clips.append({"path": clip.name, "seconds": round(clip.seconds, 4), "frames": cache.n_frames(i),
                               "rows": ranges})
        bar.update(len(batch))
    bar.close()
    tensors = {n: torch.cat(chunks[n]) for n in names}
    meta = {"model": model.name, "source": model.source, "hooks": names, "frame_rate": model.geometry.frame_rate,
            "samples_per_frame": model.geometry.samples_per_frame, "sample_rate": model.geometry.sample_rate,
            "keep_padding": keep_padding, "dtype": str(dtype).removeprefix("torch."), "clips": meta_clips}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"otoscope": json.dumps(meta)})
    return ExportResult(path, names, rows, meta_clips)


def read_export(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by :func:`export_activations` → ``(tensors, metadata)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["otoscope"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    return tensors, meta
