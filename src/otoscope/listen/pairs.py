"""Pairs for audio-LLMs: what differs between the clean and the corrupt run, and the answer to score.

* **audio pair** — the audio differs (a word swap, another voice, noise: :mod:`otoscope.stimuli.pairs`),
  the prompt is the same;
* **text pair** (text-context) — the prompt differs, the audio is the same;
* **conflict pair** — both differ: e.g. the clean prompt and audio agree on a word, the corrupt prompt
  asserts another word while the audio still says the first (or the audio says another).

A pair folder holds ``pair.json`` (the format ``otoscope pairs`` writes) plus, for audio-LLMs, the keys
``prompt`` and optionally ``corrupt_prompt``; ``corrupt`` may be omitted for text pairs. Instead of
prompts, ``input_ids`` / ``corrupt_input_ids`` (holding the audio placeholder) serve tokenizer-less models.
The metric reads the next-token logits at the readout position (the last prompt position):
logit(answer) − logit(wrong), or log P(answer) without a wrong answer; the answer's first token counts.
Text answers are the start of the assistant's reply, read without leading spaces (a word-swap pair's
``" London"`` is ``"London"``); give token ids where a tokenizer wants otherwise.

Pair folders come from ``otoscope pairs``: ``word`` / ``voice`` / ``noise`` / ``span`` (audio pairs; ``--prompt``
sets the question) and ``context`` / ``conflict`` (:mod:`otoscope.stimuli.prompt_pairs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from otoscope.audio.io import Clip, to_clip
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:
    from otoscope.models.adapters.audio_llm import AudioLLMInputs
    from otoscope.models.hooked import HookedAudioModel

DEFAULT_PROMPT = "Which word does the speaker say last? Answer with that word only."
KINDS = ("audio", "text", "conflict")


@dataclass
class ListenPair:
    """A clean and a corrupt (audio, prompt) input for an audio-LLM, and the answers to score."""

    name: str
    """Where the pair came from (its folder name)."""
    clean: Clip
    """Clean audio."""
    corrupt: Clip
    """Corrupt audio (the clean clip itself for text pairs)."""
    answer: str | list[int]
    """The clean answer (text, or token ids); its first token is scored."""
    wrong: str | list[int] | None = None
    """The corrupt answer, for a logit difference; None scores log P(answer)."""
    prompt: str | None = DEFAULT_PROMPT
    """Clean prompt (wrapped in the chat format)."""
    corrupt_prompt: str | None = None
    """Corrupt prompt; None: the clean one."""
    input_ids: list[int] | None = None
    """Clean prompt ids holding the audio placeholder, instead of ``prompt``."""
    corrupt_input_ids: list[int] | None = None
    """Corrupt prompt ids; None: the clean ones."""

    @property
    def kind(self) -> str:
        """``audio``, ``text`` or ``conflict``: what differs."""
        audio = not (len(self.clean.samples) == len(self.corrupt.samples)
                     and np.array_equal(self.clean.samples, self.corrupt.samples))
        text = (self.corrupt_prompt is not None and self.corrupt_prompt != self.prompt) or \
            (self.corrupt_input_ids is not None and self.corrupt_input_ids != self.input_ids)
        return "conflict" if audio and text else "text" if text else "audio"


def load_listen_pair(path: str | Path, sample_rate: int = 16_000) -> ListenPair:
    """Read one pair folder (or its ``pair.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "pair.json"
    if not path.is_file():
        raise OtoscopeError(f"pair file not found: {path}; make pairs with 'otoscope pairs' and add a \"prompt\".")
    try:
        data = json.loads(path.read_text())
        clean = to_clip(str(path.parent / data["clean"]), sample_rate)
        corrupt = to_clip(str(path.parent / data["corrupt"]), sample_rate) if data.get("corrupt") else clean
        answer = data["answer"]
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise OtoscopeError(f"{path} is not a pair file ({type(err).__name__}: {err}); it needs \"clean\" and "
                            "\"answer\" (see docs/audio_llm.md).") from None
    answer, wrong = _reply(answer), _reply(data.get("wrong"))
    if not answer:
        raise OtoscopeError(f"{path} has an empty \"answer\"; give the word the clean run should say.")
    prompt = data.get("prompt", None if data.get("input_ids") else DEFAULT_PROMPT)
    return ListenPair(path.parent.name, clean, corrupt, answer, wrong, prompt, data.get("corrupt_prompt"),
                      data.get("input_ids"), data.get("corrupt_input_ids"))


def _reply(answer):
    """A text answer as the start of the assistant's reply: without the leading space of a Whisper-style answer
    (``" London"`` from ``otoscope pairs word``); token ids pass unchanged."""
    return answer.strip() if isinstance(answer, str) else answer


def load_listen_pairs(folder: str | Path, sample_rate: int = 16_000) -> list[ListenPair]:
    """Every pair under ``folder``: the folder itself when it holds ``pair.json``, else its sub-folders that do."""
    folder = Path(folder)
    if (folder / "pair.json").is_file():
        return [load_listen_pair(folder, sample_rate)]
    if not folder.is_dir():
        raise OtoscopeError(f"pairs folder not found: {folder}; pass a folder of pair folders (each with pair.json).")
    found = sorted(p for p in folder.iterdir() if (p / "pair.json").is_file())
    if not found:
        raise OtoscopeError(f"{folder} holds no pair folders (sub-folders with pair.json); make some with 'otoscope pairs'.")
    return [load_listen_pair(p, sample_rate) for p in found]


@dataclass
class PreparedListenPair:
    """A pair's model inputs, checked to line up position by position, and its metric's token ids."""

    pair: ListenPair
    """The pair."""
    clean: "AudioLLMInputs"
    """Clean inputs (one row)."""
    corrupt: "AudioLLMInputs"
    """Corrupt inputs (one row, same positions)."""
    answer_id: int
    """First token of the answer."""
    wrong_id: int | None
    """First token of the wrong answer, or None."""

    @property
    def positions(self):
        """The shared :class:`~otoscope.models.adapters.audio_llm_prompt.LLMPositions`."""
        return self.clean.positions[0]

    @property
    def metric_name(self) -> str:
        """``logit_diff`` or ``logprob``."""
        return "logprob" if self.wrong_id is None else "logit_diff"

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """Metric of readout logits ``[..., vocab]`` → ``[...]``."""
        logits = logits.float()
        if self.wrong_id is None:
            return logits.log_softmax(-1)[..., self.answer_id]
        return logits[..., self.answer_id] - logits[..., self.wrong_id]


def _first_token(model: "HookedAudioModel", answer, what: str) -> int:
    if isinstance(answer, str):
        if model.tokenizer is None:
            raise OtoscopeError(f"the {what} is text but {model.name} has no tokenizer; give its token ids instead.")
        ids = model.tokenizer(answer, add_special_tokens=False).input_ids
    else:
        ids = list(answer)
    if not ids:
        raise OtoscopeError(f"the {what} {answer!r} has no tokens; give a non-empty word.")
    return int(ids[0])


def prepare_listen_pair(model: "HookedAudioModel", pair: ListenPair) -> PreparedListenPair:
    """Inputs of both runs; raises when their positions do not line up (patching needs them to)."""
    if model.llm_adapter is None:
        raise OtoscopeError(f"{model.name} is not an audio-LLM; for Whisper use 'otoscope patch' and its --grounding.")
    clean = model.prepare([pair.clean], pair.prompt if pair.input_ids is None else None, input_ids=pair.input_ids)
    corrupt_prompt = pair.corrupt_prompt if pair.corrupt_prompt is not None else pair.prompt
    corrupt_ids = pair.corrupt_input_ids if pair.corrupt_input_ids is not None else pair.input_ids
    corrupt = model.prepare([pair.corrupt], corrupt_prompt if corrupt_ids is None else None, input_ids=corrupt_ids)
    a, b = clean.positions[0], corrupt.positions[0]
    if clean.input_ids.shape != corrupt.input_ids.shape:
        raise OtoscopeError(f"pair '{pair.name}': the clean and corrupt inputs are {a.n_tokens} and {b.n_tokens} tokens "
                            f"({len(a.audio)} and {len(b.audio)} audio tokens); patching needs equal positions: make the "
                            "prompts tokenize to the same length (swap a word for one of as many tokens) and the clips "
                            "equally long (otoscope pairs pads them).")
    if a.audio != b.audio:
        raise OtoscopeError(f"pair '{pair.name}': the audio placeholders sit at different positions in the two prompts; "
                            "change only words after the audio, or keep the text before it equally long.")
    answer = _first_token(model, pair.answer, "answer")
    wrong = None if pair.wrong is None else _first_token(model, pair.wrong, "wrong answer")
    if wrong == answer:
        raise OtoscopeError(f"pair '{pair.name}': the answer and the wrong answer start with the same token; "
                            "pick answers whose first tokens differ.")
    return PreparedListenPair(pair, clean, corrupt, answer, wrong)
