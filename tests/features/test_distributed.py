"""Under torchrun, 2 CPU processes with gloo (each a shard of the clips) give what one process gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from otoscope.features import FeaturesConfig, FeatureStats, feature_stats
from otoscope.sae.format import load_sae, save_sae

from .conftest import random_sae


def test_two_gloo_ranks_equal_one_process(tmp_path, manifest, tiny_whisper):
    sae_dir = save_sae(random_sae(32, 24, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper", seed=3),
                       tmp_path / "sae")
    data = tmp_path / "clips.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in manifest))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "otoscope.cli.sae", "features", str(sae_dir), "--data", str(data), "--out",
                          str(tmp_path / "ddp"), "--top", "6", "--labels", "kind", "--batch-size", "2", "--quiet"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("wrote") == 1  # rank 0 writes
    ddp = FeatureStats.load(tmp_path / "ddp")
    one = feature_stats(tiny_whisper, load_sae(sae_dir), data, FeaturesConfig(top_n=6, labels=["kind"], batch_size=3,
                                                                              progress=False), sae_name=str(sae_dir))
    assert ddp.clips == one.clips
    for name, column in one.columns.items():
        other = ddp.columns[name]
        if column.is_floating_point():
            assert torch.allclose(other, column, rtol=1e-4, atol=1e-6, equal_nan=True), name
        else:
            assert torch.equal(other, column), name
    for a, b in zip(ddp.label_stats, one.label_stats):
        assert a["kind"]["top_counts"] == b["kind"]["top_counts"] and a["kind"]["best"] == b["kind"]["best"]
        assert a["kind"]["selectivity"] == pytest.approx(b["kind"]["selectivity"], rel=1e-4)
