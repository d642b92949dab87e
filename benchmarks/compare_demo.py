"""The ``otoscope compare`` demo: tiny.en against a few-step fine-tune and against a LoRA adapter.

Makes both model-B folders from the packaged clips (no network, no espeak-ng), runs the comparison the
way ``otoscope compare`` does, and prints ONE JSON object (last line) with the figures docs/compare.md quotes:
which modules changed, their effective ranks, where the activations first move, CKA / drift / FVU increase
at the changed layer, and the wall time of each comparison.

    .venv/bin/python benchmarks/compare_demo.py [OUT]      # default OUT: out/compare-demo
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

import otoscope
from otoscope.compare import CompareConfig, compare_models
from otoscope.data import manifest

TUNED = ("model.decoder.layers.2.fc1", "model.decoder.layers.2.fc2")  # the full fine-tune trains decoder block 2's MLP
LORA_RANK = 8
LORA_TARGETS = r".*decoder\.layers\.\d+\.self_attn\.(q_proj|v_proj)"  # every decoder self-attention's q and v
STEPS = 5


def _train(model, hf, params, lr: float) -> None:
    """``STEPS`` Adam steps of ``params`` on the packaged speech clips' transcripts (encoder run once, no grad)."""
    rows = [r for r in manifest() if r["text"]]
    inputs = model.prepare([r["path"] for r in rows], [" " + r["text"] for r in rows])
    with torch.no_grad():
        encoded = hf.get_encoder()(inputs.features)
    ids, mask = inputs.decoder_input_ids, inputs.token_mask
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(STEPS):
        logits = hf(encoder_outputs=encoded, decoder_input_ids=ids[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits[mask[:, 1:]], ids[:, 1:][mask[:, 1:]])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def make_finetune(model, folder: Path) -> Path:
    """tiny.en with decoder block 2's MLP trained for a few steps, saved with its processor."""
    tuned = copy.deepcopy(model)
    params = [p for n, p in tuned.model.named_parameters() if n.rsplit(".", 1)[0] in TUNED]
    for p in tuned.model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    _train(tuned, tuned.model, params, lr=1e-4)
    tuned.model.save_pretrained(folder)
    tuned.feature_extractor.save_pretrained(folder)
    tuned.tokenizer.save_pretrained(folder)
    return folder


def make_lora(model, folder: Path) -> Path:
    """A rank-8 LoRA on the decoder's q/v projections, trained for a few steps (peft's default init: B = 0)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    peft_model = get_peft_model(copy.deepcopy(model.model), LoraConfig(r=LORA_RANK, lora_alpha=16, target_modules=LORA_TARGETS))
    _train(model, peft_model, [p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    peft_model.save_pretrained(folder)
    return folder


def figures(result, seconds: float) -> dict:
    changed = result.weights.changed
    first = result.first_moved_layer
    at = {s.hook: s for s in result.layers}
    moved = [at[h] for h in first.values() if h]
    return {"model_b": result.model_b, "seconds": round(seconds, 1), "changed_modules": len(changed),
            "compared_modules": len(result.weights.modules), "changed_blocks": result.weights.changed_blocks,
            "ranks": sorted({m.rank for m in changed}), "erank_range": [round(min(m.erank for m in changed), 2),
                                                                       round(max(m.erank for m in changed), 2)],
            "max_relative_delta": float(f"{max(m.relative for m in changed):.3g}"), "first_moved_layer": first,
            "at_first_moved": [{"hook": s.hook, "cka": round(s.cka, 5), "drift": round(s.drift, 5),
                                "fvu_increase": None if s.fvu_increase is None else round(s.fvu_increase, 5)} for s in moved],
            "last_layer": {k: round(v, 5) for k, v in vars(result.layers[-1]).items() if k in ("cka", "drift", "fvu_increase")
                           and v is not None} | {"hook": result.layers[-1].hook}}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/compare-demo")
    out.mkdir(parents=True, exist_ok=True)
    model = otoscope.load("whisper-tiny.en")
    finetuned = make_finetune(model, out / "finetuned")
    adapter = make_lora(model, out / "lora")
    data = str(Path(otoscope.data.__file__).parent / "manifest.jsonl")
    config = CompareConfig(progress=False, sae_steps=50)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg()[0]}
    for name, b in (("finetune", finetuned), ("lora", adapter)):
        start = time.perf_counter()
        result = compare_models(model, b, data, out / f"compare-{name}", config)
        report[name] = figures(result, time.perf_counter() - start)
    report["load_after"] = os.getloadavg()[0]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
