"""The non-speech hallucination study as a benchmark: ``.venv/bin/python benchmarks/steer_study.py [OUT] [--seed N]``
(``--seed``: the fit/held-out split, 0 the published one).

Baselines: Whisper tiny.en as it is, and Whisper's own no-speech gate (P(<|nocaptions|>) ≥ 0.6 → empty
transcript, openai/whisper's ``no_speech_threshold``), which is what a competent user would switch on
to stop non-speech transcripts. Everything is timed once, end to end (stimuli, SAE training, encoder,
decoding). Prints the study's summary as the last line: one JSON object with hallucination_rate_baseline,
hallucination_rate_gate, hallucination_rate_steered, reduction, wer_clean, wer_steered, wer_increase, the
held-out counts and 95 % intervals, each method's own fit-half choice on held-out data (``methods``:
direction-gated and latent-gated decoder push, latent clamps), plus seconds and the 1-minute load average
at the start and the end (the machine is shared).
"""

from __future__ import annotations

import json
import os
import sys
import time

from otoscope.steer.study import StudyConfig, run_study

if __name__ == "__main__":
    args = sys.argv[1:]
    seed = 0
    if "--seed" in args:  # a fresh fit/held-out split (StudyConfig.seed)
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    out = args[0] if args else "out/steer_study"
    load_start = os.getloadavg()[0]
    started = time.time()
    result = run_study(out, StudyConfig(seed=seed), progress=False)
    print(json.dumps({**result.summary, "seconds": round(time.time() - started, 1), "load_start": round(load_start, 1),
                      "load_end": round(os.getloadavg()[0], 1)}))
