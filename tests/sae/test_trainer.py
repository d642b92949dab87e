"""The trainer: it learns known features, every architecture trains, exact resume, bad values, AuxK, resampling."""

import json
import math

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.dead import FiringTracker, resample_dead
from otoscope.sae.format import load_sae
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.reader import ShuffledReader
from otoscope.sae.store import ActivationStore
from otoscope.sae.train_config import TrainConfig
from otoscope.sae.trainer import Trainer

from .synthetic import make_store, sparse_data

FEATURES = 32


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    x = sparse_data(rows=4096, d_in=16, n_features=FEATURES, active=2, seed=0)
    return make_store(tmp_path_factory.mktemp("synthetic"), {"h": x}, shard_rows=512)


def _config(**kw):
    base = dict(k=2, expansion=4, batch_size=256, total_samples=256 * 40, lr=1e-2, checkpoint_every=None, log_every=10,
                dead_after=10**9, seed=0)
    return TrainConfig(**{**base, **kw})


def _truth():
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.normalize(torch.randn(FEATURES, 16, generator=g), dim=1)  # as sparse_data draws them


def test_topk_recovers_the_generating_features(synthetic, tmp_path):
    config = _config(batch_size=128, total_samples=128 * 300, log_every=50)
    result = Trainer(synthetic, tmp_path, config).fit(progress=False)
    metrics = result.metrics["h"]
    assert metrics.l0 == 2.0 and metrics.fvu < 0.1
    sae = load_sae(result.saes["h"])
    best = (_truth() @ torch.nn.functional.normalize(sae.W_dec, dim=1).t()).max(1).values
    assert (best > 0.9).float().mean() > 0.9  # (almost) every true direction has a latent
    assert sae.cfg.hook_name == "h" and sae.cfg.model_name == "synthetic"
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(50, 301, 50))
    assert history[-1]["hooks"]["h"]["fvu"] < history[0]["hooks"]["h"]["fvu"]
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 300
    again = Trainer(synthetic, tmp_path, config).fit(progress=False)  # a finished run is not redone
    assert again.resumed_from == 300 and again.saes == result.saes and again.metrics == result.metrics


def test_initial_decoder_bias_is_the_data_mean_and_rows_stay_unit_norm(synthetic, tmp_path):
    trainer = Trainer(synthetic, tmp_path, _config(normalize_activations=False))
    trainer._init_statistics()
    data = ActivationStore(synthetic).activations("h")
    assert torch.allclose(trainer.states[0].sae.b_dec, data.mean(0), atol=1e-4)
    assert trainer.states[0].norm == pytest.approx(float((data - data.mean(0)).pow(2).sum(1).mean().sqrt()), rel=1e-4)
    trainer.fit(progress=False)
    assert torch.allclose(trainer.states[0].sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)


@pytest.mark.parametrize("arch, extra", [("batchtopk", {}), ("relu", {"l1_coefficient": 0.3}),
                                         ("jumprelu", {"l0_coefficient": 0.02, "jumprelu_bandwidth": 0.05,
                                                       "jumprelu_init_threshold": 0.05})])
def test_every_architecture_trains(synthetic, tmp_path, arch, extra):
    result = Trainer(synthetic, tmp_path, _config(architecture=arch, total_samples=256 * 150, log_every=50, **extra)).fit(progress=False)
    first, last = result.history[0]["hooks"]["h"], result.metrics["h"]
    assert last.fvu < 0.5 and last.fvu < first["fvu"]
    assert last.l0 < 32  # sparse
    sae = load_sae(result.saes["h"])
    assert sae.cfg.architecture == arch
    data = ActivationStore(synthetic).activations("h")[:512]
    from otoscope.sae.metrics import fvu

    assert fvu(data, sae(data)) < 0.6


def _comparable(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        line.pop("samples_per_s")
    return lines


def test_killed_training_resumes_to_the_same_result(synthetic, tmp_path):
    config = _config(total_samples=256 * 30, checkpoint_every=10, resample_every=7, dead_after=1024)
    whole = Trainer(synthetic, tmp_path / "whole", config).fit(progress=False)
    partial = Trainer(synthetic, tmp_path / "killed", config).fit(stop_after=15, progress=False)  # dies at step 15
    assert partial.saes == {} and [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()] == ["step-00000010"]
    resumed = Trainer(synthetic, tmp_path / "killed", config).fit(progress=False)
    assert resumed.resumed_from == 10 and resumed.steps == 30
    a, b = load_sae(whole.saes["h"]), load_sae(resumed.saes["h"])
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert _comparable(tmp_path / "whole" / "metrics.jsonl") == _comparable(tmp_path / "killed" / "metrics.jsonl")
    with pytest.raises(OtoscopeError, match="holds a training run with different settings \\(k\\)"):
        Trainer(synthetic, tmp_path / "killed", _config(total_samples=256 * 30, checkpoint_every=10, resample_every=7,
                                                        dead_after=1024, k=3)).fit(progress=False)


def test_nan_activations_stop_training_naming_shard_and_clip_and_keep_the_checkpoint(tmp_path):
    x = sparse_data(rows=2048, d_in=16, seed=1)
    clean = ActivationStore(make_store(tmp_path / "clean", {"h": x}, shard_rows=512))
    order = ShuffledReader(clean, ["h"], 2048, seed=0, buffer_rows=1 << 18)
    stream = next(iter(order)).acts["h"]
    bad_row = int(torch.nonzero((x == stream[5 * 64 + 10]).all(1))[0, 0])  # reaches the trainer in batch 5
    x[bad_row, 3] = float("nan")
    store = make_store(tmp_path / "bad", {"h": x}, shard_rows=512)
    config = _config(batch_size=64, total_samples=64 * 20, checkpoint_every=2, init_samples=64)
    with pytest.raises(OtoscopeError) as err:
        Trainer(store, tmp_path / "out", config).fit(progress=False)
    message = str(err.value)
    assert f"NaN/inf activations for h at step 5" in message
    assert f"shard-r00-{bad_row // 512:05d}.safetensors (clip clip{bad_row // 16}, frame {bad_row % 16})" in message
    kept = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert kept == ["step-00000002", "step-00000004"]  # nothing written after the bad batch


def test_a_loss_that_becomes_nan_stops_training(synthetic, tmp_path, monkeypatch):
    real = SparseAutoencoder.train_forward
    calls = []

    def breaks_at_step_3(self, x, **kw):
        out = real(self, x, **kw)
        calls.append(1)
        return out._replace(x_hat=out.x_hat * float("nan")) if len(calls) == 4 else out

    monkeypatch.setattr(SparseAutoencoder, "train_forward", breaks_at_step_3)
    with pytest.raises(OtoscopeError, match="the loss of h became NaN/inf at step 3 .* without writing a checkpoint"):
        Trainer(synthetic, tmp_path, _config(checkpoint_every=2)).fit(progress=False)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000002"]


def test_auxk_gives_dead_latents_a_gradient(synthetic, tmp_path):
    sae = SparseAutoencoder(SAEConfig(d_in=16, d_sae=64, k=2), seed=0)
    x = ActivationStore(synthetic).activations("h")[:128]
    dead = torch.zeros(64, dtype=torch.bool)
    dead[::2] = True
    out = sae.train_forward(x, norm=1.0, dead=dead, k_aux=8)
    residual = (x - out.x_hat).detach()
    (out.aux_recon - residual).pow(2).sum().backward()
    moved = sae.W_enc.grad.abs().sum(0) > 0
    assert moved[dead].any() and not moved[~dead].any()  # only dead latents learn from the residual
    with_aux = Trainer(synthetic, tmp_path / "a", _config(expansion=8, dead_after=2048, total_samples=256 * 30)).fit(progress=False)
    without = Trainer(synthetic, tmp_path / "b", _config(expansion=8, dead_after=2048, total_samples=256 * 30,
                                                         auxk_coefficient=0.0)).fit(progress=False)
    assert with_aux.metrics["h"].dead_fraction > 0 and any(h["hooks"]["h"]["aux_loss"] > 0 for h in with_aux.history)
    assert all(h["hooks"]["h"]["aux_loss"] == 0 for h in without.history)


def test_resampling_points_dead_latents_at_badly_reconstructed_inputs():
    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=16, k=2), seed=0)
    optimizer = torch.optim.AdamW(sae.parameters())
    sae(torch.randn(4, 8)).sum().backward()
    touched = sae.W_dec.grad.abs().sum(1) > 0
    optimizer.step()
    x = torch.zeros(32, 8)
    x[7] = torch.tensor([0, 0, 50.0, 0, 0, 0, 0, 0])  # the only input with a large error
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[3, 9]] = True
    live = int(torch.nonzero(touched & ~dead)[0, 0])
    revived = resample_dead(sae, x, dead, optimizer, torch.Generator().manual_seed(0))
    assert revived.tolist() == [3, 9]
    target = torch.nn.functional.normalize(x[7] - sae.b_dec, dim=0)
    assert torch.allclose(sae.W_dec[3], target, atol=1e-6) and torch.allclose(sae.W_dec[9], target, atol=1e-6)
    assert sae.b_enc[3] == 0 and (optimizer.state[sae.W_dec]["exp_avg"][[3, 9]] == 0).all()
    assert (optimizer.state[sae.W_dec]["exp_avg"][live] != 0).any()  # live latents keep their moments


def test_firing_tracker_counts_dead_latents():
    tracker = FiringTracker(4, dead_after=100)
    tracker.update(torch.tensor([5, 0, 1, 0]), 60)
    assert not tracker.dead().any()
    tracker.update(torch.tensor([5, 0, 0, 0]), 60)
    assert tracker.dead().tolist() == [False, True, False, True]
    assert tracker.frequency()[0] == pytest.approx(10 / 120)


def test_several_hooks_train_from_one_pass(tmp_path):
    store = make_store(tmp_path / "s", {"a": sparse_data(1024, 16, seed=1), "b": sparse_data(1024, 24, seed=2)})
    result = Trainer(store, tmp_path / "out", _config(total_samples=256 * 10)).fit(progress=False)
    assert set(result.saes) == {"a", "b"}
    assert load_sae(result.saes["a"]).d_in == 16 and load_sae(result.saes["b"]).d_sae == 96


def test_learning_rate_schedule():
    config = TrainConfig(batch_size=10, total_samples=1000, lr=1.0, warmup_steps=10, lr_end=0.1)
    assert config.lr_at(0, 64) == pytest.approx(0.1) and config.lr_at(9, 64) == pytest.approx(1.0)
    assert config.lr_at(55, 64) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert config.lr_at(99, 64) == pytest.approx(0.1, abs=1e-3)
    assert TrainConfig(total_samples=10**7).peak_lr(16384) == pytest.approx(2e-4)
    with pytest.raises(OtoscopeError, match="less than one batch"):
        TrainConfig(batch_size=4096, total_samples=100)


def test_autocast_is_for_gpus_only(synthetic, tmp_path):
    trainer = Trainer(synthetic, tmp_path, _config())
    assert trainer.device.type == "cpu" and not isinstance(trainer._autocast(), torch.autocast)
