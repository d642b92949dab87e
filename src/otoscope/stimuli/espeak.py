"""espeak-ng's C library (``libespeak-ng``): audio with word and phoneme events, the same every time.

The ``espeak-ng`` program writes audio but not *when* each word is spoken. The library reports events
as it synthesises, each with its sample offset and the character position of the text it comes from:
a *word* event where a word starts (before any pause or stop closure that precedes it), and a *phoneme*
event for every phoneme (after that pause). Audio and timing therefore come from the same synthesis.
Word events alone are not enough: espeak-ng says some short phrases as one unit from its pronunciation
list ("on the", "of a") and reports a single word event for them; :mod:`otoscope.stimuli.timing` splits
those with the phoneme events and the phonemes of each word said alone, which come back too.

Each synthesis runs in a fresh process (``_espeak_worker.py``, standard library only): espeak-ng keeps
state between syntheses that nothing resets, so in one process the same text comes out different each
time. Fresh, it is the same waveform every time (tens of ms per call). Nothing is loaded at import;
:func:`espeak_available` says whether the library can be used (tests that synthesise skip without it).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from otoscope.errors import OtoscopeError

WORKER = Path(__file__).with_name("_espeak_worker.py")
TIMEOUT = 120  # seconds one synthesis may take before it counts as hung


@dataclass(frozen=True)
class Event:
    """A word or phoneme event of one synthesis."""

    kind: str
    """``word`` or ``phoneme``."""
    position: int
    """0-based character index in the synthesised text of the word it belongs to (for a phrase espeak-ng
    says as one unit, its first word)."""
    sample: int
    """Offset in samples at the engine's rate from the start of the audio."""
    name: str = ""
    """The phoneme's espeak-ng mnemonic (``k``, ``@2``, ``_:`` for a pause); empty for words."""


@dataclass
class Rendering:
    """The raw output of one synthesis."""

    audio: np.ndarray
    """``[samples]`` float32 at ``rate``, untrimmed."""
    rate: int
    """The engine's sample rate (22050 Hz for espeak-ng's voices)."""
    events: list[Event]
    """Word and phoneme events in the order they were spoken."""
    phonemes: dict[str, list[str]]
    """Phoneme mnemonics of each requested word said alone (stress marks dropped)."""


def _run(request: dict) -> tuple[dict, bytes]:
    try:
        done = subprocess.run([sys.executable, "-I", "-S", str(WORKER)], input=json.dumps(request).encode(),
                              capture_output=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise OtoscopeError(f"espeak-ng took over {TIMEOUT} s on {request.get('text', '')!r}; try a shorter text.") \
            from None
    header, _, audio = done.stdout.partition(b"\n")
    try:
        reply = json.loads(header)
    except json.JSONDecodeError:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise OtoscopeError(f"espeak-ng failed ({reason[0]}); check 'espeak-ng \"hello\"' works.") from None
    if "error" in reply:
        raise OtoscopeError(reply["error"])
    return reply, audio


def synth(text: str, voice: str, speed: int, pitch: int, words: list[str] = ()) -> Rendering:
    """``text`` spoken in ``voice`` at ``speed`` words per minute and ``pitch`` (0–99) → :class:`Rendering`,
    with the phonemes of each of ``words`` said alone."""
    reply, audio = _run({"text": text, "voice": voice, "speed": int(speed), "pitch": int(pitch), "words": list(words)})
    samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
    events = [Event(kind, position, sample, name) for kind, position, sample, name in reply["events"]]
    return Rendering(samples, int(reply["rate"]), events, reply["phonemes"])


@functools.lru_cache(maxsize=1)
def espeak_available() -> bool:
    """True when the espeak-ng library can be loaded and initialised."""
    try:
        _run({})
    except OtoscopeError:
        return False
    return True
