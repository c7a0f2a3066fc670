"""The configuration of the physics-head models (:mod:`scaloquant.models.physics`): the
:class:`PhysicsQuantifierConfig` a checkpoint stores and rebuilds the model from, its model kinds
and defaults (the encoder, the scalogram's, the polish's ``K``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .._config import dataclass_from_dict, whole_number
from ..errors import ConfigError
from ..fit.config import FitConfig
from ..presets import PHYSICS_KINDS, PhysicsKind
from ..types import Acquisition
from .cnn import DEFAULT_KERNEL_SIZE, DEFAULT_WIDTHS, Norm, kernel_tuple
from .quantifier import QuantifierConfig

#: The regression CNN each physics model uses as its encoder.
ENCODER_OF = {"spectrum_physics": "spectrum_cnn", "scalogram_physics": "scalogram_cnn"}
#: The scalogram encoder's default (:meth:`ScalogramConfig.preset` arguments): the ``cpu``
#: preset's span with ``complex`` channels (the paper's ``abs_re_im`` cannot see a conjugation,
#: ``pos_neg`` not the zero-order phase; issue 13), 64 scales and every 8th column: 4 times
#: fewer outputs than ``cpu``, whose encoder took 3.5 s per training step of 32 signals on one
#: CPU thread (the spectrum encoder 0.06 s).
DEFAULT_PHYSICS_SCALOGRAM = {"name": "cpu", "channels": "complex", "n_scales": 64, "decimation": 8}
#: Default polish iterations (``K``): on spectra the fit's model describes, 5 matched 20 (SNR 30)
#: and the full fit, at a quarter of the cost of 20
#: (docs/history/physics-models-log.md "Measured (2 shared CPU cores"; again with the damping
#: kept from one trial to the next: "The polish as a real Levenberg-Marquardt (session 21,
#: `polish21`)").
DEFAULT_POLISH_ITERATIONS = 5


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def fit_config_from_dict(d: Mapping[str, Any]) -> FitConfig:
    """A :class:`FitConfig` from :meth:`FitConfig.to_dict` (lists back to tuples; the settings
    of the retired scipy solver that older checkpoints hold, as :meth:`FitConfig.from_dict`)."""
    return FitConfig.from_dict({k: _tuples(v) for k, v in d.items()})


@dataclass(frozen=True)
class PhysicsQuantifierConfig:
    """Everything needed to rebuild a :class:`~scaloquant.models.physics.PhysicsQuantifier`
    (buffers aside).

    Attributes
    ----------
    model : ``"spectrum_physics"`` or ``"scalogram_physics"``.
    metabolites : names of the prepared basis (the fit's, macromolecules and lipids included),
        in amplitude order.
    macromolecules : which of them are macromolecules or lipids (basis metadata of the fit).
    n_points, dwell_time_s, spectrometer_freq_mhz, ppm_reference, nucleus : acquisition grid.
    fit : :meth:`FitConfig.to_dict` of the model (default: ``FIT_PRESETS["invivo"]``; the
        default simulation's models use ``FIT_PRESETS["simulated"]``).
    damping_range_per_s, shift_range_hz, gauss_range_per_s2 : ranges of the network's group
        damping ``alpha`` (1/s), shift (Hz) and Gaussian ``beta`` (1/s^2); default the fit's
        bounds (0-60 1/s, +-25 Hz = its global shift search, 0-3000 1/s^2) so that every
        prediction is a start the fit accepts.
    phase1_range_rad_per_ppm : first-order phase range about the fit's pivot, rad/ppm (default
        +-0.5: about 3 times the ``invivo`` simulation's +-10 deg/ppm).
    polish_iterations : ``K``, Levenberg–Marquardt iterations after the network (0: none).
    polish_moves : after the polish, the batched fit's global moves
        (:func:`scaloquant.fit.search.global_moves`): resets of groups lost on a bound and twin
        swaps (Cr/PCr, GPC/PCho), each kept where the cost drops, then the fit's second search
        where the residual still misfits
        (:meth:`~scaloquant.models.physics.PhysicsQuantifier.second_search_where_misfit`)
        (only without priors, i.e. the per-metabolite model of the default simulation).
    polish_broadening_per_s : continuation stages of the polish, 1/s, decreasing (the fit's
        ``continuation_broadening_per_s``, :func:`scaloquant.fit.stages.continuation`): before the ``K``
        iterations, Levenberg–Marquardt from the network's start on data and basis broadened
        by ``exp(-L t)`` for each ``L`` (on the FID's first samples, as the fit's stages), which
        widens the basin of the narrow lines' shifts; ``()`` for none (``K = 0``: never).
    network_sd_factors : per amplitude ``(M,)``: the factors that calibrate the network's own
        SD (the CRLB at the network's parameters,
        :attr:`~scaloquant.models.physics.PhysicsEstimate.network_sd`), measured on the
        validation set at training time so that its z-scores have unit RMS
        (:func:`~scaloquant.models.physics_head.network_sd_factors`); ``None``: uncalibrated
        (factors 1).
    widths, kernel_sizes, norm, scalogram, spectrum_ppm_range : the encoder
        (:class:`~scaloquant.models.quantifier.QuantifierConfig`). The scalogram encoder's
        default channels are ``complex`` (the paper's ``abs_re_im`` cannot see a conjugation and
        ``pos_neg`` not the zero-order phase; issue 13).
    """

    model: PhysicsKind
    metabolites: tuple[str, ...]
    macromolecules: tuple[str, ...]
    n_points: int
    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float
    nucleus: str = "1H"
    fit: Mapping[str, Any] | None = None
    damping_range_per_s: tuple[float, float] | None = None
    shift_range_hz: tuple[float, float] | None = None
    gauss_range_per_s2: tuple[float, float] | None = None
    phase1_range_rad_per_ppm: tuple[float, float] = (-0.5, 0.5)
    polish_iterations: int = DEFAULT_POLISH_ITERATIONS
    polish_broadening_per_s: tuple[float, ...] = ()
    polish_moves: bool = False
    network_sd_factors: tuple[float, ...] | None = None
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    kernel_sizes: tuple[int, ...] = (DEFAULT_KERNEL_SIZE,) * len(DEFAULT_WIDTHS)
    norm: Norm = "batch"
    scalogram: Mapping[str, Any] | None = None
    spectrum_ppm_range: tuple[float, float] | None = (0.2, 4.2)

    def __post_init__(self) -> None:
        if self.model not in PHYSICS_KINDS:
            raise ConfigError(
                f"unknown physics model {self.model!r}; choose one of {', '.join(PHYSICS_KINDS)}"
            )
        if self.model == "scalogram_physics" and self.scalogram is None:
            raise ConfigError("a scalogram_physics model needs a scalogram configuration")
        fit = self.fit_config
        defaults = {
            "damping_range_per_s": fit.damping_bounds_per_s,
            "shift_range_hz": fit.global_shift_range_hz,
            "gauss_range_per_s2": fit.gauss_bounds_per_s2,
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            object.__setattr__(self, name, _pair(name, default if value is None else value))
        object.__setattr__(
            self, "phase1_range_rad_per_ppm", _pair("phase1", self.phase1_range_rad_per_ppm)
        )
        object.__setattr__(self, "fit", fit.to_dict())
        for name in ("metabolites", "macromolecules"):
            object.__setattr__(self, name, tuple(str(m) for m in getattr(self, name)))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "kernel_sizes", kernel_tuple(self.kernel_sizes, len(self.widths)))
        if self.spectrum_ppm_range is not None:
            object.__setattr__(self, "spectrum_ppm_range", _pair("ppm", self.spectrum_ppm_range))
        stages = tuple(float(v) for v in self.polish_broadening_per_s)
        if not all(math.isfinite(v) and v > 0 for v in stages) or any(
            a <= b for a, b in zip(stages, stages[1:], strict=False)
        ):
            raise ConfigError(
                f"polish_broadening_per_s must hold positive, decreasing values, got {stages}"
            )
        object.__setattr__(self, "polish_broadening_per_s", stages)
        if self.network_sd_factors is not None:
            factors = tuple(float(f) for f in self.network_sd_factors)
            if len(factors) != len(self.metabolites) or not all(
                math.isfinite(f) and f > 0 for f in factors
            ):
                raise ConfigError(
                    f"network_sd_factors must be {len(self.metabolites)} positive numbers, one "
                    f"per amplitude, got {self.network_sd_factors!r}"
                )
            object.__setattr__(self, "network_sd_factors", factors)
        k = whole_number("polish_iterations", self.polish_iterations, 0)
        object.__setattr__(self, "polish_iterations", k)

    @property
    def fit_config(self) -> FitConfig:
        """The model of the fit (``FIT_PRESETS["invivo"]`` when none is given)."""
        if self.fit is None:
            from ..fit.config import FIT_PRESETS

            return FIT_PRESETS["invivo"]
        return fit_config_from_dict(self.fit)

    @property
    def acquisition(self) -> Acquisition:
        return Acquisition.of(self)

    def encoder_config(self, n_outputs: int) -> QuantifierConfig:
        """The regression CNN used as encoder, with ``n_outputs`` outputs."""
        return QuantifierConfig(
            model=ENCODER_OF[self.model],
            metabolites=tuple(f"theta{i}" for i in range(n_outputs)),
            n_points=self.n_points,
            dwell_time_s=self.dwell_time_s,
            spectrometer_freq_mhz=self.spectrometer_freq_mhz,
            ppm_reference=self.ppm_reference,
            nucleus=self.nucleus,
            widths=self.widths,
            kernel_sizes=self.kernel_sizes,
            norm=self.norm,
            scalogram=None if self.scalogram is None else dict(self.scalogram),
            spectrum_ppm_range=self.spectrum_ppm_range,
            # the input is scaled by PhysicsQuantifier.window_scaled already
            input_scale="fixed",
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        d["scalogram"] = None if self.scalogram is None else dict(self.scalogram)
        d["fit"] = dict(self.fit)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PhysicsQuantifierConfig:
        return dataclass_from_dict(
            cls, {k: v if k in ("fit", "scalogram") else _tuples(v) for k, v in d.items()}, "model"
        )


def _pair(name: str, value) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"{name} range must be finite with low < high, got {value!r}")
    return lo, hi
