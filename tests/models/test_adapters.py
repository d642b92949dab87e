"""Architecture adapters: selection, readouts equal to the HF modules, hook tables as before the move."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from otoscope.models.adapters import ADAPTERS, CTCAdapter, WhisperAdapter, adapter_for

SRC = Path(__file__).resolve().parents[2] / "src" / "otoscope"
TABLES = Path(__file__).resolve().parents[1] / "fixtures" / "hook_tables.json"
EXPECTED = {"tiny-random-whisper": WhisperAdapter, "tiny-random-wav2vec2": CTCAdapter,
            "tiny-random-wav2vec2-stable": CTCAdapter, "tiny-random-hubert": CTCAdapter, "tiny-random-wavlm": CTCAdapter}


def test_every_tiny_family_gets_its_adapter(tiny_model):
    expected = EXPECTED[tiny_model.name]
    assert type(tiny_model.adapter) is expected
    assert tiny_model.family == expected.family
    assert tiny_model.adapter.name == tiny_model.name
    assert sum(cls.matches(tiny_model.model) for cls in ADAPTERS) == 1  # no two adapters claim a model


def test_unknown_class_names_it_and_the_supported_families():
    class MyModel(nn.Module):
        pass

    with pytest.raises(NotImplementedError) as err:
        adapter_for(MyModel())
    message = str(err.value)
    assert "MyModel" in message and "\n" not in message
    for cls in ADAPTERS:
        assert (cls.supports or cls.family) in message


def test_conformer_is_not_taken_for_wav2vec2():
    class Wav2Vec2ConformerForCTC(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="Wav2Vec2ConformerForCTC"):
        adapter_for(Wav2Vec2ConformerForCTC())


def _row(model, point):
    paths = {id(m): n for n, m in model.model.named_modules()}
    return [point.name, point.shape, point.site.value, paths[id(point.module)], point.heads, point.channels_first,
            None if point.residual_module is None else paths[id(point.residual_module)]]


def test_hook_tables_unchanged(tiny_model):
    """Names, shapes, sites and HF modules equal the table the hooks module built before the adapters."""
    expected = json.loads(TABLES.read_text())[tiny_model.name]
    assert [_row(tiny_model, p) for p in tiny_model.points.values()] == expected


def test_whisper_readouts_are_the_hf_modules(tiny_whisper):
    adapter, hf = tiny_whisper.adapter, tiny_whisper.model
    assert adapter.final_norm("encoder") is hf.model.encoder.layer_norm
    assert adapter.final_norm("decoder") is hf.model.decoder.layer_norm
    assert adapter.unembedding("encoder") is hf.model.decoder.embed_tokens.weight
    assert adapter.unembedding("decoder") is hf.proj_out.weight
    assert adapter.final_norm("llm") is None and adapter.unembedding("llm") is None
    resid = torch.randn(2, 5, hf.config.d_model)
    with torch.no_grad():
        torch.testing.assert_close(adapter.readout("decoder")(resid), hf.proj_out(hf.model.decoder.layer_norm(resid)))
        torch.testing.assert_close(adapter.readout("encoder")(resid),
                                   hf.model.encoder.layer_norm(resid) @ hf.model.decoder.embed_tokens.weight.T)


def test_whisper_decoder_readout_gives_the_models_logits(tiny_whisper):
    inputs = tiny_whisper.prepare([np.zeros(8000, np.float32)], text=" ab")
    logits, cache = tiny_whisper.run_with_cache(inputs, names_filter=f"decoder.blocks.{tiny_whisper.n_decoder_layers - 1}.hook_resid_post")
    with torch.no_grad():
        read = tiny_whisper.adapter.readout("decoder")(cache[f"decoder.blocks.{tiny_whisper.n_decoder_layers - 1}.hook_resid_post"])
    torch.testing.assert_close(read, logits)


@pytest.mark.parametrize("name", ["tiny-random-wav2vec2", "tiny-random-wav2vec2-stable"])
def test_ctc_readouts_are_the_hf_modules(name):
    import otoscope

    model = otoscope.load(name)
    adapter, hf = model.adapter, model.model
    stable = name.endswith("stable")
    assert adapter.final_norm("encoder") is (hf.wav2vec2.encoder.layer_norm if stable else None)
    assert adapter.unembedding("encoder") is hf.lm_head.weight
    assert adapter.unembedding("decoder") is None and adapter.readout("decoder") is None
    assert adapter.has_ctc_head and not adapter.has_decoder
    logits, cache = model.run_with_cache([np.zeros(8000, np.float32)],
                                         names_filter=f"encoder.blocks.{model.n_layers - 1}.hook_resid_post")
    with torch.no_grad():
        read = adapter.readout("encoder")(cache[f"encoder.blocks.{model.n_layers - 1}.hook_resid_post"])
    torch.testing.assert_close(read, logits)


def test_capabilities(tiny_whisper, tiny_model):
    w = tiny_whisper.adapter
    assert w.sides == ("encoder", "decoder") and w.has_decoder and w.can_transcribe and w.decoding == "seq2seq"
    assert w.lens_kinds == {"encoder", "decoder", "tuned"} and w.input_kind == "mel"
    assert w.max_text_tokens == tiny_whisper.config.max_target_positions - len(tiny_whisper.task_prefix())
    if isinstance(tiny_model.adapter, CTCAdapter):
        a = tiny_model.adapter
        assert a.sides == ("encoder",) and not a.has_decoder and a.task_prefix() == [] and a.max_text_tokens is None
        assert a.has_ctc_head  # every tiny wav2vec2-family model is a *ForCTC
        assert a.can_transcribe == (tiny_model.tokenizer is not None)
        assert a.lens_kinds == ({"ctc"} if a.can_transcribe else set())


def test_whisper_prefix_and_rows_built_by_the_adapter(tiny_whisper):
    m = tiny_whisper
    prefix = m.task_prefix()
    assert prefix[0] == m.token_id("<|startoftranscript|>") and prefix[-1] == m.token_id("<|notimestamps|>")
    inputs = m.prepare([np.zeros(8000, np.float32)] * 2, text=[" a", " abc"], prompt="x")
    head = [m.token_id("<|startofprev|>")] + m.to_tokens("x") + prefix
    assert inputs.prefix_len == [len(head)] * 2
    assert inputs.decoder_input_ids[1].tolist() == head + m.to_tokens(" abc")
    assert inputs.decoder_input_ids[0].tolist()[-1] == m.eot  # the shorter row is padded with end-of-text


def test_encode_fires_the_encoder_hooks_only(tiny_whisper):
    inputs = tiny_whisper.prepare([np.zeros(8000, np.float32)])
    fired = []
    with torch.no_grad(), tiny_whisper.hooks([("*hook_resid_post", lambda t, hook: fired.append(hook.name))]):
        out = tiny_whisper.adapter.encode(inputs)
    assert fired == [f"encoder.blocks.{i}.hook_resid_post" for i in range(tiny_whisper.n_layers)]
    assert out.shape == (1, 1500, tiny_whisper.config.d_model)


def test_is_whisper_is_a_deprecated_alias(tiny_whisper):
    with pytest.warns(DeprecationWarning, match="adapter"):
        assert tiny_whisper.is_whisper


def test_no_family_branching_or_hand_written_hf_paths_in_src():
    """``is_whisper`` lives only in its deprecated alias; HF module paths are the adapters' business."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        rel = path.relative_to(SRC).as_posix()
        for i, line in enumerate(text.splitlines(), 1):
            alias = rel == "models/hooked.py" and re.search(r"def is_whisper\(self\)|model\.is_whisper is deprecated", line)
            if "is_whisper" in line and not alias:
                offenders.append(f"{rel}:{i}: {line.strip()}")
            if "model.model.model." in line:
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
