"""Configuration of the linear-combination fit: a frozen, validated :class:`FitConfig`, and
:class:`FitStart`, an optional starting point (for example a network's estimate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import ConfigError, InvalidDataError

if TYPE_CHECKING:  # result.py imports this module
    from .result import FitResult

#: How metabolites share their damping and shift: one pair each, one pair for all, or explicit
#: groups (tuples of metabolite names; metabolites named in no group keep a pair of their own).
Grouping = Literal["per_metabolite", "global"] | tuple[tuple[str, ...], ...]


def _check_range(name: str, value: Sequence[float], *, allow_infinite: bool = False) -> None:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair of numbers (low, high), got {value!r}") from None
    ok = (lambda v: not math.isnan(v)) if allow_infinite else math.isfinite
    if not (ok(lo) and ok(hi)):
        raise ConfigError(f"{name} must hold finite numbers, got ({lo}, {hi})")
    if not lo < hi:
        raise ConfigError(f"{name} must have low < high, got ({lo}, {hi}); swap or widen it")


@dataclass(frozen=True)
class FitConfig:
    """Options of :func:`scaloquant.fit.fit_spectra`; every field is keyword-only by convention.

    Attributes
    ----------
    ppm_range : ``(low, high)`` chemical-shift window of the fit, ppm (default 0.2-4.2 ppm).
    grouping : ``"per_metabolite"`` (a damping and a shift per metabolite, the family of the
        paper's Eq. 1), ``"global"`` (one pair for all), or a tuple of name tuples that share a
        pair (names in no group keep their own).
    damping_bounds_per_s : bounds of the extra Lorentzian damping ``alpha`` in 1/s, applied as
        ``exp(-alpha t)`` on top of the basis' own linewidth.
    shift_bounds_hz : bounds of the frequency shift ``df`` in Hz (applied as
        ``exp(2 pi i df t)``) *relative to the spectrum's common starting shift*: each
        metabolite may move this far from where the whole spectrum sits.
    global_shift_range_hz : range searched for that common shift by cross-correlation.
    fit_phase0 : fit a global zero-order phase ``phi0`` (rad).
    fit_phase1 : fit a global first-order phase ``phi1`` (rad/ppm) about ``phase1_pivot_ppm``;
        the model is multiplied by ``exp(i (phi0 + phi1 (ppm - pivot)))``.
    phase1_pivot_ppm : pivot of the first-order phase; ``None`` means the data's reference
        (0 Hz), where a first-order phase is exactly a time shift of the FID.
    gaussian : fit a global Gaussian broadening ``exp(-beta t^2)``, ``beta`` in 1/s^2 (a Voigt
        lineshape with the Lorentzian damping). ``beta`` enters linearly in the exponent so its
        derivative does not vanish at ``beta = 0``; the Gaussian FWHM in Hz is
        ``2 sqrt(beta ln 2) / pi``.
    gauss_bounds_per_s2 : bounds of ``beta``.
    baseline_order : degree of a complex polynomial baseline over the window (Legendre
        polynomials of the ppm scaled to [-1, 1]; linear parameters, of either sign); ``None``
        for no baseline (the paper's Eq. 1 has none).
    noise_estimate : how the noise SD of the CRLB (the SD of each real part of the spectrum,
        unnormalised FFT) is estimated. ``"residual"`` (default): ``|r|^2 / (2K - P)`` over the
        window, ``P`` the active amplitudes, identifiable nonlinear parameters and baseline
        coefficients. It needs no signal-free region (many files are cut to a narrow band, and
        scanner filters attenuate the spectrum's edges) and it includes model misfit, so the
        bounds err on the safe side, like LCModel's. ``"region"``: the spectrum in
        ``noise_ppm_range`` after removing a straight complex line; independent of the fit, but
        only right where that region truly holds no signal or artefact.
    noise_ppm_range : signal-free window for ``noise_estimate="region"``, ppm (default 9.5-11.5:
        above the 1H amide and NAA NH resonances near 7.8-8.2 ppm, inside a 3 T 2 kHz band).
    initial_damping_per_s : starting damping of every group.
    initial_shift : ``"xcorr"`` (one shift for all from the cross-correlation of the magnitude
        spectra of data and basis sum) or ``"zero"``.
    continuation_broadening_per_s : extra Lorentzian broadening ``L`` (1/s) of data and basis in
        the stages fitted before the final, unbroadened one, decreasing; ``()`` for none (see
        :mod:`scaloquant.fit.varpro`).
    max_resets : how many times metabolites that end on a bound are restarted.
    twin_max_separation_hz : metabolites whose largest peaks lie this close (Cr/PCr and GPC/PCho
        in the default basis, 0.74 Hz apart at 3 T) get a second fit with their lineshapes
        swapped; 0 disables it.
    max_evaluations : limit on model evaluations per local fit (``least_squares``
        ``max_nfev``). A fit that needs more is crawling along a flat valley of a noisy cost
        (small metabolites fitting noise), where further steps no longer change the estimates
        beyond their noise.
    tolerance : ``ftol``, ``xtol`` and ``gtol`` of ``scipy.optimize.least_squares``. With noise,
        the cost ``|r|^2`` is about ``2K sigma^2`` over ``K`` window points, and moving an
        estimate by one standard deviation changes it by about ``sigma^2``; stopping when a
        step gains less than ``1e-6`` of the cost (``K`` ~ 250, so ~5e-4 ``sigma^2``) leaves
        the estimates a few hundredths of an SD from the minimum. Noiseless fits converge
        quadratically and reach rounding level anyway.
    """

    ppm_range: tuple[float, float] = (0.2, 4.2)
    grouping: Grouping = "per_metabolite"
    damping_bounds_per_s: tuple[float, float] = (0.0, 50.0)
    shift_bounds_hz: tuple[float, float] = (-5.0, 5.0)
    global_shift_range_hz: tuple[float, float] = (-10.0, 10.0)
    fit_phase0: bool = True
    fit_phase1: bool = True
    phase1_pivot_ppm: float | None = None
    gaussian: bool = False
    gauss_bounds_per_s2: tuple[float, float] = (0.0, 5000.0)
    baseline_order: int | None = None
    noise_estimate: Literal["residual", "region"] = "residual"
    noise_ppm_range: tuple[float, float] = (9.5, 11.5)
    initial_damping_per_s: float = 2.0
    initial_shift: Literal["xcorr", "zero"] = "xcorr"
    continuation_broadening_per_s: tuple[float, ...] = (40.0, 10.0)
    max_resets: int = 2
    twin_max_separation_hz: float = 1.0
    max_evaluations: int = 100
    tolerance: float = 1e-6

    def __post_init__(self) -> None:
        for name in (
            "ppm_range",
            "damping_bounds_per_s",
            "shift_bounds_hz",
            "global_shift_range_hz",
            "gauss_bounds_per_s2",
            "noise_ppm_range",
        ):
            _check_range(name, getattr(self, name))
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.gauss_bounds_per_s2[0] < 0:
            raise ConfigError("gauss_bounds_per_s2 must be >= 0: beta is a Gaussian decay rate")
        if isinstance(self.grouping, str):
            if self.grouping not in ("per_metabolite", "global"):
                raise ConfigError(
                    f"grouping must be 'per_metabolite', 'global' or groups of names, "
                    f"got {self.grouping!r}"
                )
        else:
            try:
                groups = tuple(tuple(str(n) for n in g) for g in self.grouping)
            except TypeError:
                raise ConfigError(
                    f"grouping must be 'per_metabolite', 'global' or groups of names, "
                    f"got {self.grouping!r}"
                ) from None
            object.__setattr__(self, "grouping", groups)
        if self.baseline_order is not None and (
            isinstance(self.baseline_order, bool)
            or not isinstance(self.baseline_order, int)
            or self.baseline_order < 0
        ):
            raise ConfigError(
                f"baseline_order must be None or an integer >= 0, got {self.baseline_order!r}"
            )
        if self.noise_estimate not in ("residual", "region"):
            raise ConfigError(
                f"noise_estimate must be 'residual' or 'region', got {self.noise_estimate!r}"
            )
        if self.initial_shift not in ("xcorr", "zero"):
            raise ConfigError(
                f"initial_shift must be 'xcorr' or 'zero', got {self.initial_shift!r}"
            )
        if self.phase1_pivot_ppm is not None and not math.isfinite(self.phase1_pivot_ppm):
            raise ConfigError(f"phase1_pivot_ppm must be finite, got {self.phase1_pivot_ppm}")
        lo, hi = self.damping_bounds_per_s
        if not (
            math.isfinite(self.initial_damping_per_s) and lo <= self.initial_damping_per_s <= hi
        ):
            raise ConfigError(
                f"initial_damping_per_s = {self.initial_damping_per_s} is outside "
                f"damping_bounds_per_s ({lo}, {hi})"
            )
        try:
            stages = tuple(float(v) for v in self.continuation_broadening_per_s)
        except (TypeError, ValueError):
            raise ConfigError(
                "continuation_broadening_per_s must be a sequence of numbers (1/s), "
                f"got {self.continuation_broadening_per_s!r}"
            ) from None
        if not all(math.isfinite(v) and v > 0 for v in stages) or any(
            a <= b for a, b in pairwise(stages)
        ):
            raise ConfigError(
                f"continuation_broadening_per_s must hold positive, decreasing values, got {stages}"
            )
        object.__setattr__(self, "continuation_broadening_per_s", stages)
        if isinstance(self.max_resets, bool) or not (
            isinstance(self.max_resets, int) and self.max_resets >= 0
        ):
            raise ConfigError(f"max_resets must be an integer >= 0, got {self.max_resets!r}")
        if not (math.isfinite(self.twin_max_separation_hz) and self.twin_max_separation_hz >= 0):
            raise ConfigError(
                f"twin_max_separation_hz must be >= 0, got {self.twin_max_separation_hz}"
            )
        if not (isinstance(self.max_evaluations, int) and self.max_evaluations >= 1):
            raise ConfigError(
                f"max_evaluations must be an integer >= 1, got {self.max_evaluations!r}"
            )
        if not (math.isfinite(self.tolerance) and 0 < self.tolerance < 1):
            raise ConfigError(f"tolerance must be in (0, 1), got {self.tolerance}")

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists), e.g. for a provenance file."""

        def plain(v):
            return [plain(x) for x in v] if isinstance(v, tuple) else v

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class FitStart:
    """Optional starting values, each of the batch shape of the data (``(...)``) or with a last
    axis of metabolites (``(..., n_metabolites)``); ``None`` keeps the default start.

    Amplitudes have no starting value: variable projection solves them exactly for any damping,
    shift and phase, so a network's amplitude estimate is not needed here; its damping, shift
    and phase estimates (when it makes them) are. A per-metabolite start is averaged within a
    group when metabolites share a damping and shift.
    """

    damping_per_s: np.ndarray | None = None
    shift_hz: np.ndarray | None = None
    phase0_rad: np.ndarray | None = None
    phase1_rad_per_ppm: np.ndarray | None = None
    gauss_per_s2: np.ndarray | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            arr = np.array(value, dtype=np.float64, copy=True)
            if not np.all(np.isfinite(arr)):
                raise InvalidDataError(f"starting value {f.name} contains NaN or Inf")
            arr.setflags(write=False)
            object.__setattr__(self, f.name, arr)

    @classmethod
    def from_result(cls, result: FitResult) -> FitStart:
        """Start from the nonlinear parameters of an earlier fit (for example
        :func:`~scaloquant.fit.fit_given_amplitudes` around a network's amplitudes): its
        per-metabolite damping and shift, phases and Gaussian, of its batch shape.

        The phases are about ``result.phase1_pivot_ppm``; start a fit with that pivot.
        """
        return cls(
            damping_per_s=result.damping_per_s,
            shift_hz=result.shift_hz,
            phase0_rad=result.phase0_rad,
            phase1_rad_per_ppm=result.phase1_rad_per_ppm,
            gauss_per_s2=result.gauss_per_s2,
        )
