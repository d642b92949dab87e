"""``otoscope compare``: parse, call :func:`otoscope.compare.compare_models`, print.

Wired into the ``otoscope`` command by :func:`register`. Imports of the library are inside the command
(lazy), so that ``otoscope --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

from otoscope.cli.args import device, nonneg_int, positive_float, positive_int


def cmd_compare(args) -> None:
    """``otoscope compare MODEL_A MODEL_B --data CLIPS --out DIR``."""
    from otoscope.compare import CompareConfig, compare_models

    config = CompareConfig(hooks=args.hooks, max_clips=args.max_clips or None,
                           positions_per_clip=args.positions_per_clip or None, batch_size=args.batch_size,
                           rank_rtol=args.rank_rtol, sae=not args.no_sae, sae_dir=str(args.sae) if args.sae else None,
                           sae_steps=args.sae_steps, pairs=str(args.pairs) if args.pairs else None,
                           patch_hooks=args.patch_hooks, patch_window=args.patch_window,
                           check_base=not args.no_base_check, device=args.device, seed=args.seed)
    result = compare_models(args.model_a, args.model_b, args.data, args.out, config)
    s = result.summary()
    print(f"{result.model_a} → {result.model_b} ({result.kind}): {s['changed_modules']} of {s['compared_modules']} "
          f"modules changed; blocks: {', '.join(s['changed_blocks']) or 'none'}")
    for m in sorted(result.weights.changed, key=lambda m: -m.relative)[:10]:
        rank = "" if m.rank is None else f"  rank {m.rank}  erank {m.erank:.2f}"
        print(f"  {m.module}: ‖ΔW‖/‖W‖ {m.relative:.3g}{rank}")
    for shift in result.layers:
        fvu = "" if shift.fvu_increase is None else f"  FVU +{shift.fvu_increase:.4f}"
        cka = "–" if shift.cka is None else f"{shift.cka:.4f}"
        drift = "–" if shift.drift is None else f"{shift.drift:.4f}"
        print(f"  {shift.hook}: CKA {cka}  drift {drift}{fvu}")
    for p in result.pairs:
        corr = "–" if p.correlation is None else f"{p.correlation:.3f}"
        print(f"  pair {p.description}: correlation {corr}, largest change {p.max_abs_change}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {Path(args.out) / 'compare.json'}, {Path(args.out) / 'index.html'}")


def _window(text: str):
    if text.lower() in ("all", "none"):
        return None
    return positive_float(text)


def register(subparsers) -> None:
    """Add the ``compare`` subcommand to the ``otoscope`` parser's subparsers."""
    p = subparsers.add_parser("compare", help="what fine-tuning changed: weight deltas, CKA/drift, SAE FVU, patching")
    p.add_argument("model_a", help="reference model: name, HF id or folder")
    p.add_argument("model_b", help="fine-tuned model folder (save_pretrained, with its processor), name, or a PEFT "
                                   "adapter folder for MODEL_A (merged in memory)")
    p.add_argument("--data", required=True, help="clips: a folder of audio, or a JSONL/CSV manifest (its 'text' is "
                                                 "teacher-forced into the decoder; else MODEL_A's transcript)")
    p.add_argument("--out", required=True, type=Path, help="output folder (compare.json + index.html)")
    p.add_argument("--hooks", default=None, help="layer hooks to compare (default: every embed and block resid_post)")
    p.add_argument("--max-clips", type=nonneg_int, default=32, help="use at most this many clips, 0 for all (default 32)")
    p.add_argument("--positions-per-clip", type=nonneg_int, default=128,
                   help="positions kept per clip and layer, 0 for all (default 128)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="clips per forward pass")
    p.add_argument("--rank-rtol", type=positive_float, default=1e-3,
                   help="effective rank: singular values above this fraction of the largest (default 1e-3)")
    p.add_argument("--sae", default=None, type=Path, help="SAEs trained on MODEL_A (otoscope sae train output) "
                                                          "instead of training small ones here")
    p.add_argument("--no-sae", action="store_true", help="skip the SAE reconstruction comparison")
    p.add_argument("--sae-steps", type=positive_int, default=100, help="steps per SAE trained here (default 100)")
    p.add_argument("--pairs", default=None, type=Path, help="minimal-pair folder (otoscope pairs) or a folder of them: "
                                                            "patch each on both models")
    p.add_argument("--patch-hooks", default="encoder.blocks.*.hook_resid_post", help="hooks to patch (name or glob)")
    p.add_argument("--patch-window", type=_window, default=10.0, help="frames per patching cell, or 'all'")
    p.add_argument("--no-base-check", action="store_true",
                   help="merge an adapter even when its adapter_config.json names another base model")
    p.add_argument("--device", default=None, type=device, help="cpu, cuda, … (default cpu)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.set_defaults(func=cmd_compare)
