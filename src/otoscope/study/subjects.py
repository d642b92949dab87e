"""The model under study, seen the same way whatever it reads: labelled inputs in, per-hook activations out.

Two kinds of subject share one interface (:class:`Subject`):

- :class:`AudioSubject` wraps a :class:`~otoscope.models.hooked.HookedAudioModel` (Whisper, wav2vec2, …) and
  reads clips; hooks are the encoder's ``[batch, frames, d_model]`` hook points (for Whisper the encoder
  alone runs, so decoder hooks do not apply).
- :class:`TextSubject` wraps anything with a text encoder — MusicGen (its ``text_encoder``, a T5), a bare
  ``T5EncoderModel``, or a hooked model whose hook table has ``text_encoder.*`` names — and reads prompts;
  hooks are ``text_encoder.hook_embed``, ``text_encoder.blocks.{L}.hook_resid_post`` and
  ``text_encoder.hook_ln_final`` (as :mod:`otoscope.sae.text_encoder` names them).

Both return :class:`~otoscope.geometry.collect.LayerActivations` (``acts [hooks, positions, d_model]``, real
frames or real tokens only), so the geometry code (group similarity, probes) runs on either unchanged.
"""

from __future__ import annotations

import fnmatch
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from otoscope.errors import HookNameError, OtoscopeError
from otoscope.geometry.collect import LayerActivations
from otoscope.study.inputs import LabelledData

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

TEXT_MODEL_TYPES = ("t5", "musicgen")  # config.model_type of models studied through their text encoder
AUDIO_DEFAULT_HOOKS = "encoder.hook_embed,encoder.blocks.*.hook_resid_post"
TEXT_DEFAULT_HOOKS = "text_encoder.*"


def match_hooks(patterns: str | list[str], available: list[str], model_name: str) -> list[str]:
    """Hooks of ``available`` (in its order) matched by comma-separated names or globs; each must match one."""
    items = [p.strip() for p in patterns.split(",")] if isinstance(patterns, str) else list(patterns)
    chosen: set[str] = set()
    for pattern in filter(None, items):
        hits = [h for h in available if fnmatch.fnmatchcase(h, pattern)]
        if not hits:
            shown = ", ".join(available[:6]) + (", …" if len(available) > 6 else "")
            raise HookNameError(f"--hooks '{pattern}' matches no hook a study can read on {model_name} ({shown}); "
                                f"pass a name or glob from 'otoscope hooks {model_name}', e.g. '{available[-1]}'.")
        chosen.update(hits)
    if not chosen:
        raise HookNameError("--hooks is empty; pass a hook name or glob.")
    return [h for h in available if h in chosen]


class Subject(ABC):
    """A model a study reads activations from."""

    kind: str
    """``audio`` (reads clips) or ``text`` (reads prompts)."""
    name: str
    """The model's name, for the report."""

    @property
    @abstractmethod
    def family(self) -> str:
        """Model family (``whisper``, ``ctc``, ``musicgen``, ``text-encoder``): picks family-specific latent effects."""

    @abstractmethod
    def hook_names(self) -> list[str]:
        """Every hook a study can read, in forward order."""

    @property
    def default_hooks(self) -> str:
        """The hooks studied when none are given (the residual stream)."""
        return AUDIO_DEFAULT_HOOKS if self.kind == "audio" else TEXT_DEFAULT_HOOKS

    def resolve_hooks(self, patterns: str | list[str] | None) -> list[str]:
        """Hook names for ``patterns`` (comma-separated names or globs; None: :attr:`default_hooks`)."""
        return match_hooks(patterns or self.default_hooks, self.hook_names(), self.name)

    def check_data(self, data: LabelledData) -> None:
        """Refuse prompts for an audio model and clips for a text model."""
        wanted = "clips" if self.kind == "audio" else "prompts"
        if data.kind != wanted:
            what = ("a manifest or folder of labelled audio clips" if wanted == "clips"
                    else 'a JSONL file of {"text": ..., "label": ...} prompts')
            raise OtoscopeError(f"{self.name} is a{'n audio' if self.kind == 'audio' else ' text-conditioned'} model: "
                                f"it reads {wanted}, not {data.kind}; pass {what} as --data.")

    @abstractmethod
    def collect(self, data: LabelledData, hooks: list[str], batch_size: int = 8) -> list[LayerActivations]:
        """One :class:`LayerActivations` per item: ``acts [hooks, positions, d_model]`` float32 on CPU."""

    @abstractmethod
    def same_input_control(self, data: LabelledData, hooks: list[str], snr_db: float = 40.0, seed: int = 0,
                           batch_size: int = 8, clean: list[LayerActivations] | None = None) -> pd.DataFrame:
        """Per hook, mean cosine of each item's pooled representation with that of the same input plus noise at
        ``snr_db`` (the ceiling a within-group similarity can reach). Columns: hook, same_input_cosine, snr_db.

        ``clean``: the items' activations from :meth:`collect` when already at hand (saves one pass)."""


def control_table(hooks: list[str], clean: list[LayerActivations], perturbed: list[LayerActivations],
                  snr_db: float) -> pd.DataFrame:
    """Per hook, the mean cosine of each item's pooled representation with its perturbed twin's."""
    rows = []
    for i, hook in enumerate(hooks):
        sims = [torch.nn.functional.cosine_similarity(a.pooled()[i], b.pooled()[i], dim=0).item()
                for a, b in zip(clean, perturbed)]
        rows.append({"hook": hook, "same_input_cosine": float(np.mean(sims)), "snr_db": snr_db})
    return pd.DataFrame(rows)


class AudioSubject(Subject):
    """An audio model (clips in); see the module docstring."""

    kind = "audio"

    def __init__(self, model: "HookedAudioModel"):
        self.model = model
        self.name = model.name

    @property
    def family(self) -> str:
        return self.model.family

    def hook_names(self) -> list[str]:
        return [n for n, p in self.model.points.items() if n.startswith("encoder.") and p.shape == "[batch, frames, d_model]"]

    def collect(self, data, hooks, batch_size=8):
        from otoscope.geometry.collect import iter_layers

        return list(iter_layers(self.model, data.items, data.labels, hooks=hooks, batch_size=batch_size))

    def same_input_control(self, data, hooks, snr_db=40.0, seed=0, batch_size=8, clean=None):
        from otoscope.geometry.groups import same_input_control

        table = same_input_control(self.model, data.items, snr_db=snr_db, seed=seed, hooks=hooks, clean=clean)
        return table[["hook", "same_input_cosine", "snr_db"]]


class TextSubject(Subject):
    """A text-conditioned model (prompts in) read through its text encoder; see the module docstring."""

    kind = "text"

    def __init__(self, model: torch.nn.Module, tokenizer, name: str = "text-encoder"):
        if tokenizer is None:
            raise OtoscopeError(f"{name} has no tokenizer; a text study needs one (save it beside the model with "
                                "tokenizer.save_pretrained(folder)).")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    @property
    def hf_model(self) -> torch.nn.Module:
        """The transformers module (a hooked model's ``.model``, else the model itself)."""
        return getattr(self.model, "model", self.model) if not hasattr(self.model, "text_encoder") else self.model

    @property
    def family(self) -> str:
        adapter = getattr(self.model, "adapter", None)
        if getattr(adapter, "family", None):
            return adapter.family
        return "musicgen" if hasattr(self.hf_model, "text_encoder") else "text-encoder"

    def hook_names(self) -> list[str]:
        from otoscope.sae.text_encoder import text_hook_names

        return text_hook_names(self.hf_model)

    def _items(self, data: LabelledData, hooks: list[str], batch_size: int, embed_hook=None) -> list[LayerActivations]:
        from otoscope.sae.text_encoder import iter_prompt_states

        states = iter_prompt_states(self.hf_model, self.tokenizer, data.items, hooks, batch_size=batch_size,
                                    embed_hook=embed_hook)
        return [LayerActivations(name, list(hooks), torch.stack([s[h] for h in hooks]), label)  # [hooks, tokens, d_model]
                for name, label, s in zip(data.names, data.labels, states)]

    def collect(self, data, hooks, batch_size=8):
        return self._items(data, hooks, batch_size)

    def same_input_control(self, data, hooks, snr_db=40.0, seed=0, batch_size=8, clean=None):
        generator = torch.Generator().manual_seed(seed)

        def noisy(module, args, out):  # the token embeddings with white noise at snr_db (per prompt)
            power = out.detach().float().pow(2).mean(dim=(1, 2), keepdim=True).clamp_min(1e-12)
            noise = torch.randn(out.shape, generator=generator, dtype=torch.float32).to(out.device)
            return out + (noise * (power / 10 ** (snr_db / 10)).sqrt()).to(out.dtype)

        clean = clean if clean is not None else self._items(data, hooks, batch_size)
        return control_table(hooks, clean, self._items(data, hooks, batch_size, embed_hook=noisy), snr_db)

    @classmethod
    def from_pretrained(cls, folder: str | Path, name: str | None = None, device: str | None = None) -> "TextSubject":
        """A T5 encoder or MusicGen model and its tokenizer from a local folder (safetensors, no remote code)."""
        from transformers import AutoTokenizer

        folder = Path(folder)
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        if model_type == "t5":
            from transformers import T5EncoderModel as Model
        elif model_type == "musicgen":
            from transformers import MusicgenForConditionalGeneration as Model
        else:
            raise NotImplementedError(f"{folder} holds a '{model_type}' model; text studies support {', '.join(TEXT_MODEL_TYPES)}.")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError):
            tokenizer = None
        from transformers.utils import logging as hf_logging

        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # transformers' per-tensor loading bar is noise here
        try:
            model = Model.from_pretrained(str(folder), use_safetensors=True, local_files_only=True).to(device or "cpu").eval()
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        return cls(model, tokenizer, name or str(folder))


def _model_type(name: str) -> str | None:
    """``config.model_type`` of a local folder or cached HF model, without loading it (None when unknown)."""
    from otoscope.models.registry import resolve

    try:
        where = resolve(name)
    except OtoscopeError:
        return None
    config = Path(where.location) / "config.json"
    if where.source in ("local", "hf-cache") and config.is_file():
        try:
            return json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except ValueError:
            return None
    return None


def load_subject(name: str, device: str | None = None) -> Subject:
    """The subject for a model name, HF id or folder: text models (T5, MusicGen) by their text encoder,
    everything :func:`otoscope.load` loads as an audio model (or by its ``text_encoder.*`` hooks when it has them)."""
    model_type = _model_type(name)
    if model_type in TEXT_MODEL_TYPES:
        from otoscope.models.loader import load
        from otoscope.models.registry import resolve

        if model_type == "musicgen":  # hooked, through its adapter: the text encoder and the decoder
            from otoscope.study.musicgen import MusicgenSubject

            return MusicgenSubject(load(name, device=device), name)
        return TextSubject.from_pretrained(resolve(name).location, name, device)
    from otoscope.models.loader import load

    model = load(name, device=device)
    if model.family == "musicgen":
        from otoscope.study.musicgen import MusicgenSubject

        return MusicgenSubject(model, name)
    if any(n.startswith("text_encoder.") for n in model.points):
        return TextSubject(model, model.tokenizer, name)
    return AudioSubject(model)
