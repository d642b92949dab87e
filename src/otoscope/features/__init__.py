"""Feature statistics of sparse autoencoders over audio corpora: what each latent fires on, how strongly,
how often, with which other latents, and on which labels and words.

Axes: ``frames`` are real encoder frames (never Whisper's padding), ``d_sae`` the latents, ``top_n`` the
top activations kept per latent, ``bins`` the shared log10 histogram bins.

Typical use::

    import otoscope
    from otoscope import features, sae

    model = otoscope.load("whisper-tiny.en")
    stats = features.feature_stats(model, sae.load_sae("saes/encoder.blocks.3.hook_resid_post"), "clips/manifest.jsonl",
                                   features.FeaturesConfig(labels=["kind"], spans="words.jsonl"))
    stats.save("features/")                 # features.json + features.safetensors
    stats.to_frame().sort_values("frequency")
"""

from otoscope.features.config import FeaturesConfig
from otoscope.features.result import FeatureStats
from otoscope.features.run import feature_stats

__all__ = ["FeatureStats", "FeaturesConfig", "feature_stats"]
