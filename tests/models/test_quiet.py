"""Normal use prints nothing from transformers or torch: no warnings, no deprecation lines, no log records."""

import contextlib
import io
import logging
import warnings

from otoscope.patching import PatchConfig, patch


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_transcription_and_patching_are_quiet(speech, tmp_path):
    import otoscope

    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    err = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            model = otoscope.load("tiny-random-whisper")
            model.transcribe([speech[0]["path"], speech[1]["path"]], max_new_tokens=6)
            result = patch(model, speech[0]["path"], speech[1]["path"], PatchConfig(window=50, metric="logprob"),
                           text=" a", answer="b")
            result.save(tmp_path / "out")
    finally:
        root.removeHandler(handler)
    noisy = [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught
             if any(lib in w.filename for lib in ("transformers", "torch"))]
    assert noisy == []
    assert [r.getMessage() for r in handler.records
            if r.name.startswith(("transformers", "torch")) and r.levelno >= logging.WARNING] == []
    assert err.getvalue() == ""
