import numpy as np
import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.geometry.collect import LayerActivations
from otoscope.geometry.groups import group_similarity, same_input_control
from otoscope.geometry.probe import probe_layers, stratified_folds


def _toy(separated: bool, n_per: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(32) * 5  # a large shared component: raw cosines are all high
    centers = {"a": rng.standard_normal(32), "b": rng.standard_normal(32)}
    items = []
    for label in ("a", "b"):
        for i in range(n_per):
            base = common + (centers[label] * 2 if separated else 0) + rng.standard_normal(32)
            acts = torch.tensor(np.stack([base + 0.1 * rng.standard_normal((5, 32)) for _ in range(2)]), dtype=torch.float32)
            items.append(LayerActivations(f"{label}{i}", ["l0", "l1"], acts, label))
    return items


def test_group_similarity_detects_structure_and_not_noise():
    sep = group_similarity(_toy(True), n_permutations=300).table
    none = group_similarity(_toy(False), n_permutations=300).table
    raw = sep[~sep.centered].iloc[0]
    assert raw["within"] > raw["between"] and raw["p_value"] < 0.01 and raw["cohens_d"] > 1
    assert raw["baseline"] > 0.8  # the shared component makes every pair look similar
    assert none[~none.centered]["p_value"].min() > 0.01
    with pytest.raises(OtoscopeError, match="two labels"):
        group_similarity(_toy(True)[:3])


def test_probe_reads_separable_labels_and_fails_on_noise():
    sep = probe_layers(_toy(True), n_folds=3).table
    none = probe_layers(_toy(False), n_folds=3).table
    assert (sep["accuracy"] == 1.0).all()
    assert none["accuracy"].max() < 0.9 and (none["chance"] == 0.5).all()
    with pytest.raises(OtoscopeError, match="at least 2 clips"):
        probe_layers(_toy(True)[:7])


def test_stratified_folds_cover_everything_once():
    labels = np.array(list("aaaabbbbbc" * 2))
    folds = stratified_folds(labels, 2)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(labels)))
    for fold in folds:
        assert set(labels[fold]) == {"a", "b", "c"}


def test_same_input_control_is_near_one(tiny_en, speech):
    table = same_input_control(tiny_en, [speech[0]["path"]], snr_db=40)
    assert (table["same_input_cosine"] > 0.97).all()
