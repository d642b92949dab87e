"""``otoscope sae features``: writes the contract's features.json and a columnar safetensors; loads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from otoscope.features import FeatureStats
from otoscope.sae.format import save_sae

from .conftest import random_sae


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "otoscope.cli.main", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_cli_writes_contract_json_and_loads_back(tmp_path, manifest):
    sae_dir = save_sae(random_sae(32, 24, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper"), tmp_path / "sae")
    data = tmp_path / "clips.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in manifest[:3] + manifest[-1:]))
    run = _run("sae", "features", str(sae_dir), "--data", str(data), "--out", str(tmp_path / "out"), "--top", "5",
               "--labels", "kind", "--batch-size", "2", "--quiet")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "24 latents" in run.stdout
    doc = json.loads((tmp_path / "out" / "features.json").read_text())
    assert {k: doc[k] for k in ("version", "sae", "hook", "model", "d_sae", "top_n", "label_keys")} == \
        {"version": 1, "sae": str(sae_dir), "hook": "encoder.blocks.1.hook_resid_post", "model": "tiny-random-whisper",
         "d_sae": 24, "top_n": 5, "label_keys": ["kind"]}
    assert [c["clip"] for c in doc["clips"]] == [r["path"] for r in manifest[:3] + manifest[-1:]]
    assert doc["frames"] == sum(c["frames"] for c in doc["clips"])
    assert len(doc["histogram"]["edges"]) == len(doc["latents"][0]["histogram"]) + 1
    latent = max(doc["latents"], key=lambda entry: entry["frequency"])
    assert set(latent) == {"index", "frequency", "mean", "max", "histogram", "top", "quantiles", "coactivation",
                           "labels", "temporal_consistency", "explanation"}
    assert len(latent["top"]) == 5 and latent["top"][0]["value"] == latent["max"]
    assert [t["value"] for t in latent["top"]] == sorted((t["value"] for t in latent["top"]), reverse=True)
    assert 1 < len(latent["quantiles"]) <= 10 and all(len(q["examples"]) <= 5 for q in latent["quantiles"])
    assert all(q["lo"] <= e["value"] <= q["hi"] for q in latent["quantiles"] for e in q["examples"])
    assert set(latent["labels"]["kind"]) == {"top_counts", "selectivity", "best", "best_selectivity"}
    assert sum(latent["labels"]["kind"]["top_counts"].values()) == 5
    assert latent["temporal_consistency"] is None and latent["explanation"] is None

    doc["latents"][3]["explanation"] = {"text": "fires on dogs", "key": "kind", "value": "nonspeech",
                                        "precision": 0.9, "recall": 0.5}
    (tmp_path / "out" / "features.json").write_text(json.dumps(doc))
    stats = FeatureStats.load(tmp_path / "out")
    assert stats.to_json() == doc  # the folder round-trips, explanations included
    frame = stats.to_frame()
    assert len(frame) == 24 and frame.loc[3, "explanation"] == "fires on dogs"
    assert torch.equal(torch.tensor(frame["frequency"].values), stats.columns["frequency"])


def test_cli_error_is_one_line(tmp_path, manifest):
    sae_dir = save_sae(random_sae(48, 8, "encoder.blocks.1.hook_resid_post", "tiny-random-whisper"), tmp_path / "sae")
    run = _run("sae", "features", str(sae_dir), "--data", manifest[0]["path"], "--out", str(tmp_path / "out"), "--quiet")
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("otoscope: error:") and "d_in=48" in run.stderr
