"""Encoder lens, all layers: otoscope's one-encoder-forward path against one full forward per layer.

Both compute the same thing per layer (LIS, entropy, KL to final, encoder-lens transcript); the naive
path re-runs encoder and decoder for every layer, otoscope runs the encoder once and decodes all layers
as one batch.

Run: .venv/bin/python benchmarks/lens.py [CLIP]. Last line: one JSON object with the headline figures.
Both paths are timed in this one run (best of 3 each) on the same clip, after one warm-up each.
"""

import json
import sys
import time
from pathlib import Path

import torch

import otoscope
from otoscope.lens.encoder import encoder_lens
from otoscope.lens.naive import encoder_lens_per_layer

CLIP = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "tests/fixtures/audio/speech_london.flac"


def best_of(fn, repeats=3):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main():
    torch.manual_seed(0)
    model = otoscope.load("whisper-tiny.en")
    fast_s, result = best_of(lambda: encoder_lens(model, str(CLIP)))
    naive_s, naive = best_of(lambda: encoder_lens_per_layer(model, str(CLIP)))
    same = [layer.encoder_lens_text for layer in result.layers] == [layer.encoder_lens_text for layer in naive]
    max_diff = max(abs(a.kl_to_final - b.kl_to_final) + abs(a.lis - b.lis) for a, b in zip(result.layers, naive))
    for layer in result.layers:
        print(f"layer {layer.layer}: LIS {layer.lis:.4f} entropy {layer.entropy:.3f} KL {layer.kl_to_final:.4f} "
              f"{layer.encoder_lens_text!r}")
    print(json.dumps({"clip": CLIP.name, "model": model.name, "layers": model.n_layers, "threads": torch.get_num_threads(),
                      "otoscope_s": round(fast_s, 3), "per_layer_s": round(naive_s, 3),
                      "speedup_vs_per_layer": round(naive_s / fast_s, 2), "same_transcripts": same, "max_stat_diff": max_diff,
                      "saturation_layer": result.saturation_layer}))


if __name__ == "__main__":
    main()
