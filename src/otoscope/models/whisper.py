"""What otoscope knows about the Whisper family beyond its module layout (that lives in hooks/points.py).

The alignment heads are the decoder cross-attention heads whose attention follows the audio word by
word; word timestamps (:mod:`otoscope.models.align`) read only them. OpenAI publishes them per
checkpoint in ``whisper/__init__.py`` as base85-encoded gzip'd boolean ``[decoder_layers, heads]``
arrays; the tables below are those arrays decoded to ``(layer, head)`` pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel

ALIGNMENT_HEADS: dict[str, tuple[tuple[int, int], ...]] = {
    "openai/whisper-tiny.en": ((1, 0), (2, 0), (2, 5), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)),
    "openai/whisper-tiny": ((2, 2), (3, 0), (3, 2), (3, 3), (3, 4), (3, 5)),
    "openai/whisper-base.en": ((3, 3), (4, 7), (5, 1), (5, 5), (5, 7)),
    "openai/whisper-base": ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6)),
}
"""Published alignment heads ``(decoder layer, head)`` by Hugging Face id."""


def alignment_heads(model: "HookedAudioModel") -> list[tuple[int, int]]:
    """The ``(decoder layer, head)`` pairs whose cross-attention tracks word timing in ``model``.

    In order: the checkpoint's own ``generation_config.alignment_heads`` (set by Hugging Face's
    openai checkpoints and by otoscope's bundled conversion), the published table by model name,
    and otherwise every head of the last half of the decoder, which is openai-whisper's own default
    for checkpoints without a table (random-weight test models, fine-tuned checkpoints).
    """
    from otoscope.models.registry import KNOWN_MODELS

    heads = getattr(getattr(model.model, "generation_config", None), "alignment_heads", None)
    if heads:
        return [(int(layer), int(head)) for layer, head in heads]
    published = ALIGNMENT_HEADS.get(KNOWN_MODELS.get(model.name, model.name))
    if published:
        return list(published)
    layers = model.config.decoder_layers
    n_heads = model.config.decoder_attention_heads
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(n_heads)]
