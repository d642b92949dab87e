"""``compare_models``: what fine-tuning (full or LoRA) changed inside a model, as numbers and a report.

>>> result = compare_models("whisper-tiny.en", "finetuned/", "clips/", out="cmp/")
>>> result.summary()["changed_blocks"], result.layers_frame()[["hook", "cka", "drift", "fvu_increase"]]

The steps, each in its own module: load both models (:mod:`.checkpoints`), weight deltas per module
(:mod:`.weights`), both models' layer activations on the same clips (:mod:`.activations`), CKA and
drift per layer (:mod:`.layers`), FVU increase of SAEs fitted to A (:mod:`.sae_shift`), patching maps
of minimal pairs (:mod:`.patching_shift`), and the HTML report (:mod:`.report`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from otoscope._io import atomic_dir, check_output_dir, write_text_atomic
from otoscope.compare.checkpoints import load_models
from otoscope.compare.config import CompareConfig
from otoscope.compare.result import COMPARE_FILES, CompareResult
from otoscope.compare.weights import compare_weights
from otoscope.errors import OtoscopeError


def _corpus(data, limit):
    """``data`` (folder, manifest, list; see :func:`otoscope.sae.open_corpus`) as a corpus, checked before any model loads."""
    from otoscope.sae.corpus import open_corpus

    corpus = open_corpus(data, limit=limit)
    if len(corpus) == 0:
        raise OtoscopeError(f"no clips in {data}; pass a folder of audio or a manifest.")
    return corpus


def _clips(model, corpus):
    """The corpus's clips at the model's rate, and their given texts."""
    from otoscope.audio.io import Clip, to_clip

    clips, texts = [], []
    for item in corpus:
        clip = to_clip(item.audio, model.geometry.sample_rate, item.sample_rate)
        clips.append(Clip(clip.samples, clip.sample_rate, item.name))
        texts.append(item.text)
    return clips, texts


def compare_models(model_a, model_b, data=None, out: str | Path | None = None,
                   config: CompareConfig | None = None) -> CompareResult:
    """Compare model B (a fine-tune, or a PEFT adapter folder merged onto A) with model A → :class:`CompareResult`.

    ``model_a`` / ``model_b``: names, HF ids, folders or loaded :class:`~otoscope.models.hooked.HookedAudioModel`
    objects. ``data``: clips to compare activations on (folder, JSONL/CSV manifest with optional ``text``,
    list of paths); None compares weights only. ``out``: a folder for ``compare.json`` and ``index.html``
    (replaced as a whole; nothing is written when None).
    """
    config = config or CompareConfig()
    if out is not None:
        check_output_dir(out, COMPARE_FILES, "comparison folder")
    if config.pairs:
        from otoscope.compare.patching_shift import find_pairs

        find_pairs(config.pairs)  # a wrong folder fails before the models load
    corpus = _corpus(data, config.max_clips) if data is not None else None
    if config.sae_dir and not Path(config.sae_dir).is_dir():
        raise OtoscopeError(f"SAE folder not found: {config.sae_dir}; pass the output folder of 'otoscope sae train'.")
    pair = load_models(model_a, model_b, device=config.device, check_base=config.check_base)
    weights = compare_weights(pair.a.model, pair.b.model, config.rank_rtol)
    result = CompareResult(pair.a.name, pair.b.name, pair.kind, weights, [], [], [], [], adapter=pair.adapter,
                           config=config.to_dict())
    if weights.skipped:
        result.notes.append(f"{len(weights.skipped)} parameter(s) in only one model or of different shapes were not "
                            "compared (listed under skipped_params)")
    if corpus is not None:
        _layers(pair, corpus, config, result)
    if config.pairs:
        from otoscope.compare.patching_shift import patching_shift

        result.pairs, notes = patching_shift(pair.a, pair.b, config)
        result.notes += notes
    if out is not None:
        write(result, out)
    return result


def _layers(pair, corpus, config: CompareConfig, result: CompareResult) -> None:
    from otoscope.compare.activations import collect, teacher_tokens
    from otoscope.compare.layers import layer_shifts

    clips, given = _clips(pair.a, corpus)
    texts, tokens = teacher_tokens(pair.a, clips, given, config.batch_size)
    acts = collect(pair.a, pair.b, clips, texts, tokens, config)
    result.clips, result.texts, result.skipped_layers = acts.clips, acts.texts, acts.skipped
    if acts.skipped:
        result.notes.append(f"{len(acts.skipped)} layer hook(s) exist in only one model and were skipped: "
                            + ", ".join(f"{s['hook']} ({s['reason']})" for s in acts.skipped[:6])
                            + (", …" if len(acts.skipped) > 6 else ""))
    result.layers, result.cka, notes = layer_shifts(acts)
    result.notes += notes
    if config.sae:
        from otoscope.compare.sae_shift import sae_shift

        result.notes += sae_shift(acts, result.layers, config)


def write(result: CompareResult, out: str | Path) -> Path:
    """Write ``compare.json`` and the self-contained ``index.html`` into ``out`` (replaced as a whole)."""
    from otoscope.compare.report import render

    with atomic_dir(out, markers=COMPARE_FILES) as folder:
        write_text_atomic(folder / "compare.json", json.dumps(_finite(result.to_json()), indent=1))
        write_text_atomic(folder / "index.html", render(result))
    return Path(out)


def _finite(value):
    """``value`` with NaN and infinities as None (``compare.json`` stays strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
