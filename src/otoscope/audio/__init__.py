"""Audio input and the sample/second/frame geometry of each model."""

from otoscope.audio.frames import FrameGeometry, cnn_geometry, whisper_geometry
from otoscope.audio.io import Clip, read_file, resample, split_windows, to_clip, to_clips

__all__ = ["Clip", "FrameGeometry", "cnn_geometry", "read_file", "resample", "split_windows", "to_clip", "to_clips", "whisper_geometry"]
