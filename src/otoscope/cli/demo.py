"""``make demo``: the foundation end to end on the bundled whisper-tiny.en and the committed clips, offline.

Transcribes every clip, caches all encoder residual streams, prints the per-layer residual norm over
real frames, runs the encoder logit lens and encoder lens (``out/demo/lens.json`` and a plot), and
exports the activations to ``out/demo/acts.safetensors``. (The HTML report of issue 3 will replace it.)
"""

from __future__ import annotations

import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "audio"


def run_demo(out: Path) -> None:
    """Run the demo, writing into ``out``."""
    import json

    import otoscope
    from otoscope._io import write_text_atomic
    from otoscope.hooks.export import export_activations
    from otoscope.lens.encoder import encoder_lens
    from otoscope.lens.plots import plot_layer_curves

    clips = sorted(FIXTURES.glob("*.flac"))
    if not clips:
        raise otoscope.OtoscopeError(f"no demo clips in {FIXTURES}; run from a checkout of the repository.")
    model = otoscope.load()
    print(model)
    for clip, result in zip(clips, model.transcribe([str(c) for c in clips])):
        print(f"  {clip.name:<22} {result.text[:70]!r}")

    speech = str(FIXTURES / "speech_park.flac")
    _, cache = model.run_with_cache(speech, names_filter="encoder.blocks.*.hook_resid_post")
    stack = cache.stack("encoder.blocks.*.hook_resid_post")[:, 0, : cache.n_frames(0)]  # [layers, frames, d_model]
    print(f"\nencoder residual norm over the {cache.n_frames(0)} real frames of {Path(speech).name}:")
    for layer, norms in zip(cache.layers("encoder.blocks.*.hook_resid_post"), stack.norm(dim=-1)):
        print(f"  block {layer}: mean {norms.mean():8.2f}  max {norms.max():8.2f}")

    lens = encoder_lens(model, speech)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "lens.json", json.dumps(lens.to_json(), indent=1))
    plot_layer_curves(lens, out / "lens_layers.png")
    print("\nencoder logit lens / encoder lens:")
    for layer in lens.layers:
        print(f"  layer {layer.layer}: LIS {layer.lis:.4f}  KL {layer.kl_to_final:.4f}  {layer.encoder_lens_text[:50]!r}")
    print(f"  saturation layer {lens.saturation_layer}; wrote {out / 'lens.json'} and {out / 'lens_layers.png'}")

    result = export_activations(model, [str(c) for c in clips], out / "acts.safetensors",
                                "encoder.blocks.*.hook_resid_post", progress=False)
    print(f"\nwrote {result.path} ({len(result.hooks)} hooks, {len(result.clips)} clips, real frames only)")


if __name__ == "__main__":
    run_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/demo"))
