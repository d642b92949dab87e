"""Encoder lens, all layers: otoscope's ``encoder_lens`` against what a hooks user would write.

Both compute the same thing per layer (LIS, entropy, KL to final, encoder-lens transcript). The baseline is
the idiomatic hooks path (TransformerLens style): one ``run_with_cache`` of every encoder layer's residual,
then, per layer, the final layer norm and one greedy decode from it with the same KV-cached decoder
otoscope uses, and the logit-lens statistics of that layer. Otoscope runs the encoder alone once, computes
every layer's statistics in blocks and decodes all layers as one batch.

Run: .venv/bin/python benchmarks/lens.py [CLIP]. Last line: one JSON object with the headline figures.
Both paths are timed in this one run (best of 3 each) on the same clip, after one warm-up each.
"""

import json
import sys
import time
from pathlib import Path

import torch

import otoscope
from otoscope.lens.encoder import LayerLens, encoder_lens, logit_lens_stats
from otoscope.models.decode import greedy_whisper

CLIP = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "tests/fixtures/audio/speech_london.flac"


def best_of(fn, repeats=3):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def hooks_user_per_layer(model, audio, max_new_tokens=96):
    """The baseline: one run_with_cache, then one decode and one set of statistics per layer."""
    _, cache = model.run_with_cache(audio, names_filter="encoder.blocks.*.hook_resid_post")
    n_real = int(cache.frame_mask[0].sum())
    norm = model.adapter.final_norm("encoder")  # Whisper: the encoder's final layer norm
    last = cache[f"encoder.blocks.{model.n_layers - 1}.hook_resid_post"][0, :n_real]
    clips = model.clips(audio)
    out = []
    with torch.no_grad():
        for layer in range(model.n_layers):
            resid = cache[f"encoder.blocks.{layer}.hook_resid_post"]  # [1, frames, d_model]
            text = greedy_whisper(model, clips, None, max_new_tokens, encoder_states=norm(resid))[0].text
            lis, ent, kl = logit_lens_stats(model, torch.stack([resid[0, :n_real], last]))
            out.append(LayerLens(layer, lis[0], ent[0], kl[0], text))
    return out


def main():
    torch.manual_seed(0)
    model = otoscope.load("whisper-tiny.en")
    fast_s, result = best_of(lambda: encoder_lens(model, str(CLIP)))
    naive_s, naive = best_of(lambda: hooks_user_per_layer(model, str(CLIP)))
    same = [layer.encoder_lens_text for layer in result.layers] == [layer.encoder_lens_text for layer in naive]
    max_diff = max(abs(a.kl_to_final - b.kl_to_final) + abs(a.lis - b.lis) for a, b in zip(result.layers, naive))
    for layer in result.layers:
        print(f"layer {layer.layer}: LIS {layer.lis:.4f} entropy {layer.entropy:.3f} KL {layer.kl_to_final:.4f} "
              f"{layer.encoder_lens_text!r}")
    print(json.dumps({"clip": CLIP.name, "model": model.name, "layers": model.n_layers, "threads": torch.get_num_threads(),
                      "otoscope_s": round(fast_s, 3), "per_layer_s": round(naive_s, 3),
                      "speedup_vs_hooks_per_layer": round(naive_s / fast_s, 2), "same_transcripts": same, "max_stat_diff": max_diff,
                      "saturation_layer": result.saturation_layer}))


if __name__ == "__main__":
    main()
