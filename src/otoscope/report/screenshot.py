"""Screenshot a report with headless Chromium (Debian's ``chromium``), to look at it as a reader would.

Run: ``python -m otoscope.report.screenshot out/demo/index.html shot.png``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from otoscope.errors import OtoscopeError

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def screenshot(index: str | Path, png: str | Path, width: int = 1280, height: int = 2400, timeout: int = 120) -> Path:
    """Render ``index`` (an HTML file) to ``png`` at ``width`` × ``height`` pixels."""
    binary = find_chromium()
    if binary is None:
        raise OtoscopeError("no Chromium found; install it (Debian: apt-get install chromium) to take screenshots.")
    index, png = Path(index).resolve(), Path(png).resolve()
    if not index.is_file():
        raise OtoscopeError(f"{index} does not exist; build the report first.")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
               index.as_uri()]
        subprocess.run(cmd, capture_output=True, timeout=timeout)
    if not png.is_file():
        raise OtoscopeError(f"Chromium wrote no screenshot of {index}.")
    return png


if __name__ == "__main__":
    print(screenshot(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "report.png"))
