"""The plain form of AtP*'s GradDrop, one gradient run per layer: the reference the gated runs are checked against."""

import numpy as np
import torch


def drop_layer(side: str, layer: int):
    """Hooks that stop the gradient through block ``layer``'s residual branch (its output = input + branch)."""
    pre, post = f"{side}.blocks.{layer}.hook_resid_pre", f"{side}.blocks.{layer}.hook_resid_post"
    seen: dict[str, torch.Tensor] = {}

    def remember(act, hook):
        seen["x"] = act
        return act

    def drop(act, hook):
        x = seen["x"]
        if x.shape != act.shape:  # the decoder input is per row, like its output; anything else: leave it
            return act
        return x + (act - x).detach()

    return [(pre, remember), (post, drop)]


def atp_star_reference(session, cells, direction: str) -> np.ndarray:
    """AtP* with one full gradient run per layer of the model, none skipped (atp.atp_star's definition). Here the
    dropped block's input is read before the deltas, so cells *at* a block's input lose the skip when that
    block is dropped; compare on cells at blocks' outputs (atp_star reaches both)."""
    from otoscope.patching.atp import qk_fixed

    model = session.model
    values = qk_fixed(session, cells, direction)
    correction = values - session.attribution(cells, direction)
    base, _ = session.base_and_source(direction, list(dict.fromkeys(c.hook for c in cells)))
    base_value = session._value(base)
    layers = [("encoder", i) for i in range(model.n_layers)] + [("decoder", i) for i in range(model.n_decoder_layers)]
    magnitude = np.zeros(len(cells))
    for side, layer in layers:
        dropped = session.attribution(cells, direction, hooks=drop_layer(side, layer)) + correction
        magnitude += np.abs(dropped - base_value)
    magnitude /= len(layers)
    sign = np.sign(values - base_value)
    return base_value + np.where(sign == 0, 1.0, sign) * magnitude
