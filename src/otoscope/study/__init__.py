"""Labelled studies: where does a model encode a label of its inputs (an emotion asked for in a prompt, a voice)?

``otoscope study groups`` runs :func:`run_study`: per hook, within- vs between-group similarity with
permutation tests and effect sizes, the same-input control, the group × group matrix, linear probes and a
PCA projection; an SAE on one hook with per-label selectivity and the most selective latents ablated; an
HTML report and ``study.json``. Audio models read labelled clips, text-conditioned models (MusicGen's T5
text encoder, or a bare T5 encoder) read labelled prompts; :func:`emotion_prompts_path` is the bundled
set of 100 music prompts (25 each of happy, sad, calm, energetic).
"""

from otoscope.study.config import StudyConfig
from otoscope.study.effects import register_latent_effect
from otoscope.study.inputs import LabelledData, emotion_prompts_path, read_labelled_clips, read_labelled_prompts
from otoscope.study.run import StudyResult, compute_study, run_study
from otoscope.study.subjects import AudioSubject, Subject, TextSubject, load_subject

__all__ = ["AudioSubject", "LabelledData", "StudyConfig", "StudyResult", "Subject", "TextSubject", "compute_study",
           "emotion_prompts_path", "load_subject", "read_labelled_clips", "read_labelled_prompts",
           "register_latent_effect", "run_study"]
