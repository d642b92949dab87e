"""Fast loading of a checkpoint folder, with exactly the weights ``from_pretrained`` would give.

``from_pretrained`` is general: it resolves files, builds a table of key renamings for every architecture
transformers knows (about a thousand regular expressions on first use in a process), initialises the
weights the checkpoint lacks and reports on every tensor. A folder whose ``model.safetensors`` names
every weight of the model exactly (the bundled conversions always do) needs none of that: build the
module on the meta device (no random initialisation), assign the memory-mapped tensors, re-tie the tied
weights. Anything else — renamed keys, missing or extra weights, a sharded checkpoint, a weight left on
the meta device — falls back to ``from_pretrained``. ``tests/models/test_fastload.py`` checks that every
parameter and buffer equals a plain ``from_pretrained`` load.

Whisper's tokenizer likewise is built straight from its ``tokenizer.json`` (what ``AutoTokenizer`` does
too, after parsing the file in Python a second time).
"""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS = "model.safetensors"
WHISPER_TOKENIZERS = ("WhisperTokenizer", "WhisperTokenizerFast")


def load_model(folder: str | Path, cls, config):
    """``cls`` with the weights of ``folder/model.safetensors`` assigned in place, or None when the file's
    keys are not exactly the model's (then ``from_pretrained`` knows better)."""
    import torch
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS
    if not path.is_file():
        return None
    state = load_file(str(path))  # memory-mapped: nothing is copied until a page is touched
    with torch.device("meta"):
        model = cls(config)
    expected = set(model.state_dict())
    tied = _tied_keys(model)
    if set(state) - expected or expected - set(state) - tied:
        return None
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        return None
    generation = Path(folder) / "generation_config.json"
    if generation.is_file() and model.can_generate():
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model.eval()


def _tied_keys(model) -> set[str]:
    """State-dict keys that alias another weight (e.g. Whisper's ``proj_out.weight``), which checkpoints omit."""
    first: dict[int, str] = {}
    tied = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = id(tensor)
        if key in first:
            tied.add(name)
        else:
            first[key] = name
    return tied


def whisper_tokenizer(folder: str | Path):
    """Whisper's tokenizer built from ``folder/tokenizer.json`` and its config, or None for any other tokenizer."""
    folder = Path(folder)
    config_path, file = folder / "tokenizer_config.json", folder / "tokenizer.json"
    if not (config_path.is_file() and file.is_file()):
        return None
    config = json.loads(config_path.read_text())
    if config.pop("tokenizer_class", None) not in WHISPER_TOKENIZERS or config.pop("backend", "tokenizers") != "tokenizers":
        return None
    if any(k in config for k in ("auto_map", "added_tokens_decoder", "chat_template")):
        return None  # settings the plain constructor would not apply as from_pretrained does
    from transformers import WhisperTokenizer

    return WhisperTokenizer(tokenizer_file=str(file), name_or_path=str(folder), **config)
