"""Lenses: reading what each layer already 'knows' through the model's own output machinery."""

from otoscope.lens.encoder import EncoderLensResult, LayerLens, encoder_lens

__all__ = ["EncoderLensResult", "LayerLens", "encoder_lens"]
