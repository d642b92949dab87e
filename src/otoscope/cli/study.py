"""``otoscope study groups | demo``: parse, call :mod:`otoscope.study`, print.

Flags and their defaults come from :class:`otoscope.study.config.StudyConfig` (one source of defaults);
imports of torch and the study code stay inside the commands so ``otoscope --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from otoscope.cli.args import device, finite_float, nonneg_float, nonneg_int, positive_float, positive_int

# (flag, StudyConfig field, argparse type, help); the default is the field's own
_FLAGS = [
    ("--hooks", "hooks", str, "hook names or globs, comma-separated (default: the residual stream)"),
    ("--sae-hook", "sae_hook", str, "hook the SAE is trained on (default: the last studied hook)"),
    ("--sae-arch", "sae_architecture", str, "SAE architecture: relu (L1, as in the pilot), topk, batchtopk, jumprelu"),
    ("--sae-expansion", "sae_expansion", positive_int, "d_sae = expansion × d_model"),
    ("--sae-k", "sae_k", positive_int, "active latents per position (TopK)"),
    ("--sae-l1", "sae_l1", nonneg_float, "L1 coefficient (ReLU)"),
    ("--sae-steps", "sae_steps", positive_int, "SAE training steps"),
    ("--sae-lr", "sae_lr", positive_float, "SAE learning rate"),
    ("--top-latents", "top_latents", positive_int, "most selective latents listed and ablated per label"),
    ("--permutations", "n_permutations", positive_int, "label permutations per p-value"),
    ("--folds", "n_folds", positive_int, "cross-validation folds of the probes"),
    ("--control-snr", "control_snr_db", finite_float, "SNR (dB) of the noise in the same-input control"),
    ("--batch-size", "batch_size", positive_int, "items per forward pass"),
    ("--seed", "seed", nonneg_int, "seed of permutations, folds, noise and SAE"),
]


def _config(args):
    from otoscope.study.config import StudyConfig

    values = {field: getattr(args, field) for _, field, _, _ in _FLAGS if getattr(args, field) is not None}
    return StudyConfig(**values, sae=not args.no_sae, device=args.device)


def _print_result(result) -> None:
    data = result.data
    n = data["config"]["n_permutations"]
    for row in data["summary"]:
        p = row["p_value"]
        p_text = f"p<{1 / (n + 1):.1e}" if p is not None and p <= 1 / (n + 1) + 1e-12 else f"p={p:.3g}"
        print(f"{row['hook']}: within {row['raw_within']:.3f} between {row['raw_between']:.3f} | centered "
              f"{row['within']:.3f} vs {row['between']:.3f} {p_text} d={row['cohens_d']:.2f} | same input "
              f"{row['same_input']:.3f} | probe {row['probe_accuracy']:.3f} (per position {row['position_accuracy']:.3f}, "
              f"chance {row['chance']:.3f})")
    if "sae" in data:
        sae = data["sae"]
        counts = ", ".join(f"{c['label']} {c['above_2']}/{c['above_4']}" for c in data["selectivity"]["counts"])
        print(f"SAE {sae['architecture']} {sae['d_in']}→{sae['d_sae']} on {sae['hook']}: FVU {sae.get('fvu', float('nan')):.3f}, "
              f"L0 {sae.get('l0', float('nan')):.1f}; latents with selectivity >2/>4: {counts}")
        for row in data["ablation"]:
            print(f"  latent {row['latent']} ({row['label']}): probe accuracy {row['accuracy']:.3f} → "
                  f"{row['accuracy_ablated']:.3f} ablated; {row['label']} recall {row['recall']:.3f} → {row['recall_ablated']:.3f}")
    print(f"report: {(Path(result.out) / 'index.html').resolve()}")


def _cmd_groups(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.study.inputs import read_labelled_clips, read_labelled_prompts
    from otoscope.study.run import STUDY_FILES, run_study
    from otoscope.study.subjects import load_subject

    config = _config(args)
    check_output_dir(args.out, STUDY_FILES, "study folder")
    subject = load_subject(args.model, device=args.device)
    read = read_labelled_prompts if subject.kind == "text" else read_labelled_clips
    data = read(args.data, args.label_key)
    log = (lambda message: print(f"· {message}", file=sys.stderr)) if not args.quiet else (lambda message: None)
    _print_result(run_study(subject, data, args.out, config, log=log))


def _cmd_demo(args) -> None:
    from otoscope.study.demo import run_demo

    log = (lambda message: print(f"· {message}", file=sys.stderr)) if not args.quiet else (lambda message: None)
    _print_result(run_demo(args.out, model=args.model, voices=args.voices, sentences=args.sentences,
                           config=_config(args), log=log))


def _add_study_flags(p: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    from otoscope.study.config import StudyConfig

    defaults = {f.name: f.default for f in fields(StudyConfig)}  # not StudyConfig(): its checks import torch
    for flag, field, kind, text in _FLAGS:
        default = defaults[field]
        p.add_argument(flag, dest=field, type=kind, default=None,
                       help=f"{text} (default {default})" if default is not None else text)
    p.add_argument("--no-sae", action="store_true", help="geometry and probes only, no SAE")
    p.add_argument("--device", default=None, type=device, help="cpu, cuda, … (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``study`` command (``groups``, ``demo``) to the main command's subparsers."""
    study = subparsers.add_parser("study", help="labelled studies: where a model encodes a label of its inputs")
    sub = study.add_subparsers(dest="study_command", required=True)

    p = sub.add_parser("groups", help="group similarity, probes, an SAE's label-selective latents: HTML + JSON")
    p.add_argument("--model", "-m", required=True, help="audio model (name, HF id, folder) or text model folder (T5, MusicGen)")
    p.add_argument("--data", required=True, help="text models: JSONL of {\"text\", LABEL} prompts ('emotions': the "
                   "bundled 100 music prompts); audio models: manifest (.jsonl/.csv with path and LABEL) or a folder of "
                   "LABEL sub-folders")
    p.add_argument("--label-key", default="label", help="field holding the label (default: label)")
    p.add_argument("--out", required=True, type=Path, help="output folder (index.html, study.json, plots, sae)")
    _add_study_flags(p)
    p.set_defaults(func=_cmd_groups)

    p = sub.add_parser("demo", help="offline demo: Whisper tiny.en on espeak-ng voices (voice = label)")
    p.add_argument("--out", required=True, type=Path, help="output folder (the study, plus the clips and their manifest)")
    p.add_argument("--model", "-m", default="whisper-tiny.en", help="audio model (default whisper-tiny.en)")
    p.add_argument("--voices", type=positive_int, default=4, help="espeak-ng voices, one label each (default 4)")
    p.add_argument("--sentences", type=positive_int, default=8, help="sentences per voice (default 8)")
    _add_study_flags(p)
    p.set_defaults(func=_cmd_demo)
    return study
