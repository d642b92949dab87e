"""``otoscope align FILES``: word timestamps from Whisper's alignment heads; parse, call, print."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from otoscope.cli.args import positive_int


def _cmd_align(args) -> None:
    from otoscope.models.loader import load

    model = load(args.model, device=args.device)
    results = model.word_timestamps([str(f) for f in args.files], text=args.text, batch_size=args.batch_size,
                                    language=args.language, progress=not args.json and len(args.files) > 1)
    for path, result in zip(args.files, results):
        if args.json:
            print(json.dumps({**result.to_dict(), "path": str(path)}), flush=True)
            continue
        print(f"{path}: {result.text}")
        print(f"  {'start':>7}  {'end':>7}  {'prob':>5}  word")
        for w in result.words:
            print(f"  {w.start:7.2f}  {w.end:7.2f}  {w.probability:5.2f}  {w.word.strip()}")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``align`` command to the main command's subparsers."""
    from otoscope.models.registry import DEFAULT_MODEL

    p = subparsers.add_parser("align", help="word timestamps from Whisper's cross-attention (alignment heads + DTW)")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"Whisper model name, HF id or folder (default {DEFAULT_MODEL})")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default cpu)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--language", default=None, help="language code for multilingual Whisper (default: detect)")
    p.add_argument("--text", default=None, help="align this transcript instead of the greedy one (every file, ≤ 30 s)")
    p.add_argument("--json", action="store_true",
                   help='one {"path": ..., "words": [{"word", "start", "end", "probability"}]} object per line')
    p.set_defaults(func=_cmd_align)
    return p
