"""``otoscope sae dashboard FEATURES_DIR --out DASH``: parse, call :func:`otoscope.features.dashboard.build_dashboard`, print.

Registered under ``otoscope sae`` by :func:`register` (called from :mod:`otoscope.cli.sae`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from otoscope.cli.args import nonneg_int, positive_int


def _cmd_dashboard(args) -> None:
    # imports stay inside the command: `otoscope --help` must not load torch
    from otoscope.features.dashboard import DashboardConfig, build_dashboard

    config = DashboardConfig(max_latents=args.max_latents, top_examples=args.top, quantile_examples=args.per_quantile,
                             clip_latents=args.clip_latents, max_clip_pages=args.max_clips, ablate_latents=args.ablate,
                             neuronpedia=args.neuronpedia, batch_size=args.batch_size, audio_root=args.audio_root,
                             spans=args.spans, model=args.model, sae=args.sae, device=args.device,
                             progress=not args.quiet)
    result = build_dashboard(args.features_dir, args.out, config)
    extra = f"; Neuronpedia export in {result.neuronpedia}" if result.neuronpedia else ""
    print(f"wrote {len(result.latents)} latent pages, {len(result.clips)} clip pages and {result.snippets} snippets "
          f"to {result.index}{extra}")


def register(sae_subparsers) -> argparse.ArgumentParser:
    """Add ``dashboard`` to the ``otoscope sae`` subcommands."""
    p = sae_subparsers.add_parser("dashboard", help="static HTML dashboard of SAE latents from a features folder "
                                                    "(opens from disk, offline)")
    p.add_argument("features_dir", type=Path, help="folder written by 'otoscope sae features' (features.json)")
    p.add_argument("--out", required=True, type=Path, help="dashboard folder (replaced atomically)")
    p.add_argument("--max-latents", type=positive_int, default=None, metavar="N",
                   help="pages for at most N firing latents, most frequent first (default: all that fire)")
    p.add_argument("--neuronpedia", action="store_true", help="also export neuronpedia/batch-N.json (feature JSON layout)")
    p.add_argument("--top", type=positive_int, default=8, help="top activations per latent page (default 8)")
    p.add_argument("--per-quantile", type=nonneg_int, default=2, help="examples per activation quantile (default 2)")
    p.add_argument("--clip-latents", type=positive_int, default=16, help="rows of each clip page's latent heatmap (default 16)")
    p.add_argument("--max-clips", type=positive_int, default=200, help="clip pages for at most this many clips (default 200)")
    p.add_argument("--ablate", type=nonneg_int, default=32, metavar="N",
                   help="encoder hooks: test removing the first N latents on their top clips (0: off; default 32)")
    p.add_argument("--audio-root", type=Path, default=None, help="folder the corpus's relative clip paths are under")
    p.add_argument("--spans", type=Path, default=None, help="word spans (otoscope align --json lines) for clip pages")
    p.add_argument("--model", "-m", default=None, help="model (default: the one named in features.json)")
    p.add_argument("--sae", type=Path, default=None, help="SAE folder (default: the one named in features.json)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default CPU)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="clips per forward (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_dashboard)
    return p
