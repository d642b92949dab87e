"""The offline demo of a labelled study: Whisper tiny.en hearing the same sentences in several espeak-ng voices.

The label is the voice, the sentences are the same for every voice, so a voice must be told apart from
how the words sound, not what they say. Everything runs offline: the bundled Whisper tiny.en and the
clips synthesised by :mod:`otoscope.stimuli.speech`. The clips and their manifest are saved in the
output (``clips/``) so the same study reruns with ``otoscope study groups``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from otoscope.errors import OtoscopeError
from otoscope.stimuli import speech
from otoscope.study.config import StudyConfig
from otoscope.study.inputs import LabelledData
from otoscope.study.run import StudyResult, run_study

DEMO_VOICES = ("en-us", "en-gb-scotland", "en-us+f3", "en-gb-x-rp", "en-gb", "en-us+m3")  # most distinct first


def voice_clips(voices: int = 4, sentences: int = 8) -> LabelledData:
    """``sentences`` of :data:`otoscope.stimuli.speech.SENTENCES`, each spoken by the first ``voices`` demo voices."""
    if not 2 <= voices <= len(DEMO_VOICES):
        raise OtoscopeError(f"voices must be between 2 and {len(DEMO_VOICES)}, got {voices}.")
    if not 2 <= sentences <= len(speech.SENTENCES):
        raise OtoscopeError(f"sentences must be between 2 and {len(speech.SENTENCES)}, got {sentences}.")
    if not speech.have_espeak():
        raise OtoscopeError("the demo synthesises its clips with espeak-ng, which is not installed; install it "
                            "(apt-get install espeak-ng) or run 'otoscope study groups' on your own labelled clips.")
    items, names, labels = [], [], []
    for voice in DEMO_VOICES[:voices]:
        for i, sentence in enumerate(speech.SENTENCES[:sentences]):
            items.append(speech.speak(sentence, voice))
            names.append(f"{voice}/{i:02d}.wav")
            labels.append(voice)
    return LabelledData("clips", items, names, labels, f"espeak-ng, {voices} voices × {sentences} sentences")


def write_clips(folder: Path, data: LabelledData) -> list[str]:
    """Save ``data``'s clips as ``folder/clips/VOICE/NN.wav`` with ``clips/manifest.jsonl`` (path, label, text)."""
    import soundfile as sf

    lines = []
    for samples, name, label in zip(data.items, data.names, data.labels):
        path = folder / "clips" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), samples, speech.SAMPLE_RATE)
        lines.append(json.dumps({"path": name, "label": label}))
    (folder / "clips" / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["clips/manifest.jsonl", *(f"clips/{n}" for n in data.names)]


def run_demo(out: str | Path, model: str = "whisper-tiny.en", voices: int = 4, sentences: int = 8,
             config: StudyConfig | None = None, log: Callable[[str], None] = lambda message: None) -> StudyResult:
    """Synthesise the voice clips, study them on ``model`` and write the study (with the clips) into ``out``."""
    from otoscope._io import check_output_dir
    from otoscope.study.run import STUDY_FILES
    from otoscope.study.subjects import load_subject

    check_output_dir(out, STUDY_FILES, "study folder")
    log(f"synthesising {voices} voices × {sentences} sentences with espeak-ng")
    data = voice_clips(voices, sentences)
    subject = load_subject(model, device=config.device if config else None)
    return run_study(subject, data, out, config, log=log, extra=lambda folder: write_clips(folder, data))
