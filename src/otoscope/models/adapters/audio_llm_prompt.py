"""An audio-LLM's token sequence: the chat prompt with the audio placeholder expanded, and where each part sits.

The LLM sees one sequence of ``tokens`` positions: chat-template text, one placeholder per audio token
(replaced inside the model by the projector's audio embeddings), the user's prompt, and optionally a
teacher-forced answer. :class:`LLMPositions` records which positions are which and the time span of
each audio token, so that caches, patching and lenses can address "the audio" and "the prompt".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from otoscope.errors import OtoscopeError

# The chat formats the instruct checkpoints were trained with; {audio} is one placeholder token.
QWEN2_AUDIO_CHAT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "Audio 1: <|audio_bos|>{audio}<|audio_eos|>\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
VOXTRAL_CHAT = "<s>[INST][BEGIN_AUDIO]{audio}{prompt}[/INST]"


@dataclass
class LLMPositions:
    """Where the audio tokens, the text prompt and the answer sit in one row of the LLM's input."""

    audio: list[int]
    """LLM positions holding audio tokens (placeholders replaced by audio embeddings), in time order."""
    text: list[int]
    """Every other prompt position before the readout position (chat template and the user's prompt)."""
    readout: int
    """The last prompt position: its logits predict the first answer token."""
    answer: list[int] = field(default_factory=list)
    """Positions of teacher-forced answer tokens (empty without ``answer=``)."""
    audio_seconds: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    """``[audio_tokens, 2]`` start and end time in seconds of each audio token."""
    real_audio: int = 0
    """Audio tokens that start inside the clip (Voxtral also feeds the padding of its 30 s window)."""

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) positions in the row."""
        return self.readout + 1 + len(self.answer)

    def audio_window(self, start: float, end: float) -> list[int]:
        """Positions of the audio tokens overlapping ``[start, end)`` seconds."""
        s = self.audio_seconds
        return [p for p, (a, b) in zip(self.audio, s) if a < end and b > start]

    def to_json(self) -> dict:
        """Plain-JSON form."""
        return {"audio": [self.audio[0], self.audio[-1] + 1] if self.audio else [], "text": self.text,
                "readout": self.readout, "answer": self.answer, "real_audio_tokens": self.real_audio,
                "seconds_per_audio_token": float(self.audio_seconds[0, 1] - self.audio_seconds[0, 0])
                if len(self.audio_seconds) else None}


def expand_placeholder(ids: list[int], placeholder: int, n_audio: int, name: str) -> list[int]:
    """``ids`` with its audio placeholder repeated ``n_audio`` times (ids already expanded pass unchanged)."""
    count = sum(1 for i in ids if i == placeholder)
    if count == n_audio:
        return list(ids)
    if count == 1:
        at = ids.index(placeholder)
        return ids[:at] + [placeholder] * n_audio + ids[at + 1:]
    if count == 0:
        raise OtoscopeError(f"the prompt for {name} has no audio placeholder (id {placeholder}); put one where the "
                            "audio goes, or pass text= and let otoscope build the chat prompt.")
    raise OtoscopeError(f"the prompt holds {count} audio placeholders but the clip gives {n_audio} audio tokens; "
                        "pass one placeholder (otoscope expands it) or exactly as many as audio tokens.")


def locate(ids: list[int], placeholder: int, n_answer: int, seconds_per_token: float, clip_seconds: float) -> LLMPositions:
    """Positions of one row ``ids`` (expanded prompt followed by ``n_answer`` answer tokens)."""
    prompt_len = len(ids) - n_answer
    audio = [i for i in range(prompt_len) if ids[i] == placeholder]
    audio_set = set(audio)
    text = [i for i in range(prompt_len - 1) if i not in audio_set]
    if prompt_len - 1 in audio_set:
        raise OtoscopeError("the prompt ends with the audio placeholder; add the question (or chat template) after it, "
                            "so that a text position reads the answer out.")
    starts = np.arange(len(audio)) * seconds_per_token
    spans = np.stack([starts, starts + seconds_per_token], axis=1) if audio else np.zeros((0, 2))
    real = int((starts < clip_seconds - 1e-9).sum())
    return LLMPositions(audio, text, prompt_len - 1, list(range(prompt_len, len(ids))), spans, real)
