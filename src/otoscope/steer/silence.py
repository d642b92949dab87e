"""Choosing an intervention that empties Whisper's transcripts of non-speech and keeps those of speech.

Why the first decoding step: Whisper may not end a transcript before its first token (its generation
config suppresses ``<|endoftext|>`` there), so on non-speech it must say *something*, and its best guess
is a filler word ("you"). The encoder already separates speech from non-speech linearly (probe accuracy
near 1 from the first layers), so pushing the encoder further to the non-speech side changes nothing
about that forced choice. What works is to give the first step a word-free way out: steer the
decoder's residual at the first-prediction position along the unembedding of an ellipsis token
(``...``). Speech continues with its words after the ellipsis (the normaliser drops it, WER unchanged);
non-speech has nothing more to say and ends. A gate (mean projection of an encoder layer on the
non-speech − speech direction, threshold fitted here) optionally restricts the edit to clips that
already look non-speech.

Everything is chosen on the clips given (the fit set); nothing here looks at held-out data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from otoscope.errors import OtoscopeError
from otoscope.steer.direction import Direction, Gate
from otoscope.steer.encoded import Encoded, encode, first_step
from otoscope.steer.transcripts import decode, hallucination_rate, mean_wer

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

TARGET_TOKENS = ("...",)  # a word-free first token after which Whisper can end, or go on with the speech
# (" ..." was tried too: animal sounds then go on "...Haha!")
ALPHAS = (0.25, 0.5, 1.0)  # strengths swept, in units of the mean residual norm at the hook
MAX_WER_INCREASE = 0.005  # on the fit set's speech, relative to its own unsteered transcripts


@dataclass
class GateFit:
    """A clip gate fitted at one encoder layer."""

    layer: int
    """Encoder block index."""
    gate: Gate
    """The gate (direction: mean non-speech − mean speech clip means)."""
    accuracy: float
    """Fraction of fit clips on the right side of the threshold."""
    margin: float
    """Gap between the threshold and the nearest fit clip, in standard deviations of the scores."""


def fit_gate(encoded_speech: Encoded, encoded_nonspeech: Encoded, layer: int) -> GateFit:
    """Fit a clip gate at encoder ``layer``: threshold just above every fit speech clip's score when possible."""
    s = encoded_speech.layer_means[:, layer]  # [clips, d_model]
    n = encoded_nonspeech.layer_means[:, layer]
    v = n.mean(0) - s.mean(0)
    v = v / v.norm()
    ss, ns = s @ v, n @ v
    top_speech = float(ss.max())
    above = ns[ns > top_speech]
    threshold = (top_speech + float(above.min())) / 2 if above.numel() else top_speech + 1e-3
    accuracy = float(((ss <= threshold).sum() + (ns > threshold).sum()) / (len(ss) + len(ns)))
    spread = float(torch.cat([ss, ns]).std()) or 1.0
    nearest = float(torch.cat([ss, ns]).sub(threshold).abs().min())
    hook = f"encoder.blocks.{layer}.hook_resid_post"
    return GateFit(layer, Gate(hook, v, threshold, "clip"), accuracy, nearest / spread)


def gate_opens(fit: GateFit, encoded: Encoded) -> torch.Tensor:
    """``[clips]`` bool: where ``fit``'s gate opens on cached clip means (same score as the live gate)."""
    return (encoded.layer_means[:, fit.layer] @ fit.gate.vector) > fit.gate.threshold


def token_direction(model: HookedAudioModel, token: str, layer: int, encoded: Encoded) -> Direction:
    """Direction along ``token``'s unembedding at ``decoder.blocks.{layer}.hook_resid_post``, first position.

    Its scale is the mean residual norm at that hook and position over ``encoded``'s clips.
    """
    ids = model.to_tokens(token)
    if len(ids) != 1:
        raise OtoscopeError(f"'{token}' is {len(ids)} tokens; a target must be a single token.")
    hook = f"decoder.blocks.{layer}.hook_resid_post"
    _, grabbed = first_step(model, encoded.states, [hook])
    scale = float(grabbed[hook].norm(dim=-1).mean())
    row = model.model.get_output_embeddings().weight[ids[0]].detach()
    return Direction(row, hook, model.name, 1.0, "add", "mean_norm", scale, "first",
                     meta={"method": "unembedding", "token": token})


@dataclass
class Candidate:
    """One intervention tried on the fit set."""

    method: str
    """``decoder_token`` (ungated) or ``gated_decoder_token``."""
    token: str
    """Target token."""
    layer: int
    """Decoder block."""
    alpha: float
    """Strength (mean-norm units)."""
    hallucination_rate: float
    """On the fit non-speech clips."""
    wer_change: float
    """Mean WER of steered speech transcripts against the unsteered ones."""


@dataclass
class SilenceFit:
    """The chosen intervention and what was tried."""

    direction: Direction
    """Chosen direction (with its gate when gated)."""
    chosen: Candidate
    """Its fit-set figures."""
    candidates: list[Candidate] = field(default_factory=list)
    """Everything tried."""
    gate: GateFit | None = None
    """The best gate found (used by gated candidates)."""
    baseline_hallucination_rate: float = 0.0
    """Fit non-speech hallucination rate without steering."""


def choose_silencer(model: HookedAudioModel, speech: Sequence, nonspeech: Sequence, *, alphas: Sequence[float] = ALPHAS,
                    tokens: Sequence[str] = TARGET_TOKENS, layers: Sequence[int] | None = None,
                    encoded: tuple[Encoded, Encoded] | None = None, progress: bool = False) -> SilenceFit:
    """Choose target token, decoder layer, strength and gating on ``speech`` / ``nonspeech`` clips.

    Picks the lowest non-speech hallucination rate among candidates whose speech transcripts change by at
    most ``MAX_WER_INCREASE`` WER; ties go to the gated variant, then the smaller strength, then the later layer.
    """
    if model.adapter.decoding != "seq2seq":
        raise NotImplementedError(f"silencing steers Whisper's decoder; {type(model.model).__name__} has none.")
    if len(speech) < 2 or len(nonspeech) < 2:
        raise OtoscopeError("steer silence needs at least 2 speech and 2 non-speech clips.")
    enc_s, enc_n = encoded or (encode(model, speech, progress=progress), encode(model, nonspeech, progress=progress))
    base_s, base_n = decode(model, enc_s), decode(model, enc_n)
    gates = [fit_gate(enc_s, enc_n, layer) for layer in range(model.n_layers)]
    best_gate = max(gates, key=lambda g: (g.accuracy, g.margin))
    open_s, open_n = gate_opens(best_gate, enc_s), gate_opens(best_gate, enc_n)
    layers = list(range(model.n_decoder_layers)) if layers is None else list(layers)
    both = enc_s + enc_n
    candidates: list[tuple[Candidate, Direction]] = []
    for token in tokens:
        for layer in layers:
            direction = token_direction(model, token, layer, both)
            for alpha in alphas:
                steered_s, steered_n = decode(model, enc_s, direction, alpha), decode(model, enc_n, direction, alpha)
                gated_s = [t if o else b for t, b, o in zip(steered_s, base_s, open_s.tolist())]
                gated_n = [t if o else b for t, b, o in zip(steered_n, base_n, open_n.tolist())]
                for method, s_texts, n_texts in (("decoder_token", steered_s, steered_n),
                                                 ("gated_decoder_token", gated_s, gated_n)):
                    cand = Candidate(method, token, layer, float(alpha), hallucination_rate(n_texts),
                                     mean_wer(base_s, s_texts))
                    candidates.append((cand, direction))
    ok = [(c, d) for c, d in candidates if c.wer_change <= MAX_WER_INCREASE] or candidates
    chosen, direction = min(ok, key=lambda cd: (cd[0].hallucination_rate, cd[0].method != "gated_decoder_token",
                                                cd[0].alpha, -cd[0].layer))
    direction = Direction(direction.vector, direction.hook, model.name, chosen.alpha, "add", "mean_norm",
                          direction.scale, "first", best_gate.gate if chosen.method.startswith("gated") else None,
                          {"method": chosen.method, "token": chosen.token,
                           "fit": {"hallucination_rate": chosen.hallucination_rate, "wer_change": chosen.wer_change,
                                   "baseline_hallucination_rate": hallucination_rate(base_n),
                                   "n_speech": len(enc_s.clips), "n_nonspeech": len(enc_n.clips),
                                   "gate_layer": best_gate.layer, "gate_accuracy": best_gate.accuracy}})
    return SilenceFit(direction, chosen, [c for c, _ in candidates], best_gate, hallucination_rate(base_n))
