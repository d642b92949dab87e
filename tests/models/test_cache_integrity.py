"""A damaged converted model in the cache is noticed and converted again; damaged SAE and lens files are named."""

import os
import shutil

import pytest
import torch

from otoscope._integrity import check_folder, check_safetensors, sha256_file
from otoscope.errors import OtoscopeError
from otoscope.models import bundled

TINY = bundled.BUNDLED["whisper-tiny.en"]


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A private cache holding a copy of the converted whisper-tiny.en (the real cache is never touched)."""
    source = bundled.ensure_converted(TINY)
    monkeypatch.setenv("OTOSCOPE_CACHE", str(tmp_path / "cache"))
    target = bundled._cached_dir(TINY)
    shutil.copytree(source, target)
    assert check_folder(target) == []
    return target


def _flip(path, offset, keep_mtime=False):
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_truncated_weights_are_converted_again_on_load(cached, capsys):
    import otoscope

    weights = cached / "model.safetensors"
    good = sha256_file(weights)
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    model = otoscope.load("whisper-tiny.en")
    assert "whisper-tiny.en is damaged" in capsys.readouterr().err
    assert sha256_file(weights) == good and check_folder(cached) == []
    assert model.to_tokens(" hello") == [23748]
    assert torch.isfinite(model.model.model.encoder.layer_norm.weight).all()


def test_changed_bytes_are_noticed_by_size_and_time_or_by_hash(cached):
    weights = cached / "model.safetensors"
    good = sha256_file(weights)
    _flip(weights, weights.stat().st_size - 100)  # a write: new modification time, same size → hashed
    assert any("SHA-256 differs" in p for p in check_folder(cached))
    _flip(weights, weights.stat().st_size - 100)  # written back: whole again, and the manifest learns the new time
    assert check_folder(cached) == []
    _flip(weights, 5000, keep_mtime=True)  # changed without a write (a failing disk): only a deep check sees it
    assert check_folder(cached) == []
    assert bundled.ensure_converted(TINY, deep=True) == cached
    assert sha256_file(weights) == good


def test_a_file_that_fails_to_load_is_hashed_and_converted_again(cached, capsys):
    import otoscope

    config = cached / "config.json"
    _flip(config, 0, keep_mtime=True)  # '{' → garbage: loading fails, the stat check cannot tell
    model = otoscope.load("whisper-tiny.en")
    assert "config.json has changed" in capsys.readouterr().err
    assert model.n_layers == 4 and check_folder(cached, deep=True) == []


def test_when_converting_again_fails_one_line_names_the_folder(cached, monkeypatch):
    import otoscope

    (cached / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(bundled, "source_files", lambda model: None)  # the packages were uninstalled
    with pytest.raises(OtoscopeError, match=f"converting it again failed .*delete {cached} and run again") as err:
        otoscope.load("whisper-tiny.en")
    assert "\n" not in str(err.value)


def test_safetensors_check(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(100), "b": torch.zeros(3, 4)}, str(path))
    assert check_safetensors(path) is None
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    assert "truncated" in check_safetensors(path)
    path.write_bytes(data + b"x")
    assert "damaged" in check_safetensors(path)
    path.write_bytes(data[:8] + b"#" + data[9:])
    assert "unreadable header" in check_safetensors(path)
    path.write_bytes(b"abc")
    assert "too short" in check_safetensors(path)


def test_damaged_sae_and_tuned_lens_raise_one_line_naming_the_file(tmp_path):
    from otoscope.lens.tuned import TunedLens
    from otoscope.sae.config import SAEConfig
    from otoscope.sae.format import load_sae, save_sae
    from otoscope.sae.model import SparseAutoencoder

    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=32, k=4, hook_name="encoder.blocks.0.hook_resid_post"), seed=0)
    folder = save_sae(sae, tmp_path / "sae")
    weights = folder / "sae_weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(OtoscopeError, match=f"{weights} is damaged or truncated") as err:
        load_sae(folder)
    assert "\n" not in str(err.value)

    lens_file = TunedLens(2, 8).save(tmp_path / "lens.safetensors")
    data = lens_file.read_bytes()
    lens_file.write_bytes(data[:-10])
    with pytest.raises(OtoscopeError, match=f"tuned lens {lens_file} is damaged or truncated"):
        TunedLens.load(lens_file)
    lens_file.write_bytes(data[:8] + b"[" + data[9:])
    with pytest.raises(OtoscopeError, match=str(lens_file)):
        TunedLens.load(lens_file)


def test_a_manifest_without_file_records_counts_as_damaged(tmp_path):
    """A manifest whose "files" is empty, a list or holds non-records is reported, not a crash (or a pass)."""
    import json

    from otoscope._integrity import MANIFEST, check_folder

    for files in ({}, [], {"model.safetensors": 3}):
        (tmp_path / MANIFEST).write_text(json.dumps({"files": files}))
        assert check_folder(tmp_path) == [f"{tmp_path / MANIFEST} is missing or unreadable (no file records)"]
