import torch

from otoscope.hooks.export import export_activations, read_export


def test_export_real_frames_with_metadata(tiny_en, speech, tmp_path):
    paths = [speech[0]["path"], speech[1]["path"]]
    result = export_activations(tiny_en, paths, tmp_path / "acts.safetensors", "encoder.blocks.*.hook_resid_post",
                                progress=False)
    tensors, meta = read_export(result.path)
    assert meta["hooks"] == [f"encoder.blocks.{i}.hook_resid_post" for i in range(4)]
    assert meta["frame_rate"] == 50 and meta["model"] == "whisper-tiny.en"
    frames = [c["frames"] for c in meta["clips"]]
    assert tensors["encoder.blocks.0.hook_resid_post"].shape == (sum(frames), 384)
    # rows of clip 1 equal its cached real frames
    _, cache = tiny_en.run_with_cache(paths[1], names_filter="encoder.blocks.2.hook_resid_post")
    start, end = meta["clips"][1]["rows"]["encoder.blocks.2.hook_resid_post"]
    torch.testing.assert_close(tensors["encoder.blocks.2.hook_resid_post"][start:end],
                               cache.real("encoder.blocks.2.hook_resid_post", 0))
    padded = export_activations(tiny_en, paths[:1], tmp_path / "pad.safetensors", "encoder.hook_ln_final",
                                keep_padding=True, progress=False)
    assert padded.rows["encoder.hook_ln_final"] == 1500


def test_export_decoder_hooks_use_real_tokens(tiny_en, speech, tmp_path):
    result = export_activations(tiny_en, [speech[0]["path"]], tmp_path / "d.safetensors", "decoder.blocks.0.hook_resid_post",
                                text=" Please open the door.", progress=False)
    n_tokens = len(tiny_en.task_prefix()) + len(tiny_en.to_tokens(" Please open the door."))
    assert result.rows["decoder.blocks.0.hook_resid_post"] == n_tokens
