"""Models whose layer counts differ: what matches is compared, what does not is listed; the CLI end to end."""

from __future__ import annotations

import json

import pytest
import torch

from otoscope.cli.main import main
from otoscope.compare import CompareConfig, compare_models
from tests.compare.conftest import CLIP, make_lora, set_base


@pytest.fixture(scope="module")
def deeper(tiny_whisper):
    """The tiny random Whisper with a third decoder block appended; the first two are A's, bit for bit."""
    from transformers import WhisperForConditionalGeneration

    from otoscope.models.hooked import HookedAudioModel

    config = tiny_whisper.config.to_dict()
    config["decoder_layers"] = 3
    torch.manual_seed(1)
    hf = WhisperForConditionalGeneration(type(tiny_whisper.config).from_dict(config))
    missing, unexpected = hf.load_state_dict(tiny_whisper.model.state_dict(), strict=False)
    assert not unexpected and all(".decoder.layers.2." in k for k in missing)
    return HookedAudioModel(hf.eval(), tiny_whisper.feature_extractor, tiny_whisper.tokenizer, name="deeper")


def test_layer_counts_differ(tiny_whisper, deeper):
    result = compare_models(tiny_whisper, deeper, [{"path": str(CLIP), "text": "door"}],
                            config=CompareConfig(progress=False, sae_steps=5, sae_expansion=2))
    skipped = {s["param"]: s["reason"] for s in result.weights.skipped}
    assert skipped and all(".decoder.layers.2." in p and r == "only in model B" for p, r in skipped.items())
    assert result.changed_modules == []  # everything both have is identical
    assert result.skipped_layers == [{"hook": "decoder.blocks.2.hook_resid_post", "reason": "only in model B"}]
    assert any("1 layer hook(s) exist in only one model and were skipped: decoder.blocks.2" in n for n in result.notes)
    hooks = [s.hook for s in result.layers]
    assert "decoder.blocks.2.hook_resid_post" not in hooks and "decoder.blocks.1.hook_resid_post" in hooks
    for s in result.layers:  # the shared blocks compute the same thing, before the extra block
        assert s.drift == 0.0 and s.cka == pytest.approx(1.0, abs=1e-9) and s.fvu_increase == 0.0
    decoder = next(m for m in result.cka if m.stack == "decoder")
    assert (len(decoder.rows), len(decoder.cols)) == (3, 4)  # embed + 2 blocks in A, embed + 3 in B


def test_cli_compares_a_lora_adapter_and_writes_the_report(tiny_whisper, tmp_path, capsys):
    pytest.importorskip("peft")
    adapter = make_lora(tiny_whisper, tmp_path / "adapter", rank=2, targets=["model.encoder.layers.1.fc2"])
    set_base(adapter, "tiny-random-whisper")
    out = tmp_path / "cmp"
    code = main(["compare", "tiny-random-whisper", str(adapter), "--data", str(CLIP), "--out", str(out),
                 "--no-sae", "--positions-per-clip", "32"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "model.encoder.layers.1.fc2: ‖ΔW‖/‖W‖" in printed and "rank 2" in printed
    data = json.loads((out / "compare.json").read_text())
    assert data["kind"] == "adapter" and data["summary"]["ranks"] == {"model.encoder.layers.1.fc2": 2}
    assert data["summary"]["first_moved_layer"]["encoder"] == "encoder.blocks.1.hook_resid_post"
    assert data["texts"][0]  # no transcript given: model A's greedy one was teacher-forced


def test_cli_adapter_for_another_base_is_one_line(tiny_whisper, tmp_path, capsys):
    pytest.importorskip("peft")
    adapter = make_lora(tiny_whisper, tmp_path / "adapter", rank=2, targets=["model.encoder.layers.1.fc2"])
    set_base(adapter, "openai/whisper-base")
    code = main(["compare", "tiny-random-whisper", str(adapter), "--data", str(CLIP), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "made for base model 'openai/whisper-base'" in err and "--no-base-check" in err
    assert not (tmp_path / "o").exists()


def test_given_saes_are_used_and_missing_ones_named(tiny_whisper, tmp_path):
    from otoscope.sae import SAEConfig, SparseAutoencoder, save_sae

    hook = "encoder.blocks.1.hook_resid_post"
    save_sae(SparseAutoencoder(SAEConfig(d_in=32, expansion=2, k=4, hook_name=hook), seed=0), tmp_path / "saes" / hook)
    config = CompareConfig(hooks=[hook, "decoder.blocks.1.hook_resid_post"], sae_dir=str(tmp_path / "saes"),
                           progress=False, positions_per_clip=32)
    result = compare_models(tiny_whisper, tiny_whisper, [{"path": str(CLIP), "text": "door"}], config=config)
    by_hook = {s.hook: s for s in result.layers}
    assert by_hook[hook].fvu_a is not None and by_hook[hook].fvu_increase == 0.0
    assert by_hook["decoder.blocks.1.hook_resid_post"].fvu_a is None
    assert any("no SAE in" in n and "decoder.blocks.1.hook_resid_post" in n for n in result.notes)


def test_cli_missing_data_fails_before_any_model_loads(tmp_path, capsys, monkeypatch):
    import otoscope.models.loader as loader

    monkeypatch.setattr(loader, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    code = main(["compare", "whisper-tiny.en", "whisper-tiny.en", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert code == 2 and "corpus not found" in capsys.readouterr().err
