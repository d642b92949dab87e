"""``otoscope sae extract | train | eval | features | dashboard``: parse, call :mod:`otoscope.sae`, print.

Wire into the main command with ``otoscope.cli.sae.register(subparsers)``; ``python -m otoscope.cli.sae``
runs the same subcommands on their own (handy under ``torchrun``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from otoscope.cli.args import device, nonneg_float, nonneg_int, positive_float, positive_int
from otoscope.errors import OtoscopeError


def _device(requested: str | None) -> str:
    """``requested``, else this torchrun rank's GPU, else CPU."""
    import torch

    if requested:
        return requested
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


def _cmd_extract(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.models.loader import load
    from otoscope.sae.extract import ExtractConfig, extract_activations

    check_output_dir(args.out, None, "activation store")
    model = load(args.model, device=_device(args.device))
    config = ExtractConfig(hooks=args.hooks.split(",") if "," in args.hooks else args.hooks, dtype=args.dtype,
                           batch_size=args.batch_size, shard_mb=args.shard_mb,
                           on_error="skip" if args.skip_errors else "raise", overwrite=args.overwrite,
                           repair=args.repair, progress=not args.quiet)
    from otoscope.sae.corpus import open_corpus

    result = extract_activations(model, open_corpus(args.data, limit=args.max_clips), args.out, config)
    resumed = f", resumed after {result.resumed_from} clips" if result.resumed_from else ""
    print(f"wrote {result.rows} rows × {len(result.hooks)} hooks in {result.shards} shards from {result.clips} clips "
          f"to {result.path}{resumed}" + (f"; skipped {len(result.skipped)} unreadable clips" if result.skipped else ""))


def _cmd_train(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.sae.store import ActivationStore
    from otoscope.sae.train_config import TrainConfig
    from otoscope.sae.trainer import Trainer

    check_output_dir(args.out, None, "training folder")
    store = ActivationStore(args.activations)
    hooks = None
    if args.hooks:
        wanted = set(_match(args.hooks, store.hooks))
        hooks = [h for h in store.hooks if h in wanted]
    config = TrainConfig(architecture=args.arch, k=args.k, expansion=args.expansion, d_sae=args.d_sae,
                         l1_coefficient=args.l1, l0_coefficient=args.l0, batch_size=args.batch_size,
                         total_samples=args.samples, lr=args.lr, warmup_steps=args.warmup, seed=args.seed,
                         device=args.device, checkpoint_every=args.checkpoint_every or None,
                         resample_every=args.resample_every, dead_after=args.dead_after,
                         normalize_activations=not args.no_normalize, autocast=not args.no_autocast,
                         log_every=args.log_every, wandb_project=args.wandb)
    result = Trainer(store, args.out, config, hooks).fit(resume=not args.no_resume, progress=not args.quiet)
    if result.resumed_from is not None:
        print(f"resumed from step {result.resumed_from}")
    for hook, metrics in result.metrics.items():
        print(f"{hook}: FVU {metrics.fvu:.4f}  L0 {metrics.l0:.1f}  dead {metrics.dead_fraction:.3f}  "
              f"→ {result.saes.get(hook, '-')}")
    print(f"{result.steps} steps, {result.samples} samples, {result.samples_per_s:.0f} samples/s")


def _match(patterns: str, hooks: list[str]) -> list[str]:
    import fnmatch

    out = []
    for pattern in patterns.split(","):
        hits = [h for h in hooks if fnmatch.fnmatchcase(h, pattern)]
        if not hits:
            raise OtoscopeError(f"--hooks '{pattern}' matches none of the store's hooks: {', '.join(hooks)}.")
        out += hits
    return out


def _cmd_eval(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.models.loader import load
    from otoscope.sae.evaluate import EVAL_FILES, evaluate_sae
    from otoscope.sae.format import load_sae, sae_folders

    folders = sae_folders(args.sae_dir)
    if not folders:
        raise OtoscopeError(f"no SAE in {args.sae_dir}; pass a folder with cfg.json (or a training output folder).")
    outs = {hook: Path(args.out) / hook if args.out and len(folders) > 1 else Path(args.out or folder / "eval")
            for hook, folder in folders.items()}
    for out in outs.values():
        check_output_dir(out, EVAL_FILES)
    model = None
    for hook, folder in folders.items():
        sae = load_sae(folder, device=_device(args.device))
        name = args.model or sae.cfg.model_name
        if name is None:
            raise OtoscopeError(f"{folder} does not name its model; pass --model.")
        if model is None or model.name != name:
            model = load(name, device=_device(args.device))
        out = outs[hook]
        report = evaluate_sae(model, sae, args.data, hook=args.hook or None, batch_size=args.batch_size,
                              max_clips=args.max_clips, spliced=not args.no_splice, transcribe=not args.no_transcribe,
                              compare=[Path(c) for c in args.compare], out=out)
        summary = report.to_json()
        if summary["spliced"]:
            summary["spliced"].pop("transcripts", None)
        print(json.dumps(summary))
        print(f"wrote {out / 'eval.json'} and {out / 'density.png'}", file=sys.stderr)


def _cmd_features(args) -> None:
    from otoscope.features import FeaturesConfig, feature_stats
    from otoscope.models.loader import load
    from otoscope.sae.distributed import setup
    from otoscope.sae.format import load_sae

    config = FeaturesConfig(top_n=args.top, labels=args.labels, spans=args.spans, hook=args.hook,
                            batch_size=args.batch_size, max_clips=args.max_clips,
                            coactivation=not args.no_coactivation, progress=not args.quiet)
    info = setup("gloo")  # the statistics are combined as CPU tensors, on GPU runs too
    sae = load_sae(args.sae_dir, device=_device(args.device))
    name = args.model or sae.cfg.model_name
    if name is None:
        raise OtoscopeError(f"{args.sae_dir} does not name its model; pass --model.")
    model = load(name, device=_device(args.device))
    stats = feature_stats(model, sae, args.data, config, sae_name=str(args.sae_dir))
    if info.main:
        stats.save(args.out)
        frequency = stats.columns["frequency"]
        print(f"wrote {args.out / 'features.json'}: {stats.d_sae} latents over {stats.frames} frames of "
              f"{len(stats.clips)} clips; {int((frequency == 0).sum())} never fire")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``sae`` command (with ``extract``, ``train``, ``eval``, ``features``) to the main command's subparsers."""
    from otoscope.models.registry import DEFAULT_MODEL

    sae = subparsers.add_parser("sae", help="sparse autoencoders: extract activations, train, evaluate")
    sub = sae.add_subparsers(dest="sae_command", required=True)

    p = sub.add_parser("extract", help="extract hook activations over an audio corpus into a sharded store")
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"model name, HF id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--hooks", required=True, help="hook names or globs, comma-separated")
    p.add_argument("--data", required=True, help="folder of audio, .csv/.jsonl manifest (path, text, labels) or hf:NAME[:CONFIG][:SPLIT]")
    p.add_argument("--out", required=True, type=Path, help="store folder (a rerun resumes it)")
    p.add_argument("--device", default=None, type=device, help="cpu, cuda, … (default: the rank's GPU, else CPU)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--shard-mb", type=positive_float, default=256.0, help="approximate shard size in MiB")
    p.add_argument("--max-clips", type=positive_int, default=None, help="only the first N clips")
    p.add_argument("--skip-errors", action="store_true", help="skip unreadable clips instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store instead of resuming it")
    p.add_argument("--repair", action="store_true", help="verify finished shards and re-extract from the first damaged one")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("train", help="train one SAE per hook of an activation store")
    p.add_argument("--activations", required=True, type=Path, help="store folder from 'otoscope sae extract'")
    p.add_argument("--out", required=True, type=Path, help="output folder (a rerun resumes from its last checkpoint)")
    p.add_argument("--hooks", default=None, help="train only these store hooks (names or globs, comma-separated)")
    p.add_argument("--arch", default="topk", choices=["topk", "batchtopk", "relu", "jumprelu"])
    p.add_argument("--k", type=positive_int, default=32, help="active latents per frame (TopK, BatchTopK)")
    p.add_argument("--expansion", type=positive_int, default=16, help="d_sae = expansion × d_in")
    p.add_argument("--d-sae", type=positive_int, default=None, help="number of latents (overrides --expansion)")
    p.add_argument("--l1", type=nonneg_float, default=5.0, help="ReLU: L1 coefficient")
    p.add_argument("--l0", type=nonneg_float, default=1e-3, help="JumpReLU: L0 coefficient")
    p.add_argument("--batch-size", type=positive_int, default=4096)
    p.add_argument("--samples", type=positive_int, default=10_000_000, help="rows to train on")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default 2e-4 / sqrt(d_sae / 2^14))")
    p.add_argument("--warmup", type=nonneg_int, default=None, help="warm-up steps (default 5%% of steps, at most 1000)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--device", default=None, type=device, help="cpu, cuda, … (default: the rank's GPU, else CPU)")
    p.add_argument("--checkpoint-every", type=nonneg_int, default=1000, help="steps between checkpoints (0: none)")
    p.add_argument("--resample-every", type=positive_int, default=None, help="resample dead latents every N steps")
    p.add_argument("--dead-after", type=positive_int, default=10_000_000, help="rows without firing before a latent is dead")
    p.add_argument("--log-every", type=positive_int, default=100, help="steps between metrics.jsonl lines")
    p.add_argument("--no-normalize", action="store_true", help="train on raw activations (no input scaling)")
    p.add_argument("--no-autocast", action="store_true", help="no bfloat16 autocast on GPU")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if checkpoints exist")
    p.add_argument("--wandb", default=None, metavar="PROJECT", help="log to this Weights & Biases project")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="evaluate an SAE: reconstruction, spliced-in cost, stability (JSON + plot)")
    p.add_argument("sae_dir", type=Path, help="SAE folder (SAELens or sparsify), or a training output folder")
    p.add_argument("--data", required=True, help="folder of audio or .csv/.jsonl manifest (text gives the references)")
    p.add_argument("--model", "-m", default=None, help="model (default: the one named in the SAE's cfg.json)")
    p.add_argument("--hook", default=None, help="hook point (default: the SAE's own)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default SAE_DIR/eval)")
    p.add_argument("--device", default=None, type=device)
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--max-clips", type=positive_int, default=None)
    p.add_argument("--compare", nargs="*", default=[], help="SAE folders of other seeds (stability)")
    p.add_argument("--no-splice", action="store_true", help="reconstruction metrics only")
    p.add_argument("--no-transcribe", action="store_true", help="skip the WER comparison (greedy decoding)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("features", help="per-latent statistics of an SAE over a corpus (features.json for dashboards)")
    p.add_argument("sae_dir", type=Path, help="SAE folder (otoscope/SAELens or sparsify)")
    p.add_argument("--data", required=True, help="folder of audio, .csv/.jsonl manifest (path, labels) or hf:NAME[:CONFIG][:SPLIT]")
    p.add_argument("--out", required=True, type=Path, help="output folder (features.json, features.safetensors)")
    p.add_argument("--model", "-m", default=None, help="model (default: the one named in the SAE's cfg.json)")
    p.add_argument("--hook", default=None, help="hook point (default: the SAE's own)")
    p.add_argument("--top", type=positive_int, default=20, help="top activating frames kept per latent")
    p.add_argument("--labels", nargs="*", default=[], metavar="KEY", help="manifest label keys to break activations down by")
    p.add_argument("--spans", default=None, metavar="FILE.jsonl", help="word spans from `otoscope align --json` (label key 'word')")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per forward pass")
    p.add_argument("--max-clips", type=positive_int, default=None, help="only the first N clips")
    p.add_argument("--no-coactivation", action="store_true", help="skip the d_sae × d_sae co-activation counts")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: the rank's GPU, else CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_features)

    from otoscope.cli import dashboard as dashboard_cli
    from otoscope.cli import explain as explain_cli

    dashboard_cli.register(sub)
    explain_cli.register(sub)
    return sae


def main(argv: list[str] | None = None) -> int:
    """Run ``sae`` subcommands on their own: ``python -m otoscope.cli.sae train …`` (for torchrun)."""
    from otoscope.cli.main import main as otoscope_main

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = ["--debug"] if "--debug" in argv else []
    return otoscope_main([*debug, "sae", *[a for a in argv if a != "--debug"]])


if __name__ == "__main__":
    sys.exit(main())
