"""``otoscope steer fit | silence | study``: parse, call :mod:`otoscope.steer`, print.

torch and the model code are imported inside the command functions so ``otoscope --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from otoscope.cli.args import finite_float, nonneg_int, positive_int

DEFAULT_STRENGTH = 1.0  # default α of a fitted direction, in units of the mean residual norm at its hook


def _check_out(args) -> None:
    """--out must be new, empty or an earlier output of these commands: checked before any work."""
    from otoscope._io import check_output_dir
    from otoscope.steer.direction import STEER_MARKERS

    check_output_dir(args.out, STEER_MARKERS + ("study.json",), "steering folder")


def _cmd_fit(args) -> None:
    _check_out(args)
    from otoscope.models.loader import load
    from otoscope.steer.fit import fit_direction

    model = load(args.model, device=args.device)
    direction = fit_direction(model, [str(f) for f in args.positive], [str(f) for f in args.negative], args.hook,
                              alpha=args.alpha)
    folder = direction.save(args.out, created_by="otoscope steer fit")
    print(f"direction at {direction.hook} (mean norm {direction.scale:.3f}, default α {direction.alpha:g}) → {folder}")


def _cmd_silence(args) -> None:
    _check_out(args)
    from otoscope.models.loader import load
    from otoscope.steer.silence import choose_silencer

    from otoscope.steer.sae_fit import load_steer_saes, train_steer_saes

    model = load(args.model, device=args.device)
    kwargs = {"alphas": tuple(args.alphas)} if args.alphas else {}
    speech, nonspeech = [str(f) for f in args.speech], [str(f) for f in args.nonspeech]
    saes = None
    if args.sae is not None:
        saes = load_steer_saes(model, args.sae).saes
    elif not args.no_latents:
        print("training one small SAE per encoder layer on the given clips (--no-latents skips this)")
        saes = train_steer_saes(model, model.clips(speech + nonspeech), range(model.n_layers), progress=True).saes
    fit = choose_silencer(model, speech, nonspeech, layers=args.layers, progress=True, saes=saes, **kwargs)
    folder = fit.intervention.save(args.out, created_by="otoscope steer silence")
    c = fit.chosen
    where = f"encoder layer {c.layer}" if "encoder" in c.method else f"'{c.token}' at decoder layer {c.layer}"
    print(f"{c.method} {where}, α {c.alpha:g}: non-speech hallucination rate "
          f"{fit.baseline_hallucination_rate:.2f} → {c.hallucination_rate:.2f}, speech WER change {c.wer_change:+.3f} → {folder}")


def _cmd_study(args) -> None:
    _check_out(args)
    from otoscope.steer.study import StudyConfig, run_study

    config = StudyConfig(model=args.model, n_speech=args.n_speech, noise_per_kind=args.noise_per_kind, seed=args.seed,
                         sae=None if args.sae is None else str(args.sae), latents=not args.no_latents)
    result = run_study(args.out, config, progress=not args.quiet)
    print(f"wrote {Path(args.out) / 'study.json'}, study.html, plots and the chosen steering folder silence/")
    print(json.dumps(result.summary))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``steer`` command group to the main parser's subcommands."""
    from otoscope.models.registry import DEFAULT_MODEL

    steer = sub.add_parser("steer", help="steering directions: fit, silence non-speech, the hallucination study")
    cmds = steer.add_subparsers(dest="steer_command", required=True)

    def model_args(p):
        p.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"model name, HF id or folder (default {DEFAULT_MODEL})")
        p.add_argument("--device", default=None, help="cpu, cuda, … (default cpu)")

    p = cmds.add_parser("fit", help="difference of means between two sets of clips at a hook → steering folder")
    p.add_argument("--positive", nargs="+", required=True, type=Path, help="clips the direction points towards")
    p.add_argument("--negative", nargs="+", required=True, type=Path, help="clips it points away from")
    p.add_argument("--out", required=True, type=Path, help="output folder (direction.safetensors + steer.json)")
    p.add_argument("--hook", default=None, help="hook point (default: the encoder layer a linear probe separates best)")
    p.add_argument("--alpha", type=finite_float, default=DEFAULT_STRENGTH,
                   help=f"default strength in units of the mean activation norm at the hook (default {DEFAULT_STRENGTH:g})")
    model_args(p)
    p.set_defaults(func=_cmd_fit)

    p = cmds.add_parser("silence", help="choose an intervention that empties non-speech transcripts, keeps speech")
    p.add_argument("--speech", nargs="+", required=True, type=Path, help="speech clips (their transcripts must stay)")
    p.add_argument("--nonspeech", nargs="+", required=True, type=Path, help="non-speech clips (to be silenced)")
    p.add_argument("--out", required=True, type=Path, help="output steering folder")
    p.add_argument("--layers", type=nonneg_int, nargs="+", default=None, help="decoder layers to try (default: all)")
    p.add_argument("--alphas", type=finite_float, nargs="+", default=None,
                   help="strengths to try, in units of the mean residual norm (default 0.25 0.5 1)")
    latents = p.add_mutually_exclusive_group()
    latents.add_argument("--sae", type=Path, default=None,
                         help="SAE folder (one SAE, or one per encoder.blocks.N.hook_resid_post) for the latent candidates "
                              "(default: train a small SAE per encoder layer on the given clips)")
    latents.add_argument("--no-latents", action="store_true", help="try no SAE-latent candidates (no SAE training)")
    model_args(p)
    p.set_defaults(func=_cmd_silence)

    p = cmds.add_parser("study", help="the non-speech hallucination study (study.json, plots, HTML, steering folder)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--model", "-m", default="whisper-tiny.en", help="model (default whisper-tiny.en)")
    p.add_argument("--n-speech", type=positive_int, default=8, help="speech sentences per split (default 8)")
    p.add_argument("--noise-per-kind", type=positive_int, default=1, help="synthetic noises per kind per split (default 1)")
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="the fit/held-out split: noise streams, held-out animals and sentences (default 0; others: a fresh split)")
    latents = p.add_mutually_exclusive_group()
    latents.add_argument("--sae", type=Path, default=None,
                         help="SAE folder for the latent half (default: train a small SAE per encoder layer on the fit half)")
    latents.add_argument("--no-latents", action="store_true", help="skip the SAE-latent half")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_study)
