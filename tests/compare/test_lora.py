"""A PEFT LoRA adapter merged onto tiny.en: the deltas have the adapter's rank; wrong adapters fail in one line."""

from __future__ import annotations

import shutil

import pytest

from otoscope.compare import CompareConfig, compare_models
from otoscope.errors import OtoscopeError
from tests.compare.conftest import LORA_RANK, LORA_TARGETS, make_lora, set_base

pytest.importorskip("peft")


def test_effective_rank_equals_the_lora_rank(tiny_en, lora_dir):
    result = compare_models(tiny_en, lora_dir, config=CompareConfig(progress=False))
    assert result.kind == "adapter" and result.adapter["r"] == LORA_RANK
    assert sorted(result.changed_modules) == sorted(LORA_TARGETS)
    for m in result.weights.changed:
        assert m.rank == LORA_RANK, m.module
        assert 1 < m.erank <= LORA_RANK
        assert m.singular_values[LORA_RANK] < 1e-3 * m.singular_values[LORA_RANK - 1]  # the spectrum drops after r
    assert result.weights.changed_blocks == ["encoder.blocks.0", "decoder.blocks.1"]
    assert tiny_en.model.model.decoder.layers[1].self_attn.q_proj.__class__.__name__ == "Linear"  # A is untouched


def test_adapter_for_another_base_names_both_and_the_fix(tiny_en, lora_dir, tmp_path):
    other = tmp_path / "adapter"
    shutil.copytree(lora_dir, other)
    set_base(other, "openai/whisper-base")
    with pytest.raises(OtoscopeError) as err:
        compare_models(tiny_en, other, config=CompareConfig(progress=False))
    message = str(err.value)
    assert "\n" not in message
    assert "made for base model 'openai/whisper-base'" in message and "MODEL_A is 'whisper-tiny.en'" in message
    assert "pass its base as MODEL_A" in message


def test_adapter_that_does_not_fit_is_one_line(tiny_en, tiny_whisper, tmp_path):
    folder = make_lora(tiny_whisper, tmp_path / "small", rank=2, targets=["model.decoder.layers.1.fc1"])
    set_base(folder, None)  # says nothing about its base: the merge itself must catch the shapes
    with pytest.raises(OtoscopeError, match=r"does not fit MODEL_A 'whisper-tiny.en'") as err:
        compare_models(tiny_en, folder, config=CompareConfig(progress=False))
    assert "\n" not in str(err.value)


def test_adapter_without_safetensors_is_refused(tiny_en, lora_dir, tmp_path):
    folder = tmp_path / "bin"
    shutil.copytree(lora_dir, folder)
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    with pytest.raises(OtoscopeError, match="safetensors only"):
        compare_models(tiny_en, folder, config=CompareConfig(progress=False))
