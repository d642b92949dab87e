"""The text path: prompts through a tiny random T5 encoder (built in code, nothing downloaded), library and CLI."""

import json

import pytest
import torch

from otoscope.cli.main import main
from otoscope.models.tokenizer import byte_tokenizer
from otoscope.study import StudyConfig, TextSubject, compute_study, emotion_prompts_path, read_labelled_prompts
from otoscope.study.inputs import LabelledData

FAST = dict(n_permutations=20, sae_steps=10, sae_batch_size=64, sae_expansion=2, n_folds=2, max_positions=4, top_latents=1)


@pytest.fixture(scope="module")
def t5():
    from transformers import T5Config, T5EncoderModel

    tokenizer = byte_tokenizer()
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=2,
                      pad_token_id=tokenizer.pad_token_id, initializer_factor=5.0)
    model = T5EncoderModel(config).eval()
    torch.random.set_rng_state(state)
    return model, tokenizer


@pytest.fixture(scope="module")
def prompts():
    data = read_labelled_prompts(emotion_prompts_path())
    keep = [i for i in range(len(data.items)) if i < 16]  # the file interleaves labels: 4 of each
    return LabelledData("prompts", [data.items[i] for i in keep], [data.names[i] for i in keep],
                        [data.labels[i] for i in keep], "emotion prompts[:16]")


def test_text_study_reads_every_text_encoder_hook_and_matches_the_encoder(t5, prompts):
    model, tokenizer = t5
    subject = TextSubject(model, tokenizer, "tiny-t5")
    assert subject.family == "text-encoder" and subject.kind == "text"
    assert subject.hook_names() == ["text_encoder.hook_embed", "text_encoder.blocks.0.hook_resid_post",
                                    "text_encoder.blocks.1.hook_resid_post", "text_encoder.hook_ln_final"]
    items = subject.collect(prompts, subject.resolve_hooks(None), batch_size=5)
    with torch.no_grad():
        out = model(**tokenizer([prompts.items[7]], return_tensors="pt"), output_hidden_states=True)
    assert torch.allclose(items[7].acts[3], out.last_hidden_state[0], atol=1e-5)
    assert torch.allclose(items[7].acts[0], out.hidden_states[0][0], atol=1e-5)
    result = compute_study(subject, prompts, StudyConfig(**FAST))
    data = result.data
    assert [r["hook"] for r in data["summary"]] == subject.hook_names()
    control = result.summary["same_input"]
    assert ((control > 0.99) & (control < 1 - 1e-7)).all()  # noise at 40 dB moves the representation a little
    assert data["sae"]["hook"] == "text_encoder.hook_ln_final" and data["sae"]["d_sae"] == 32
    assert {c["label"] for c in data["selectivity"]["counts"]} == {"happy", "sad", "calm", "energetic"}
    assert len(data["ablation"]) == len(data["selectivity"]["top"]) <= 4
    json.dumps(data, allow_nan=False)  # strict JSON


def _save(t5, folder):
    model, tokenizer = t5
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_cli_study_groups_on_a_t5_folder_end_to_end(tmp_path, t5, capsys):
    folder = _save(t5, tmp_path / "t5")
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"text": t, "mood": f"<b>{lab}</b>"} for t, lab in
            zip(read_labelled_prompts(emotion_prompts_path()).items[:12], ["calm", "sad", "happy"] * 4)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "study"
    argv = ["study", "groups", "--model", str(folder), "--data", str(prompts), "--label-key", "mood", "--out", str(out),
            "--hooks", "text_encoder.blocks.*", "--permutations", "20", "--sae-steps", "10", "--sae-expansion", "2",
            "--folds", "2", "--top-latents", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "text_encoder.blocks.1.hook_resid_post: within" in printed and "report:" in printed
    data = json.loads((out / "study.json").read_text())
    assert data["hooks"] == ["text_encoder.blocks.0.hook_resid_post", "text_encoder.blocks.1.hook_resid_post"]
    page = (out / "index.html").read_text()
    assert "&lt;b&gt;calm&lt;/b&gt;" in page and "<b>calm</b>" not in page  # labels are escaped
    assert page.count("data:image/png;base64,") >= 4 and 'src="plots/' not in page  # self-contained
    assert (out / "sae" / "cfg.json").is_file() and (out / "plots" / "projection.png").is_file()


def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, t5, capsys):
    folder = _save(t5, tmp_path / "t5")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"text": f"song {i}", "label": lab}) + "\n"
                               for i, lab in enumerate(["happy", "happy", "sad"])), encoding="utf-8")
    out = tmp_path / "study"
    base = ["study", "groups", "--model", str(folder), "--out", str(out), "--quiet"]
    capsys.readouterr()
    cases = [(["--data", str(prompts)], "label 'sad' has only 1 example"),
             (["--data", str(prompts), "--label-key", "mood"], "prompt 1 ('song 0') has no 'mood' label; choose --label-key from: label."),
             (["--data", str(emotion_prompts_path()), "--hooks", "decoder.*"], "--hooks 'decoder.*' matches no hook")]
    for extra, message in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.startswith("otoscope: error:") and "\n" not in err
        assert not out.exists() and not any(p.name.startswith(".study") for p in tmp_path.iterdir())
