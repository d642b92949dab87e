"""SAE dashboard: cost of one example's assets, and a whole dashboard's pages per second.

1. Per example (the unit a dashboard of thousands of latents repeats tens of thousands of times): otoscope
   writes a FLAC snippet, a window of the clip's log-mel spectrogram (computed once per clip) as a small
   PNG encoded directly, and the activation trace as an inline SVG string. The baseline is what a competent
   matplotlib user would write for the same card: a WAV snippet and one small figure per example
   (``imshow`` of the snippet's log-mel with the trace on a twin axis, ``savefig`` to PNG at 100 dpi,
   ``plt.close``). Both run on the same 100 (clip, frame) examples, best of 3 after a warm-up.
2. End to end: ``otoscope sae features`` then ``build_dashboard`` for a random 512-latent TopK SAE on the tiny
   random Whisper over the six fixture clips (no ablations), timed once.

Run: .venv/bin/python benchmarks/dashboard.py. Last line: one JSON object with the figures.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import otoscope
from otoscope.features.dashboard import DashboardConfig, build_dashboard, pages, snippets
from otoscope.sae.config import SAEConfig
from otoscope.sae.format import save_sae
from otoscope.sae.model import SparseAutoencoder

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests/fixtures/audio"
N_EXAMPLES = 100


def best_of(fn, repeats=3):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ours(samples, examples, geometry, out: Path):
    db = snippets.log_mel(samples, 16000)  # once per clip
    top = float(db.max())
    for n, frame in enumerate(examples):
        snip = snippets.cut(samples, frame, geometry)
        snippets.write_audio(out / f"{n}.flac", snip.samples, 16000)
        snippets.write_spectrogram(out / f"{n}.png", snippets.window(db, snip.start), top)
        trace = [(j / 50, float(abs(snip.samples[j * 320]))) for j in range(50)]
        pages.trace_svg(trace, 1.0)


def matplotlib_cards(samples, examples, geometry, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    for n, frame in enumerate(examples):
        snip = snippets.cut(samples, frame, geometry)
        sf.write(str(out / f"{n}.wav"), snip.samples, 16000, subtype="PCM_16")
        db = snippets.log_mel(snip.samples, 16000)
        fig, ax = plt.subplots(figsize=(2.5, 1.0))
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max())
        twin = ax.twinx()
        twin.plot(np.linspace(0, 1, 50), np.abs(snip.samples[::320][:50]), color="#5eead4")
        ax.axis("off")
        twin.axis("off")
        fig.savefig(out / f"{n}.png", dpi=100)
        plt.close(fig)


def end_to_end(tmp: Path) -> dict:
    from otoscope.features import FeaturesConfig, feature_stats

    model = otoscope.load("tiny-random-whisper")
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=512, k=16, hook_name="encoder.blocks.1.hook_resid_post",
                                      model_name="tiny-random-whisper"), seed=0)
    save_sae(sae, tmp / "sae")
    feature_stats(model, sae, str(FIXTURES / "manifest.jsonl"), FeaturesConfig(labels=["kind"], progress=False)).save(tmp / "feat")
    doc = json.loads((tmp / "feat/features.json").read_text())
    doc["sae"] = str(tmp / "sae")
    (tmp / "feat/features.json").write_text(json.dumps(doc))
    start = time.perf_counter()
    result = build_dashboard(tmp / "feat", tmp / "dash", DashboardConfig(ablate_latents=0, progress=False), model=model)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (tmp / "dash").rglob("*") if p.is_file())
    return {"latent_pages": len(result.latents), "clip_pages": len(result.clips), "snippets": result.snippets,
            "dashboard_s": round(seconds, 2), "pages_per_s": round(len(result.latents) / seconds, 1),
            "dashboard_mb": round(size / 2**20, 2)}


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = otoscope.load("tiny-random-whisper")
    clip = model.clips([str(FIXTURES / "speech_london.flac")])[0]
    samples = np.asarray(clip.samples, dtype=np.float32)
    n_frames = model.geometry.n_frames(len(samples))
    examples = np.random.default_rng(0).integers(0, n_frames, N_EXAMPLES).tolist()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        ours_s = best_of(lambda: ours(samples, examples, model.geometry, tmp / "a"))
        mpl_s = best_of(lambda: matplotlib_cards(samples, examples, model.geometry, tmp / "b"))
        png_ours = np.mean([p.stat().st_size for p in (tmp / "a").glob("*.png")])
        png_mpl = np.mean([p.stat().st_size for p in (tmp / "b").glob("*.png")])
        e2e = end_to_end(tmp)
    figures = {"ms_per_example_otoscope": round(1000 * ours_s / N_EXAMPLES, 2),
               "ms_per_example_matplotlib": round(1000 * mpl_s / N_EXAMPLES, 2),
               "speedup_per_example": round(mpl_s / ours_s, 1),
               "png_kb_otoscope": round(png_ours / 1024, 1), "png_kb_matplotlib": round(png_mpl / 1024, 1), **e2e}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
