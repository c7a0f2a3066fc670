"""Plain ``nn.Module`` networks and the :class:`Quantifier` (transform + normalisation + CNN),
usable without the trainer."""

from .cnn import DEFAULT_KERNEL_SIZE, DEFAULT_WIDTHS, ConvRegressor, ScalogramCNN, SpectrumCNN
from .quantifier import MODEL_KINDS, Quantifier, QuantifierConfig
from .transforms import SpectrumTransform, spectrum_bins

__all__ = [
    "DEFAULT_KERNEL_SIZE",
    "DEFAULT_WIDTHS",
    "MODEL_KINDS",
    "ConvRegressor",
    "Quantifier",
    "QuantifierConfig",
    "ScalogramCNN",
    "SpectrumCNN",
    "SpectrumTransform",
    "spectrum_bins",
]
