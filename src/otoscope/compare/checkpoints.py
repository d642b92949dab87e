"""The two models of a comparison: a reference (A) and a full fine-tune or a PEFT adapter merged onto A (B).

Model B is either anything :func:`otoscope.load` takes (a name, an HF id, a folder written by
``save_pretrained`` with its feature extractor and tokenizer) or a PEFT adapter folder
(``adapter_config.json`` + ``adapter_model.safetensors``). An adapter is merged onto a copy of model A in
memory (``PeftModel.from_pretrained(...).merge_and_unload()``), so B is exactly the model a user of the
adapter runs; nothing is written to disk. The adapter's ``base_model_name_or_path`` must name model A.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class ModelPair:
    """Model A, model B and how B was made."""

    a: "HookedAudioModel"
    """The reference model."""
    b: "HookedAudioModel"
    """The model compared with it."""
    kind: str
    """``checkpoint`` (B loaded on its own) or ``adapter`` (a PEFT adapter merged onto A)."""
    adapter: dict[str, Any] = field(default_factory=dict)
    """For adapters: ``peft_type``, ``r``, ``lora_alpha``, ``target_modules``, ``base_model``, ``path``."""


def is_adapter(path) -> bool:
    """True when ``path`` is a PEFT adapter folder (it holds ``adapter_config.json``)."""
    return isinstance(path, (str, Path)) and Path(path).is_dir() and (Path(path) / ADAPTER_CONFIG).is_file()


def load_models(model_a, model_b, *, device=None, check_base: bool = True) -> ModelPair:
    """Load (or take) model A and model B. ``model_b`` may be a PEFT adapter folder for A (merged in memory).

    ``model_a`` / ``model_b``: names, HF ids, folders, or loaded :class:`HookedAudioModel` objects.
    """
    from otoscope.models.loader import load

    a = model_a if not isinstance(model_a, (str, Path)) else load(str(model_a), device=device)
    if is_adapter(model_b):
        b, info = merge_adapter(a, Path(model_b), check_base=check_base)
        return ModelPair(a, b, "adapter", info)
    if isinstance(model_b, (str, Path)):
        _check_checkpoint_folder(Path(model_b))
        model_b = load(str(model_b), device=device)
    return ModelPair(a, model_b, "checkpoint")


def _check_checkpoint_folder(path: Path) -> None:
    if path.is_dir() and (path / "config.json").is_file() and not (path / "preprocessor_config.json").is_file():
        raise OtoscopeError(f"{path} has model weights but no preprocessor_config.json; save the feature extractor "
                            "and tokenizer beside them (processor.save_pretrained(DIR)), or pass a PEFT adapter folder.")


def read_adapter_config(path: Path) -> dict[str, Any]:
    """``adapter_config.json`` of an adapter folder, checked for what a merge needs."""
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise OtoscopeError(f"cannot read {path / ADAPTER_CONFIG}: {err}; pass a folder written by peft's save_pretrained.") from None
    if not isinstance(config, dict) or "peft_type" not in config:
        raise OtoscopeError(f"{path / ADAPTER_CONFIG} has no peft_type; pass a folder written by peft's save_pretrained.")
    if not (path / ADAPTER_WEIGHTS).is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".safetensors"))) or "none"
        raise OtoscopeError(f"{path} has no {ADAPTER_WEIGHTS} (weight files found: {found}); otoscope loads safetensors "
                            "only: save the adapter with save_pretrained(DIR, safe_serialization=True).")
    return config


def canonical_name(ref: str | None) -> str | None:
    """A model reference in one spelling: known names → their HF id, existing paths → absolute paths."""
    if not ref:
        return None
    from otoscope.models import bundled
    from otoscope.models.registry import KNOWN_MODELS

    if ref in KNOWN_MODELS:
        return KNOWN_MODELS[ref]
    if ref in bundled.BUNDLED:
        return bundled.BUNDLED[ref].hf_id
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.exists() else ref


def check_adapter_base(model_a: "HookedAudioModel", base: str | None, path: Path) -> None:
    """Raise when the adapter's base model is not model A (by name, HF id or folder)."""
    wanted = canonical_name(base)
    if wanted is None:
        return  # the adapter does not say: the merge itself checks that every module and shape fits
    names = {canonical_name(model_a.name), canonical_name(getattr(model_a.model, "name_or_path", None))}
    if wanted in names:
        return
    shown = canonical_name(model_a.name)
    also = f" ({shown})" if shown != model_a.name else ""
    raise OtoscopeError(f"the adapter {path} was made for base model '{base}', but MODEL_A is '{model_a.name}'{also}; "
                        f"pass its base as MODEL_A (otoscope compare {base} {path} ...), or --no-base-check if "
                        "MODEL_A is that model under another name.")


def merge_adapter(model_a: "HookedAudioModel", path: Path, *, check_base: bool = True) -> tuple["HookedAudioModel", dict]:
    """A copy of ``model_a`` with the PEFT adapter at ``path`` merged into its weights → ``(model_b, info)``."""
    config = read_adapter_config(path)
    base = config.get("base_model_name_or_path")
    if check_base:
        check_adapter_base(model_a, base, path)
    try:
        from peft import PeftModel
    except ImportError:
        raise OtoscopeError("comparing with a PEFT adapter needs peft: pip install 'otoscope[peft]'.") from None
    b = copy.deepcopy(model_a)  # the hook points of the copy point into the copied modules
    try:
        peft_model = PeftModel.from_pretrained(b.model, str(path), is_trainable=False)
        merged = peft_model.merge_and_unload()
    except (RuntimeError, ValueError, KeyError, AttributeError) as err:
        detail = " ".join(str(err).split())[:300]
        raise OtoscopeError(f"the adapter {path} does not fit MODEL_A '{model_a.name}' ({detail}); pass the base model "
                            f"it was trained on as MODEL_A (its adapter_config.json names '{base}').") from None
    if merged is not b.model:
        raise OtoscopeError(f"merging {path} rebuilt the model instead of changing its weights in place; "
                            "this peft version is not supported, install peft>=0.10.")
    b.model.eval()
    b.name = f"{model_a.name}+{path.name}"
    b.source = "adapter"
    targets = config.get("target_modules")
    info = {"path": str(path), "peft_type": config.get("peft_type"), "r": config.get("r"),
            "lora_alpha": config.get("lora_alpha"), "base_model": base,
            "target_modules": sorted(targets) if isinstance(targets, (list, set, tuple)) else targets}
    return b, info
