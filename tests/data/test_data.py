"""The packaged demo clips: present, named, and the same bytes as the test fixtures they copy."""

import pytest

from otoscope.data import clip_names, clip_path
from otoscope.data import manifest as packaged
from otoscope.errors import OtoscopeError


def test_packaged_clips_are_copies_of_the_fixtures(manifest):
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in manifest}
    rows = packaged()
    assert len(rows) >= 3 and {r["kind"] for r in rows} == {"speech", "nonspeech"}
    for row in rows:
        path = clip_path(row["path"].rsplit("/", 1)[-1])
        fixture = by_name[path.name]
        assert path.read_bytes() == open(fixture["path"], "rb").read()  # provenance: tests/fixtures/audio/README.md
        assert row["text"] == fixture["text"] and row["kind"] == fixture["kind"]


def test_clip_path_by_name_and_unknown_names():
    assert clip_path("speech_door") == clip_path("speech_door.flac") and clip_path("speech_door").is_file()
    assert "nonspeech_dog" in clip_names()
    with pytest.raises(OtoscopeError, match="Did you mean 'speech_door'"):
        clip_path("speech_dor")
