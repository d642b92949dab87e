"""Representation geometry: norms, CKA, group similarity, probes, attention locality."""

from otoscope.geometry.cka import CKAResult, cka_across_models, cka_layers, linear_cka, unbiased_hsic
from otoscope.geometry.collect import LayerActivations, collect_layers
from otoscope.geometry.groups import GroupSimilarity, group_similarity
from otoscope.geometry.norms import layer_norms
from otoscope.geometry.probe import ProbeResult, probe_layers

__all__ = ["CKAResult", "GroupSimilarity", "LayerActivations", "ProbeResult", "cka_across_models", "cka_layers",
           "collect_layers", "group_similarity", "layer_norms", "linear_cka", "probe_layers", "unbiased_hsic"]
