"""``otoscope`` command line. Each subcommand parses, calls the library and prints; no logic lives here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from otoscope import __version__
from otoscope.cli.args import EXIT_USAGE, OneLineParser, chosen_parser, device, finite_float, in_flag_terms, nonneg_int, positive_int


def _cmd_models(args) -> None:
    from otoscope.models.registry import list_models

    rows = list_models()
    width = max(len(r.name) for r in rows)
    for r in rows:
        print(f"{r.name:<{width}}  {r.source:<11}  {r.location}")


def _cmd_hooks(args) -> None:
    from otoscope.models.loader import load

    model = load(args.model)
    table = model.hook_table(measure=True)
    if args.json:
        for row in table:
            print(json.dumps({"name": row.name, "shape": row.shape, "example": row.example, "doc": row.doc}))
        return
    w_name = max(len(r.name) for r in table)
    w_shape = max(len(r.shape) for r in table)
    for r in table:
        example = "x".join(map(str, r.example)) if r.example else "-"
        print(f"{r.name:<{w_name}}  {r.shape:<{w_shape}}  {example:<16}  {r.doc}")


def _cmd_transcribe(args) -> None:
    from otoscope.models.loader import load

    model = load(args.model, device=args.device)
    from otoscope.steer.cli_support import maybe_steering

    with maybe_steering(model, args.steer, args.alpha):
        results = model.transcribe([str(f) for f in args.files], batch_size=args.batch_size, language=args.language,
                                   progress=not args.json and len(args.files) > 1, exact=args.exact,
                                   no_speech_threshold=args.no_speech_threshold, logprob_threshold=args.logprob_threshold)
    for path, result in zip(args.files, results):
        if args.json:
            print(json.dumps({"path": str(path), "text": result.text, "no_speech_prob": result.no_speech_prob,
                              "avg_logprob": result.avg_logprob, "compression_ratio": result.compression_ratio,
                              "finished": result.finished, "repetition_stopped": result.repetition_stopped,
                              "skipped": result.skipped}), flush=True)
        else:
            print(f"{path}\t{result.text}" if len(args.files) > 1 else result.text, flush=True)


def _cmd_cache(args) -> None:
    from otoscope._io import check_output_file
    from otoscope.hooks.export import export_activations
    from otoscope.models.loader import load

    check_output_file(args.out, "acts.safetensors")
    model = load(args.model, device=args.device)
    result = export_activations(model, [str(f) for f in args.files], args.out, args.hooks, text=args.text,
                                keep_padding=args.keep_padding, batch_size=args.batch_size)
    total = sum(result.rows.values())
    print(f"wrote {len(result.hooks)} hooks × {len(result.clips)} clips ({total} rows) to {result.path}")


def _cmd_lens(args) -> None:
    from otoscope._io import check_output_dir
    from otoscope.lens.run import LENS_FILES, run_lens
    from otoscope.models.loader import load

    check_output_dir(args.out, LENS_FILES)
    model = load(args.model, device=args.device)
    data = run_lens(model, str(args.file), args.out)
    for layer in data.get("layers", []):
        print(f"layer {layer['layer']}: LIS {layer['lis']:.4f}  entropy {layer['entropy']:.3f}  KL {layer['kl_to_final']:.4f}  "
              f"WER {layer['encoder_lens_wer']:.2f}  {layer['encoder_lens_text'][:60]!r}")
    for layer in data.get("ctc_lens", []):
        print(f"layer {layer['layer']}: top-1 agreement {layer['top1']:.3f}  {layer['text'][:60]!r}")
    print(f"saturation layer: {data['saturation_layer']}; not applicable: {'; '.join(data['not_applicable'])}")
    print(f"wrote {Path(args.out) / 'lens.json'}")


def _cmd_report(args) -> None:
    from otoscope.report import ReportConfig, build_report, labels_from_manifest

    files = [str(f) for f in args.files]
    labels = labels_from_manifest(args.manifest, args.label_key, files) if args.manifest else None
    config = ReportConfig(model=args.model, compare_model=args.compare_model, labels=labels, device=args.device,
                          detailed_clips=args.detailed_clips, locality_clips=args.locality_clips,
                          tuned_lens_steps=args.tuned_steps, pair=str(args.pair) if args.pair else None,
                          sae=str(args.sae) if args.sae else None,
                          sae_dashboard=str(args.sae_dashboard) if args.sae_dashboard else None)
    result = build_report(files, args.out, config)
    print(f"report: {result.index.resolve()}")


def _cmd_demo(args) -> None:
    from otoscope.cli.demo import run_demo

    run_demo(Path(args.out))


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every subcommand."""
    from otoscope.models.registry import DEFAULT_MODEL

    parser = OneLineParser(prog="otoscope", description="Mechanistic interpretability for audio models.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"otoscope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list model names and where each would load from")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("hooks", help="print the hook-point table of a model")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--json", action="store_true", help="one JSON object per hook")
    p.set_defaults(func=_cmd_hooks)

    def model_args(p):
        p.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"model name, HF id or folder (default {DEFAULT_MODEL})")
        p.add_argument("--device", default=None, type=device, help="cpu, cuda, cuda:1, … (default cpu)")
        p.add_argument("--batch-size", type=positive_int, default=8)

    p = sub.add_parser("transcribe", help="greedy transcription of audio files")
    p.add_argument("files", nargs="+", type=Path)
    model_args(p)
    p.add_argument("--language", default=None, help="language code for multilingual Whisper (default: detect)")
    p.add_argument("--json", action="store_true", help='one {"path": ..., "text": ..., "no_speech_prob": ..., '
                   '"avg_logprob": ..., "compression_ratio": ..., "repetition_stopped": ..., "skipped": ...} object '
                   'per line (the Whisper figures are null for CTC models)')
    p.add_argument("--exact", action="store_true", help="plain greedy decoding: no repetition guard (Whisper)")
    p.add_argument("--no-speech-threshold", type=finite_float, default=None,
                   help="empty windows whose no-speech probability is above this (openai/whisper uses 0.6; default off)")
    p.add_argument("--logprob-threshold", type=finite_float, default=None,
                   help="with --no-speech-threshold: keep windows whose average log-prob is above this (openai: -1.0)")
    p.add_argument("--steer", default=None, type=Path, help="steering folder (otoscope steer fit/silence) applied while decoding")
    p.add_argument("--alpha", default=None, type=finite_float, help="strength for --steer (default: the folder's own)")
    p.set_defaults(func=_cmd_transcribe)

    p = sub.add_parser("cache", help="export activations to a safetensors file")
    p.add_argument("files", nargs="+", type=Path)
    model_args(p)
    p.add_argument("--hooks", required=True, help="hook name or glob, e.g. 'encoder.blocks.*.hook_resid_post'")
    p.add_argument("--out", required=True, type=Path, help="output .safetensors file")
    p.add_argument("--text", default=None, help="teacher-forced transcript for decoder hooks (Whisper)")
    p.add_argument("--keep-padding", action="store_true", help="keep Whisper's padding frames (default: real frames only)")
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("lens", help="the lenses that apply to a model, on one clip (lens.json + plots)")
    p.add_argument("file", type=Path)
    model_args(p)
    p.add_argument("--out", required=True, type=Path, help="output folder for lens.json and plots")
    p.set_defaults(func=_cmd_lens)

    p = sub.add_parser("report", help="the main job: a self-contained HTML report on audio files")
    p.add_argument("files", nargs="+", type=Path)
    model_args(p)
    p.add_argument("--out", required=True, type=Path, help="output folder (index.html + assets)")
    p.add_argument("--compare-model", default=None, help="second model for cross-model CKA, e.g. whisper-base")
    p.add_argument("--manifest", default=None, type=Path, help="JSONL with path and label fields: enables groups and probes")
    p.add_argument("--label-key", default="label", help="manifest field holding the label (default: label)")
    p.add_argument("--detailed-clips", type=nonneg_int, default=4, help="clips with a full lens section (default 4)")
    p.add_argument("--locality-clips", type=nonneg_int, default=1, help="clips for the attention-locality curve (default 1)")
    p.add_argument("--tuned-steps", type=nonneg_int, default=20, help="tuned-lens training steps, 0 to skip (default 20)")
    p.add_argument("--pair", default=None, type=Path, help="minimal-pair folder (otoscope pairs): adds a patching section")
    p.add_argument("--sae", default=None, type=Path, help="SAE folder: adds a feature section (each clip's top latents over time)")
    p.add_argument("--sae-dashboard", default=None, type=Path, help="'otoscope sae dashboard' folder: the feature section links to it")
    p.set_defaults(func=_cmd_report)

    from otoscope.cli import align as align_cli
    from otoscope.cli import compare as compare_cli
    from otoscope.cli import bench as bench_cli
    from otoscope.cli import patch as patch_cli
    from otoscope.cli import sae as sae_cli
    from otoscope.cli import steer as steer_cli
    from otoscope.cli import study as study_cli

    patch_cli.register(sub)
    sae_cli.register(sub)
    steer_cli.register(sub)
    align_cli.register(sub)
    compare_cli.register(sub)
    study_cli.register(sub)
    bench_cli.register(sub)

    p = sub.add_parser("demo", help="run the demo on the bundled model and a committed clip")
    p.add_argument("--out", default="out/demo")
    p.set_defaults(func=_cmd_demo)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``otoscope`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:
        return 0
    except (ValueError, NotImplementedError, OSError) as err:  # OtoscopeError is a ValueError
        if args.debug:
            raise
        print(f"otoscope: error: {in_flag_terms(_one_line(err), chosen_parser(parser, args))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("otoscope: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
