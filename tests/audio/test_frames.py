import numpy as np
import pytest
import torch

from otoscope.audio.frames import cnn_geometry, whisper_geometry


def test_whisper_frame_counts():
    g = whisper_geometry()
    assert g.frame_rate == 50
    assert g.window_samples == 480_000
    assert g.n_frames(16_000) == 50  # 1 s → 100 mel frames → 50 encoder frames
    assert g.n_frames(16_160) == 51  # 101 mel frames round up
    assert g.n_frames(480_000) == 1500
    assert g.n_frames(10) == 1  # a sliver of audio still owns one frame


def test_whisper_frame_count_matches_the_encoder_on_real_features():
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=80)
    for n in (3_200, 16_000, 37_123):
        # real mel frames: where the padded features stop depending on the clip
        a = fe(np.random.default_rng(0).standard_normal(n).astype(np.float32), sampling_rate=16_000).input_features[0]
        b = fe(np.concatenate([np.random.default_rng(0).standard_normal(n).astype(np.float32), np.ones(480_000 - n, np.float32)]),
               sampling_rate=16_000).input_features[0]
        # frames before the clip's end (minus the STFT's half-window) agree; after, they differ
        differ = np.nonzero(np.abs(a - b).max(axis=0) > 1e-3)[0]
        first_mel = differ[0] if len(differ) else a.shape[1]
        assert abs(first_mel - n // 160) <= 2
        assert whisper_geometry().n_frames(n) == -(-(n // 160) // 2)


def test_convert_round_trips_and_floors():
    g = whisper_geometry()
    assert g.convert(1.0, "seconds", "frames") == 50
    assert g.convert(50, "frames", "seconds") == pytest.approx(1.0)
    assert g.convert(319, "samples", "frames") == 0
    assert g.convert(320, "samples", "frames") == 1
    assert g.convert(2, "frames", "samples") == 640
    np.testing.assert_array_equal(g.convert(np.array([0.0, 0.02, 0.5]), "seconds", "frames"), [0, 1, 25])
    with pytest.raises(ValueError):
        g.convert(1, "seconds", "minutes")


def test_cnn_geometry_matches_transformers_arithmetic():
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config()
    g = cnn_geometry(config.conv_kernel, config.conv_stride)
    model = Wav2Vec2Model(config)
    for n in (400, 16_000, 12_345, 48_000):
        expected = int(model._get_feat_extract_output_lengths(torch.tensor(n)))
        assert g.n_frames(n) == expected
    assert g.samples_per_frame == 320


def test_frame_mask():
    g = whisper_geometry()
    mask = g.frame_mask([16_000, 32_000], 1500)
    assert mask.shape == (2, 1500)
    assert mask.sum(1).tolist() == [50, 100]
    assert mask[0, :50].all() and not mask[0, 50:].any()
