"""The study end to end on a handful of fixture clips (tiny grid), and `steer silence`'s choice."""

import json

import numpy as np
import pytest

from otoscope.audio.io import Clip, read_file
from otoscope.steer import Direction
from otoscope.steer.sae_fit import SteerSAEConfig
from otoscope.steer.saved import load_steering
from otoscope.steer.study import StudyConfig, run_study
from otoscope.stimuli import noise
from otoscope.stimuli.sets import Stimulus, StimulusSet


@pytest.fixture(scope="module")
def stimuli(manifest, speech):
    def spoken(row):
        return Stimulus(read_file(row["path"], 16000), "speech", row["text"], "fixture")

    def noisy(kind, seed, name=None):
        x = noise.synth(kind, np.random.default_rng(seed), 2.0, -30.0)
        return Stimulus(Clip(x, 16000, name or f"noise/{kind}"), "nonspeech", None, f"noise:{kind}")
    dog = read_file([r for r in manifest if r["kind"] == "nonspeech"][0]["path"], 16000)
    fit = [spoken(speech[0]), spoken(speech[1]), Stimulus(dog, "nonspeech", None, "animal:dog"), noisy("white", 0)]
    held = [spoken(speech[2]), spoken(speech[3]), noisy("pink", 1, "<b>pink</b>"),
            Stimulus(Clip(dog.samples * 0.2, 16000, "dog/0.2"), "nonspeech", None, "animal:dog")]
    return StimulusSet(fit, held)


def test_study_smoke(tmp_path, tiny_en, stimuli):
    config = StudyConfig(alphas=(1.0,), decoder_layers=(3,), naive_layers=(3,), naive_alphas=(1.0,), naive_clips=1,
                         check_clips=1, latent_layers=(2,), latent_alphas=(4.0,), latent_clips=(1, 1),
                         sae_config=SteerSAEConfig(d_sae=128, k=8, total_samples=2048, batch_size=256))
    result = run_study(tmp_path, config, stimuli=stimuli, model=tiny_en, progress=False)
    data = json.loads((tmp_path / "study.json").read_text())
    s = result.summary
    assert {"hallucination_rate_baseline", "hallucination_rate_gate", "hallucination_rate_steered", "reduction",
            "wer_clean", "wer_steered", "wer_increase", "reduction_ci", "wer_increase_ci", "methods"} <= set(s)
    assert s["heldout_speech"] == 2 and s["heldout_nonspeech"] == 2
    lo, hi = s["hallucination_rate_steered_ci"]
    assert 0 <= lo <= s["hallucination_rate_steered"] <= hi <= 1 and hi - lo > 0.3  # 2 clips: a wide interval
    # the latent half: one SAE (layer 2) trained on the fit half, its top latents, the clamp sweep on 1 + 1 clips
    assert data["saes"]["d_sae"] == {"2": 128} and data["saes"]["source"] == "trained"
    assert [r["layer"] for r in data["latent_layers"]] == [2]
    top = data["latent_layers"][0]["top_latents"]
    assert top and all(t["selectivity"] > 1 and t["frequency_nonspeech"] >= 0.05 for t in top)
    assert {r["method"] for r in data["latent_sweep"]} == {"encoder_latents", "latent_gated_encoder_latents"}
    assert all(r["n_speech"] == 1 and r["n_nonspeech"] == 1 for r in data["latent_sweep"])
    methods = {c["method"] for c in data["candidates_fit"]}
    assert {"decoder_token", "gated_decoder_token", "latent_gated_decoder_token", "encoder_latents"} <= methods
    assert s["hallucination_rate_baseline"] == 1.0  # tiny.en says something for both held-out non-speech clips
    assert s["hallucination_rate_steered"] == 0.0  # the ellipsis way out ends both
    assert s["wer_increase"] == pytest.approx(0.0, abs=1e-9)
    assert s["wer_clean"] == 0.0  # the fixture sentences are transcribed exactly
    assert len(data["encoder_layers"]) == 4 and len(data["decoder_sweep"]) == 3 and len(data["naive_encoder"]) == 1
    assert data["chosen"]["end_to_end_agreement"] == 1.0
    d = load_steering(tmp_path / "silence", "whisper-tiny.en")
    assert isinstance(d, Direction) and d.positions == "first" and d.hook.startswith("decoder.blocks.3")
    page = (tmp_path / "study.html").read_text()
    assert "&lt;b&gt;pink&lt;/b&gt;" in page and "<b>pink</b>" not in page
    assert (tmp_path / "hallucination_vs_alpha.png").stat().st_size > 1000
    assert (tmp_path / "wer_vs_alpha.png").stat().st_size > 1000
    assert (tmp_path / "latents_hallucination_vs_alpha.png").stat().st_size > 1000
