"""Fixtures for the comparison tests: tiny.en fine-tuned on chosen modules only, and a LoRA adapter of known rank.

The fine-tune runs the encoder once (no gradient) and trains the decoder on its output, so a few Adam
steps on the real tiny.en take about a second.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parents[1] / "fixtures"
CLIP = FIXTURES / "audio" / "speech_door.flac"
TEXT = " Please open the door."
TUNED = ("model.decoder.layers.2.fc1", "model.decoder.layers.2.fc2")  # decoder block 2's MLP
LORA_RANK = 4
LORA_TARGETS = ["model.decoder.layers.1.self_attn.q_proj", "model.decoder.layers.1.self_attn.v_proj",
                "model.encoder.layers.0.fc1"]


def finetune(model, modules=TUNED, steps: int = 3, lr: float = 1e-3):
    """A copy of ``model`` whose ``modules`` (and nothing else) took ``steps`` Adam steps on the clip's transcript."""
    tuned = copy.deepcopy(model)
    hf = tuned.model
    for name, p in hf.named_parameters():
        p.requires_grad_(any(name.startswith(m + ".") for m in modules))
    inputs = tuned.prepare([str(CLIP)], TEXT)
    with torch.no_grad():
        encoded = hf.get_encoder()(inputs.features)  # [1, 1500, d_model], computed once
    ids = inputs.decoder_input_ids  # [1, tokens]
    optimizer = torch.optim.Adam([p for p in hf.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        logits = hf(encoder_outputs=encoded, decoder_input_ids=ids[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    for p in hf.parameters():
        p.requires_grad_(True)
    return tuned.eval()


@pytest.fixture(scope="session")
def finetuned_dir(tiny_en, tmp_path_factory) -> Path:
    """tiny.en with decoder block 2's MLP fine-tuned, saved as users save one (save_pretrained + processor)."""
    folder = tmp_path_factory.mktemp("finetuned")
    tuned = finetune(tiny_en)
    tuned.model.save_pretrained(folder)
    tuned.feature_extractor.save_pretrained(folder)
    tuned.tokenizer.save_pretrained(folder)
    return folder


def make_lora(model, folder: Path, rank: int = LORA_RANK, targets=LORA_TARGETS) -> Path:
    """Save a PEFT LoRA adapter of ``rank`` on ``targets`` of ``model`` (random A and B, so ΔW = s·B·A ≠ 0)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    peft_model = get_peft_model(copy.deepcopy(model.model),
                                LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), init_lora_weights=False))
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def lora_dir(tiny_en, tmp_path_factory) -> Path:
    """A rank-4 LoRA adapter for tiny.en on two decoder attention projections and one encoder MLP layer."""
    pytest.importorskip("peft")
    return make_lora(tiny_en, tmp_path_factory.mktemp("lora"))


def set_base(folder: Path, base: str | None) -> None:
    """Rewrite the adapter's ``base_model_name_or_path``."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base
    path.write_text(json.dumps(config))
