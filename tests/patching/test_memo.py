"""Methods on one session share their gradient passes and exact cells, and still report what they cost alone."""

import numpy as np
import pytest

from otoscope.patching import open_session, sweep
from otoscope.patching.config import SweepConfig

HOOK = "encoder.blocks.*.hook_resid_post"


def fresh(tiny_whisper, door, park):
    return open_session(tiny_whisper, door, park, text=" My", answer="a", wrong="b", batch_size=3)


def test_shared_work_gives_the_same_maps_and_is_charged(tiny_whisper, door, park, monkeypatch):
    shared = fresh(tiny_whisper, door, park)
    passes = []
    forward = shared.runner.forward

    def counted(*args, **kwargs):
        passes.append(kwargs.get("grad", False))
        return forward(*args, **kwargs)

    forward_from = shared.runner.forward_from

    def counted_from(*args, **kwargs):  # the tangent pass starts from the cached run when it can
        out = forward_from(*args, **kwargs)
        if out is not None:
            passes.append(True)
        return out

    monkeypatch.setattr(shared.runner, "forward", counted)
    monkeypatch.setattr(shared.runner, "forward_from", counted_from)
    options = {"hooks": HOOK, "window": 10}
    exact = sweep(shared, **options)
    ig = sweep(shared, method="attribution-ig", ig_steps=3, **options)  # midpoints 1/6, 1/2, 5/6
    assert sum(passes) == 3
    two_point = sweep(shared, method="two-point", **options)  # the tangent is new; the midpoint 1/2 is IG's
    assert sum(passes) == 4
    hybrid = sweep(shared, method="hybrid", top_k=4, **options)  # both passes and its exact cells: all reused
    assert sum(passes) == 4
    # what a method reused is charged at its cost: hybrid costs at least the two passes it needs, two-point
    # at least the midpoint pass it took from integrated gradients
    assert hybrid.context["seconds"] >= two_point.context["seconds"] * 0.9
    assert two_point.context["seconds"] >= ig.context["seconds"] / 3 * 0.5

    alone = fresh(tiny_whisper, door, park)
    for method, result in (("exact", exact), ("attribution-ig", ig), ("two-point", two_point), ("hybrid", hybrid)):
        plain = sweep(alone if method == "exact" else fresh(tiny_whisper, door, park), method=method, ig_steps=3,
                      top_k=4, **options)
        np.testing.assert_allclose([c.value for c in result.cells], [c.value for c in plain.cells], atol=1e-5)
    values = np.array([c.value for c in exact.cells])
    assert np.ptp(values) > 1e-3  # a map where a wrong reuse would show


def test_exact_cells_are_memoised_per_direction(tiny_whisper, door, park):
    session = fresh(tiny_whisper, door, park)
    cells = session.cells(SweepConfig(hooks=HOOK, window=10), session.hook_names(HOOK))
    denoising = session.exact(cells[:3], "denoising")
    noising = session.exact(cells[:3], "noising")
    assert not np.allclose(denoising, noising)
    charged = session.charged
    again = session.exact(cells[:3], "denoising")
    assert again.tolist() == denoising.tolist() and session.charged > charged
    assert session.exact(cells[:5], "denoising")[:3].tolist() == denoising.tolist()
    with pytest.raises(KeyError):
        session._memo[("exact", "denoising", cells[6])]
