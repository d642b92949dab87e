"""The patching entry points: :func:`patch` for one sweep, :func:`open_session` + :func:`sweep` for several.

>>> result = patch(model, "london.flac", "paris.flac", text=" My name is John and I live in",
...                answer=" London", wrong=" Paris", hooks="encoder.blocks.*.hook_resid_post", window=10)
>>> result.to_frame()          # one row per (layer, window): value, normalized, seconds, ...
"""

from __future__ import annotations

from typing import Sequence

from otoscope.errors import OtoscopeError
from otoscope.patching.config import PairConfig, PatchConfig, SweepConfig, config_from
from otoscope.patching.inputs import prepare_pair
from otoscope.patching.methods import cell_results, run_method, sanity_notes  # noqa: F401 (re-exported)
from otoscope.patching.metrics import make_metric
from otoscope.patching.result import PatchResult
from otoscope.patching.session import PatchSession
from otoscope.stimuli.words import WordSpan


def open_session(model, clean, corrupt, config: PairConfig | None = None, *, text=None, prompt=None,
                 sample_rate=None, batch_size: int = 8, engine: str = "auto", progress: bool = False,
                 **options) -> PatchSession:
    """Prepare a clean/corrupt pair and a metric, and cache both runs for any number of sweeps.

    ``text``/``prompt`` (Whisper): one value for both runs or a ``(clean, corrupt)`` tuple. ``options``
    override ``config`` (:class:`PairConfig`) fields: ``metric``, ``answer``, ``wrong``, ``multi_token``,
    ``align``; a sweep option here is an error naming :func:`sweep`. ``batch_size``: cells per forward pass
    of the sweeps that do not set their own.
    """
    config = config_from(PairConfig, config, options, "open_session")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise OtoscopeError(f"batch_size must be a whole number >= 1, got {batch_size}.")
    pair = prepare_pair(model, clean, corrupt, text=text, prompt=prompt, sample_rate=sample_rate, align=config.align)
    metric = make_metric(model, config.metric, config.answer, config.wrong, config.multi_token)
    session = PatchSession(model, pair, metric, batch_size=int(batch_size), engine=engine, progress=progress)
    session.context = {"clean": pair.clean.clips[0].name, "corrupt": pair.corrupt.clips[0].name, "text": text,
                       "prompt": prompt, "answer": _jsonable(config.answer), "wrong": _jsonable(config.wrong),
                       "alignment": pair.alignment, "seconds": round(pair.seconds, 4), "real_frames": pair.n_frames}
    return session


def _jsonable(value):
    return value if value is None or isinstance(value, str) else [int(v) for v in value]


def sweep(session: PatchSession, config: SweepConfig | None = None, words: Sequence[WordSpan] = (),
          **options) -> PatchResult:
    """Run one sweep on an open session → :class:`PatchResult`.

    ``options`` override ``config`` (:class:`SweepConfig`) fields: ``hooks``, ``window``, ``stride``,
    ``window_unit``, ``token_window``, ``heads``, ``neurons``, ``direction``, ``method``, ``ig_steps``, ``top_k``,
    ``seed``, ``batch_size``. The metric and answers belong to the session: passing them here is an error.
    ``words``: word spans of the clean clip, for plots.
    """
    config = config_from(SweepConfig, config, options, "sweep")
    return run_method(session, config, words)


def patch(model, clean, corrupt, config: PatchConfig | None = None, *, text=None, prompt=None, sample_rate=None,
          words: Sequence[WordSpan] = (), engine: str = "auto", progress: bool = False, **options) -> PatchResult:
    """Activation patching of one clean/corrupt pair → a :class:`PatchResult` (``.to_frame()`` for a DataFrame).

    ``options`` are :class:`PatchConfig` fields: those of the pair (``metric``, ``answer``, ``wrong``,
    ``multi_token``, ``align``) and of the sweep (``hooks``, ``window``, ``stride``, ``window_unit``,
    ``token_window``, ``heads``, ``neurons``, ``direction``, ``method``, ``ig_steps``, ``top_k``, ``seed``,
    ``batch_size``). ``words``: word spans of the clean clip, for plots.
    """
    config = config_from(PatchConfig, config, options, "patch")
    session = open_session(model, clean, corrupt, config.pair, text=text, prompt=prompt, sample_rate=sample_rate,
                           engine=engine, progress=progress)
    return sweep(session, config.sweep, words)
