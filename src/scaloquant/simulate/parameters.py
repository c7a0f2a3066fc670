"""Random parameters of simulated signals, drawn from a :class:`SimulationConfig`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from .._config import whole_number
from .config import Range, SimulationConfig

#: Fields of :class:`SimulationParameters` with one column per metabolite (the others have one
#: value per signal, or one per baseline hump).
PER_METABOLITE_FIELDS = ("amplitudes", "damping_per_s", "shift_hz", "gaussian_damping_per_s")


@dataclass(frozen=True)
class SimulationParameters:
    """Every drawn parameter of a batch of ``B`` signals over ``M`` basis metabolites.

    Arrays are float64 numpy arrays. Optional effects that are switched off are ``None``.

    Attributes
    ----------
    amplitudes : (B, M) ``A_m`` of Eq. 1, multiples of the basis FIDs.
    damping_per_s : (B, M) Lorentzian damping ``alpha_m``, 1/s (0 for the Gaussian lineshape).
    shift_hz : (B, M) frequency shift ``df_m``, Hz.
    gaussian_damping_per_s : (B, M) ``g_m`` of ``exp(-(g_m t)^2)``, 1/s, or None.
    phase0_deg : (B,) zero-order phase, degrees, or None.
    phase1_deg_per_ppm : (B,) first-order phase, degrees per ppm from the pivot, or None.
    snr : (B,) signal-to-noise ratio of the added noise, or None (noiseless).
    baseline_centre_ppm, baseline_fwhm_ppm, baseline_height : (B, H) baseline humps, or None;
        heights are fractions of the reference peak height.
    """

    amplitudes: np.ndarray
    damping_per_s: np.ndarray
    shift_hz: np.ndarray
    gaussian_damping_per_s: np.ndarray | None = None
    phase0_deg: np.ndarray | None = None
    phase1_deg_per_ppm: np.ndarray | None = None
    snr: np.ndarray | None = None
    baseline_centre_ppm: np.ndarray | None = None
    baseline_fwhm_ppm: np.ndarray | None = None
    baseline_height: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = np.shape(self.amplitudes)[0] if np.ndim(self.amplitudes) == 2 else -1
        if n < 0:
            raise ValueError(f"amplitudes must be (B, M), got shape {np.shape(self.amplitudes)}")
        for name, value in self.arrays().items():
            if np.shape(value)[0] != n:
                raise ValueError(f"{name} has {np.shape(value)[0]} rows, amplitudes {n}")
        for name in ("damping_per_s", "shift_hz", "gaussian_damping_per_s"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != np.shape(self.amplitudes):
                raise ValueError(
                    f"{name} has shape {np.shape(value)}, amplitudes {np.shape(self.amplitudes)}"
                )

    @property
    def n_signals(self) -> int:
        return int(np.shape(self.amplitudes)[0])

    @property
    def n_metabolites(self) -> int:
        return int(np.shape(self.amplitudes)[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters that are switched on, by field name, in field order."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def take(self, index: slice | np.ndarray) -> SimulationParameters:
        """The parameters of the signals ``index`` selects (rows of every array)."""
        return SimulationParameters(**{k: v[index] for k, v in self.arrays().items()})

    @staticmethod
    def concatenate(parts: Sequence[SimulationParameters]) -> SimulationParameters:
        """Stack batches of the same configuration along the signal axis."""
        keys = parts[0].arrays().keys()
        return SimulationParameters(
            **{k: np.concatenate([p.arrays()[k] for p in parts], axis=0) for k in keys}
        )


def _per_metabolite_bounds(
    config: SimulationConfig, names: Sequence[str], attribute: str
) -> tuple[np.ndarray, np.ndarray]:
    """(M,) lower and upper bounds of one parameter: the global range or a metabolite's own."""
    default: Range = getattr(config, attribute)
    ranges = []
    for name in names:
        override = config.overrides.get(name)
        own = getattr(override, attribute) if override is not None else None
        ranges.append(default if own is None else own)
    bounds = np.array(ranges, dtype=np.float64)
    return bounds[:, 0], bounds[:, 1]


def _uniform(rng: np.random.Generator, bounds: tuple[np.ndarray, np.ndarray] | Range, shape):
    lo, hi = bounds
    return rng.uniform(lo, hi, size=shape)


def _per_signal_or_metabolite(
    config: SimulationConfig,
    names: Sequence[str],
    attribute: str,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n, M) draws; with ``per_metabolite: false`` one draw per signal copied to every column."""
    m = len(names)
    if config.per_metabolite:
        return _uniform(rng, _per_metabolite_bounds(config, names, attribute), (n, m))
    column = _uniform(rng, getattr(config, attribute), (n, 1))
    return np.repeat(column, m, axis=1)


def draw_parameters(
    config: SimulationConfig, n: int, rng: np.random.Generator, *, names: Sequence[str]
) -> SimulationParameters:
    """Draw the parameters of ``n`` signals over the metabolites ``names`` (the basis order).

    Every parameter is uniform on its configured range (paper, section 2.1). The draws always
    happen in the same order (amplitudes, damping, shift, Gaussian damping, phases, SNR,
    baseline), so a generator in a given state gives the same parameters for the same config.

    Parameters
    ----------
    config : validated ranges.
    n : number of signals, >= 0.
    rng : the only source of randomness.
    names : metabolite names, one column each; overrides must name some of them.

    Returns
    -------
    SimulationParameters with (n, len(names)) and (n,) arrays.
    """
    n = whole_number("the number of signals", n, 0)
    config.check_names(names)
    m = len(names)
    amplitudes = _uniform(rng, _per_metabolite_bounds(config, names, "amplitude_range"), (n, m))
    if config.uses_lorentzian:
        damping = _per_signal_or_metabolite(config, names, "damping_range_per_s", n, rng)
    else:
        damping = np.zeros((n, m))
    shift = _per_signal_or_metabolite(config, names, "shift_range_hz", n, rng)
    gaussian = (
        _per_signal_or_metabolite(config, names, "gaussian_damping_range_per_s", n, rng)
        if config.uses_gaussian
        else None
    )

    def optional(bounds: Range | None, shape) -> np.ndarray | None:
        return None if bounds is None else _uniform(rng, bounds, shape)

    phase0 = optional(config.phase0_range_deg, (n,))
    phase1 = optional(config.phase1_range_deg_per_ppm, (n,))
    snr = optional(config.snr, (n,))
    humps: dict[str, np.ndarray] = {}
    if config.baseline is not None:
        shape = (n, config.baseline.n_humps)
        humps["baseline_centre_ppm"] = _uniform(rng, config.baseline.centre_range_ppm, shape)
        humps["baseline_fwhm_ppm"] = _uniform(rng, config.baseline.fwhm_range_ppm, shape)
        humps["baseline_height"] = _uniform(rng, config.baseline.height_range, shape)
    return SimulationParameters(
        amplitudes=amplitudes,
        damping_per_s=damping,
        shift_hz=shift,
        gaussian_damping_per_s=gaussian,
        phase0_deg=phase0,
        phase1_deg_per_ppm=phase1,
        snr=snr,
        **humps,
    )
