"""Sparse autoencoders for audio models: activation store, fast trainer, SAELens-compatible format, evaluation.

Axes: ``rows`` are stored activation vectors (one per real encoder frame or decoder text token),
``d_in`` their width (``d_model``, or ``heads × d_head`` for per-head hooks), ``d_sae`` the latents,
``k`` the active latents per row of a TopK SAE, ``nnz`` the active entries of a batch's sparse code.

Typical use::

    import otoscope
    from otoscope import sae

    model = otoscope.load()
    sae.extract_activations(model, "clips/", "acts/", sae.ExtractConfig(hooks="encoder.blocks.3.hook_resid_post"))
    result = sae.train_saes("acts/", "saes/", sae.TrainConfig(k=32, expansion=16, total_samples=2_000_000))
    trained = sae.load_sae(result.saes["encoder.blocks.3.hook_resid_post"])       # a SAELens v6 folder
    with sae.splice(model, trained):
        _, cache = model.run_with_cache("clip.flac", names_filter="*.hook_sae_acts")
    report = sae.evaluate_sae(model, trained, "clips/manifest.jsonl", out="eval/")
"""

from otoscope.sae.config import SAEConfig
from otoscope.sae.corpus import Corpus, CorpusItem, open_corpus
from otoscope.sae.evaluate import EvalReport, SplicedCost, evaluate_sae
from otoscope.sae.extract import ExtractConfig, ExtractResult, extract_activations
from otoscope.sae.format import load_frequency, load_sae, load_saes, save_sae
from otoscope.sae.metrics import ReconstructionMetrics, StabilityResult, feature_match, fvu, reconstruction_metrics
from otoscope.sae.model import SparseAutoencoder
from otoscope.sae.reader import ShuffledReader
from otoscope.sae.splice import splice
from otoscope.sae.store import ActivationStore
from otoscope.sae.text_encoder import extract_text_embeddings
from otoscope.sae.train_config import TrainConfig
from otoscope.sae.trainer import TrainResult, Trainer, train_saes

__all__ = ["ActivationStore", "Corpus", "CorpusItem", "EvalReport", "ExtractConfig", "ExtractResult", "ReconstructionMetrics",
           "SAEConfig", "ShuffledReader", "SparseAutoencoder", "SplicedCost", "StabilityResult", "TrainConfig",
           "TrainResult", "Trainer", "evaluate_sae", "extract_activations", "extract_text_embeddings", "feature_match", "fvu", "load_frequency",
           "load_sae", "load_saes", "open_corpus", "reconstruction_metrics", "save_sae", "splice", "train_saes"]
