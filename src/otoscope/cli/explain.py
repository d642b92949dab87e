"""``otoscope sae explain FEATURES_DIR --heldout CORPUS``: label-based explanations, scored; parse, call, print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from otoscope.cli.args import nonneg_float, positive_int
from otoscope.errors import OtoscopeError


def _cmd_explain(args) -> None:
    from otoscope.features.explain import ExplainConfig, explain_features, save_explanations, score_explanations, summary
    from otoscope.features.result import FeatureStats
    from otoscope.models.loader import load
    from otoscope.sae.format import load_sae

    stats = FeatureStats.load(args.features_dir)
    config = ExplainConfig(min_share=args.min_share, min_selectivity=args.min_selectivity, min_top=args.min_top)
    explanations = explain_features(stats, config)
    sae_dir = Path(args.sae or stats.sae)
    if not sae_dir.is_dir():
        raise OtoscopeError(f"the SAE folder {sae_dir} named in features.json is not here; pass --sae SAE_DIR.")
    sae = load_sae(sae_dir, device=args.device)
    model = load(args.model or stats.model, device=args.device)
    scored = score_explanations(model, sae, args.heldout, explanations, spans=args.spans, hook=stats.hook,
                                batch_size=args.batch_size, progress=not args.quiet)
    path = save_explanations(args.features_dir, scored)
    for e in sorted(scored, key=lambda e: -((e.precision or 0) + (e.recall or 0)))[: args.show]:
        p = "-" if e.precision is None else f"{e.precision:.2f}"
        r = "-" if e.recall is None else f"{e.recall:.2f}"
        print(f"latent {e.index:>6}  precision {p:>4}  recall {r:>4}  {e.text}")
    print(json.dumps(summary(scored)))
    print(f"wrote {len(scored)} explanations into {path}", file=sys.stderr)


def register(sae_subparsers) -> argparse.ArgumentParser:
    """Add ``explain`` to the ``otoscope sae`` subcommands."""
    p = sae_subparsers.add_parser("explain", help="label-based explanations of SAE latents, scored on held-out clips")
    p.add_argument("features_dir", type=Path, help="folder from `otoscope sae features` (features.json is updated)")
    p.add_argument("--heldout", required=True, help="held-out clips: folder of audio or .csv/.jsonl manifest with labels")
    p.add_argument("--spans", default=None, metavar="FILE.jsonl",
                   help="word spans of the held-out clips (`otoscope align --json`); default: aligned now")
    p.add_argument("--sae", default=None, type=Path, help="SAE folder (default: the one named in features.json)")
    p.add_argument("--model", "-m", default=None, help="model (default: the one named in features.json)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default cpu)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--min-share", type=nonneg_float, default=0.5, help="least share of top activations carrying the label")
    p.add_argument("--min-selectivity", type=nonneg_float, default=2.0, help="least selectivity for the label")
    p.add_argument("--min-top", type=positive_int, default=3, help="least top activations for a latent to be explained")
    p.add_argument("--show", type=positive_int, default=10, help="explanations printed (best held-out scores first)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_explain)
    return p
