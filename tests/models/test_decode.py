import numpy as np
import pytest
import torch


def test_greedy_matches_transformers_generate(tiny_en, manifest):
    paths = [r["path"] for r in manifest]
    ours = tiny_en.transcribe(paths, batch_size=3, exact=True)  # the dog bark loops: plain greedy keeps looping
    inputs = tiny_en.prepare(paths)
    with torch.no_grad():
        generated = tiny_en.model.generate(inputs.features, do_sample=False, num_beams=1, max_new_tokens=224)
    for result, row in zip(ours, generated):
        hf_text = tiny_en.tokenizer.decode(row, skip_special_tokens=True).strip()
        assert result.text == hf_text


def test_wer_on_clean_speech_fixtures(tiny_en, speech):
    import jiwer
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    norm = BasicTextNormalizer()
    results = tiny_en.transcribe([r["path"] for r in speech])
    wer = jiwer.wer([norm(r["text"]) for r in speech], [norm(t.text) for t in results])
    assert wer <= 0.15, [t.text for t in results]


def test_long_clips_are_chunked_into_windows(tiny_en, speech):
    import soundfile as sf

    a, _ = sf.read(speech[0]["path"], dtype="float32")
    b, _ = sf.read(speech[1]["path"], dtype="float32")
    # clip A, silence up to 30 s, then clip B in the second window
    long = np.concatenate([a, np.zeros(16_000 * 30 - len(a), np.float32), b])
    result = tiny_en.transcribe(long)
    assert "open the door" in result.text.lower() and "london" in result.text.lower()


def test_single_and_batched_agree(tiny_en, speech):
    one = tiny_en.transcribe(speech[2]["path"])
    both = tiny_en.transcribe([speech[3]["path"], speech[2]["path"]], batch_size=2)
    assert one.text == both[1].text
    assert one.tokens == both[1].tokens


def test_ctc_transcription_and_bare_encoders():
    import otoscope
    from otoscope.errors import OtoscopeError

    model = otoscope.load("tiny-random-wav2vec2")
    model.tokenizer = _ctc_tokenizer()
    out = model.transcribe([np.zeros(8_000, np.float32), np.ones(16_000, np.float32) * 0.1])
    assert len(out) == 2 and all(isinstance(t.text, str) for t in out)
    assert len(out[0].tokens) == model.geometry.n_frames(8_000)
    model.tokenizer = None
    with pytest.raises(OtoscopeError, match="cannot transcribe"):
        model.transcribe(np.zeros(8_000, np.float32))


def _ctc_tokenizer():
    import json
    import tempfile

    from transformers import Wav2Vec2CTCTokenizer

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{ch: i + 3 for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz'")}}
    vocab.update({f"<x{i}>": i for i in range(len(vocab), 32)})
    path = tempfile.mkdtemp() + "/vocab.json"
    with open(path, "w") as handle:
        json.dump(vocab, handle)
    return Wav2Vec2CTCTokenizer(path)


def test_multilingual_base_detects_english_and_transcribes(speech):
    import otoscope

    model = otoscope.load("whisper-base")
    assert not model.english_only and model.n_layers == 6
    result = model.transcribe(speech[0]["path"])
    assert result.language == "en"
    assert "open the door" in result.text.lower()


def test_token_limit_marks_the_transcript_unfinished(tiny_en, speech):
    full = tiny_en.transcribe(speech[0]["path"])
    cut = tiny_en.transcribe(speech[0]["path"], max_new_tokens=2)
    assert full.finished and not cut.finished
    assert cut.tokens == full.tokens[:2]
