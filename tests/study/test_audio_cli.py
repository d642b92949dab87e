"""The audio path end to end: ``otoscope study groups`` on the tiny random Whisper, and the page in Chromium."""

import json
import subprocess

import numpy as np
import pytest

from otoscope.cli.main import main
from otoscope.report.screenshot import find_chromium

FAST = ["--permutations", "20", "--sae-steps", "10", "--sae-expansion", "2", "--folds", "2", "--top-latents", "1",
        "--quiet"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two labels of short clips that differ clearly: low tones and high tones (with a little noise)."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    rows = []
    for label, freq in (("low <tone>", 220.0), ("high & bright", 2500.0)):
        for i in range(3):
            samples = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * i) * t) + 0.01 * rng.standard_normal(len(t))
            name = f"{freq:.0f}_{i}.wav"
            sf.write(str(folder / name), samples.astype(np.float32), 16000)
            rows.append({"path": name, "pitch": label})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder / "manifest.jsonl"


@pytest.fixture(scope="module")
def study(clips, tmp_path_factory):
    """One study of the clips through the command line: ``(folder, printed output)``."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("study") / "study"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["study", "groups", "--model", "tiny-random-whisper", "--data", str(clips), "--label-key", "pitch",
                     "--out", str(out), *FAST]) == 0
    return out, printed.getvalue()


def test_study_groups_on_audio_writes_a_report_that_tells_the_tones_apart(tmp_path, clips, study, capsys):
    out, printed = study
    assert "encoder.blocks.1.hook_resid_post: within" in printed
    data = json.loads((out / "study.json").read_text())
    assert data["hooks"] == ["encoder.hook_embed", "encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_resid_post"]
    assert data["family"] == "whisper" and data["data"]["counts"] == {"high & bright": 3, "low <tone>": 3}
    embed = data["summary"][0]
    assert embed["within"] - embed["between"] > 0.5 and embed["probe_accuracy"] > embed["chance"]  # pure tones: far apart
    assert data["sae"]["hook"] == "encoder.blocks.1.hook_resid_post"
    page = (out / "index.html").read_text()
    assert "low &lt;tone&gt;" in page and "high &amp; bright" in page and "<tone>" not in page
    # a rerun replaces the folder as a whole; a folder of other files is refused
    import shutil

    out = shutil.copytree(out, tmp_path / "again")
    assert (out / "sae").is_dir()
    assert main(["study", "groups", "--model", "tiny-random-whisper", "--data", str(clips), "--label-key", "pitch",
                 "--out", str(out), "--no-sae", *FAST]) == 0
    assert not (out / "sae").exists() and "sae" not in json.loads((out / "study.json").read_text())
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["study", "groups", "--model", "tiny-random-whisper", "--data", str(clips), "--label-key", "pitch",
                 "--out", str(other), *FAST]) == 2
    assert "already holds other files" in capsys.readouterr().err and (other / "notes.txt").read_text() == "keep me"


def test_prompts_to_an_audio_model_and_an_sae_hook_outside_the_study_are_refused(tmp_path, clips, capsys):
    from otoscope.study import emotion_prompts_path

    base = ["study", "groups", "--model", "tiny-random-whisper", "--out", str(tmp_path / "s"), "--quiet"]
    assert main([*base, "--data", str(emotion_prompts_path())]) == 2
    assert "has no audio path" in capsys.readouterr().err
    assert main([*base, "--data", str(clips), "--label-key", "pitch", "--sae-hook", "encoder.blocks.0.hook_mlp_out"]) == 2
    assert "--sae-hook 'encoder.blocks.0.hook_mlp_out' is not among the studied hooks" in capsys.readouterr().err
    assert main([*base, "--data", str(clips), "--label-key", "pitch", "--hooks", "encoder.blocks.*.attn.hook_q"]) == 2
    assert "matches no hook a study can read" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine")
def test_the_report_renders_in_chromium(tmp_path, study):
    out = study[0]
    from otoscope.report.screenshot import FLAGS

    profile = tmp_path / "profile"
    run = subprocess.run([find_chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", (out / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert "Similarity and probes per hook" in dom and "Ablating each latent" in dom
    assert dom.count("data:image/png;base64,") == 4  # summary, matrix, projection, selectivity: all embedded
    from otoscope.report.screenshot import screenshot

    png = screenshot(out / "index.html", tmp_path / "shot.png", height=1600)
    assert png.stat().st_size > 20_000  # a page with plots, not a blank one
