"""Plain ``nn.Module`` networks and the :class:`Quantifier` (transform + normalisation + CNN),
usable without the trainer."""

from .cnn import (
    DEFAULT_KERNEL_SIZE,
    DEFAULT_WIDTHS,
    ConvRegressor,
    ScalogramCNN,
    SpectrumCNN,
    inference_copy,
)
from .quantifier import MODEL_KINDS, NormalisedOutput, Quantifier, QuantifierConfig
from .transforms import SpectrumTransform, spectrum_bins
from .uncertainty import (
    UNCERTAINTY_KINDS,
    calibration_factors,
    gaussian_nll,
    normal_quantile,
)

__all__ = [
    "DEFAULT_KERNEL_SIZE",
    "DEFAULT_WIDTHS",
    "MODEL_KINDS",
    "UNCERTAINTY_KINDS",
    "ConvRegressor",
    "NormalisedOutput",
    "Quantifier",
    "QuantifierConfig",
    "ScalogramCNN",
    "SpectrumCNN",
    "SpectrumTransform",
    "calibration_factors",
    "gaussian_nll",
    "inference_copy",
    "normal_quantile",
    "spectrum_bins",
]
