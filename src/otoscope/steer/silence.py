"""Choosing an intervention that empties Whisper's transcripts of non-speech and keeps those of speech.

Why the first decoding step: Whisper may not end a transcript before its first token (its generation
config suppresses ``<|endoftext|>`` there), so on non-speech it must say *something*, and its best guess
is a filler word ("you"). The encoder already separates speech from non-speech linearly (probe accuracy
near 1 from the first layers), so pushing the encoder further to the non-speech side changes nothing
about that forced choice. What works is to give the first step a word-free way out: steer the
decoder's residual at the first-prediction position along the unembedding of an ellipsis token
(``...``). Non-speech has nothing more to say and ends; speech mostly continues with its words after the
ellipsis (the normaliser drops it), but not always: ungated, the push costs fit speech 0.07–0.41 WER at the
strengths that silence non-speech, which is why the gate matters and why the choice weighs what an erring
gate would cost (:func:`_rank`). A gate (mean projection of an encoder layer on the
non-speech − speech direction, threshold fitted here) optionally restricts the edit to clips that
already look non-speech; or a latent gate (summed activation of the SAE latents most selective for
non-speech at an encoder layer, :mod:`otoscope.steer.nonspeech_latents`) does.

With SAEs (one per encoder layer), two more kinds of candidate: the latent-gated decoder push above, and
clamping the non-speech latents in the encoder (:class:`~otoscope.steer.latent_steer.LatentSteer`),
ungated or latent-gated: the SAE analogue of the encoder difference of means.

Everything is chosen on the clips given (the fit set); nothing here looks at held-out data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from otoscope.errors import OtoscopeError
from otoscope.steer.direction import Direction, Gate
from otoscope.steer.encoded import Encoded, encode, first_step
from otoscope.steer.latent_steer import LatentSteer, latent_steering
from otoscope.steer.nonspeech_latents import (LatentGateFit, LatentStats, fit_latent_gate, latent_gate_opens, latent_stats,
                                              threshold_above)
from otoscope.steer.transcripts import decode, hallucination_rate, is_hallucination, mean_wer

if TYPE_CHECKING:
    from otoscope.sae.model import SparseAutoencoder

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

TARGET_TOKENS = ("...",)  # a word-free first token after which Whisper can end, or go on with the speech
# (" ..." was tried too: animal sounds then go on "...Haha!")
ALPHAS = (0.25, 0.5, 1.0)  # strengths swept, in units of the mean residual norm at the hook
LATENT_ALPHAS = (1.0, 4.0)  # encoder latent clamps: multiples of the latents' typical non-speech activation
MAX_WER_INCREASE = 0.005  # on the fit set's speech, relative to its own unsteered transcripts
SCREEN_CLIPS = 6  # non-speech clips a latent clamp is first tried on (see choose_silencer)
GATED = ("gated_decoder_token", "latent_gated_decoder_token", "latent_gated_encoder_latents")


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
    threshold, accuracy, margin = threshold_above(s @ v, n @ v)
    hook = f"encoder.blocks.{layer}.hook_resid_post"
    return GateFit(layer, Gate(hook, v, threshold, "clip"), accuracy, margin)


def gate_opens(fit: GateFit | LatentGateFit, encoded: Encoded) -> torch.Tensor:
    """``[clips]`` bool: where ``fit``'s gate opens on cached clip means or latent sums (same score as the live gate)."""
    if isinstance(fit, LatentGateFit):
        return latent_gate_opens(fit, encoded)
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


def latent_steer(model, sae: "SparseAutoencoder", stats: LatentStats, latents: list[int], alpha: float,
                 gate: LatentGateFit | None = None) -> LatentSteer:
    """Clamp ``latents`` of ``sae`` at ``stats.layer`` to ``alpha ×`` their mean non-speech activation."""
    return LatentSteer(sae, f"encoder.blocks.{stats.layer}.hook_resid_post", model.name, latents,
                       stats.mean_active[latents].tolist(), alpha, None if gate is None else gate.gate)


def encode_steered(model, encoded: Encoded, steer: LatentSteer, rows: Sequence[int] | None = None) -> Encoded:
    """Re-run the encoder on ``encoded``'s clips (or ``rows`` of them) with ``steer``'s latent clamp, ungated."""
    rows = list(range(len(encoded.clips))) if rows is None else list(rows)
    ungated = LatentSteer(steer.sae, steer.hook, steer.model, steer.latents, steer.reference, steer.alpha)
    with latent_steering(model, ungated):
        return encode(model, [encoded.clips[i] for i in rows])


def mix(steered: Sequence[str], base: Sequence[str], opens: Sequence[bool]) -> list[str]:
    """Gated transcripts: the steered one where the gate opens, the unsteered one elsewhere."""
    return [t if o else b for t, b, o in zip(steered, base, opens)]


@dataclass
class Candidate:
    """One intervention tried on the fit set."""

    method: str
    """``decoder_token`` (ungated), ``gated_decoder_token`` (direction gate), ``latent_gated_decoder_token``,
    ``encoder_latents`` (ungated latent clamp) or ``latent_gated_encoder_latents``."""
    token: str
    """Target token (decoder methods; empty for latent clamps)."""
    layer: int
    """Decoder block (decoder methods) or encoder block (latent clamps)."""
    alpha: float
    """Strength: mean-norm units (decoder methods) or multiples of the latents' typical activation (clamps)."""
    hallucination_rate: float
    """On the fit non-speech clips (on the first ``SCREEN_CLIPS`` of them when ``screened``)."""
    wer_change: float | None
    """Mean WER of steered speech transcripts against the unsteered ones (None: not measured, because its
    non-speech rate could not beat a candidate already found)."""
    gate_margin: float = 0.0
    """The gate's fit margin (standard deviations) for gated methods."""
    wer_ungated: float | None = None
    """Mean WER change on the fit speech when the same edit reaches every speech clip: what a gate that opens
    wrongly would cost (equal to ``wer_change`` for ungated methods; None: not measured)."""
    weaker_rate: float = 1.0
    """Fit hallucination rate of the same edit one strength weaker in its sweep (the unsteered rate for the
    weakest): how far this strength sits from the edge of silencing (0: one step weaker is already silent)."""
    relative_strength: float = 1.0
    """``alpha`` over the largest strength swept for this kind of edit (unit-free, in (0, 1])."""
    screened: bool = False
    """True when it was dropped after the first ``SCREEN_CLIPS`` non-speech clips (its rate is then a bound)."""


@dataclass
class SilenceFit:
    """The chosen intervention and what was tried."""

    intervention: "Direction | LatentSteer"
    """Chosen intervention (a decoder direction, gated or not, or a latent clamp); ``.save(folder)`` writes it."""
    chosen: Candidate
    """Its fit-set figures."""
    candidates: list[Candidate] = field(default_factory=list)
    """Everything tried."""
    gate: GateFit | None = None
    """The best direction gate found."""
    latent_gate: LatentGateFit | None = None
    """The best latent gate found (with SAEs)."""
    latent_gates: dict[int, LatentGateFit] = field(default_factory=dict)
    """The latent gate of every SAE layer."""
    latent_stats: dict[int, LatentStats] = field(default_factory=dict)
    """Per SAE layer, the latent statistics on the fit clips."""
    baseline_hallucination_rate: float = 0.0
    """Fit non-speech hallucination rate without steering."""

    @property
    def direction(self) -> "Direction | LatentSteer":
        """The chosen intervention (older name)."""
        return self.intervention


def _rank(c: Candidate) -> tuple:
    """Sort key of a candidate (smaller is better); every term is unit-free, so kinds of edit compare fairly.

    1. fewest fit hallucinations;
    2. the margin on non-speech (``weaker_rate``: the rate one strength weaker): the fit set is small, and a
       strength that only just empties every fit clip sits at the edge, where unseen non-speech slips
       through; one whose weaker neighbour is already silent does not;
    3. the least speech damage if the gate errs (``wer_ungated``: WER, the same unit for every kind): a gate
       fitted on a few clips will misfire on some unseen speech, and the edit that is milder even then is
       the safer one (a decoder push costs speech some words; an encoder latent clamp can cost all of them);
    4. gated before ungated (speech is protected by the gate);
    5. the gate with the larger margin (standard deviations of its fit scores);
    6. the larger strength relative to its own sweep; 7. the later layer.

    Raw α is never compared across kinds: it is mean-norm units for a decoder push and multiples of a
    typical activation for a latent clamp (the earlier rule did, and picked a clamp whose gate then misfired
    on held-out speech).
    """
    damage = 1e9 if c.wer_ungated is None else c.wer_ungated
    return (c.hallucination_rate, c.weaker_rate, damage, c.method not in GATED, -c.gate_margin, -c.relative_strength,
            -c.layer)


def _set_weaker_rates(candidates: Sequence[Candidate], unsteered: float) -> None:
    """Fill each candidate's ``weaker_rate`` from the candidates of the same edit (method, token, layer)."""
    groups: dict[tuple, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault((c.method, c.token, c.layer), []).append(c)
    for group in groups.values():
        group.sort(key=lambda c: c.alpha)
        for weaker, c in zip([None] + group[:-1], group):
            c.weaker_rate = unsteered if weaker is None else weaker.hallucination_rate


def choose_silencer(model: HookedAudioModel, speech: Sequence, nonspeech: Sequence, *, alphas: Sequence[float] = ALPHAS,
                    tokens: Sequence[str] = TARGET_TOKENS, layers: Sequence[int] | None = None,
                    encoded: tuple[Encoded, Encoded] | None = None, progress: bool = False,
                    saes: dict[int, "SparseAutoencoder"] | None = None, latent_alphas: Sequence[float] = LATENT_ALPHAS,
                    latent_layers: Sequence[int] | None = None) -> SilenceFit:
    """Choose the intervention, its layer, strength and gating on ``speech`` / ``nonspeech`` clips.

    Candidates: the decoder token push (ungated, direction-gated, and latent-gated when ``saes`` are given)
    and, with ``saes`` (encoder layer → SAE), clamping the non-speech latents at ``latent_layers`` (default:
    every SAE layer), ungated and latent-gated. Picks, among candidates whose speech transcripts change by at
    most ``MAX_WER_INCREASE`` WER, the best by :func:`_rank`: the lowest non-speech hallucination rate, then
    the largest margin on non-speech (silent one strength weaker), the least speech damage should the gate
    err, then gated, the larger gate margin, the larger strength relative to its own sweep, the later layer. ``encoded``
    (speech, non-speech) must carry latent sums for ``saes``' layers when both are given.
    """
    if model.adapter.decoding != "seq2seq":
        raise NotImplementedError(f"silencing steers Whisper's decoder; {type(model.model).__name__} has none.")
    if len(speech) < 2 or len(nonspeech) < 2:
        raise OtoscopeError("steer silence needs at least 2 speech and 2 non-speech clips.")
    saes = saes or {}
    enc_s, enc_n = encoded or (encode(model, speech, progress=progress, saes=saes),
                               encode(model, nonspeech, progress=progress, saes=saes))
    base_s, base_n = decode(model, enc_s), decode(model, enc_n)
    best_gate = max((fit_gate(enc_s, enc_n, layer) for layer in range(model.n_layers)), key=lambda g: (g.accuracy, g.margin))
    stats = {i: latent_stats(enc_s, enc_n, i) for i in saes}
    latent_gates = {i: fit_latent_gate(saes[i], enc_s, enc_n, i, st.common()) for i, st in stats.items() if st.common()}
    best_latent = max(latent_gates.values(), key=lambda g: (g.accuracy, g.margin)) if latent_gates else None
    gates = [("gated_decoder_token", best_gate)] + ([("latent_gated_decoder_token", best_latent)] if best_latent else [])
    opens = {m: (gate_opens(g, enc_s).tolist(), gate_opens(g, enc_n).tolist()) for m, g in gates}
    layers = list(range(model.n_decoder_layers)) if layers is None else list(layers)
    both = enc_s + enc_n
    candidates: list[tuple[Candidate, object]] = []
    for token in tokens:
        for layer in layers:
            direction = token_direction(model, token, layer, both)
            for alpha in alphas:
                steered_s, steered_n = decode(model, enc_s, direction, alpha), decode(model, enc_n, direction, alpha)
                ungated_wer = mean_wer(base_s, steered_s)
                strength = float(alpha) / max(alphas)
                cand = Candidate("decoder_token", token, layer, float(alpha), hallucination_rate(steered_n),
                                 ungated_wer, wer_ungated=ungated_wer, relative_strength=strength)
                candidates.append((cand, Direction(direction.vector, direction.hook, model.name, float(alpha), "add",
                                                   "mean_norm", direction.scale, "first", None, {})))
                for method, fit in gates:
                    o_s, o_n = opens[method]
                    cand = Candidate(method, token, layer, float(alpha), hallucination_rate(mix(steered_n, base_n, o_n)),
                                     mean_wer(base_s, mix(steered_s, base_s, o_s)), fit.margin,
                                     wer_ungated=ungated_wer, relative_strength=strength)
                    candidates.append((cand, Direction(direction.vector, direction.hook, model.name, float(alpha), "add",
                                                       "mean_norm", direction.scale, "first", fit.gate, {})))
    for layer in (sorted(latent_gates) if latent_layers is None else [i for i in latent_layers if i in latent_gates]):
        fit = latent_gates[layer]
        o_s, o_n = gate_opens(fit, enc_s).tolist(), gate_opens(fit, enc_n).tolist()
        for alpha in latent_alphas:
            steer = latent_steer(model, saes[layer], stats[layer], fit.gate.latents, float(alpha))
            best = min((c.hallucination_rate for c, _ in candidates if c.wer_change is not None
                        and c.wer_change <= MAX_WER_INCREASE), default=1.0)
            # re-running the encoder is costly: first a few non-speech clips; when they alone already give more
            # hallucinations than the best candidate has in all, neither variant can win (a bound, not a guess)
            strength = float(alpha) / max(latent_alphas)
            first = list(range(min(SCREEN_CLIPS, len(base_n))))
            screened = decode(model, encode_steered(model, enc_n, steer, first))
            gated_first = mix(screened, [base_n[i] for i in first], [o_n[i] for i in first])
            if min(sum(map(is_hallucination, texts)) for texts in (screened, gated_first)) / len(base_n) > best:
                for method, texts, margin in (("encoder_latents", screened, 0.0),
                                              ("latent_gated_encoder_latents", gated_first, fit.margin)):
                    candidates.append((Candidate(method, "", layer, float(alpha), hallucination_rate(texts), None, margin,
                                                 relative_strength=strength, screened=True), None))
                continue
            rest = list(range(len(first), len(base_n)))
            steered_n = screened + (decode(model, encode_steered(model, enc_n, steer, rest)) if rest else [])
            rates = {"encoder_latents": hallucination_rate(steered_n),
                     "latent_gated_encoder_latents": hallucination_rate(mix(steered_n, base_n, o_n))}
            # only a candidate that could win is measured on speech, on every clip: the ungated WER is also
            # what the gated clamp would cost where its gate errs (see _rank)
            steered_s = decode(model, encode_steered(model, enc_s, steer)) if min(rates.values()) <= best else None
            ungated_wer = None if steered_s is None else mean_wer(base_s, steered_s)
            for method, o, margin in (("encoder_latents", None, 0.0), ("latent_gated_encoder_latents", o_s, fit.margin)):
                wer = None
                if steered_s is not None and rates[method] <= best:
                    wer = mean_wer(base_s, steered_s if o is None else mix(steered_s, base_s, o))
                candidates.append((Candidate(method, "", layer, float(alpha), rates[method], wer, margin,
                                             wer_ungated=ungated_wer, relative_strength=strength),
                                   latent_steer(model, saes[layer], stats[layer], fit.gate.latents, float(alpha),
                                                None if o is None else fit)))
    _set_weaker_rates([c for c, _ in candidates], hallucination_rate(base_n))
    measured = [(c, x) for c, x in candidates if c.wer_change is not None]
    ok = [(c, x) for c, x in measured if c.wer_change <= MAX_WER_INCREASE] or measured
    chosen, intervention = min(ok, key=lambda cx: _rank(cx[0]))
    intervention.meta = {"method": chosen.method, "token": chosen.token,
                         "fit": {"hallucination_rate": chosen.hallucination_rate, "wer_change": chosen.wer_change,
                                 "wer_ungated": chosen.wer_ungated, "weaker_rate": chosen.weaker_rate,
                                 "baseline_hallucination_rate": hallucination_rate(base_n),
                                 "n_speech": len(enc_s.clips), "n_nonspeech": len(enc_n.clips),
                                 "gate_layer": best_gate.layer, "gate_accuracy": best_gate.accuracy,
                                 **({"latent_gate_layer": best_latent.layer, "latent_gate_accuracy": best_latent.accuracy,
                                     "latent_gate_latents": best_latent.gate.latents} if best_latent else {})}}
    return SilenceFit(intervention, chosen, [c for c, _ in candidates], best_gate, best_latent, latent_gates, stats,
                      hallucination_rate(base_n))
