"""Label-based explanations of SAE latents, and their detection scores on held-out clips.

An explanation says which label a latent fires on ("fires on the word 'London'", "fires on kind
'nonspeech'"). It is read off a features folder (:class:`~otoscope.features.FeatureStats`): for each label
key, the majority value among the latent's top activations is a candidate when it holds at least
``min_share`` of them and the latent is selective for it (mean activation on that value over the mean on
the key's other labelled frames ≥ ``min_selectivity``). Among candidates the most specific wins: the one
with the highest *lift*, its share of the top activations over its share of all frames of the corpus (a
word that fills 2 % of the audio and all of the top activations beats "speech", which fills 80 %).

The detection score tests the explanation as a rule on clips it has not seen: the rule predicts the
latent fires on exactly the frames carrying the label; the latent actually fires where its activation is
> 0. Precision = correct predicted frames / predicted frames; recall = correct / firing frames (None when
there is nothing to divide by). Word labels on held-out clips come from word spans (``otoscope align
--json``), computed with the model's own alignment heads when none are given.

Free-text explainers (an LLM, an audio captioner) plug in as ``explainer(latent_record) -> str``; their
text replaces the label rule's, and since free text is no frame rule it is not scored.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import torch

from otoscope._io import write_text_atomic
from otoscope.errors import OtoscopeError
from otoscope.features.labels import WORD, LabelTable, build_labels
from otoscope.features.result import JSON_FILE, FeatureStats

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.sae.model import SparseAutoencoder

Explainer = Callable[[dict], "str | None"]


@dataclass
class ExplainConfig:
    """When a label explains a latent (:func:`explain_features`)."""

    min_share: float = 0.5
    """Least fraction of the top activations that must carry the label value."""
    min_selectivity: float = 2.0
    """Least selectivity for the value (mean activation on it / on the key's other labelled frames)."""
    min_top: int = 3
    """Least number of top activations a latent needs to be explained at all."""

    def __post_init__(self):
        if not 0.0 < self.min_share <= 1.0:
            raise OtoscopeError(f"min_share must be in (0, 1], got {self.min_share}.")
        if self.min_selectivity < 0:
            raise OtoscopeError(f"min_selectivity must be ≥ 0, got {self.min_selectivity}.")
        if self.min_top < 1:
            raise OtoscopeError(f"min_top must be at least 1, got {self.min_top}.")


@dataclass
class Explanation:
    """What one latent fires on, and how well that predicts its firing."""

    index: int
    """The latent."""
    text: str
    """The explanation in words."""
    key: str | None
    """Label key of the rule (None for a free-text explanation)."""
    value: str | None
    """Label value of the rule."""
    share: float | None = None
    """Fraction of the latent's top activations that carry the value."""
    lift: float | None = None
    """``share`` over the value's fraction of all frames of the features corpus."""
    precision: float | None = None
    """Held-out precision of the rule (None: not scored, or nothing predicted)."""
    recall: float | None = None
    """Held-out recall of the rule (None: not scored, or the latent never fired)."""
    source: str = "labels"
    """``labels`` (the label rule) or ``custom`` (an explainer callable)."""

    def to_dict(self) -> dict:
        """The ``explanation`` entry of ``features.json``."""
        out = asdict(self)
        out.pop("index")
        return out


def _text(key: str, value: str) -> str:
    return f"fires on the word '{value}'" if key == WORD else f"fires on {key} '{value}'"


def _base_rates(stats: FeatureStats) -> dict[tuple[str, str], float]:
    """Fraction of the corpus's real frames carrying each (key, value)."""
    frames: dict[tuple[str, str], float] = {}
    for clip in stats.clips:
        for key, value in clip.get("labels", {}).items():
            frames[(key, str(value))] = frames.get((key, str(value)), 0.0) + clip["frames"]
        covered = torch.zeros(clip["frames"] + 1, dtype=torch.long) - 1
        words = clip.get("words", [])
        for k, w in enumerate(words):  # a later overlapping word wins, as in the statistics
            covered[max(int(w["start"]), 0) : min(int(w["end"]), clip["frames"])] = k
        for k, n in zip(*torch.unique(covered[covered >= 0], return_counts=True)):
            word = (WORD, words[int(k)]["word"])
            frames[word] = frames.get(word, 0.0) + float(n)
    total = max(stats.frames, 1)
    return {k: v / total for k, v in frames.items()}


def _label_rule(stats: FeatureStats, i: int, top: list[dict], rates: dict, config: ExplainConfig) -> Explanation | None:
    best = None
    for key, entry in (stats.label_stats[i] if stats.label_stats else {}).items():
        counts = entry.get("top_counts") or {}
        if not counts:
            continue
        value, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # the majority; ties by name
        share = count / len(top)
        selectivity = (entry.get("selectivity") or {}).get(value)
        if share < config.min_share or selectivity is None or selectivity < config.min_selectivity:
            continue
        lift = share / max(rates.get((key, value), 0.0), 1.0 / max(stats.frames, 1))
        if best is None or lift > best.lift:
            best = Explanation(i, _text(key, value), key, value, round(share, 4), round(lift, 4))
    return best


def explain_features(stats: FeatureStats | str | Path, config: ExplainConfig | None = None, *,
                     explainer: Explainer | None = None) -> list[Explanation]:
    """Explanations of the latents of a features folder (or loaded :class:`FeatureStats`), unscored.

    Latents that never fired, or whose top activations carry no selective majority label, get none.
    ``explainer(record)`` (optional) is called for every latent that fired, with its ``features.json``
    entry whose ``explanation`` is the label rule's (a dict, or None); a returned string becomes the
    explanation (``source="custom"``, not scored).
    """
    config = config or ExplainConfig()
    if not isinstance(stats, FeatureStats):
        stats = FeatureStats.load(stats)
    rates = _base_rates(stats)
    out = []
    for i in range(stats.d_sae):
        top = stats.top(i)
        if not top:
            continue
        rule = _label_rule(stats, i, top, rates, config) if len(top) >= config.min_top else None
        if explainer is not None:
            record = stats.latent(i)
            record["explanation"] = None if rule is None else rule.to_dict()
            text = explainer(record)
            if text:
                out.append(Explanation(i, str(text), None, None, source="custom"))
                continue
        if rule is not None:
            out.append(rule)
    return out


def _spans_file(model: "HookedAudioModel", corpus, spans, folder: Path) -> Path:
    """A JSONL of word spans for the corpus: the given file, or aligned now with the model's alignment heads."""
    if spans is not None:
        return Path(spans)
    from otoscope.audio.io import Clip, to_clip

    items = [corpus[i] for i in range(len(corpus))]
    clips = [Clip(to_clip(it.audio, model.geometry.sample_rate, it.sample_rate).samples, model.geometry.sample_rate,
                  it.name) for it in items]
    path = folder / "spans.jsonl"
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in model.word_timestamps(clips)), encoding="utf-8")
    return path


@torch.no_grad()
def latent_firing(model: "HookedAudioModel", sae: "SparseAutoencoder", corpus, latents: Sequence[int], hook: str,
                  batch_size: int = 8, progress: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(clip [rows], frame [rows], fires [rows, latents])`` per batch: where ``latents`` fire (> 0) on the
    real frames of ``corpus`` (Whisper's padding dropped; clips over 30 s numbered from their start)."""
    from tqdm.auto import tqdm

    from otoscope.features.run import clip_pieces, hook_activations

    chosen = torch.as_tensor(list(latents), dtype=torch.long, device=sae.device)
    bar = tqdm(total=len(corpus), desc="score", unit="clip", disable=not progress)
    for start in range(0, len(corpus), batch_size):
        stop = min(start + batch_size, len(corpus))
        pieces = [(i, piece, first) for i in range(start, stop) for piece, first in clip_pieces(model, corpus[i])]
        for p0 in range(0, len(pieces), batch_size):
            batch = pieces[p0 : p0 + batch_size]
            x, mask = hook_activations(model, [p for _, p, _ in batch], hook)
            n = [int(k) for k in mask.sum(1).tolist()]
            real = torch.cat([x[j, : n[j]] for j in range(len(batch))])  # [rows, d_in]: padding dropped
            fires = (sae.encode(real.to(sae.device))[:, chosen] > 0).cpu()  # [rows, latents]
            clip = torch.cat([torch.full((n[j],), i, dtype=torch.long) for j, (i, _, _) in enumerate(batch)])
            frame = torch.cat([first + torch.arange(n[j]) for j, (_, _, first) in enumerate(batch)])
            yield clip, frame, fires
        bar.update(stop - start)
    bar.close()


def detection_scores(firing: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], table: LabelTable,
                     rules: Sequence[Explanation], latents: Sequence[int]) -> list[tuple[float | None, float | None]]:
    """``(precision, recall)`` of each rule: predicted = frames whose ``rule.key`` label is ``rule.value`` in
    ``table``; actual = ``fires[:, latents.index(rule.index)]`` of the ``firing`` batches."""
    column = {int(j): c for c, j in enumerate(latents)}
    hits, predicted, fired = ([0] * len(rules) for _ in range(3))
    for clip, frame, fires in firing:
        classes, _ = table.rows(clip, frame)
        for r, rule in enumerate(rules):
            values = table.classes.get(rule.key, [])
            if rule.key in classes and rule.value in values:
                pred = classes[rule.key] == values.index(rule.value)
            else:
                pred = torch.zeros(len(frame), dtype=torch.bool)
            fire = fires[:, column[rule.index]]
            hits[r] += int((pred & fire).sum())
            predicted[r] += int(pred.sum())
            fired[r] += int(fire.sum())
    return [(h / p if p else None, h / f if f else None) for h, p, f in zip(hits, predicted, fired)]


def score_explanations(model: "HookedAudioModel", sae: "SparseAutoencoder", clips, explanations: Sequence[Explanation],
                       *, spans: str | Path | None = None, hook: str | None = None, batch_size: int = 8,
                       progress: bool = False) -> list[Explanation]:
    """Held-out precision and recall of each label rule (see the module docstring); custom ones stay unscored.

    ``clips`` is a corpus (folder, manifest with label columns, list; see :func:`otoscope.sae.open_corpus`),
    ``spans`` a JSONL of ``otoscope align --json`` lines for its word labels (default: aligned now, which
    needs a Whisper model). Rules whose key no held-out clip carries stay unscored. Returns new
    explanations in the same order.
    """
    from otoscope.features.run import corpus_meta
    from otoscope.sae.corpus import open_corpus

    rules = [e for e in explanations if e.key is not None]
    if not rules:
        return list(explanations)
    corpus = open_corpus(clips)
    if len(corpus) == 0:
        raise OtoscopeError("the held-out corpus is empty; pass a folder or manifest with at least one clip.")
    names, clip_labels = corpus_meta(corpus)
    present = {k for labels in clip_labels for k, v in labels.items() if v not in (None, "")}
    keys = sorted({e.key for e in rules if e.key != WORD and e.key in present})
    with tempfile.TemporaryDirectory() as tmp:
        spans_file = _spans_file(model, corpus, spans, Path(tmp)) if any(e.key == WORD for e in rules) else None
        table = build_labels(names, clip_labels, keys, spans_file, model.geometry, max_classes=10**9)
    scored = [e for e in rules if e.key in table.classes]
    latents = sorted({e.index for e in scored})
    sae = sae.to(model.device).eval()
    firing = latent_firing(model, sae, corpus, latents, hook or sae.cfg.hook_name, batch_size, progress)
    scores = dict(zip(map(id, scored), detection_scores(firing, table, scored, latents)))
    out = []
    for e in explanations:
        precision, recall = scores.get(id(e), (None, None))
        out.append(replace(e, precision=None if precision is None else round(precision, 4),
                           recall=None if recall is None else round(recall, 4)))
    return out


def save_explanations(folder: str | Path, explanations: Sequence[Explanation]) -> Path:
    """Write ``explanations`` into the folder's ``features.json`` atomically (other latents: null)."""
    folder = Path(folder)
    stats = FeatureStats.load(folder)
    stats.explanations = [None] * stats.d_sae
    for e in explanations:
        if not 0 <= e.index < stats.d_sae:
            raise OtoscopeError(f"explanation for latent {e.index}, but {folder} has {stats.d_sae} latents.")
        stats.explanations[e.index] = e.to_dict()
    write_text_atomic(folder / JSON_FILE, json.dumps(stats.to_json(), allow_nan=False))
    return folder / JSON_FILE


def summary(explanations: Sequence[Explanation]) -> dict:
    """Counts and median held-out precision/recall of scored explanations."""
    scored = [e for e in explanations if e.precision is not None and e.recall is not None]

    def median(xs):
        xs = sorted(xs)
        return None if not xs else (xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2)

    return {"explained": len(explanations), "scored": len(scored),
            "median_precision": median([e.precision for e in scored]),
            "median_recall": median([e.recall for e in scored]),
            "by_key": dict(Counter(e.key or e.source for e in explanations).most_common())}
