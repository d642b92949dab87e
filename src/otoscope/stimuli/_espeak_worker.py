"""The espeak-ng library in a process of its own: one synthesis per process, so every synthesis is the same.

espeak-ng keeps state between syntheses that neither re-initialising nor any API call resets (its
pitch flutter and wave generator run on), so the same text synthesised twice in one process gives two
waveforms whose lengths differ by hundreds of samples. A fresh process always gives the first one.
:mod:`otoscope.stimuli.espeak` runs this file as a script (``python -I -S``: standard library only,
nothing of the project imported) for each synthesis.

Protocol: one JSON request on stdin, ``{"text", "voice", "speed", "pitch", "words"}``; on stdout one
JSON line ``{"rate", "events": [[kind, position, sample, name], ...], "phonemes": {word: [names]}}``
followed by the audio as int16 in native byte order. On failure: ``{"error": message}`` and exit status 1.
"""

import ctypes
import ctypes.util
import json
import sys

# espeak-ng API constants (speak_lib.h)
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
INITIALIZE_PHONEME_EVENTS = 0x0001  # phoneme events only add callbacks: the audio is the same without them
PARAM_RATE, PARAM_PITCH = 1, 3
SEPARATOR = "|"  # asked of espeak_TextToPhonemes between phoneme names


class Failure(Exception):
    """A one-line reason for the parent to raise."""


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class Engine:
    """The library, opened and initialised once in this process."""

    def __init__(self):
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as err:
            raise Failure(f"cannot load the espeak-ng library ({err}); install espeak-ng "
                          "(apt-get install espeak-ng) to synthesise speech.") from None
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_PHONEME_EVENTS))
        if self.rate <= 0:
            raise Failure("espeak-ng failed to initialise (no voice data?); reinstall espeak-ng-data.")
        self.audio = bytearray()
        self.events: list[list] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: the library holds only a pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0 and wav:
            self.audio += ctypes.string_at(wav, 2 * n)
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            # positions are 1-based; an empty "word" can follow the last one
            if event.type == EVENT_WORD and event.length > 0:
                self.events.append(["word", event.text_position - 1, int(event.sample), ""])
            elif event.type == EVENT_PHONEME:
                name = bytes(event.id).split(b"\0", 1)[0].decode("ascii", errors="replace")
                self.events.append(["phoneme", event.text_position - 1, int(event.sample), name])
            i += 1
        return 0

    def _identifier(self, language: str):
        """The voice file (``gmw/en``) whose language list has ``language`` (``en-gb``), from espeak_ListVoices."""
        voices = self.lib.espeak_ListVoices(None)
        best = None
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

    def set_voice(self, voice: str) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return
        # like the espeak-ng program, a language code ("en-gb", "en-gb+f3") names the voice file that speaks it
        language, _, variant = voice.partition("+")
        identifier = self._identifier(language)
        name = identifier + (f"+{variant}" if variant else "") if identifier else None
        if name is None or self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise Failure(f"espeak-ng has no voice '{voice}'; list them with 'espeak-ng --voices=en' "
                          "(variants: 'espeak-ng --voices=variant').")

    def synth(self, text: str, speed: int, pitch: int) -> None:
        """Speak ``text`` in the current voice into ``self.audio`` and ``self.events``."""
        self.lib.espeak_SetParameter(PARAM_RATE, int(speed), 0)
        self.lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if status != 0 or not self.audio:
            raise Failure(f"espeak-ng could not synthesise {text!r} (status {status}).")

    def phonemes(self, word: str) -> list:
        """The phoneme mnemonics of ``word`` said alone in the current voice (stress marks dropped)."""
        buffer = ctypes.create_string_buffer(word.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        mode = ord(SEPARATOR) << 8  # bits 8-23: the separator; bit 1 clear: mnemonics, not IPA
        out = []
        while pointer.value:  # one call per clause; the library advances the pointer
            chunk = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), CHARS_UTF8, mode)
            if not chunk:
                break
            for name in chunk.decode("ascii", errors="replace").replace(" ", SEPARATOR).split(SEPARATOR):
                name = name.strip("',%=")  # stress and emphasis marks are not phonemes
                if name:
                    out.append(name)
        return out


def main() -> int:
    try:
        request = json.loads(sys.stdin.read() or "{}")
        engine = Engine()
        header = {"rate": engine.rate}
        if request.get("text"):
            engine.set_voice(request["voice"])
            engine.synth(request["text"], request["speed"], request["pitch"])  # first: nothing before it
            header["events"] = engine.events
            header["phonemes"] = {w: engine.phonemes(w) for w in request.get("words", [])}
    except Failure as err:
        sys.stdout.write(json.dumps({"error": str(err)}) + "\n")
        return 1
    out = sys.stdout.buffer
    out.write(json.dumps(header).encode() + b"\n")
    out.write(bytes(engine.audio) if request.get("text") else b"")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
