"""`steer silence`'s choice among kinds of edit: every term of the rule is unit-free.

The case that motivated it (study, session 4): a latent-gated encoder clamp (α 4, in multiples of a typical
latent activation) and a direction-gated decoder push (α 0.25, in mean-norm units) both emptied every fit
clip without touching fit speech; the old rule then preferred the larger raw α, i.e. the clamp, which on
held-out data missed the WER limit (+0.037) because its gate misfired on speech it then damaged.
"""

from otoscope.steer.silence import Candidate, _rank, _set_weaker_rates


def _cand(method, alpha, rel, rate=0.0, wer=0.0, wer_ungated=0.0, margin=0.0, layer=3, weaker=1.0):
    return Candidate(method, "...", layer, alpha, rate, wer, margin, wer_ungated=wer_ungated, weaker_rate=weaker,
                     relative_strength=rel)


def test_the_edit_harmless_when_its_gate_errs_wins_over_a_larger_raw_alpha():
    clamp = _cand("latent_gated_encoder_latents", 4.0, 1.0, wer_ungated=0.31, margin=2.0)
    push = _cand("gated_decoder_token", 0.25, 0.25, wer_ungated=0.0, margin=1.0)
    assert min([clamp, push], key=_rank) is push
    assert min([push, clamp], key=_rank) is push


def test_fewer_fit_hallucinations_still_come_first():
    clean = _cand("gated_decoder_token", 0.25, 0.25, rate=0.2, wer_ungated=0.0)
    silent = _cand("latent_gated_encoder_latents", 4.0, 1.0, rate=0.0, wer_ungated=0.3)
    assert min([clean, silent], key=_rank) is silent


def test_gated_before_ungated_then_margin_then_relative_strength():
    ungated = _cand("decoder_token", 1.0, 1.0, margin=0.0)
    gated_narrow = _cand("gated_decoder_token", 1.0, 1.0, margin=0.5)
    gated_wide = _cand("latent_gated_decoder_token", 0.5, 0.5, margin=1.5)
    assert min([ungated, gated_narrow], key=_rank) is gated_narrow
    assert min([ungated, gated_narrow, gated_wide], key=_rank) is gated_wide
    weak = _cand("gated_decoder_token", 0.25, 0.25, margin=0.5)
    assert min([weak, gated_narrow], key=_rank) is gated_narrow  # same gate: the larger share of its sweep


def test_unmeasured_speech_damage_ranks_last():
    unmeasured = _cand("latent_gated_encoder_latents", 4.0, 1.0, wer_ungated=None, margin=3.0)
    measured = _cand("gated_decoder_token", 0.25, 0.25, wer_ungated=0.5)
    assert min([unmeasured, measured], key=_rank) is measured


def test_a_strength_whose_weaker_neighbour_is_already_silent_beats_one_at_the_edge():
    # seed-0 fit half: the gated push at layer 3 empties every fit clip at α 0.25 and at α 1; α 0.25 sits at
    # the edge (one step weaker is the unsteered model, 100 % hallucinations) and costs speech less ungated
    edge = _cand("gated_decoder_token", 0.25, 0.25, wer_ungated=0.117, margin=1.0)
    inside = _cand("gated_decoder_token", 1.0, 1.0, wer_ungated=0.192, margin=1.0)
    _set_weaker_rates([inside, edge], unsteered=1.0)
    assert (edge.weaker_rate, inside.weaker_rate) == (1.0, 0.0)
    assert min([edge, inside], key=_rank) is inside


def test_weaker_rates_are_filled_per_edit_in_order_of_strength():
    a = [_cand("decoder_token", x, x, rate=r, layer=1) for x, r in ((1.0, 0.0), (0.25, 0.6), (0.5, 0.2))]
    b = _cand("decoder_token", 0.5, 0.5, rate=0.9, layer=3)  # another layer: its own sweep
    _set_weaker_rates(a + [b], unsteered=0.95)
    assert [c.weaker_rate for c in a] == [0.2, 0.95, 0.6]
    assert b.weaker_rate == 0.95
