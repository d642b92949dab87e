import pytest

from otoscope.errors import ModelNotFoundError
from otoscope.models.registry import list_models, resolve


def test_resolution_order(tmp_path):
    assert resolve("whisper-tiny.en").source == "bundled"
    assert resolve("openai/whisper-base").source == "bundled"  # the HF id of a bundled checkpoint
    assert resolve("tiny-random-hubert").source == "random"
    assert resolve(str(tmp_path)).source == "local"


def test_unloadable_names_list_every_source_tried():
    with pytest.raises(ModelNotFoundError) as err:
        resolve("whisper-large-v3")
    message = str(err.value)
    for source in ("local folder", "Hugging Face cache 'openai/whisper-large-v3'", "bundled weights", "hub (offline)"):
        assert source in message
    with pytest.raises(ModelNotFoundError, match="not a known name"):
        resolve("no-such-model")


def test_loading_an_unknown_name_fails_clearly():
    import otoscope

    with pytest.raises(ModelNotFoundError, match="cannot load model 'whisper-huge'"):
        otoscope.load("whisper-huge")


def test_list_models_covers_bundled_known_and_tiny():
    rows = {r.name: r for r in list_models()}
    assert rows["whisper-tiny.en"].source == "bundled"
    assert rows["whisper-large-v3"].source == "unavailable"  # offline in tests
    assert rows["tiny-random-wavlm"].source == "random"


def test_local_folder_loads_safetensors_only(tmp_path):
    import otoscope

    model = otoscope.load("tiny-random-hubert")
    model.model.save_pretrained(tmp_path, safe_serialization=True)
    model.feature_extractor.save_pretrained(tmp_path)
    again = otoscope.load(str(tmp_path))
    assert again.source == "local" and again.n_layers == 2
    (tmp_path / "model.safetensors").rename(tmp_path / "elsewhere")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle we would ever open")
    with pytest.raises(ModelNotFoundError, match="safetensors only"):
        otoscope.load(str(tmp_path))
