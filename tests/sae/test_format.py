"""SAELens v6 folders (written and read, checked against sae_lens itself) and sparsify folders (read)."""

import json

import pytest
import torch
from safetensors.torch import save_file

from otoscope.errors import OtoscopeError
from otoscope.sae.config import SAEConfig
from otoscope.sae.format import load_frequency, load_sae, load_saes, save_sae
from otoscope.sae.model import SparseAutoencoder

ARCHS = ["topk", "batchtopk", "relu", "jumprelu"]


def _random_sae(arch, d_in=16, d_sae=64, k=4):
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, k=k, model_name="whisper-tiny.en",
                                      hook_name="encoder.blocks.2.hook_resid_post"), seed=1)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
        sae.b_dec.normal_()
        if sae.thresholds() is not None:
            sae.threshold.uniform_(0.1, 0.6)
    return sae


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # transformer_lens, imported by sae_lens
def test_saved_folder_is_a_saelens_v6_sae_with_the_same_encode_and_decode(tmp_path):
    from sae_lens import SAE

    x = 2 * torch.randn(50, 16)
    for arch in ARCHS:
        ours = _random_sae(arch)
        folder = save_sae(ours, tmp_path / arch, frequency=torch.rand(64))
        cfg = json.loads((folder / "cfg.json").read_text())
        assert cfg["metadata"]["hook_name"] == "encoder.blocks.2.hook_resid_post"
        assert cfg["metadata"]["model_name"] == "whisper-tiny.en"
        assert sorted(p.name for p in folder.iterdir()) == ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors"]
        theirs = SAE.load_from_disk(folder)
        assert type(theirs).__name__ == {"topk": "TopKSAE", "batchtopk": "JumpReLUSAE", "relu": "StandardSAE",
                                          "jumprelu": "JumpReLUSAE"}[arch]
        assert tuple(theirs.W_enc.shape) == (16, 64) and tuple(theirs.W_dec.shape) == (64, 16)
        with torch.no_grad():
            assert torch.allclose(theirs.encode(x), ours.encode(x), atol=1e-5), arch
            assert torch.allclose(theirs.decode(theirs.encode(x)), ours(x), atol=1e-4), arch
        back = load_sae(folder)
        assert back.cfg.architecture == arch
        assert torch.equal(back(x), ours(x))


def test_saelens_written_saes_load_with_the_same_outputs(tmp_path):
    from sae_lens import StandardSAE, StandardSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig

    x = torch.randn(40, 16)
    topk = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=16, d_sae=64, k=5, rescale_acts_by_decoder_norm=True))
    standard = StandardSAE(StandardSAEConfig(d_in=16, d_sae=64, apply_b_dec_to_input=False))
    for name, theirs in (("topk", topk), ("standard", standard)):
        with torch.no_grad():
            for p in theirs.parameters():
                p.normal_(0, 0.5)  # decoder rows of any norm: the folder must be read exactly, not assumed unit
        theirs.save_model(tmp_path / name)
        ours = load_sae(tmp_path / name)
        with torch.no_grad():
            assert torch.allclose(ours(x), theirs(x), atol=1e-4), name
            assert torch.equal(ours.encode(x) > 0, theirs.encode(x) > 0), name


def test_sparsify_folder_loads_and_matches_sparsify_maths(tmp_path):
    folder = tmp_path / "model.encoder.layers.3"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps({"expansion_factor": 4, "normalize_decoder": True, "num_latents": 0,
                                                 "k": 3, "multi_topk": False, "skip_connection": False,
                                                 "transcode": False, "d_in": 16}))
    g = torch.Generator().manual_seed(0)
    weights = {"encoder.weight": torch.randn(64, 16, generator=g), "encoder.bias": torch.randn(64, generator=g) * 0.1,
               "W_dec": torch.randn(64, 16, generator=g), "b_dec": torch.randn(16, generator=g)}
    save_file(weights, str(folder / "sae.safetensors"))
    sae = load_sae(folder)
    assert sae.cfg.hook_name == "encoder.blocks.3.hook_resid_post" and sae.cfg.k == 3 and sae.d_sae == 64
    x = torch.randn(10, 16)
    # sparsify: pre = relu((x − b_dec) Wᵀ + b); top-k; x̂ = Σ v·W_dec[i] + b_dec
    pre = torch.relu((x - weights["b_dec"]) @ weights["encoder.weight"].t() + weights["encoder.bias"])
    values, index = pre.topk(3)
    expected = (values[..., None] * weights["W_dec"][index]).sum(1) + weights["b_dec"]
    assert torch.allclose(sae(x), expected, atol=1e-5)
    assert list(load_saes(tmp_path)) == ["encoder.blocks.3.hook_resid_post"]


def test_frequency_round_trip(tmp_path):
    freq = torch.tensor([0.0, 1e-4, 0.5, 1.0])
    sae = SparseAutoencoder(SAEConfig(d_in=2, d_sae=4, k=1))
    save_sae(sae, tmp_path / "s", frequency=freq)
    assert torch.allclose(load_frequency(tmp_path / "s"), freq + 1e-10, rtol=1e-4)


def test_bad_folders_are_explained(tmp_path):
    with pytest.raises(OtoscopeError, match="SAE folder not found"):
        load_sae(tmp_path / "nope")
    root = tmp_path / "run"
    save_sae(_random_sae("topk"), root / "encoder.blocks.2.hook_resid_post")
    with pytest.raises(OtoscopeError, match="It holds SAEs for: encoder.blocks.2.hook_resid_post"):
        load_sae(root)
    folder = root / "encoder.blocks.2.hook_resid_post"
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["d_in"] = 15
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(OtoscopeError, match="W_enc has shape \\(16, 64\\), expected \\(15, 64\\)"):
        load_sae(folder)
    cfg["d_in"], cfg["architecture"] = 16, "gated"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(NotImplementedError, match="architecture 'gated' is not supported"):
        load_sae(folder)
    (folder / "sae_weights.safetensors").write_bytes(b"\x00" * 20)
    cfg["architecture"] = "topk"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(OtoscopeError, match="sae_weights.safetensors .*damaged"):
        load_sae(folder)
