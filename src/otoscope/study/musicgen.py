"""MusicGen in a labelled study: the T5 text encoding *and* the decoder that writes the audio codes.

Where does MusicGen keep the emotion a prompt asks for? :class:`MusicgenSubject` reads a hooked MusicGen
(:func:`otoscope.load`, the ``musicgen`` adapter) at either side:

- ``text_encoder.*``: the prompt's tokens (as :class:`~otoscope.study.subjects.TextSubject` reads them);
- ``decoder.*`` residual hooks (``decoder.hook_embed``, ``decoder.blocks.{L}.hook_resid_post``,
  ``decoder.hook_ln_final``): the decoder's positions while it reads **the same audio codes for every prompt**
  (teacher-forced: the model's own sampled continuation of a neutral prompt, ``decoder_seconds`` long, seeded),
  so two prompts' decoder activations differ only through the prompt, via cross-attention.

The two sides have different widths and position axes (tokens vs codec frames), so one study reads one side;
run it twice (``--hooks 'text_encoder.*'`` then ``--hooks 'decoder.*'``) to compare them.

The family's latent effect (:func:`code_logit_effect`, registered for ``musicgen``): remove one SAE latent's
decoded contribution at the studied hook during the teacher-forced run and measure how the decoder's next-code
distributions move (mean KL over positions and codebooks, and the share of top-1 codes that change).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from otoscope.errors import HookNameError
from otoscope.geometry.collect import LayerActivations
from otoscope.study.effects import register_latent_effect
from otoscope.study.subjects import TextSubject, control_table

if TYPE_CHECKING:
    from otoscope.models.hooked import HookedAudioModel
    from otoscope.sae.model import SparseAutoencoder
    from otoscope.study.inputs import LabelledData

NEUTRAL_PROMPT = "music"
"""The prompt whose sampled codes every prompt's decoder run reads."""


class MusicgenSubject(TextSubject):
    """A hooked MusicGen read at its text encoder or its decoder; see the module docstring."""

    def __init__(self, model: "HookedAudioModel", name: str | None = None, decoder_seconds: float = 1.0, seed: int = 0):
        super().__init__(model, model.tokenizer, name or model.name)
        self.decoder_seconds = decoder_seconds
        """Seconds of shared codes the decoder reads for every prompt."""
        self.seed = seed
        """Seed of the neutral prompt's sampled codes."""
        self._codes: torch.Tensor | None = None

    def decoder_hooks(self) -> list[str]:
        """The decoder's residual hooks ``[batch, frames, d_model]``, in forward order."""
        return [n for n, p in self.model.points.items() if n.startswith("decoder.") and p.shape == "[batch, frames, d_model]"]

    def hook_names(self) -> list[str]:
        return super().hook_names() + self.decoder_hooks()

    def resolve_hooks(self, patterns) -> list[str]:
        hooks = super().resolve_hooks(patterns)
        sides = {h.split(".", 1)[0] for h in hooks}
        if len(sides) > 1:
            raise HookNameError("--hooks mixes text_encoder.* and decoder.* hooks: their widths and positions differ "
                                "(prompt tokens vs codec frames); study each side in its own run.")
        return hooks

    def shared_codes(self) -> torch.Tensor:
        """The delayed decoder input every prompt reads ``[codebooks, positions]``: the start position plus
        ``decoder_seconds`` of the neutral prompt's sampled codes (made once, seeded)."""
        if self._codes is None:
            from otoscope.models.adapters.musicgen import delay_codes

            adapter = self.model.adapter
            song = self.model.generate_audio(NEUTRAL_PROMPT, seconds=self.decoder_seconds, seed=self.seed)
            self._codes = delay_codes(song.codes, adapter.codebooks, adapter.pad_id)[:, :-1]
        return self._codes

    def _decoder_states(self, texts: list[str], hooks: list[str], fwd_hooks=()) -> tuple[torch.Tensor, dict]:
        codes = self.shared_codes().repeat(len(texts), 1)  # [batch × codebooks, positions]
        with torch.no_grad(), self.model.hooks(fwd_hooks):
            if not hooks:
                return self.model(text=texts, audio_codes=codes), {}
            return self.model.run_with_cache(text=texts, audio_codes=codes, names_filter=hooks)

    def _decoder_items(self, data: "LabelledData", hooks: list[str], batch_size: int, fwd_hooks=()) -> list[LayerActivations]:
        items = []
        for start in range(0, len(data.items), batch_size):
            texts = list(data.items[start:start + batch_size])
            _, cache = self._decoder_states(texts, hooks, fwd_hooks)
            for j in range(len(texts)):
                acts = torch.stack([cache[h][j] for h in hooks]).float().cpu()  # [hooks, positions, d_model]
                items.append(LayerActivations(data.names[start + j], list(hooks), acts, data.labels[start + j]))
        return items

    def collect(self, data, hooks, batch_size=8):
        if hooks[0].startswith("text_encoder."):
            return super().collect(data, hooks, batch_size)
        return self._decoder_items(data, hooks, batch_size)

    def same_input_control(self, data, hooks, snr_db=40.0, seed=0, batch_size=8, clean=None):
        if hooks[0].startswith("text_encoder."):
            return super().same_input_control(data, hooks, snr_db, seed, batch_size, clean)
        generator = torch.Generator().manual_seed(seed)

        def noisy(act, hook):  # the prompt's token embeddings with white noise at snr_db
            power = act.float().pow(2).mean(dim=(1, 2), keepdim=True).clamp_min(1e-12)
            noise = torch.randn(act.shape, generator=generator).to(act.device)
            return act + (noise * (power / 10 ** (snr_db / 10)).sqrt()).to(act.dtype)

        clean = clean if clean is not None else self._decoder_items(data, hooks, batch_size)
        perturbed = self._decoder_items(data, hooks, batch_size, fwd_hooks=[("text_encoder.hook_embed", noisy)])
        return control_table(hooks, clean, perturbed, snr_db)


def code_logit_effect(subject: MusicgenSubject, data: "LabelledData", hook: str, sae: "SparseAutoencoder",
                      latent: int) -> dict[str, float]:
    """How the decoder's next-code distributions move when ``latent`` is removed at ``hook``, over every prompt:
    ``code_kl`` (mean KL(intact ‖ ablated) per position and codebook, nats) and ``code_top1_changed``."""
    if not isinstance(subject, MusicgenSubject):
        return {}
    w_dec = sae.W_dec[latent].detach()  # [d_model]

    def ablate(act, point):  # act − z_j(act) · W_dec[j]: only this latent's part goes, the SAE error stays
        z = sae.encode(act.to(w_dec.dtype))[..., latent]
        return act - (z[..., None] * w_dec).to(act.dtype)

    kls, changed = [], []
    texts = list(data.items)
    for start in range(0, len(texts), 8):
        batch = texts[start:start + 8]
        intact, _ = subject._decoder_states(batch, [])
        ablated, _ = subject._decoder_states(batch, [], fwd_hooks=[(hook, ablate)])
        p, q = intact.log_softmax(-1), ablated.log_softmax(-1)  # [batch × codebooks, positions, vocab]
        kls.append((p.exp() * (p - q)).sum(-1).flatten())
        changed.append((intact.argmax(-1) != ablated.argmax(-1)).float().flatten())
    return {"code_kl": float(torch.cat(kls).mean()), "code_top1_changed": float(torch.cat(changed).mean())}


register_latent_effect("musicgen", code_logit_effect)
