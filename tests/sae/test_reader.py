"""The shuffling reader: every row once per epoch, rows mixed across shards, exact resume, rank slices."""

import pytest
import torch

from otoscope.errors import OtoscopeError
from otoscope.sae.reader import ShuffledReader
from otoscope.sae.store import ActivationStore

from .synthetic import make_store

ROWS = 960


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ids = torch.arange(ROWS, dtype=torch.float32)
    data = {"h": torch.stack([ids, -ids, ids % 16], dim=1)}  # column 0 is the row's id
    return ActivationStore(make_store(tmp_path_factory.mktemp("reader"), data, clip_rows=16, shard_rows=100))


def _ids(batches) -> list[int]:
    return [int(v) for b in batches for v in b.acts["h"][:, 0]]


def _take(reader, n):
    out = []
    for batch in reader:
        out.append(batch)
        if len(out) == n:
            return out


def test_each_epoch_visits_every_row_once_in_a_mixed_order(store):
    assert len(store.shards) == 9  # eight 112-row shards (7 clips each) and a 64-row remainder
    reader = ShuffledReader(store, ["h"], 64, seed=1, buffer_rows=300)
    ids = _ids(_take(reader, 2 * ROWS // 64))
    first, second = ids[:ROWS], ids[ROWS:]
    assert sorted(first) == list(range(ROWS)) and sorted(second) == list(range(ROWS))
    assert first != second  # a new order each epoch
    shard_of = [int(i) // 112 for i in first[:64]]
    assert len(set(shard_of)) >= 2  # one batch mixes several shards
    assert abs(sum(first[:64]) / 64 - ROWS / 2) < ROWS / 4  # not the store's order


def test_resuming_at_a_position_gives_the_same_batches(store):
    full = _take(ShuffledReader(store, ["h"], 48, seed=3, buffer_rows=200), 30)
    later = _take(ShuffledReader(store, ["h"], 48, seed=3, buffer_rows=200, start=full[17].position), 13)
    assert [b.position for b in later] == [b.position for b in full[17:]]
    assert all(torch.equal(a.acts["h"], b.acts["h"]) for a, b in zip(full[17:], later))
    unprefetched = _take(ShuffledReader(store, ["h"], 48, seed=3, buffer_rows=200, prefetch=False), 30)
    assert all(torch.equal(a.acts["h"], b.acts["h"]) for a, b in zip(full, unprefetched))


def test_ranks_read_disjoint_slices_of_the_same_global_batch(store):
    whole = _take(ShuffledReader(store, ["h"], 64, seed=5, buffer_rows=250), 5)
    parts = [_take(ShuffledReader(store, ["h"], 64, seed=5, buffer_rows=250, rank=r, world_size=2), 5) for r in (0, 1)]
    for i in range(5):
        assert torch.equal(torch.cat([parts[0][i].acts["h"], parts[1][i].acts["h"]]), whole[i].acts["h"])
    with pytest.raises(OtoscopeError, match="does not split over 3 ranks"):
        ShuffledReader(store, ["h"], 64, world_size=3)


def test_locate_names_the_shard_clip_and_frame_of_a_row(store):
    reader = ShuffledReader(store, ["h"], 32, seed=2, buffer_rows=300)
    batch = _take(reader, 7)[-1]
    row = 11
    source = reader.locate(batch.position + row)
    row_id = int(batch.acts["h"][row, 0])
    assert source.clip == row_id // 16 and source.frame == row_id % 16 and source.clip_name == f"clip{row_id // 16}"
    assert source.shard == f"shard-r00-{row_id // 112:05d}.safetensors"


def test_unknown_hook_is_named(store):
    with pytest.raises(OtoscopeError, match="hook 'x' is not in the activation store"):
        ShuffledReader(store, ["x"], 8)
