"""Running top-k and bottom-k samples: any batching and merge order gives the one total order (ties by key)."""

from __future__ import annotations

import torch

from otoscope.features import select


def _brute(group, score, key, payload, groups: int, k: int, descending: bool) -> list[list[tuple]]:
    out = []
    for g in range(groups):
        entries = [(float(s), int(kk), float(p)) for gg, s, kk, p in zip(group, score, key, payload) if gg == g]
        entries.sort(key=lambda e: ((-e[0] if descending else e[0]), e[1]))
        out.append(entries[:k])
    return out


def _rows(best: select.Best) -> list[list[tuple]]:
    return [[(float(s), int(kk), float(p)) for s, kk, p in zip(srow, krow, prow) if kk != select.EMPTY_KEY]
            for srow, krow, prow in zip(best.score.tolist(), best.key.tolist(), best.payload.tolist())]


def test_ties_are_broken_by_key_whatever_the_batching():
    gen = torch.Generator().manual_seed(0)
    n, groups, k = 600, 7, 5
    group = torch.randint(0, groups, (n,), generator=gen)
    score = torch.randint(0, 4, (n,), generator=gen).float()  # few distinct values: many ties
    key = torch.randperm(n, generator=gen).to(torch.int64) * 3
    payload = torch.rand(n, generator=gen)
    for descending in (True, False):
        expected = _brute(group.tolist(), score.tolist(), key.tolist(), payload.tolist(), groups, k, descending)
        for split in (1, 37, n):
            order = torch.randperm(n, generator=gen)  # batches arrive in any key order
            best = select.empty(groups, k, descending)
            for start in range(0, n, split):
                idx = order[start : start + split]
                select.merge(best, group[idx], score[idx], key[idx], payload[idx], descending)
            assert _rows(best) == expected, (descending, split)


def test_merging_two_partial_selections_equals_one():
    gen = torch.Generator().manual_seed(1)
    n, groups, k = 300, 5, 4
    group, score = torch.randint(0, groups, (n,), generator=gen), torch.randint(0, 3, (n,), generator=gen).float()
    key, payload = torch.arange(n, dtype=torch.int64), torch.rand(n, generator=gen)
    whole, a, b = (select.empty(groups, k, True) for _ in range(3))
    select.merge(whole, group, score, key, payload, True)
    half = torch.rand(n, generator=gen) < 0.5
    select.merge(a, group[half], score[half], key[half], payload[half], True)
    select.merge(b, group[~half], score[~half], key[~half], payload[~half], True)
    select.merge_all(b, a, True)
    assert _rows(b) == _rows(whole)


def test_keys_and_priorities():
    clip, frame = torch.tensor([0, 3, 70000]), torch.tensor([5, 0, 90000])
    assert [t.tolist() for t in select.unpack_key(select.pack_key(clip, frame))] == [clip.tolist(), frame.tolist()]
    key = torch.arange(20000, dtype=torch.int64)
    p = select.priority(key, torch.zeros_like(key), seed=0)
    assert p.min() >= 0 and p.max() < 2**31 and len(torch.unique(p)) > 19900  # spread, no overflow
    assert not torch.equal(p, select.priority(key, torch.zeros_like(key), seed=1))
    assert 0.45 < (p < 2**30).float().mean() < 0.55  # about uniform
