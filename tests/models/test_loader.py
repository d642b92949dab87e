"""An unknown ``org/model`` fails fast, offline or with the hub unreachable, before torch is imported."""

import os
import subprocess
import sys
import time

CODE = """
import sys
import otoscope
try:
    otoscope.load("someorg/no-such-model")
except otoscope.ModelNotFoundError as err:
    print(err)
print(sorted({"torch", "transformers"} & set(sys.modules)))
"""


def _run(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "OTOSCOPE_OFFLINE")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, env={**full, **env})
    return proc, time.perf_counter() - start


def test_offline_unknown_id_fails_in_under_two_seconds(tmp_path):
    for flag in ("HF_HUB_OFFLINE", "OTOSCOPE_OFFLINE"):
        proc, seconds = _run(**{flag: "1"}, HF_HOME=str(tmp_path))
        message, heavy = proc.stdout.strip().splitlines()
        assert "cannot load model 'someorg/no-such-model'" in message and "Hugging Face hub (offline)" in message
        assert heavy == "[]" and proc.returncode == 0, proc.stderr
        assert seconds < 2.0


def test_unreachable_hub_fails_without_retries(tmp_path):
    # port 9 on the loopback refuses connections at once: a network that is down, without leaving the machine
    proc, seconds = _run(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path))
    message, heavy = proc.stdout.strip().splitlines()
    assert "Hugging Face hub (unreachable" in message and "local folder 'someorg/no-such-model' (not found)" in message
    assert heavy == "[]", proc.stderr
    assert seconds < 5.0  # the hub client alone retries for ~30 s
