"""docs/hooks.md lists every hook point of every architecture (names templated with {L})."""

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).parents[1] / "docs" / "hooks.md").read_text()


@pytest.mark.parametrize("name", ["tiny-random-whisper", "tiny-random-wav2vec2", "tiny-random-wav2vec2-stable",
                                  "tiny-random-hubert", "tiny-random-wavlm"])
def test_every_hook_is_documented(name):
    import otoscope

    model = otoscope.load(name)
    for hook, point in model.points.items():
        templated = re.sub(r"blocks\.\d+\.", "blocks.{L}.", hook)
        assert f"`{templated}` | `{point.shape}`" in DOC, templated
