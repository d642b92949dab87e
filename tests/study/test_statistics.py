"""The study's statistics against plain numpy on constructed data where the answer is known."""

import numpy as np
import pytest
import torch

from otoscope.geometry.collect import LayerActivations
from otoscope.geometry.groups import group_similarity
from otoscope.study.ablation import ablation_table
from otoscope.study.frames import position_probe, sample_positions
from otoscope.study.matrix import group_matrix
from otoscope.study.projection import pca_2d
from otoscope.study.selectivity import FLOOR, selectivity


def _items(separation: float, n_per: int = 8, labels=("a", "b", "c"), positions: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(24) * 4  # a shared component: raw cosines are all high
    centers = {label: rng.standard_normal(24) for label in labels}
    items = []
    for label in labels:
        for i in range(n_per):
            base = common + separation * centers[label] + rng.standard_normal(24)
            acts = base + 0.3 * rng.standard_normal((positions, 24))
            items.append(LayerActivations(f"{label}{i}", ["h"], torch.tensor(acts[None], dtype=torch.float32), label))
    return items


def test_group_matrix_is_the_mean_cosine_over_pairs_of_distinct_items():
    items = _items(1.0)
    labels = [i.label for i in items]
    pooled = torch.stack([i.pooled()[0] for i in items])
    result = group_matrix(pooled, labels, "h")
    x = pooled.double().numpy()

    def expected(data):
        unit = data / np.linalg.norm(data, axis=1, keepdims=True)
        out = np.zeros((3, 3))
        for a, ca in enumerate(result.classes):
            for b, cb in enumerate(result.classes):
                sims = [unit[i] @ unit[j] for i in range(len(labels)) for j in range(len(labels))
                        if labels[i] == ca and labels[j] == cb and i != j]
                out[a, b] = np.mean(sims)
        return out

    assert result.classes == ["a", "b", "c"]
    np.testing.assert_allclose(result.raw, expected(x), atol=1e-10)
    np.testing.assert_allclose(result.centered, expected(x - x.mean(0)), atol=1e-10)
    assert np.allclose(result.raw, result.raw.T)


def test_separated_groups_give_a_large_difference_and_a_small_p_shuffled_labels_a_large_p():
    items = _items(3.0)
    table = group_similarity(items, n_permutations=200, seed=0).table
    centered = table[table["centered"]].iloc[0]
    assert centered["difference"] > 0.5 and centered["p_value"] <= 1 / 201 + 1e-12 and centered["cohens_d"] > 2
    shuffled = list(np.random.default_rng(1).permutation([i.label for i in items]))
    null = group_similarity(_items(0.0), n_permutations=200, seed=0).table
    assert null[null["centered"]].iloc[0]["p_value"] > 0.05
    table = group_similarity(items, labels=shuffled, n_permutations=200, seed=0).table
    assert table[table["centered"]].iloc[0]["p_value"] > 0.05


def test_position_probe_reads_single_frames_and_folds_split_items():
    acc = position_probe(_items(3.0), [i.label for i in _items(3.0)], n_folds=4, max_positions=4)
    assert acc.loc[0, "accuracy"] > 0.9 and acc.loc[0, "positions"] == 24 * 4
    assert abs(acc.loc[0, "chance"] - 1 / 3) < 1e-9
    # every position of an item identical, labels unrelated to the data: an item-level leak would score high
    rng = np.random.default_rng(0)
    items = [LayerActivations(str(i), ["h"], torch.tensor(np.tile(rng.standard_normal(24), (6, 1))[None], dtype=torch.float32), "")
             for i in range(24)]
    labels = ["a", "b", "c"] * 8
    assert position_probe(items, labels, n_folds=4)["accuracy"].iloc[0] < 0.6
    assert list(sample_positions(100, 4)) == [0, 33, 66, 99] and list(sample_positions(3, 16)) == [0, 1, 2]


def test_selectivity_of_a_planted_latent_and_the_floor():
    labels = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    rng = np.random.default_rng(0)
    means = torch.tensor(rng.uniform(0.5, 1.0, (12, 6)))  # background latents: selectivity near 1
    means[:, 2] = torch.tensor([1.0] * 4 + [0.1] * 8)  # planted: 10× more active on "a"
    means[:, 4] = torch.tensor([0.0] * 8 + [2.0] * 4)  # fires only on "c": the floor keeps it finite
    means[:, 5] = 0.0  # dead
    result = selectivity(means, labels, top_n=1)
    table = result.table.set_index(["label", "latent"])
    assert table.loc[("a", 2), "selectivity"] == pytest.approx(10.0)
    assert table.loc[("c", 4), "selectivity"] == pytest.approx(2.0 / (FLOOR * 2.0 * 4 / 12))
    assert 5 not in set(result.table["latent"])
    counts = result.counts.set_index("label")
    assert counts.loc["a", "above_4"] == 1 and counts.loc["c", "above_4"] == 1 and counts.loc["b", "above_2"] == 0
    assert counts.loc["a", "live"] == 5 and counts.loc["a", "common_above_4"] == 1
    assert counts.loc["c", "common_above_4"] == 1 and counts.loc["b", "common_above_2"] == 0
    assert result.top == {"a": [2], "b": [table.loc["b"]["selectivity"].idxmax()], "c": [4]}
    # plain numpy for every entry
    m = means.numpy()
    for (label, latent), row in table.iterrows():
        on, off = m[np.array(labels) == label, latent].mean(), m[np.array(labels) != label, latent].mean()
        assert row["selectivity"] == pytest.approx(on / max(off, FLOOR * m[:, latent].mean()))


def test_ablating_the_latent_that_carries_the_label_drops_the_probe_and_another_does_not():
    rng = np.random.default_rng(0)
    n, d = 40, 16
    labels = ["a"] * 20 + ["b"] * 20
    w_dec = torch.tensor(np.linalg.qr(rng.standard_normal((d, d)))[0][:4])  # [d_sae=4, d] orthonormal rows
    means = torch.tensor(rng.uniform(0, 1, (n, 4)))
    means[:, 0] = torch.tensor([2.0] * 20 + [0.0] * 20) + 0.05 * torch.tensor(rng.standard_normal(n))
    pooled = means @ w_dec + 0.01 * torch.tensor(rng.standard_normal((n, d)))  # label lives on latent 0 only
    table = ablation_table(pooled, means, w_dec, labels, [("a", 0), ("b", 3)], n_folds=4).set_index("latent")
    assert table.loc[0, "accuracy"] == 1.0 and table.loc[0, "drop"] >= 0.4
    assert table.loc[0, "recall_ablated"] <= 0.1  # "a" items look like "b" once latent 0 is gone
    assert table.loc[3, "drop"] == pytest.approx(0.0, abs=0.05)


def test_pca_matches_numpy_svd():
    x = torch.tensor(np.random.default_rng(0).standard_normal((30, 8)) * np.arange(1, 9), dtype=torch.float64)
    proj = pca_2d(x, "h")
    centered = x.numpy() - x.numpy().mean(0)
    _, s, vh = np.linalg.svd(centered, full_matrices=False)
    for k in range(2):
        np.testing.assert_allclose(np.abs(proj.coords[:, k]), np.abs(centered @ vh[k]), atol=1e-9)
    assert proj.explained == pytest.approx(tuple(s[:2] ** 2 / (s ** 2).sum()))


def test_an_sae_trained_on_the_study_rows_finds_a_direction_only_one_label_has():
    from otoscope.study.sae import latent_means, study_train_config, train_study_sae

    g = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(12, 16, generator=g), dim=1)
    planted = features[0]
    items = []
    for label in ("a", "b"):
        for i in range(10):
            which = torch.randint(1, 12, (20, 2), generator=g)
            rows = features[which].sum(1) * (0.5 + torch.rand(20, 1, generator=g))  # [20, 16]
            if label == "a":
                rows = rows + 2.0 * planted
            items.append(LayerActivations(f"{label}{i}", ["h"], rows[None], label))
    config = study_train_config(400, architecture="topk", k=3, expansion=2, steps=150, batch_size=100, lr=3e-3)
    trained = train_study_sae(items, "h", config)
    assert trained.metrics.fvu < 0.5
    result = selectivity(latent_means(trained.sae, items, 0), [i.label for i in items], top_n=1)
    best = result.top["a"][0]
    assert result.table.set_index(["label", "latent"]).loc[("a", best), "selectivity"] > 4
