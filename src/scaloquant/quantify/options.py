"""The options of ``quantify`` and ``fit`` (:class:`Options`), in a module of their own: the CLI
reads their defaults (``dataclasses.fields``) to build its flags, and ``quantify --help`` must not
import torch, which :mod:`scaloquant.fit` and :mod:`.run` do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .water import WaterScaling

if TYPE_CHECKING:
    from ..fit.config import FitConfig


def _default_fit_config() -> FitConfig:
    from ..fit.config import FitConfig  # torch loads when Options are made, not for --help

    return FitConfig()


@dataclass(frozen=True)
class Options:
    """Options shared by ``quantify`` and ``fit``.

    Attributes
    ----------
    force : accept acquisition mismatches that matching cannot convert safely (with warnings).
    batch_size : spectra per network batch (None: the model's fastest default,
        :meth:`~scaloquant.models.Quantifier.default_batch_size`).
    max_figures : fit figures at most (for the spectra with the largest signal).
    refine : ``quantify`` only: also run the full fit started from the network's estimate.
    n_workers : processes of the classical fit.
    water_scaling : tissue and relaxation assumptions of the mM columns.
    echo_time_given : ``water_scaling.echo_time_ms`` was given by the user; otherwise a file
        that states its echo time is scaled with that one.
    fit_config : options of the classical fit (figures, ``--refine``, ``fit``).
    """

    force: bool = False
    batch_size: int | None = None
    max_figures: int = 16
    refine: bool = False
    n_workers: int = 1
    water_scaling: WaterScaling = field(default_factory=WaterScaling)
    echo_time_given: bool = False
    fit_config: FitConfig = field(default_factory=_default_fit_config)

    def __post_init__(self) -> None:
        for flag, value, least in (
            ("--batch-size", self.batch_size, 1),
            ("--workers", self.n_workers, 1),
            ("--max-figures", self.max_figures, 0),
        ):
            if value is not None and value < least:
                raise ConfigError(f"{flag} must be >= {least}, got {value}")
