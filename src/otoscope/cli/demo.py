"""``make demo``: the main job, ``otoscope report``, on the bundled whisper-tiny.en and the packaged clips.

Offline: the model comes from the bundled weights (whisper-base too, for cross-model CKA), the clips
from the package (``otoscope.data``), so the demo runs from an installed wheel too. Speech clips come
first so the attention-locality curve is measured on speech; the CC0 dog bark shows what the lenses
do on non-speech. Labels (speech / non-speech) come from the packaged manifest.
"""

from __future__ import annotations

import sys
from pathlib import Path


def run_demo(out: Path) -> Path:
    """Build the demo report into ``out`` and return the path of its index.html."""
    from otoscope.data import manifest
    from otoscope.report import ReportConfig, build_report

    rows = sorted(manifest(), key=lambda row: (row["kind"] != "speech", row["path"]))
    files = [row["path"] for row in rows]
    labels = [row["kind"] for row in rows]
    result = build_report(files, out, ReportConfig(compare_model="whisper-base", labels=labels, detailed_clips=3))
    for clip in result.data["clips"]:
        print(f"  {Path(clip['path']).name:<22} {clip['transcript'][:60]!r}")
    lens = result.data["clips"][0]["encoder_lens"]
    print(f"encoder lens of {Path(lens['path']).name}: saturation layer {lens['saturation_layer']}, "
          f"LIS per layer {[round(layer['lis'], 4) for layer in lens['layers']]}")
    print(f"\nreport: {result.index.resolve()}  (open it in a browser)")
    return result.index


if __name__ == "__main__":
    run_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/demo"))
