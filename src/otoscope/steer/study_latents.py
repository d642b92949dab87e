"""The SAE-latent half of the study: non-speech latents per layer, latent gates, and clamping latents.

Per encoder layer (one SAE each, trained on the fit half or given): the latents most selective for
non-speech with their selectivity and frequency, the latent gate's accuracy on both halves, and the
held-out sweep of clamping those latents in the encoder (ungated and latent-gated) per strength. A
latent clamp changes the encoder, so every setting re-runs it: the sweep runs on an evenly spaced subset
of the held-out clips (``StudyConfig.latent_clips``), while the chosen intervention, whatever it is, is
measured on all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from otoscope.steer.encoded import Encoded, encode
from otoscope.steer.silence import GATED, SilenceFit, _rank, encode_steered, gate_opens, latent_steer, mix
from otoscope.steer.transcripts import decode, hallucination_rate, mean_wer

if TYPE_CHECKING:
    from otoscope.steer.study import StudyConfig

TOP_ROWS = 10  # latents listed per layer in the report


def latent_layers(fit: SilenceFit, held_s: Encoded, held_n: Encoded) -> list[dict]:
    """Per SAE layer: the top non-speech latents (selectivity, frequency) and the latent gate's accuracy."""
    rows = []
    for layer, stats in sorted(fit.latent_stats.items()):
        gate = fit.latent_gates.get(layer)
        row = {"layer": layer, "top_latents": stats.rows(stats.top(TOP_ROWS)),
               "selective_latents": int(((stats.selectivity > 2) & (stats.frequency_nonspeech >= 0.05)).sum()),
               "highly_selective_latents": int(((stats.selectivity > 4) & (stats.frequency_nonspeech >= 0.05)).sum())}
        if gate is not None:
            o_s, o_n = gate_opens(gate, held_s), gate_opens(gate, held_n)
            row.update({"gate_latents": gate.gate.latents, "gate_threshold": gate.gate.threshold,
                        "latent_gate_fit_accuracy": gate.accuracy, "latent_gate_margin_sd": gate.margin,
                        "latent_gate_heldout_accuracy": float(((~o_s).sum() + o_n.sum()) / (len(o_s) + len(o_n)))})
        rows.append(row)
    return rows


def spaced(n: int, k: int | None) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all when ``k`` is None or ≥ n)."""
    if k is None or k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)}) if k > 1 else [0]


def clamp_sweep(model, fit: SilenceFit, config: "StudyConfig", held_s: Encoded, held_n: Encoded, refs: Sequence[str],
                base_s: Sequence[str], base_n: Sequence[str], progress: bool = False) -> list[dict]:
    """Held-out hallucination rate and WER of clamping each layer's non-speech latents, per strength, ungated
    and latent-gated, on an evenly spaced subset of the held-out clips."""
    rows_s = spaced(len(held_s.clips), config.latent_clips[0])
    rows_n = spaced(len(held_n.clips), config.latent_clips[1])
    sub_refs, sub_base_s, sub_base_n = [refs[i] for i in rows_s], [base_s[i] for i in rows_s], [base_n[i] for i in rows_n]
    out = []
    for layer, gate in sorted(fit.latent_gates.items()):
        o_s = [bool(gate_opens(gate, held_s)[i]) for i in rows_s]
        o_n = [bool(gate_opens(gate, held_n)[i]) for i in rows_n]
        for alpha in config.latent_alphas:
            steer = latent_steer(model, gate.gate.sae, fit.latent_stats[layer], gate.gate.latents, alpha)
            ts = decode(model, encode_steered(model, held_s, steer, rows_s))
            tn = decode(model, encode_steered(model, held_n, steer, rows_n))
            for method, s_texts, n_texts in (("encoder_latents", ts, tn),
                                             ("latent_gated_encoder_latents", mix(ts, sub_base_s, o_s), mix(tn, sub_base_n, o_n))):
                out.append({"method": method, "layer": layer, "alpha": float(alpha),
                            "hallucination_rate": hallucination_rate(n_texts), "wer": mean_wer(sub_refs, s_texts),
                            "baseline_hallucination_rate": hallucination_rate(sub_base_n),
                            "baseline_wer": mean_wer(sub_refs, sub_base_s), "n_speech": len(rows_s),
                            "n_nonspeech": len(rows_n), "examples": n_texts[:3]})
    return out


def best_per_method(fit: SilenceFit) -> dict[str, dict]:
    """For each method, the candidate ``steer silence``'s rule picks on the fit half among that method alone."""
    from otoscope.steer.silence import MAX_WER_INCREASE

    out = {}
    for method in sorted({c.method for c in fit.candidates}):
        mine = [c for c in fit.candidates if c.method == method and c.wer_change is not None]
        ok = [c for c in mine if c.wer_change <= MAX_WER_INCREASE] or mine
        if ok:
            c = min(ok, key=_rank)
            out[method] = {"layer": c.layer, "alpha": c.alpha, "fit_hallucination_rate": c.hallucination_rate,
                           "fit_wer_change": c.wer_change, "gated": method in GATED}
    return out


def steered_texts(model, intervention, held_s: Encoded, held_n: Encoded) -> tuple[list[str], list[str]]:
    """Held-out transcripts under an encoder-side intervention (live gate), from a fresh encoder pass."""
    from otoscope.steer.saved import applied

    with applied(model, intervention):
        s, n = encode(model, held_s.clips), encode(model, held_n.clips)
    return decode(model, s), decode(model, n)
