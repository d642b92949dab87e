"""Wall time of ``otoscope report`` on one 5 s speech clip with whisper-tiny.en (default settings).

The 5 s clip is two committed fixtures joined with 0.25 s of silence. Model loading is timed apart
(model_load_s: the first load in the process, imports included); report_s is the first report in the process
(matplotlib's import and first-call warm-ups included), report_again_s a second one on the same clip.
Last line: one JSON object.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import otoscope
from otoscope.report import ReportConfig, build_report

FIX = Path(__file__).parents[1] / "tests/fixtures/audio"


def main():
    a, rate = sf.read(FIX / "speech_london.flac", dtype="float32")
    b, _ = sf.read(FIX / "speech_park.flac", dtype="float32")
    clip = np.concatenate([a, np.zeros(rate // 4, np.float32), b])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "five_seconds.wav"
        sf.write(path, clip, rate)
        start = time.perf_counter()
        model = otoscope.load("whisper-tiny.en")
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        result = build_report([path], Path(tmp) / "report", ReportConfig(progress=False), model=model)
        total = time.perf_counter() - start
        start = time.perf_counter()
        build_report([path], Path(tmp) / "again", ReportConfig(progress=False), model=model)
        again = time.perf_counter() - start
    print(f"transcript: {result.data['clips'][0]['transcript']!r}")
    print(json.dumps({"clip_seconds": round(len(clip) / rate, 2), "threads": torch.get_num_threads(),
                      "model_load_s": round(load_s, 2), "report_s": round(total, 2), "report_again_s": round(again, 2)}))


if __name__ == "__main__":
    main()
