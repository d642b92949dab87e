"""Data-parallel training under torchrun: 2 CPU processes with gloo match one process on the same batches."""

import json
import os
import subprocess
import sys

import torch

from otoscope.sae.format import load_sae
from otoscope.sae.train_config import TrainConfig
from otoscope.sae.trainer import Trainer

from .synthetic import make_store, sparse_data


def test_two_gloo_ranks_train_the_same_sae_as_one_process(tmp_path):
    store = make_store(tmp_path / "store", {"h": sparse_data(rows=2048, d_in=16, seed=4)}, shard_rows=512)
    args = ["--k", "2", "--expansion", "4", "--batch-size", "128", "--samples", str(128 * 20), "--lr", "0.01",
            "--checkpoint-every", "10", "--log-every", "10", "--dead-after", "512", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "otoscope.cli.sae", "train", "--activations", str(store), "--out", str(tmp_path / "ddp"),
                          *args], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("20 steps, 2560 samples") == 2  # both ranks finished the same run
    config = TrainConfig(k=2, expansion=4, batch_size=128, total_samples=128 * 20, lr=0.01, checkpoint_every=10,
                         log_every=10, dead_after=512, device="cpu")
    single = Trainer(store, tmp_path / "single", config).fit(progress=False)
    ddp, one = load_sae(tmp_path / "ddp" / "h"), load_sae(single.saes["h"])
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.allclose(getattr(ddp, name), getattr(one, name), atol=1e-4), name
    lines = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20]  # written once, by rank 0
    assert [p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()] == ["step-00000010"]
