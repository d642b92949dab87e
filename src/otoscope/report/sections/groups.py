"""Groups and probes (given labels): a same-input control, group similarity with permutation tests, and
linear probes per layer."""

from __future__ import annotations

from otoscope.errors import OtoscopeError
from otoscope.report import html as H
from otoscope.report.sections.context import ReportContext, Section, SectionResult, records


def build(ctx: ReportContext) -> SectionResult | None:
    """The control, similarity and probe tables; a note instead of a table the labels cannot support."""
    from otoscope.geometry.groups import group_similarity, same_input_control
    from otoscope.geometry.probe import probe_layers

    labels = ctx.config.labels
    if not labels:
        return None
    data: dict = {}
    control = same_input_control(ctx.model, ctx.clips[:1])
    data["same_input_control"] = records(control)
    body = ('<p class="note">Same-input control: the first clip against itself with white noise at 40 dB SNR '
            '(the ceiling any similarity should be read against).</p>')
    body += H.table([("layer", "layer"), ("hook", "hook"), ("same_input_cosine", "cosine")], data["same_input_control"],
                    text_columns=["hook"])
    try:
        groups = group_similarity(ctx.items, labels)
        data["groups"] = records(groups.table)
        body += (f'<p class="note">Mean-pooled representations; cosine within vs between labels, all-pairs baseline, '
                 f'{groups.n_permutations}-permutation p-value, Cohen\'s d; "centered" removes the mean over clips.</p>')
        body += H.table([("layer", "layer"), ("centered", "centered"), ("within", "within"), ("between", "between"),
                         ("baseline", "baseline"), ("difference", "difference"), ("p_value", "p"), ("cohens_d", "d")],
                        data["groups"])
    except OtoscopeError as err:
        body += f'<p class="na">Group similarity: {H.esc(err)}</p>'
    try:
        probe = probe_layers(ctx.items, labels)
        data["probe"] = records(probe.table)
        body += f'<h3>Linear probe ({probe.n_folds}-fold CV)</h3>'
        body += H.table([("layer", "layer"), ("accuracy", "accuracy"), ("std", "std"), ("chance", "chance")], data["probe"])
    except OtoscopeError as err:
        body += f'<p class="na">Probe: {H.esc(err)}</p>'
    ctx.step("groups & probes")
    return SectionResult("groups", "Groups and probes", "Groups & probes", body, data)


SECTION = Section("groups & probes", build, steps=lambda ctx: int(bool(ctx.config.labels)))
