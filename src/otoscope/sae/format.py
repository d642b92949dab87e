"""Saving and loading SAEs: SAELens v6 folders (read and written) and EleutherAI sparsify folders (read).

A SAELens v6 folder holds ``cfg.json`` (``architecture``, ``d_in``, ``d_sae``, ``dtype``, ``k``,
``apply_b_dec_to_input``, ``normalize_activations``, ``metadata`` with ``model_name`` and ``hook_name``),
``sae_weights.safetensors`` (``W_enc [d_in, d_sae]``, ``b_enc``, ``W_dec [d_sae, d_in]``, ``b_dec`` and, for
JumpReLU, ``threshold``) and optionally ``sparsity.safetensors`` (``sparsity``: log10 firing frequency per
latent). ``sae_lens.SAE.load_from_disk`` reads what :func:`save_sae` writes. BatchTopK SAEs are written as
SAELens does: a JumpReLU with their learned global threshold (the otoscope metadata keeps the training
architecture, so they load back as BatchTopK).

A sparsify folder (one per hook point) holds ``cfg.json`` (``d_in``, ``num_latents`` or
``expansion_factor``, ``k``) and ``sae.safetensors`` (``encoder.weight [d_sae, d_in]``, ``encoder.bias``,
``W_dec [d_sae, d_in]``, ``b_dec``). Only safetensors are read: never pickles.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from otoscope._io import atomic_dir
from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder

SAELENS_FORMAT_VERSION = "6.0.0"  # the cfg.json layout written here; SAELens reads it as a v6 config
CFG_FILE, WEIGHTS_FILE, SPARSITY_FILE, SPARSIFY_WEIGHTS_FILE = "cfg.json", "sae_weights.safetensors", \
    "sparsity.safetensors", "sae.safetensors"
_SAELENS_ARCH = {"topk": "topk", "batchtopk": "jumprelu", "relu": "standard", "jumprelu": "jumprelu"}


def saelens_cfg(sae: SparseAutoencoder) -> dict:
    """The SAELens v6 ``cfg.json`` dict for ``sae``."""
    cfg = sae.cfg
    from otoscope import __version__

    out = {
        "architecture": _SAELENS_ARCH[cfg.architecture], "d_in": cfg.d_in, "d_sae": cfg.d_sae, "dtype": cfg.dtype,
        "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
        "reshape_activations": "hook_z" if (cfg.hook_name or "").endswith("hook_z") and cfg.hook_shape else "none",
        "metadata": {
            "sae_lens_version": SAELENS_FORMAT_VERSION, "sae_lens_training_version": None,
            "model_name": cfg.model_name, "hook_name": cfg.hook_name, "hook_head_index": None,
            "prepend_bos": False, "context_size": None, "training_architecture": cfg.architecture,
            "otoscope": {"version": __version__, "config": cfg.to_dict()},
        },
    }
    if cfg.architecture == "topk":
        out.update(k=cfg.k, rescale_acts_by_decoder_norm=False)
    return out


def save_sae(sae: SparseAutoencoder, path: str | Path, *, frequency: torch.Tensor | None = None,
             scale: float = 1.0) -> Path:
    """Write ``sae`` as a SAELens v6 folder at ``path`` (atomically) and return it.

    ``frequency`` (``[d_sae]`` firing frequency per latent) becomes ``sparsity.safetensors``;
    ``scale`` (activations were multiplied by it in training) is folded into the weights first.
    """
    from safetensors.torch import save_file

    folded = sae.folded(scale) if scale != 1.0 else sae
    dtype = getattr(torch, sae.cfg.dtype)
    weights = {name: getattr(folded, name).detach().to("cpu", dtype).contiguous() for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    if folded.thresholds() is not None:
        weights["threshold"] = folded.thresholds().detach().to("cpu", dtype).contiguous()
    path = Path(path)
    with atomic_dir(path, markers=(CFG_FILE, WEIGHTS_FILE)) as tmp:
        save_file(weights, str(tmp / WEIGHTS_FILE))
        (tmp / CFG_FILE).write_text(json.dumps(saelens_cfg(sae), indent=1), encoding="utf-8")
        if frequency is not None:
            log10 = torch.log10(frequency.detach().to("cpu", torch.float32) + 1e-10)
            save_file({"sparsity": log10.contiguous()}, str(tmp / SPARSITY_FILE))
    return path


def load_frequency(path: str | Path) -> torch.Tensor | None:
    """Firing frequency per latent from a folder's ``sparsity.safetensors`` (None when there is none)."""
    file = Path(path) / SPARSITY_FILE
    if not file.is_file():
        return None
    return 10 ** _read_safetensors(file)["sparsity"].float()


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from otoscope._integrity import check_safetensors

    problem = check_safetensors(file)  # the header against the file size: names truncation plainly
    if problem is not None:
        raise OtoscopeError(f"{problem}; copy or train it again.")
    try:
        return load_file(str(file))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise OtoscopeError(f"cannot read {file} ({err}); the file is damaged or not safetensors.") from None


def _read_cfg(folder: Path) -> dict:
    try:
        return json.loads((folder / CFG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise OtoscopeError(f"cannot read {folder / CFG_FILE} ({err}); is this an SAE folder?") from None


def _check(name: str, tensor: torch.Tensor, shape: tuple[int, ...], file: Path) -> torch.Tensor:
    if tuple(tensor.shape) != shape:
        raise OtoscopeError(f"{file}: {name} has shape {tuple(tensor.shape)}, expected {shape} from cfg.json; "
                            "the weights and config do not belong together.")
    return tensor.float()


def _build(cfg: SAEConfig, W_enc, b_enc, W_dec, b_dec, threshold, device) -> SparseAutoencoder:
    sae = SparseAutoencoder(cfg)
    with torch.no_grad():
        sae.W_enc.copy_(W_enc)
        sae.b_enc.copy_(b_enc)
        sae.W_dec.copy_(W_dec)
        sae.b_dec.copy_(b_dec)
        if threshold is not None:
            sae.threshold.copy_(threshold)
    return sae.to(device) if device is not None else sae


def _load_saelens(folder: Path, device) -> SparseAutoencoder:
    raw = _read_cfg(folder)
    meta = dict(raw.get("metadata") or {})
    for old, new in (("hook_point", "hook_name"), ("hook_name", "hook_name"), ("model_name", "model_name")):  # SAELens < 6
        if old in raw and new not in meta:
            meta[new] = raw[old]
    arch = raw.get("architecture")
    if arch is None:  # SAELens < 6: activation_fn_str names the architecture
        arch = "topk" if raw.get("activation_fn_str") == "topk" or raw.get("activation_fn") == "topk" else "standard"
    k = raw.get("k") or (raw.get("activation_fn_kwargs") or {}).get("k")
    ours = (meta.get("otoscope") or {}).get("config") or {}
    mapped = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}.get(arch)
    if mapped is None:
        raise NotImplementedError(f"{folder}: SAELens architecture '{arch}' is not supported; otoscope loads "
                                  "standard (ReLU), topk, jumprelu and batchtopk SAEs.")
    if mapped == "jumprelu" and ours.get("architecture") == "batchtopk":
        mapped = "batchtopk"
    norm = raw.get("normalize_activations", "none")
    if norm in (None, False):
        norm = "none"
    if norm not in ("none", "expected_average_only_in"):  # the latter is folded into the weights at save time
        raise NotImplementedError(f"{folder}: normalize_activations='{norm}' is a run-time transform otoscope does "
                                  "not apply; fold it into the weights before loading.")
    d_in, d_sae = int(raw["d_in"]), int(raw["d_sae"])
    cfg = SAEConfig(**{**{key: ours[key] for key in ("l1_coefficient", "l0_coefficient", "jumprelu_bandwidth",
                                                       "batchtopk_threshold_momentum", "hook_shape", "extra") if key in ours},
                       "d_in": d_in, "d_sae": d_sae, "architecture": mapped,
                       "k": int(k) if k is not None else (ours.get("k") or 32), "model_name": meta.get("model_name"),
                       "hook_name": meta.get("hook_name")})
    file = folder / WEIGHTS_FILE
    w = _read_safetensors(file)
    missing = [n for n in ("W_enc", "W_dec", "b_dec") if n not in w]
    if missing:
        raise OtoscopeError(f"{file} lacks {', '.join(missing)}; it is not a SAELens SAE.")
    W_enc = _check("W_enc", w["W_enc"], (d_in, d_sae), file)
    W_dec = _check("W_dec", w["W_dec"], (d_sae, d_in), file)
    b_dec = _check("b_dec", w["b_dec"], (d_in,), file)
    b_enc = _check("b_enc", w["b_enc"], (d_sae,), file) if "b_enc" in w else torch.zeros(d_sae)
    threshold = None
    if mapped in ("jumprelu", "batchtopk"):
        threshold = _check("threshold", w["threshold"], (d_sae,), file) if "threshold" in w \
            else _check("log_threshold", w["log_threshold"], (d_sae,), file).exp()
    if not raw.get("apply_b_dec_to_input", True):  # pre = x W + b = (x − b_dec) W + (b + b_dec W)
        b_enc = b_enc + b_dec @ W_enc
    if arch == "topk" and raw.get("rescale_acts_by_decoder_norm"):  # fold ‖W_dec row‖ into the encoder
        norms = W_dec.norm(dim=1)
        W_enc, b_enc, W_dec = W_enc * norms, b_enc * norms, W_dec / norms[:, None]
    return _build(cfg, W_enc, b_enc, W_dec, b_dec, threshold, device)


def sparsify_hook_name(folder_name: str) -> str | None:
    """The otoscope hook a sparsify hookpoint (a module path) reads, when it can be told: ``layers.3`` →
    ``encoder.blocks.3.hook_resid_post``; ``model.decoder.layers.1.fc2`` → ``decoder.blocks.1.hook_mlp_out``."""
    m = re.search(r"(?:(encoder|decoder)\.)?layers[._](\d+)(?:\.(fc2|mlp|feed_forward))?$", folder_name)
    if m is None:
        return None
    side = m.group(1) or "encoder"
    return f"{side}.blocks.{m.group(2)}." + ("hook_mlp_out" if m.group(3) else "hook_resid_post")


def _load_sparsify(folder: Path, device) -> SparseAutoencoder:
    raw = _read_cfg(folder)
    if raw.get("transcode") or raw.get("skip_connection"):
        raise NotImplementedError(f"{folder}: sparsify transcoders and skip connections are not supported; "
                                  "otoscope loads sparsify SAEs (transcode=false, skip_connection=false).")
    if raw.get("activation", "topk") != "topk":
        raise NotImplementedError(f"{folder}: sparsify activation '{raw['activation']}' is not supported; only topk.")
    d_in = int(raw["d_in"])
    d_sae = int(raw.get("num_latents") or 0) or d_in * int(raw["expansion_factor"])
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture="topk", k=int(raw["k"]),
                    hook_name=sparsify_hook_name(folder.name), extra={"source": "sparsify"})
    file = folder / SPARSIFY_WEIGHTS_FILE
    w = _read_safetensors(file)
    W_enc = _check("encoder.weight", w["encoder.weight"], (d_sae, d_in), file).t()
    b_enc = _check("encoder.bias", w["encoder.bias"], (d_sae,), file) if "encoder.bias" in w else torch.zeros(d_sae)
    W_dec = _check("W_dec", w["W_dec"], (d_sae, d_in), file)
    b_dec = _check("b_dec", w["b_dec"], (d_in,), file)
    return _build(cfg, W_enc, b_enc, W_dec, b_dec, None, device)


def sae_folders(root: str | Path) -> dict[str, Path]:
    """SAE folders under ``root`` (itself, or its sub-folders, as a multi-hook run writes them) by hook name."""
    root = Path(root)
    if (root / CFG_FILE).is_file():
        return {_hook_of(root): root}
    found = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if (sub / CFG_FILE).is_file() and ((sub / WEIGHTS_FILE).is_file() or (sub / SPARSIFY_WEIGHTS_FILE).is_file()):
            found[_hook_of(sub)] = sub
    return found


def _hook_of(folder: Path) -> str:
    try:
        raw = json.loads((folder / CFG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return folder.name
    return (raw.get("metadata") or {}).get("hook_name") or raw.get("hook_name") or sparsify_hook_name(folder.name) or folder.name


def load_sae(path: str | Path, device: str | torch.device | None = None) -> SparseAutoencoder:
    """Load one SAE from a SAELens folder (v6, or v5 configs) or a sparsify hookpoint folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise OtoscopeError(f"SAE folder not found: {folder}; pass the folder holding cfg.json.")
    if not (folder / CFG_FILE).is_file():
        subs = sae_folders(folder)
        hint = f" It holds SAEs for: {', '.join(subs)}; pass one of {', '.join(p.name for p in subs.values())}." if subs else ""
        raise OtoscopeError(f"{folder} has no cfg.json, so it is not an SAE folder.{hint}")
    if (folder / WEIGHTS_FILE).is_file():
        return _load_saelens(folder, device)
    if (folder / SPARSIFY_WEIGHTS_FILE).is_file():
        return _load_sparsify(folder, device)
    raise OtoscopeError(f"{folder} has cfg.json but neither {WEIGHTS_FILE} (SAELens) nor {SPARSIFY_WEIGHTS_FILE} "
                        "(sparsify); the weights are missing.")


def load_saes(root: str | Path, device: str | torch.device | None = None) -> dict[str, SparseAutoencoder]:
    """Every SAE under ``root`` by hook name (a multi-hook training run, or a sparsify checkpoint folder)."""
    folders = sae_folders(root)
    if not folders:
        raise OtoscopeError(f"no SAE folders (cfg.json + weights) in {root}.")
    return {hook: load_sae(folder, device) for hook, folder in folders.items()}
