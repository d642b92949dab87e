"""A training process killed with SIGKILL resumes from its last checkpoint to the uninterrupted result."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from otoscope.sae.format import load_sae
from otoscope.sae.train_config import TrainConfig
from otoscope.sae.trainer import Trainer

from .synthetic import make_store, sparse_data

STEPS = 120


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkilled_training_resumes_bit_for_bit(tmp_path):
    store = make_store(tmp_path / "store", {"h": sparse_data(rows=2048, d_in=16, seed=7)}, shard_rows=512)
    args = dict(k=2, expansion=4, batch_size=64, total_samples=64 * STEPS, lr=0.01, checkpoint_every=50, log_every=50,
                dead_after=4096, resample_every=30, device="cpu")
    cli = ["--k", "2", "--expansion", "4", "--batch-size", "64", "--samples", str(64 * STEPS), "--lr", "0.01",
           "--checkpoint-every", "50", "--log-every", "50", "--dead-after", "4096", "--resample-every", "30",
           "--device", "cpu", "--quiet"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "otoscope.cli.sae", "train", "--activations", str(store),
                             "--out", str(out), *cli], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "checkpoints").is_dir() or not any((out / "checkpoints").glob("step-*")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()  # it died mid-run
    resumed = Trainer(store, out, TrainConfig(**args)).fit(progress=False)
    assert resumed.resumed_from is not None and 0 < resumed.resumed_from < STEPS
    whole = Trainer(store, tmp_path / "whole", TrainConfig(**args)).fit(progress=False)
    a, b = load_sae(whole.saes["h"]), load_sae(resumed.saes["h"])
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
