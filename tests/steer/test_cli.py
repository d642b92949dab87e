"""``otoscope steer fit`` and ``otoscope transcribe --steer`` on the fixture clips with the real tiny.en."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from otoscope.cli.main import main
from otoscope.steer import Direction
from otoscope.stimuli import noise

HOOK = "encoder.blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def noise_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("noise") / "pink.wav"
    sf.write(path, noise.synth("pink", np.random.default_rng(0), 2.0, -25.0), 16000)
    return str(path)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, manifest, speech):
    out = tmp_path_factory.mktemp("steer") / "dir"
    dog = [r["path"] for r in manifest if r["kind"] == "nonspeech"]
    args = ["steer", "fit", "--positive", *dog, "--negative", speech[0]["path"], speech[1]["path"], "--out", str(out),
            "--hook", HOOK, "--alpha", "0.75"]
    assert main(args) == 0
    return out, dog, [speech[0]["path"], speech[1]["path"]]


def test_fit_is_the_difference_of_real_frame_means(tiny_en, fitted):
    out, pos, neg = fitted
    info = json.loads((out / "steer.json").read_text())
    assert info["hook"] == HOOK and info["alpha"] == 0.75 and info["model"] == "whisper-tiny.en"
    assert info["created_by"] == "otoscope steer fit"
    d = Direction.load(out, "whisper-tiny.en")

    def frames(paths):  # brute force: every real frame of every clip
        _, cache = tiny_en.run_with_cache(paths, names_filter=HOOK)
        return torch.cat([cache[HOOK][i, : cache.n_frames(i)] for i in range(len(paths))])
    p, n = frames(pos), frames(neg)
    want = p.mean(0) - n.mean(0)
    assert torch.allclose(d.vector, want / want.norm(), atol=1e-4)
    assert d.scale == pytest.approx(float(torch.cat([p, n]).norm(dim=-1).mean()), rel=1e-4)


def test_transcribe_with_steer(fitted, speech, capsys):
    out, _, _ = fitted
    path = speech[2]["path"]
    assert main(["transcribe", path]) == 0
    plain = capsys.readouterr().out
    assert main(["transcribe", path, "--steer", str(out), "--alpha", "0"]) == 0
    assert capsys.readouterr().out == plain  # α = 0: identity
    assert main(["transcribe", path, "--steer", str(out), "--alpha", "3"]) == 0
    assert capsys.readouterr().out != plain  # a strong push changes the transcript


@pytest.mark.parametrize("extra,message", [
    (["--alpha", "nan"], "--alpha: expected a finite number, got nan"),
    (["--model", "tiny-random-whisper"], "made for model 'whisper-tiny.en'"),
])
def test_transcribe_steer_errors(fitted, speech, capsys, extra, message):
    out, _, _ = fitted
    try:
        code = main(["transcribe", speech[0]["path"], "--steer", str(out), *extra])
    except SystemExit as exit_:  # a flag value refused while parsing
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("otoscope: error:") and message in err and "\n" not in err


def test_fit_chooses_the_layer_by_probe(tmp_path, manifest, speech, noise_file):
    dog = [r["path"] for r in manifest if r["kind"] == "nonspeech"]
    out = tmp_path / "auto"
    assert main(["steer", "fit", "--positive", *dog, noise_file, "--negative", speech[0]["path"], speech[1]["path"],
                 "--out", str(out)]) == 0
    info = json.loads((out / "steer.json").read_text())
    probe = info["meta"]["probe"]
    assert len(probe) == 4 and info["hook"] == max(probe, key=lambda r: r["accuracy"])["hook"]


def test_silence_chooses_and_saves_an_intervention_that_transcribe_applies(tmp_path, manifest, speech, noise_file,
                                                                            capsys):
    dog = [r["path"] for r in manifest if r["kind"] == "nonspeech"]
    out = tmp_path / "silence"
    assert main(["steer", "silence", "--speech", speech[0]["path"], speech[1]["path"], "--nonspeech", *dog, noise_file,
                 "--out", str(out), "--layers", "3", "--alphas", "1", "--no-latents"]) == 0
    assert "hallucination rate 1.00 → 0.00" in capsys.readouterr().out
    assert main(["transcribe", "--json", speech[0]["path"], noise_file, "--steer", str(out)]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert texts[0].endswith("Please open the door.") and texts[1] in ("", "...")
