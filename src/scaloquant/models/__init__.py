"""Plain ``nn.Module`` networks and the :class:`Quantifier` (transform + normalisation + CNN),
usable without the trainer, and checkpoints read back without it (:mod:`.checkpoint`)."""

from .checkpoint import CheckpointMetadata, LoadedModel, load_model, read_checkpoint
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
    "CheckpointMetadata",
    "LoadedModel",
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
    "load_model",
    "normal_quantile",
    "read_checkpoint",
    "spectrum_bins",
]
