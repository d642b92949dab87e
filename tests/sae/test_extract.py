"""Activation extraction: real frames only, the index, corpora, resuming, damaged shards, bad values, ranks."""

import shutil

import numpy as np
import pytest
import torch

import otoscope
from otoscope.errors import OtoscopeError
from otoscope.sae.corpus import Corpus, open_corpus
from otoscope.sae.extract import ExtractConfig, extract_activations
from otoscope.sae.store import ActivationStore, Progress

HOOKS = "encoder.blocks.*.hook_resid_post"


def _config(**kw):
    return ExtractConfig(**{"hooks": HOOKS, "batch_size": 2, "shard_mb": 0.02, "progress": False, **kw})


@pytest.fixture(scope="module")
def tiny():
    return otoscope.load("tiny-random-whisper")


def test_store_holds_exactly_the_real_frames_with_their_index(whisper_store, manifest, tiny):
    store = ActivationStore(whisper_store)
    assert store.hooks == ["encoder.blocks.0.hook_resid_post", "encoder.blocks.1.hook_resid_post"]
    assert len(store.shards) > 1
    clips = store.clips()
    assert [c["name"] for c in clips] == [r["path"] for r in manifest]
    assert clips[0]["text"] == "Please open the door." and clips[0]["labels"]["kind"] == "speech"
    index = store.index()
    for i, clip in enumerate(clips):
        n = tiny.geometry.n_frames(round(clip["seconds"] * 16000))
        rows = index[index["clip"] == i]
        assert len(rows) == n  # real frames only: no Whisper padding
        assert rows["frame"].tolist() == list(range(n))
        assert np.allclose(rows["time"], np.arange(n) * 0.02)
    _, cache = tiny.run_with_cache(manifest[1]["path"], names_filter=HOOKS)
    stored = store.activations("encoder.blocks.1.hook_resid_post")[torch.tensor((index["clip"] == 1).to_numpy())]
    assert torch.allclose(stored, cache.real("encoder.blocks.1.hook_resid_post", 0), atol=2e-3)


def test_wav2vec2_family_drops_batch_padding(tmp_path, speech):
    model = otoscope.load("tiny-random-hubert")
    extract_activations(model, [r["path"] for r in speech[:3]], tmp_path, _config(batch_size=3))
    index = ActivationStore(tmp_path).index()
    for i, row in enumerate(speech[:3]):
        clip = model.clips(row["path"])[0]
        assert (index["clip"] == i).sum() == model.geometry.n_frames(len(clip.samples))


def test_clips_longer_than_whisper_window_are_split_with_continuous_frames(tmp_path, tiny):
    long = np.random.default_rng(0).standard_normal(31 * 16000).astype(np.float32) * 0.1
    extract_activations(tiny, [long], tmp_path, _config(hooks="encoder.blocks.0.hook_resid_post"))
    index = ActivationStore(tmp_path).index()
    assert len(index) == 1500 + 50
    assert index["frame"].tolist() == list(range(1550)) and index["time"].iloc[-1] == pytest.approx(30.98)


def test_corpus_sources(tmp_path, speech):
    audio = tmp_path / "audio"
    audio.mkdir()
    for row in speech[:2]:
        shutil.copy(row["path"], audio)
    (tmp_path / "m.csv").write_text("path,text,speaker\naudio/speech_door.flac,Please open the door.,a\n"
                                    "audio/speech_london.flac,,b\n")
    corpus = open_corpus(tmp_path / "m.csv")
    assert len(corpus) == 2 and corpus[0].text == "Please open the door." and corpus[1].text is None
    assert corpus[1].labels == {"speaker": "b"} and corpus[0].audio == str((audio / "speech_door.flac").resolve())
    folder = open_corpus(audio)
    assert [c.name.rsplit("/", 1)[1] for c in folder] == ["speech_door.flac", "speech_london.flac"]
    (tmp_path / "bad.jsonl").write_text('{"path": "a.flac"}\n{"text": "no audio"}\n')
    with pytest.raises(OtoscopeError, match="bad.jsonl:2 has no audio path"):
        open_corpus(tmp_path / "bad.jsonl")
    with pytest.raises(OtoscopeError, match="corpus not found"):
        open_corpus(tmp_path / "missing")


class _Dies(Corpus):
    """A corpus whose reader is killed when it reaches clip ``at``."""

    def __init__(self, base: Corpus, at: int):
        super().__init__(base._rows, base.description, base.fingerprint)
        self.at = at

    def __getitem__(self, i):
        if i == self.at:
            raise KeyboardInterrupt
        return super().__getitem__(i)


def test_killed_extraction_resumes_without_losing_or_duplicating_shards(tmp_path, manifest, tiny):
    corpus = open_corpus([dict(r) for r in manifest])
    config = _config(hooks="encoder.blocks.0.hook_resid_post", batch_size=1)
    full = extract_activations(tiny, corpus, tmp_path / "full", config)
    with pytest.raises(KeyboardInterrupt):
        extract_activations(tiny, _Dies(corpus, 4), tmp_path / "cut", config)
    cut = ActivationStore(tmp_path / "cut", allow_incomplete=True)
    assert 0 < len(cut.shards) < full.shards
    # a kill between writing a shard and recording it leaves an unlisted shard behind
    orphan = tmp_path / "cut" / f"shard-r00-{len(cut.shards):05d}.safetensors"
    orphan.write_bytes(b"half a shard")
    done = Progress.load(tmp_path / "cut" / "progress-r00.json").next_item
    resumed = extract_activations(tiny, corpus, tmp_path / "cut", config)
    assert resumed.resumed_from == done > 0 and resumed.shards == full.shards
    a, b = ActivationStore(tmp_path / "full"), ActivationStore(tmp_path / "cut")
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == sorted(p.name for p in (tmp_path / "cut").iterdir())
    assert a.index().equals(b.index())
    assert torch.equal(a.activations("encoder.blocks.0.hook_resid_post"), b.activations("encoder.blocks.0.hook_resid_post"))
    again = extract_activations(tiny, corpus, tmp_path / "cut", config)  # a finished store is left as it is
    assert again.resumed_from == len(corpus) and again.shards == full.shards


def test_damaged_shards_are_named_and_repaired(tmp_path, whisper_store, manifest, tiny):
    path = tmp_path / "store"
    shutil.copytree(whisper_store, path)
    store = ActivationStore(path)
    original = store.activations("encoder.blocks.0.hook_resid_post")
    flipped, cut = store.shards[1].path, store.shards[2].path
    data = bytearray(flipped.read_bytes())
    data[-7] ^= 0xFF  # one byte of activations
    flipped.write_bytes(bytes(data))
    cut.write_bytes(cut.read_bytes()[:-100])
    with pytest.raises(OtoscopeError, match=f"activation shard {flipped} is corrupt \\(checksum"):
        store.read(1)
    with pytest.raises(OtoscopeError, match=f"activation shard {cut} is corrupt or truncated"):
        store.read(2)
    assert [p for p, _ in store.verify()] == [flipped, cut]
    extract_activations(tiny, [dict(r) for r in manifest], path, _config(repair=True))
    repaired = ActivationStore(path)
    assert repaired.verify() == []
    assert torch.equal(repaired.activations("encoder.blocks.0.hook_resid_post"), original)


def test_non_finite_activations_are_named(tmp_path, manifest, tiny):
    layer = tiny.model.model.encoder.layers[1]

    def poison(module, args, output):
        (output[0] if isinstance(output, tuple) else output)[:, 5] = float("nan")  # frame 5 of every clip

    handle = layer.register_forward_hook(poison)
    try:
        with pytest.raises(OtoscopeError, match="NaN/inf\\) at encoder.blocks.1.hook_resid_post, clip .*speech_door.flac, row 5"):
            extract_activations(tiny, [manifest[0]["path"]], tmp_path, _config())
    finally:
        handle.remove()


def test_a_folder_holding_another_extraction_is_not_resumed(tmp_path, speech, tiny):
    extract_activations(tiny, [speech[0]["path"]], tmp_path, _config(hooks="encoder.blocks.0.hook_resid_post"))
    with pytest.raises(OtoscopeError, match="holds a different extraction \\(hooks: "):
        extract_activations(tiny, [speech[0]["path"]], tmp_path, _config(hooks="encoder.blocks.1.hook_resid_post"))
    result = extract_activations(tiny, [speech[0]["path"]], tmp_path,
                                 _config(hooks="encoder.blocks.1.hook_resid_post", overwrite=True))
    assert ActivationStore(tmp_path).hooks == ["encoder.blocks.1.hook_resid_post"] and result.resumed_from == 0


def test_decoder_hooks_store_text_tokens(tmp_path, speech, tiny):
    rows = [{"path": r["path"], "text": " " + r["text"]} for r in speech[:2]]
    extract_activations(tiny, rows, tmp_path, _config(hooks="decoder.blocks.0.hook_resid_post"))
    store = ActivationStore(tmp_path)
    assert store.info.positions == "tokens"
    index = store.index()
    for i, row in enumerate(rows):
        assert (index["clip"] == i).sum() == len(tiny.to_tokens(row["text"]))
    assert index["time"].isna().all()
    with pytest.raises(OtoscopeError, match="encoder and decoder hooks have different rows"):
        extract_activations(tiny, rows, tmp_path / "x", _config(hooks=["encoder.blocks.0.hook_resid_post",
                                                                        "decoder.blocks.0.hook_resid_post"]))
    with pytest.raises(OtoscopeError, match="has no transcript"):
        extract_activations(tiny, [speech[0]["path"]], tmp_path / "y", _config(hooks="decoder.blocks.0.hook_resid_post"))


def test_ranks_split_the_corpus_and_the_store_waits_for_all(tmp_path, manifest, tiny):
    rows = [dict(r) for r in manifest]
    config = _config(hooks="encoder.blocks.0.hook_resid_post")
    extract_activations(tiny, rows, tmp_path, config, rank=0, world_size=2)
    with pytest.raises(OtoscopeError, match="incomplete: rank 1 has finished 0 of its clips"):
        ActivationStore(tmp_path)
    extract_activations(tiny, rows, tmp_path, config, rank=1, world_size=2)
    index = ActivationStore(tmp_path).index()
    assert sorted(set(index["clip"])) == list(range(len(rows)))
    assert index.groupby("clip").frame.apply(lambda f: f.tolist() == list(range(len(f)))).all()
