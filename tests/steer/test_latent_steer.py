"""Latent gates and latent clamps on the real whisper-tiny.en; their saved form (SAE inside, checksum checked)."""

import json

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.features.naive import selectivity
from otoscope.sae.config import SAEConfig
from otoscope.sae.model import SparseAutoencoder
from otoscope.steer import Direction
from otoscope.steer.encoded import Encoded, encode
from otoscope.steer.latent_steer import LatentGate, LatentSteer, latent_steering
from otoscope.steer.nonspeech_latents import clip_scores, latent_stats
from otoscope.steer.saved import applied, load_steering

LAYER = 2
HOOK = f"encoder.blocks.{LAYER}.hook_resid_post"


@pytest.fixture(scope="module")
def sae():
    # a ReLU SAE with random weights: many latents fire, so sums and gates are not trivially zero
    torch.manual_seed(0)
    return SparseAutoencoder(SAEConfig(d_in=384, d_sae=256, architecture="relu", hook_name=HOOK), seed=0)


def test_live_latent_gate_scores_equal_the_cached_ones(tiny_en, speech, manifest, sae):
    paths = [speech[0]["path"], [r["path"] for r in manifest if r["kind"] == "nonspeech"][0]]
    latents = [3, 17, 40]
    cached = clip_scores(encode(tiny_en, paths, saes={LAYER: sae}), LAYER, latents)
    assert cached.abs().min() > 0  # the comparison below can fail
    gate = LatentGate(HOOK, sae, latents, float(cached.mean()))
    d = Direction(torch.ones(384), "decoder.blocks.3.hook_resid_post", tiny_en.name, alpha=0.0, positions="first", gate=gate)
    with applied(tiny_en, d) as state:
        tiny_en.transcribe(paths)
    assert torch.allclose(state.scores.cpu(), cached, rtol=1e-4, atol=1e-5)
    assert state.open.tolist() == (cached > cached.mean()).tolist()


def test_clamp_changes_the_hook_by_the_clamped_latents_only_in_open_clips(tiny_en, speech, sae):
    path = speech[0]["path"]
    _, clean = tiny_en.run_with_cache(path, names_filter=HOOK)
    x = clean[HOOK][0]
    z = sae.encode(x)
    latents, reference = [3, 17], [0.5, 2.0]
    steer = LatentSteer(sae, HOOK, tiny_en.name, latents, reference, alpha=2.0)
    with latent_steering(tiny_en, steer):
        _, cache = tiny_en.run_with_cache(path, names_filter=HOOK)
    expected = sum((2.0 * r - z[:, i : i + 1]) * sae.W_dec[i] for i, r in zip(latents, reference))  # [frames, d_in]
    assert torch.allclose(cache[HOOK][0] - x, expected.detach(), atol=1e-4)
    assert expected.abs().max() > 1e-2
    closed = LatentSteer(sae, HOOK, tiny_en.name, latents, reference, 2.0, LatentGate(HOOK, sae, latents, 1e9))
    with latent_steering(tiny_en, closed) as state:
        _, cache = tiny_en.run_with_cache(path, names_filter=HOOK)
    assert state.open.tolist() == [False]
    assert (cache[HOOK][0] - x).abs().max() < 1e-4  # the error term makes the closed splice the identity


def test_latent_stats_equal_a_brute_force_over_frames():
    g = torch.Generator().manual_seed(0)
    frames = [5, 7, 3, 6]  # clips 0, 1 speech; 2, 3 non-speech
    z = [torch.rand(n, 12, generator=g) * (torch.rand(n, 12, generator=g) > 0.5) for n in frames]

    def enc(rows):
        return Encoded([None] * len(rows), torch.zeros(len(rows), 1, 1), torch.zeros(len(rows), 4, 1), torch.zeros(4, 1),
                       torch.zeros(4), torch.tensor([frames[i] for i in rows]),
                       {1: torch.stack([z[i].sum(0) for i in rows])}, {1: torch.stack([(z[i] > 0).sum(0) for i in rows])})
    stats = latent_stats(enc([0, 1]), enc([2, 3]), 1)
    every = torch.cat(z)
    classes = torch.tensor([0] * 12 + [1] * 9)
    assert torch.allclose(stats.selectivity.double(), selectivity(every, classes, 2)[:, 1], rtol=1e-5)
    assert torch.allclose(stats.frequency, (every > 0).float().mean(0))
    ns = every[12:]
    assert torch.allclose(stats.frequency_nonspeech, (ns > 0).float().mean(0))
    assert torch.allclose(stats.mean_active, ns.sum(0) / (ns > 0).sum(0).clamp_min(1), atol=1e-6)
    top = stats.top(3, min_frequency=0.0)
    assert [float(stats.selectivity[i]) for i in top] == sorted((float(stats.selectivity[i]) for i in top), reverse=True)


def test_saved_latent_steer_round_trips_and_refuses_a_changed_sae(tmp_path, tiny_en, speech, sae, capsys):
    from otoscope.cli.main import main

    steer = LatentSteer(sae, HOOK, tiny_en.name, [3, 17], [0.5, 2.0], 1.5, LatentGate(HOOK, sae, [3, 17], -1e9),
                        {"method": "latent_gated_encoder_latents"})
    steer.save(tmp_path / "s")
    info = json.loads((tmp_path / "s" / "steer.json").read_text())
    assert info["intervention"] == "latents" and len(info["sae"]["sha256"]) == 64
    back = load_steering(tmp_path / "s", tiny_en.name)
    assert isinstance(back, LatentSteer) and back.latents == [3, 17] and back.alpha == 1.5 and back.gate.threshold == -1e9
    assert torch.equal(back.sae.W_dec, sae.W_dec)
    with latent_steering(tiny_en, steer):
        want = tiny_en.transcribe(speech[0]["path"]).text
    assert main(["transcribe", "--json", speech[0]["path"], "--steer", str(tmp_path / "s")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["text"] == want
    # a direction gated by latents carries the SAE the same way
    d = Direction(torch.ones(384), "decoder.blocks.3.hook_resid_post", tiny_en.name, positions="first",
                  gate=LatentGate(HOOK, sae, [3], 0.25))
    d.save(tmp_path / "d")
    gate = Direction.load(tmp_path / "d", tiny_en.name).gate
    assert isinstance(gate, LatentGate) and gate.latents == [3] and torch.equal(gate.sae.W_enc, sae.W_enc)
    weights = next((tmp_path / "s" / "sae").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit pattern in the last weight
    weights.write_bytes(bytes(data))
    with pytest.raises(OtoscopeError, match="checksum"):
        load_steering(tmp_path / "s", tiny_en.name)
    with pytest.raises(OtoscopeError, match="made for model"):
        load_steering(tmp_path / "d", "whisper-base")


def test_bad_latent_steers(sae):
    with pytest.raises(OtoscopeError, match="out of range"):
        LatentGate(HOOK, sae, [999], 0.0)
    with pytest.raises(OtoscopeError, match="reference"):
        LatentSteer(sae, HOOK, "m", [1, 2], [1.0], 1.0)
    with pytest.raises(OtoscopeError, match="finite"):
        LatentSteer(sae, HOOK, "m", [1], [1.0], float("nan"))
    other = SparseAutoencoder(SAEConfig(d_in=384, d_sae=256, architecture="relu", hook_name=HOOK), seed=1)
    with pytest.raises(OtoscopeError, match="same SAE"):
        LatentSteer(sae, HOOK, "m", [1], [1.0], 1.0, LatentGate(HOOK, other, [1], 0.0))
