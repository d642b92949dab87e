"""``otoscope lens``: the lenses that apply to a model, written as ``lens.json`` plus plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from otoscope._io import atomic_dir, check_output_dir, write_text_atomic
from otoscope.errors import OtoscopeError

if TYPE_CHECKING:  # typing only: importing hooked.py here would cycle or slow the CLI
    from otoscope.models.hooked import HookedAudioModel

LENS_FILES = ("lens.json",)  # marks a folder as an earlier run's output, which a new run may replace


def run_lens(model: HookedAudioModel, audio, out: str | Path) -> dict:
    """Run every lens that applies to ``model`` on one clip; write ``out/lens.json`` (+ PNGs) and return it.

    Whisper: encoder logit lens and encoder lens (``lens_layers.png``), plus the decoder logit lens per
    layer. Encoder-only models with a CTC head: the CTC lens. The JSON lists what did not apply.
    ``out`` is replaced as a whole when everything is computed (a failed run leaves it as it was).
    """
    from otoscope.lens.decoder import ctc_lens, decoder_logit_lens
    from otoscope.lens.encoder import encoder_lens
    from otoscope.lens.plots import plot_layer_curves

    out = check_output_dir(out, LENS_FILES)
    kinds = model.adapter.lens_kinds
    if "encoder" in kinds and "decoder" in kinds:
        result = encoder_lens(model, audio, top_k_layers=tuple(range(model.n_layers)))
        data = result.to_json()
        decoder = decoder_logit_lens(model, audio)
        data["decoder_lens"] = json.loads(decoder.summary().to_json(orient="records"))
        data["not_applicable"] = ["CTC lens (Whisper has no CTC head)"]
        plots = [lambda folder: plot_layer_curves(result, folder / "lens_layers.png")]
    elif "ctc" in kinds:
        table = ctc_lens(model, audio).table
        data = {"model": model.name, "transcript": str(table["text"].iloc[-1]), "saturation_layer": None,
                "ctc_lens": json.loads(table.to_json(orient="records")),
                "not_applicable": ["encoder logit lens, encoder lens, decoder logit lens (no decoder)"]}
        plots = []
    else:
        raise OtoscopeError(f"{model.name} has neither a decoder nor a CTC head with a tokenizer, so no lens applies; "
                            "use 'otoscope report' for its norms and CKA.")
    with atomic_dir(out, markers=LENS_FILES) as folder:
        for plot in plots:
            plot(folder)
        write_text_atomic(folder / "lens.json", json.dumps(data, indent=1))
    return data
