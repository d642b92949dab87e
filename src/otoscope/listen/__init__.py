"""Listen vs guess on audio-LLMs: where in the LLM the answer comes from the audio and where from the prompt.

* :mod:`~otoscope.listen.pairs` — pairs for audio-LLMs (audio, text-context and conflict pairs) and their
  prepared, position-aligned inputs;
* :mod:`~otoscope.listen.engine` — patching cells (LLM layer × positions, audio-encoder layer × frames,
  projector tokens): the plain loop and the prefix-KV engine; :mod:`~otoscope.listen.attribution` — the same
  cells estimated to first order from one backward pass;
* :mod:`~otoscope.listen.grounding` — the grounding coefficient per LLM layer, gc(k), over a pair set with a
  bootstrap interval; :mod:`~otoscope.listen.sweep` — LLM block × audio-token windows;
  :mod:`~otoscope.listen.lens` — the audio-LLM logit lens.

Axes: ``tokens`` are LLM positions (chat text, audio tokens, prompt, answer); ``audio_tokens`` the
projector's outputs; ``frames`` the audio encoder's 20 ms frames.
"""
