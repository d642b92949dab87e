"""Reading a features folder (``otoscope sae features`` output) for the dashboard, and choosing what it shows.

The folder's ``features.json`` follows the shared contract (version 1): run metadata, the clips, shared log10
histogram edges, and one record per latent with its statistics, top activations, quantile groups,
co-activating latents, label selectivity and explanation. Records stay the plain dicts of the file; this
module checks the keys the dashboard reads, picks the latents that get a page and the examples each shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from otoscope.errors import OtoscopeError
from otoscope.features.labels import read_spans

FEATURES_FILE = "features.json"
SPANS_FILE = "spans.jsonl"  # optional word spans (``otoscope align --json`` lines) beside features.json
SUPPORTED_VERSION = 1
_TOP_KEYS = ("version", "sae", "hook", "model", "d_sae", "clips", "latents")
_LATENT_KEYS = ("index", "frequency", "max", "top")


@dataclass
class FeaturesFile:
    """A loaded features folder."""

    root: Path
    """The folder."""
    meta: dict
    """Every top-level field of ``features.json`` except ``latents``."""
    latents: dict[int, dict]
    """Latent records by latent index."""
    spans: dict[str, list[dict]] = field(default_factory=dict)
    """Word spans by clip path (``{"word", "start", "end"}`` in seconds); empty when the folder has none."""

    @property
    def hook(self) -> str:
        """The hook point the SAE reads."""
        return self.meta["hook"]

    @property
    def clips(self) -> list[dict]:
        """The corpus clips, in order (``clip_index`` indexes this list)."""
        return self.meta["clips"]

    @property
    def edges(self) -> list[float]:
        """Shared log10 activation bin edges of every latent's histogram."""
        return list((self.meta.get("histogram") or {}).get("edges") or [])

    @property
    def label_keys(self) -> list[str]:
        """Label keys the statistics were computed for."""
        return list(self.meta.get("label_keys") or [])

    def is_decoder(self) -> bool:
        """True when the SAE reads a decoder hook (text positions), False for the encoder (audio frames)."""
        return self.hook.startswith("decoder.")


def read_features(folder: str | Path) -> FeaturesFile:
    """Load and check ``folder/features.json`` (and ``folder/spans.jsonl`` when present)."""
    root = Path(folder)
    file = root / FEATURES_FILE
    if not file.is_file():
        raise OtoscopeError(f"{file} not found; pass the folder written by 'otoscope sae features'.")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise OtoscopeError(f"cannot read {file} ({err}); rerun 'otoscope sae features'.") from None
    missing = [k for k in _TOP_KEYS if k not in raw]
    if missing:
        raise OtoscopeError(f"{file} lacks {', '.join(missing)}; it is not a features file (rerun 'otoscope sae features').")
    if raw["version"] != SUPPORTED_VERSION:
        raise OtoscopeError(f"{file} has version {raw['version']}; this otoscope reads version {SUPPORTED_VERSION} "
                            "(rerun 'otoscope sae features' with this otoscope).")
    latents = {}
    for record in raw.pop("latents"):
        lacking = [k for k in _LATENT_KEYS if k not in record]
        if lacking:
            raise OtoscopeError(f"{file}: a latent record lacks {', '.join(lacking)}; rerun 'otoscope sae features'.")
        latents[int(record["index"])] = record
    return FeaturesFile(root, raw, latents, read_spans(root / SPANS_FILE) if (root / SPANS_FILE).is_file() else {})


def firing_latents(features: FeaturesFile, max_latents: int | None = None) -> list[int]:
    """Latents that fire at least once, most frequent first (ties by index), at most ``max_latents``."""
    fired = [r for r in features.latents.values() if r["frequency"] > 0 and r["max"] > 0 and r["top"]]
    fired.sort(key=lambda r: (-r["frequency"], r["index"]))
    chosen = [r["index"] for r in fired]
    return chosen if max_latents is None else chosen[:max_latents]


def shown_examples(record: dict, top: int, per_quantile: int) -> list[dict]:
    """The examples a latent's page plays: its ``top`` strongest, then ``per_quantile`` from each quantile group."""
    out = list(record["top"][:top])
    for group in record.get("quantiles") or []:
        out += group.get("examples", [])[:per_quantile]
    return out


def best_label(record: dict) -> tuple[str, str, float] | None:
    """``(key, value, selectivity)`` of the label value this latent is most selective for, or None."""
    best = None
    for key, stats in (record.get("labels") or {}).items():
        value, sel = stats.get("best"), stats.get("best_selectivity")
        if value is None or sel is None:
            continue
        if best is None or sel > best[2]:
            best = (key, str(value), float(sel))
    return best


def resolve_clip(path: str, features: FeaturesFile, audio_root: Path | None) -> Path:
    """Where a clip named in ``features.json`` is on disk: under ``audio_root``, as given, or beside the folder."""
    given = Path(path)
    candidates = ([audio_root / given] if audio_root is not None and not given.is_absolute() else []) + \
        [given, features.root / given, features.root.parent / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise OtoscopeError(f"clip {path} (named in {features.root / FEATURES_FILE}) not found; pass --audio-root "
                        "with the folder the corpus paths are relative to.")
