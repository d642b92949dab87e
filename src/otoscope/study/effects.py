"""Family-specific effects of ablating one SAE latent, beyond the probe: a registry other families add to.

A study ablates its most selective latents and always reports the probe's accuracy drop
(:mod:`otoscope.study.ablation`). A model family can say more — for MusicGen, how much the decoder's
audio-code logits change when a text-encoder latent is removed. Such an effect is a function::

    effect(subject, data, hook, sae, latent) -> dict[str, float]

registered for the family name (``subject.family``) with :func:`register_latent_effect`; its figures are
added to the latent's row of the ablation table and the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from otoscope.sae.model import SparseAutoencoder
    from otoscope.study.inputs import LabelledData
    from otoscope.study.subjects import Subject

LatentEffect = Callable[["Subject", "LabelledData", str, "SparseAutoencoder", int], dict]

LATENT_EFFECTS: dict[str, LatentEffect] = {}


def register_latent_effect(family: str, effect: LatentEffect) -> None:
    """Use ``effect`` for every study of a ``family`` model (replacing an earlier one)."""
    LATENT_EFFECTS[family] = effect


def latent_effect(family: str) -> LatentEffect | None:
    """The registered effect of ``family``, or None."""
    return LATENT_EFFECTS.get(family)
