"""A labelled-groups study, end to end: activations → geometry, probes, SAE, selectivity, ablations → report.

Per hook: within- vs between-group cosine similarity of the pooled representations with permutation
p-values and Cohen's d (raw and centered), the same-input control, the group × group matrix, linear probes
on pooled representations and on single positions, and a 2-D PCA projection. On one hook: an SAE, each
label's selectivity counts and most selective latents, and each of those latents ablated (probe accuracy
drop, plus the family's own effect when one is registered in :mod:`otoscope.study.effects`).

:func:`compute_study` returns the figures; :func:`run_study` also writes ``DIR/index.html`` (self-contained),
``DIR/study.json``, the plots and the SAE, atomically (a failed run leaves an earlier output as it was).
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd
import torch

from otoscope._io import atomic_dir, check_output_dir, write_text_atomic
from otoscope.errors import OtoscopeError
from otoscope.geometry.groups import group_similarity
from otoscope.geometry.probe import probe_layers
from otoscope.study.ablation import ablation_table
from otoscope.study.config import StudyConfig
from otoscope.study.effects import latent_effect
from otoscope.study.frames import position_probe
from otoscope.study.inputs import LabelledData
from otoscope.study.matrix import group_matrix
from otoscope.study.projection import pca_2d
from otoscope.study.sae import latent_means, study_train_config, train_study_sae
from otoscope.study.selectivity import selectivity
from otoscope.study.subjects import Subject

if TYPE_CHECKING:
    from otoscope.sae.model import SparseAutoencoder

STUDY_FILES = ("study.json", "index.html")  # mark a folder as an earlier study, which a new one may replace


@dataclass
class StudyResult:
    """Every figure of a study (``data`` is what ``study.json`` holds)."""

    data: dict
    """JSON-ready figures: summary per hook, groups, control, probes, matrices, projections, SAE, selectivity, ablation."""
    summary: pd.DataFrame
    """One row per hook: within, between, difference, p_value, cohens_d (centered), raw within/between,
    same-input cosine, probe accuracy (pooled and per position), chance."""
    sae: "SparseAutoencoder | None" = None
    """The SAE trained on the study's hook (None with ``sae=False``)."""
    out: Path | None = None
    """The output folder (None when only computed)."""
    files: list[str] = field(default_factory=list)
    """Files written, relative to ``out``."""


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))  # NaN → null, numpy scalars → numbers


def _clean(value):
    """NaN/inf → None, recursively (study.json is strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def resolve_sae_hook(hooks: list[str], sae_hook: str | None) -> str:
    """The SAE's hook: ``sae_hook`` (which must be studied) or the last studied hook."""
    if sae_hook is None:
        return hooks[-1]
    if sae_hook not in hooks:
        raise OtoscopeError(f"--sae-hook '{sae_hook}' is not among the studied hooks ({', '.join(hooks)}); "
                            "pick one of them or add it to --hooks.")
    return sae_hook


def compute_study(subject: Subject, data: LabelledData, config: StudyConfig | None = None,
                  log: Callable[[str], None] = lambda message: None) -> StudyResult:
    """All the figures of a study of ``subject`` on ``data`` (nothing is written; see :func:`run_study`)."""
    config = config or StudyConfig()
    subject.check_data(data)
    hooks = subject.resolve_hooks(config.hooks)
    sae_hook = resolve_sae_hook(hooks, config.sae_hook) if config.sae else None
    torch.manual_seed(config.seed)
    log(f"activations of {len(data.items)} {data.kind} at {len(hooks)} hooks")
    items = subject.collect(data, hooks, config.batch_size)
    labels = data.labels
    pooled = torch.stack([item.pooled() for item in items])  # [items, hooks, d_model]
    log("group similarity, permutation tests and the same-input control")
    groups = group_similarity(items, labels, n_permutations=config.n_permutations, seed=config.seed).table
    control = subject.same_input_control(data, hooks, config.control_snr_db, config.seed, config.batch_size, clean=items)
    log("probes")
    probe = probe_layers(items, labels, n_folds=config.n_folds, seed=config.seed)
    frames = position_probe(items, labels, config.n_folds, config.max_positions, seed=config.seed)
    matrices = [group_matrix(pooled[:, i], labels, hook) for i, hook in enumerate(hooks)]
    projections = [pca_2d(pooled[:, i], hook) for i, hook in enumerate(hooks)]
    summary = _summary(hooks, groups, control, probe.table, frames)
    result = {
        "model": subject.name, "family": subject.family, "kind": subject.kind, "hooks": hooks,
        "data": {"source": data.source, "kind": data.kind, "items": len(data.items), "classes": data.classes,
                 "counts": {c: data.labels.count(c) for c in data.classes}},
        "config": config.to_dict(), "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "summary": _records(summary), "groups": _records(groups), "control": _records(control),
        "probe": {"folds": probe.n_folds, "table": _records(probe.table)}, "frame_probe": _records(frames),
        "matrices": [m.to_json() for m in matrices], "projections": [p.to_json() for p in projections],
        "items": [{"name": n, "label": label} for n, label in zip(data.names, labels)],
    }
    sae = None
    if sae_hook is not None:
        part, sae = _sae_part(subject, data, items, pooled, hooks.index(sae_hook), sae_hook, config, log)
        result.update(part)
    return StudyResult(_clean(result), summary, sae)


def _summary(hooks, groups: pd.DataFrame, control: pd.DataFrame, probe: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for i, hook in enumerate(hooks):
        raw = groups[(groups["hook"] == hook) & ~groups["centered"]].iloc[0]
        cen = groups[(groups["hook"] == hook) & groups["centered"]].iloc[0]
        rows.append({"hook": hook, "within": cen["within"], "between": cen["between"], "difference": cen["difference"],
                     "p_value": cen["p_value"], "cohens_d": cen["cohens_d"], "raw_within": raw["within"],
                     "raw_between": raw["between"], "raw_p_value": raw["p_value"],
                     "same_input": float(control.loc[control["hook"] == hook, "same_input_cosine"].iloc[0]),
                     "probe_accuracy": float(probe.loc[probe["hook"] == hook, "accuracy"].iloc[0]),
                     "position_accuracy": float(frames.loc[frames["hook"] == hook, "accuracy"].iloc[0]),
                     "chance": float(probe["chance"].iloc[0])})
    return pd.DataFrame(rows)


def _sae_part(subject, data, items, pooled, layer, hook, config: StudyConfig, log) -> dict:
    n_rows = sum(int(item.acts.shape[1]) for item in items)
    train = study_train_config(n_rows, architecture=config.sae_architecture, expansion=config.sae_expansion,
                               k=config.sae_k, l1_coefficient=config.sae_l1, steps=config.sae_steps,
                               batch_size=config.sae_batch_size, lr=config.sae_lr, seed=config.seed, device=config.device)
    log(f"SAE on {hook}: {n_rows} rows, {config.sae_steps} steps")
    trained = train_study_sae(items, hook, train, model_name=subject.name)
    sae = trained.sae
    means = latent_means(sae, items, layer)  # [items, d_sae]
    sel = selectivity(means, data.labels, top_n=config.top_latents)
    chosen = [(label, latent) for label, latents in sel.top.items() for latent in latents]
    log(f"ablating {len(chosen)} latents")
    w_dec = sae.W_dec.detach().float().cpu()
    ablation = ablation_table(pooled[:, layer], means, w_dec, data.labels, chosen, config.n_folds, seed=config.seed)
    effect = latent_effect(subject.family)
    if effect is not None and len(ablation):
        extra = [effect(subject, data, hook, sae, int(latent)) for latent in ablation["latent"]]
        ablation = pd.concat([ablation, pd.DataFrame(extra)], axis=1)
    table = sel.table.set_index(["label", "latent"])
    top = [{"label": label, "latent": latent, **{k: float(v) for k, v in table.loc[(label, latent)].items()}}
           for label, latent in chosen]
    metrics = trained.metrics.__dict__ if trained.metrics is not None else {}
    return {"sae": {"hook": hook, "architecture": config.sae_architecture, "d_in": sae.d_in, "d_sae": sae.d_sae,
                    "rows": n_rows, "steps": config.sae_steps, **metrics},
            "selectivity": {"counts": _records(sel.counts), "top": top},
            "ablation": _records(ablation)}, sae


def run_study(subject: Subject, data: LabelledData, out: str | Path, config: StudyConfig | None = None,
              log: Callable[[str], None] = lambda message: None,
              extra: Callable[[Path], list[str]] | None = None) -> StudyResult:
    """Compute the study and write ``out``: ``index.html`` (self-contained), ``study.json``, ``plots/*.png``
    and the SAE (``sae/``, SAELens format). Bad input is refused before any work or writing.

    ``extra(folder)``: writes more files into the output before it is swapped in; returns their names."""
    from otoscope.sae.format import save_sae
    from otoscope.study.report import write_report

    config = config or StudyConfig()
    out = check_output_dir(out, STUDY_FILES, "study folder")
    subject.check_data(data)
    resolve_sae_hook(subject.resolve_hooks(config.hooks), config.sae_hook if config.sae else None)
    result = compute_study(subject, data, config, log)
    with atomic_dir(out, markers=STUDY_FILES) as folder:
        files = write_report(folder, result.data)
        if result.sae is not None:
            save_sae(result.sae, folder / "sae")
            result.data["sae"]["folder"] = "sae"
            files.append("sae/")
        if extra is not None:
            files += extra(folder)
        write_text_atomic(folder / "study.json", json.dumps(result.data, indent=1))
    result.out, result.files = out, files + ["study.json"]
    return result
