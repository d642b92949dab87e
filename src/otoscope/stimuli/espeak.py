"""espeak-ng's C library (``libespeak-ng``) through ctypes: audio with the sample offset of each word.

The ``espeak-ng`` program writes audio but not *when* each word is spoken. The library reports a word
event (with its sample offset) for every word as it synthesises, so audio and word timing come from the
same synthesis.

Nothing is loaded at import: the library is opened on first use, and :func:`espeak_available` says
whether it can be (tests that synthesise skip cleanly without it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import numpy as np

from otoscope.errors import OtoscopeError

# espeak-ng API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END = 0, 1, 5
_PARAM_RATE, _PARAM_PITCH = 1, 3


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Espeak:
    """The library, opened once; calls are serialised because espeak-ng keeps global state."""

    def __init__(self):
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as err:
            raise OtoscopeError(f"cannot load the espeak-ng library ({err}); install espeak-ng "
                                "(apt-get install espeak-ng) to synthesise minimal pairs.") from None
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0))
        if self.rate <= 0:
            raise OtoscopeError("espeak-ng failed to initialise (no voice data?); reinstall espeak-ng-data.")
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._words: list[int] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: the library holds only a pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD and events[i].length > 0:  # an empty "word" can follow the last one
                self._words.append(int(events[i].sample))
            i += 1
        return 0

    def _identifier(self, language: str) -> str | None:
        """The voice file (``gmw/en``) whose language list has ``language`` (``en-gb``), from espeak_ListVoices."""
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        voices = self.lib.espeak_ListVoices(None)
        best: tuple[int, str] | None = None
        i = 0
        while voices[i]:
            entry = voices[i].contents
            address = entry.languages
            while address and entry.identifier and ctypes.string_at(address, 1) != b"\0":
                priority = ctypes.string_at(address, 1)[0]  # (priority byte, name, NUL) ..., NUL; 1 = best
                name = ctypes.string_at(address + 1)
                if name.decode(errors="replace") == language and (best is None or priority < best[0]):
                    best = (priority, entry.identifier.decode())
                address += len(name) + 2
            i += 1
        return best[1] if best else None

    def _set_voice(self, voice: str) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return
        # like the espeak-ng program, a language code ("en-gb", "en-gb+f3") names the voice file that speaks it
        language, _, variant = voice.partition("+")
        identifier = self._identifier(language)
        name = identifier + (f"+{variant}" if variant else "") if identifier else None
        if name is None or self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise OtoscopeError(f"espeak-ng has no voice '{voice}'; list them with 'espeak-ng --voices=en' "
                                "(variants: 'espeak-ng --voices=variant').")

    def synth(self, text: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, list[int]]:
        with self.lock:
            self._chunks, self._words = [], []
            self._set_voice(voice)
            self.lib.espeak_SetParameter(_PARAM_RATE, int(speed), 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            data = text.encode("utf-8")
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            if status != 0 or not self._chunks:
                raise OtoscopeError(f"espeak-ng could not synthesise {text!r} (status {status}).")
            return np.concatenate(self._chunks).astype(np.float32) / 32768.0, list(self._words)


_engine: _Espeak | None = None


def _espeak() -> _Espeak:
    global _engine
    if _engine is None:
        _engine = _Espeak()
    return _engine


def espeak_available() -> bool:
    """True when the espeak-ng library can be loaded and initialised."""
    try:
        _espeak()
    except OtoscopeError:
        return False
    return True
