"""Evaluating an SAE on audio: reconstruction, the cost of splicing it in, and stability across seeds.

For each batch of clips one clean forward pass gives the model's outputs and the hook's activations (real
positions only: Whisper's padding frames are neither measured nor replaced — the SAE never saw them).
Two more passes give the outputs with the activation replaced by the SAE's reconstruction and by zeros.

* Whisper: teacher-forced next-token cross-entropy on the transcript (plus end-of-text), its KL from the
  clean distribution, and the fraction of loss recovered ``(CE_zero − CE_sae) / (CE_zero − CE_clean)``;
  greedy transcripts with and without the SAE give the WER change.
* CTC models (wav2vec2-base-960h …): per-frame KL from the clean output; fraction recovered
  ``(KL_zero − KL_sae) / KL_zero`` (the same formula with the clean output as the label); WER when the
  model has a tokenizer.
* Bare encoders: the final hidden state's FVU against the clean one, and ``1 − FVU_sae / FVU_zero``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from otoscope.audio.io import Clip, to_clip
from otoscope.errors import OtoscopeError
from otoscope.sae.corpus import Corpus, open_corpus
from otoscope.sae.metrics import ReconstructionAccumulator, ReconstructionMetrics, StabilityResult, feature_match, sae_batch
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.splice import sae_hook, splice

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

EVAL_FILES = ("eval.json",)  # marks a folder as an earlier evaluation, which a new one may replace


@dataclass
class SplicedCost:
    """What replacing the activation by the SAE's reconstruction costs the model."""

    kind: str
    """``next-token`` (Whisper), ``ctc`` (frame-wise output distribution) or ``hidden`` (bare encoder)."""
    positions: int
    """Output positions scored (text tokens, or real frames)."""
    loss_recovered: float
    """Fraction of the zero-ablation damage the SAE avoids (1: as good as clean; 0: as bad as zeros)."""
    ce_clean: float | None = None
    """Whisper: mean next-token cross-entropy (nats) of the clean model."""
    ce_spliced: float | None = None
    """… with the SAE spliced in."""
    ce_zero: float | None = None
    """… with the activation zeroed."""
    kl_spliced: float | None = None
    """Mean KL(clean ‖ spliced) per position, nats."""
    kl_zero: float | None = None
    """Mean KL(clean ‖ zero-ablated) per position, nats."""
    output_fvu_spliced: float | None = None
    """Bare encoders: FVU of the final hidden state with the SAE."""
    output_fvu_zero: float | None = None
    """… with zeros."""
    wer_clean: float | None = None
    """Corpus WER of the clean greedy transcripts against the references."""
    wer_spliced: float | None = None
    """… with the SAE spliced in."""
    wer_change: float | None = None
    """``wer_spliced − wer_clean``."""
    transcripts: list[dict] = field(default_factory=list)
    """Per clip: name, reference, clean and spliced transcripts."""


@dataclass
class EvalReport:
    """Everything :func:`evaluate_sae` measured."""

    model: str
    """Model name."""
    hook: str
    """Hook point."""
    clips: int
    """Clips evaluated."""
    reconstruction: ReconstructionMetrics
    """Reconstruction of the hook's activations on the clips' real positions."""
    spliced: SplicedCost | None
    """Spliced-in cost (None when not asked for)."""
    stability: list[dict] = field(default_factory=list)
    """Per compared SAE: its path and :class:`StabilityResult` figures."""

    def to_json(self) -> dict:
        """The ``eval.json`` structure (strict JSON: undefined figures are null, not NaN)."""
        return _finite({"model": self.model, "hook": self.hook, "clips": self.clips,
                        "reconstruction": self.reconstruction.to_json(),
                        "spliced": asdict(self.spliced) if self.spliced else None, "stability": self.stability})


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _corpus_wer(refs: list[str], hyps: list[str]) -> float:
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    norm = BasicTextNormalizer()
    pairs = [(norm(r).strip(), norm(h).strip()) for r, h in zip(refs, hyps)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return float("nan")
    import jiwer

    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))


def _zero_real(mask: torch.Tensor):
    def zero(act, hook):
        keep = (~mask).to(act.device, act.dtype).view(*mask.shape, *([1] * (act.ndim - 2)))
        return act * keep if act.shape[:2] == mask.shape else act
    return zero


def _kl(clean: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """KL(clean ‖ other) per position over the last axis."""
    p = F.log_softmax(clean.double(), -1)
    return (p.exp() * (p - F.log_softmax(other.double(), -1))).sum(-1)


class _Totals:
    def __init__(self):
        self.sums: dict[str, float] = {}
        self.positions = 0

    def add(self, name: str, value: torch.Tensor) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(value.sum())

    def mean(self, name: str) -> float | None:
        return self.sums[name] / self.positions if name in self.sums and self.positions else None


@torch.no_grad()
def evaluate_sae(model: HookedAudioModel, sae: SparseAutoencoder, corpus, *, hook: str | None = None, batch_size: int = 4,
                 max_clips: int | None = None, spliced: bool = True, transcribe: bool = True,
                 compare: list[SparseAutoencoder | str | Path] = (), dense_threshold: float = 0.1,
                 out: str | Path | None = None) -> EvalReport:
    """Evaluate ``sae`` at ``hook`` (default: its own) of ``model`` on ``corpus`` (see :func:`open_corpus`).

    ``compare``: SAEs (or folders) of other seeds for the stability figure. With ``out``, writes ``eval.json``
    and ``density.png`` into that folder, replacing it as a whole (an earlier evaluation's, see :data:`EVAL_FILES`).
    """
    from otoscope._io import check_output_dir
    from otoscope.sae.format import load_sae
    from otoscope.sae.plots import plot_density

    if out is not None:
        out = check_output_dir(out, EVAL_FILES)
    hook = sae_hook(model, sae, hook)
    corpus = corpus if isinstance(corpus, Corpus) else open_corpus(corpus, limit=max_clips)
    items = [corpus[i] for i in range(min(len(corpus), max_clips or len(corpus)))]
    decoder_hook = hook.startswith("decoder.") and ".cross_attn.hook_k" not in hook and ".cross_attn.hook_v" not in hook
    kind = "next-token" if model.has_decoder else ("ctc" if model.adapter.has_ctc_head else "hidden")
    can_transcribe = transcribe and model.adapter.can_transcribe
    acc = ReconstructionAccumulator(sae.d_in, sae.d_sae)
    totals = _Totals()
    transcripts: list[dict] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        clips = [Clip(c.samples, c.sample_rate, item.name) for item, c in
                 ((item, to_clip(item.audio, model.geometry.sample_rate, item.sample_rate)) for item in batch)]
        need_text = spliced and model.has_decoder and any(not i.text for i in batch)  # CE needs a transcript
        clean_text = [t.text for t in model.transcribe(clips, batch_size=len(clips))] \
            if (spliced and can_transcribe) or need_text else [None] * len(clips)
        refs = [item.text or text or "" for item, text in zip(batch, clean_text)]
        if model.has_decoder:
            room = model.adapter.max_text_tokens  # long transcripts are cut to fit
            tokens = [(model.to_tokens(" " + r.strip() if r.strip() else "") + [model.eot])[:room] for r in refs]
            inputs = model.prepare(clips, tokens=tokens)
        else:
            inputs = model.prepare(clips)
        grabbed = {}
        with model.hooks([(hook, lambda act, h: grabbed.__setitem__("x", act.detach()))]):
            clean = model.forward_inputs(inputs)
        mask = inputs.token_mask if decoder_hook else inputs.frame_mask  # [batch, pos]: real positions
        x = grabbed["x"].reshape(*grabbed["x"].shape[:2], -1)[mask.to(grabbed["x"].device)]  # [real, d_in]
        if x.shape[-1] != sae.d_in:
            raise OtoscopeError(f"{hook} of {model.name} has width {x.shape[-1]} but the SAE reads d_in={sae.d_in}; "
                                "evaluate it on the model and hook it was trained on.")
        x_hat, counts, active = sae_batch(sae, x.to(sae.device, torch.float32))
        acc.add(x.float(), x_hat, counts, active)
        if not spliced:
            continue
        with splice(model, sae, hook) as sp:
            sp.mask = mask
            with_sae = model.forward_inputs(inputs)
            spliced_text = [t.text for t in model.transcribe(clips, batch_size=len(clips))] if can_transcribe else None
        with model.hooks([(hook, _zero_real(mask))]):
            zeroed = model.forward_inputs(inputs)
        _score(kind, model, inputs, clean, with_sae, zeroed, totals)
        if spliced_text is not None:
            transcripts += [{"name": c.name, "reference": r, "clean": a, "spliced": b}
                            for c, r, a, b in zip(clips, refs, clean_text, spliced_text)]
    cost = _cost(kind, totals, transcripts) if spliced else None
    stability = []
    for other in compare:
        other_sae = other if isinstance(other, SparseAutoencoder) else load_sae(other)
        match: StabilityResult = feature_match(sae, other_sae)
        stability.append({"other": str(other) if not isinstance(other, SparseAutoencoder) else "<sae>",
                          "matched_fraction": match.matched_fraction, "threshold": match.threshold,
                          "mean_max_cosine": match.mean_max_cosine})
    report = EvalReport(model.name, hook, len(items), acc.result(dense_threshold), cost, stability)
    if out is not None:
        from otoscope._io import atomic_dir, write_text_atomic

        with atomic_dir(out, markers=EVAL_FILES) as folder:
            write_text_atomic(folder / "eval.json", json.dumps(report.to_json(), indent=1))
            plot_density(report.reconstruction.frequency, folder / "density.png", title=f"{model.name} · {hook}")
    return report


def _score(kind: str, model, inputs, clean, with_sae, zeroed, totals: _Totals) -> None:
    if kind == "next-token":
        ids = inputs.decoder_input_ids.to(clean.device)  # [batch, tokens]
        scored = torch.zeros_like(ids, dtype=torch.bool)
        for b, start in enumerate(inputs.prefix_len):
            n = int(inputs.token_mask[b].sum())
            scored[b, start - 1 : n - 1] = True  # position p predicts token p + 1
        target = ids.roll(-1, dims=1)[scored]
        for name, logits in (("clean", clean), ("spliced", with_sae), ("zero", zeroed)):
            totals.add(f"ce_{name}", F.cross_entropy(logits[scored].double(), target, reduction="none"))
        totals.add("kl_spliced", _kl(clean[scored], with_sae[scored]))
        totals.add("kl_zero", _kl(clean[scored], zeroed[scored]))
        totals.positions += int(scored.sum())
        return
    real = inputs.frame_mask.to(clean.device)
    if kind == "ctc":
        totals.add("kl_spliced", _kl(clean[real], with_sae[real]))
        totals.add("kl_zero", _kl(clean[real], zeroed[real]))
    else:
        h = clean[real].double()
        variance = (h - h.mean(0)).pow(2).sum() / h.shape[0]
        totals.add("fvu_spliced", (with_sae[real].double() - h).pow(2).sum(-1) / variance)
        totals.add("fvu_zero", (zeroed[real].double() - h).pow(2).sum(-1) / variance)
    totals.positions += int(real.sum())


def _recovered(sae_value, zero_value, clean_value=0.0) -> float:
    damage = zero_value - clean_value
    return float((zero_value - sae_value) / damage) if damage > 0 else float("nan")


def _cost(kind: str, totals: _Totals, transcripts: list[dict]) -> SplicedCost:
    m = totals.mean
    if kind == "next-token":
        recovered = _recovered(m("ce_spliced"), m("ce_zero"), m("ce_clean"))
    elif kind == "ctc":
        recovered = _recovered(m("kl_spliced"), m("kl_zero"))
    else:
        recovered = _recovered(m("fvu_spliced"), m("fvu_zero"))
    cost = SplicedCost(kind, totals.positions, recovered, m("ce_clean"), m("ce_spliced"), m("ce_zero"), m("kl_spliced"),
                       m("kl_zero"), m("fvu_spliced"), m("fvu_zero"), transcripts=transcripts)
    if transcripts:
        refs = [t["reference"] for t in transcripts]
        cost.wer_clean = _corpus_wer(refs, [t["clean"] for t in transcripts])
        cost.wer_spliced = _corpus_wer(refs, [t["spliced"] for t in transcripts])
        cost.wer_change = cost.wer_spliced - cost.wer_clean
    return cost
