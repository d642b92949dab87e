"""What a latent does downstream: its direct effect on the vocabulary, or the transcript change when it is removed.

*Decoder hooks* — the direct logit effect of latent ``i`` is ``W_dec[i] @ W_U.T``: the decoder direction read
straight through the unembedding, **without the final layer norm** (neither its scale, which depends on the
whole residual, nor its gain and bias). It says which tokens the direction pushes up or down if it reached
the logits unchanged; it ignores everything the later layers do to it.

*Encoder hooks* — the latent is zeroed on every frame of a clip while the SAE is spliced in with its error
term, so the model receives ``x − z_i · W_dec[i]`` and nothing else changes; the transcripts with and
without the edit are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from otoscope.lens.encoder import word_error_rate

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.sae.model import SparseAutoencoder

VOCAB_CONVENTION = ("direct logit effect W_dec[i] · W_U (unembedding only: the final layer norm is left out, "
                    "so values are relative, not logits the model would produce)")


@dataclass
class VocabEffect:
    """Tokens a decoder direction promotes and suppresses."""

    top: list[tuple[str, float]]
    """``(token, effect)`` with the largest effect, largest first."""
    bottom: list[tuple[str, float]]
    """``(token, effect)`` with the most negative effect, most negative first."""


@dataclass
class Ablation:
    """One clip's transcript with and without a latent."""

    clip: str
    """The clip's path."""
    clean: str
    """The model's transcript."""
    ablated: str
    """The transcript with the latent zeroed on every frame."""

    @property
    def changed(self) -> bool:
        """True when the texts differ."""
        return self.clean != self.ablated

    @property
    def wer(self) -> float:
        """Word error rate of the ablated transcript against the clean one."""
        return word_error_rate(self.clean, self.ablated)


def unembedding(model: "HookedAudioModel") -> torch.Tensor | None:
    """``[vocab, d_model]`` output embedding of a model with a text head, or None."""
    head = model.model.get_output_embeddings() if hasattr(model.model, "get_output_embeddings") else None
    return None if head is None or model.tokenizer is None else head.weight.detach()


def vocab_effects(model: "HookedAudioModel", sae: "SparseAutoencoder", latents: Sequence[int],
                  n: int = 10) -> dict[int, VocabEffect]:
    """Direct vocabulary effect of each latent's decoder direction (see the module docstring for the convention).

    Empty when the model has no unembedding or the SAE's width is not the model's (per-head hooks).
    """
    W_U = unembedding(model)
    if W_U is None or W_U.shape[1] != sae.d_in or not latents:
        return {}
    out = {}
    ids = torch.tensor(list(latents), dtype=torch.long)
    with torch.no_grad():
        for chunk in ids.split(256):
            effect = sae.W_dec[chunk.to(sae.device)].float().to(W_U.device) @ W_U.float().T  # [chunk, vocab]
            k = min(n, effect.shape[1])
            hi, lo = effect.topk(k, dim=1), (-effect).topk(k, dim=1)
            for row, latent in enumerate(chunk.tolist()):
                out[latent] = VocabEffect(
                    [(_token(model, t), float(v)) for v, t in zip(hi.values[row], hi.indices[row].tolist())],
                    [(_token(model, t), -float(v)) for v, t in zip(lo.values[row], lo.indices[row].tolist())])
    return out


def _token(model: "HookedAudioModel", token_id: int) -> str:
    return model.tokenizer.decode([token_id])


def transcripts(model: "HookedAudioModel", clips: list) -> list[str]:
    """The model's greedy transcript of each clip."""
    return [t.text for t in model.transcribe(clips)]


def zero_latent(latent: int):
    """A hook for ``….hook_sae_acts`` that sets ``latent`` to 0 on every position."""

    def zero(z: torch.Tensor, hook_point) -> torch.Tensor:  # [batch, frames, d_sae]
        z = z.clone()
        z[..., latent] = 0.0
        return z

    return zero


def ablate(model: "HookedAudioModel", sae: "SparseAutoencoder", hook: str, latent: int, clips: list,
           clean: Sequence[str]) -> list[Ablation]:
    """Transcribe ``clips`` with ``latent`` zeroed (SAE spliced with its error term); ``clean`` are the plain transcripts."""
    with model.add_sae(sae, hook, use_error_term=True), model.hooks([(f"{hook}.hook_sae_acts", zero_latent(latent))]):
        ablated = transcripts(model, clips)
    return [Ablation(clip.name, c, a) for clip, c, a in zip(clips, clean, ablated)]
