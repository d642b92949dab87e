"""SAE training speed: otoscope's trainer against SAELens's SAETrainer, same SAE, same activations, same samples.

Run: .venv/bin/python benchmarks/sae_training.py [--steps 50] [--out out/bench_sae]. Last line: one JSON object.

1. Audio: 30 s windows assembled from the committed clips (random order, speed ±15 %, gain, faint noise),
   written as FLAC files. whisper-tiny.en's ``encoder.blocks.2.hook_resid_post`` (d_in 384) is extracted
   from 60 windows (10×: 30 min, the training set) and 6 other windows (1×: 3 min, held out), each in a
   fresh process that reports its peak memory: 8 MiB shards keep it flat however much audio there is.
2. Training: a TopK SAE (expansion 16 → 6144 latents, k 32, batch 4096) for ``steps × 4096`` samples, same
   peak learning rate, warm-up and cosine decay for both. The rate, 4e-3, is SAELens's best of
   {1, 2, 4, 8}e-3 for 50 steps here (held-out FVU 0.326, 0.218, 0.206, 0.263; otoscope: 0.334, 0.237, 0.174,
   0.127): otoscope's unit-norm decoder rows make it more sensitive to the rate than SAELens's 0.1-norm init. otoscope reads the store through its shuffling
   reader; SAELens gets float32 batches of the same rows from an in-memory iterator (no I/O on its clock).
   Throughput is samples over the wall time of each training loop, in the same process, one after the other.
3. Quality: FVU (variance about the mean) of both trained SAEs on the held-out rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CLIPS = sorted((ROOT / "tests/fixtures/audio").glob("*.flac"))
HOOK = "encoder.blocks.2.hook_resid_post"
D_IN, EXPANSION, K, BATCH = 384, 16, 32, 4096


def windows(n: int, seed: int) -> list[np.ndarray]:
    """``n`` 30 s, 16 kHz windows of shuffled, speed- and gain-perturbed fixture speech."""
    import soxr

    from otoscope.audio.io import read_file

    rng = np.random.default_rng(seed)
    sources = [read_file(p, 16000).samples for p in CLIPS]
    out = []
    for _ in range(n):
        parts, total = [], 0
        while total < 30 * 16000:
            clip = sources[rng.integers(len(sources))]
            speed = rng.uniform(0.85, 1.15)
            piece = soxr.resample(clip, 16000, int(16000 / speed)) * rng.uniform(0.5, 1.5)
            parts += [piece, np.zeros(int(rng.uniform(0.05, 0.4) * 16000), np.float32)]
            total += len(parts[-2]) + len(parts[-1])
        audio = np.concatenate(parts)[: 30 * 16000]
        out.append((audio + rng.normal(0, 0.002, audio.shape)).astype(np.float32))
    return out


def write_audio(n: int, seed: int, folder: Path) -> Path:
    """Write :func:`windows` as FLAC files (once): the extractor then reads a corpus from disk, as in real use."""
    import soundfile as sf

    if len(list(folder.glob("*.flac"))) != n:
        folder.mkdir(parents=True, exist_ok=True)
        for i, audio in enumerate(windows(n, seed)):
            sf.write(folder / f"window_{i:04d}.flac", audio, 16000)
    return folder


def child_extract(audio: str, out: str) -> None:
    """Extract the clips of ``audio`` into ``out`` and print rows and this process's peak resident memory."""
    import otoscope
    from otoscope.sae import ExtractConfig, extract_activations

    model = otoscope.load("whisper-tiny.en")
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = extract_activations(model, audio, out,
                                 ExtractConfig(hooks=HOOK, batch_size=4, shard_mb=8, overwrite=True, progress=False))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": result.rows, "shards": result.shards, "peak_mb": round(peak, 1),
                      "after_model_load_mb": round(after_load, 1)}))


def extract(n: int, seed: int, out: Path) -> dict:
    """Run :func:`child_extract` on ``n`` windows in a fresh process (so its peak memory is its own)."""
    audio = write_audio(n, seed, out.parent / f"{out.name}_audio")
    run = subprocess.run([sys.executable, __file__, "--child-extract", str(audio), str(out)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def train_otoscope(store: Path, out: Path, samples: int, lr: float, warmup: int):
    from otoscope.sae import TrainConfig, Trainer, load_sae

    config = TrainConfig(k=K, expansion=EXPANSION, batch_size=BATCH, total_samples=samples, lr=lr, warmup_steps=warmup,
                         lr_end=0.1, checkpoint_every=None, log_every=10**9, normalize_activations=False)
    result = Trainer(store, out, config).fit(resume=False, progress=False)
    return result.samples_per_s, load_sae(result.saes[HOOK])


def train_saelens(data: torch.Tensor, samples: int, lr: float, warmup: int):
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_IN * EXPANSION, k=K, device="cpu"))
    generator = torch.Generator().manual_seed(0)

    def batches():
        while True:
            order = torch.randperm(data.shape[0], generator=generator)
            for start in range(0, data.shape[0] - BATCH + 1, BATCH):
                yield data[order[start : start + BATCH]]

    config = SAETrainerConfig(total_training_samples=samples, train_batch_size_samples=BATCH, lr=lr, lr_end=lr * 0.1,
                              lr_scheduler_name="cosineannealing", lr_warm_up_steps=warmup, device="cpu",
                              autocast=False, logger=LoggingConfig(log_to_wandb=False))
    trainer = SAETrainer(config, sae, batches())
    start = time.perf_counter()
    trainer.fit()
    return samples / (time.perf_counter() - start), sae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps of 4096 samples")
    parser.add_argument("--lr", type=float, default=4e-3, help="peak learning rate, the same for both")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_sae")
    args = parser.parse_args()
    warnings_off()
    from otoscope.sae import ActivationStore, fvu, reconstruction_metrics

    load = os.getloadavg()[0]
    small = extract(6, 1, args.out / "acts_1x")
    large = extract(60, 0, args.out / "acts_10x")
    print(f"extract 1x: {small}\nextract 10x: {large}", flush=True)
    heldout = ActivationStore(args.out / "acts_1x").activations(HOOK)
    train_rows = ActivationStore(args.out / "acts_10x").activations(HOOK)
    samples, warmup = args.steps * BATCH, max(1, args.steps // 20)
    rate, ours = train_otoscope(args.out / "acts_10x", args.out / "otoscope_sae", samples, args.lr, warmup)
    print(f"otoscope: {rate:.0f} samples/s", flush=True)
    rate_sl, theirs = train_saelens(train_rows, samples, args.lr, warmup)
    print(f"SAELens:  {rate_sl:.0f} samples/s", flush=True)
    with torch.no_grad():
        fvu_sl = fvu(heldout, theirs(heldout))
    metrics = reconstruction_metrics(ours, heldout)
    print(json.dumps({
        "samples_per_s": round(rate, 1), "samples_per_s_saelens": round(rate_sl, 1),
        "speedup_vs_saelens": round(rate / rate_sl, 2), "fvu": round(metrics.fvu, 4), "fvu_saelens": round(fvu_sl, 4),
        "l0": round(metrics.l0, 2), "samples": samples, "d_in": D_IN, "d_sae": D_IN * EXPANSION, "k": K,
        "batch_size": BATCH, "lr": args.lr, "train_rows": int(train_rows.shape[0]), "heldout_rows": int(heldout.shape[0]),
        "extract_peak_mb_1x": small["peak_mb"], "extract_peak_mb_10x": large["peak_mb"],
        "extract_rows_1x": small["rows"], "extract_rows_10x": large["rows"], "threads": torch.get_num_threads(),
        "device": "cpu", "load_average_at_start": round(load, 2)}))


def warnings_off() -> None:
    """Keep third-party deprecation chatter out of the report."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-extract":
        child_extract(sys.argv[2], sys.argv[3])
    else:
        main()
