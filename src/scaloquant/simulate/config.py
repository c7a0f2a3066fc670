"""The validated configuration of the signal simulator.

Defaults, and where they come from
----------------------------------
The seed paper (its section 2.1) draws the amplitude, damping and frequency shift of every one of
the 20 metabolites and the macromolecule signal from uniform distributions, but the ranges were
lost when its PDF was converted to text (the inline formulas are missing), except that the
amplitudes span [0, 1] (its results discuss errors "compared to the amplitude range ([0, 1])").
The defaults below are therefore the project's choice (issue 2), plausible for in-vivo 3 T data
in the style of Hatami et al. 2018 (deep learning quantification from simulated spectra):

* ``amplitude_range = [0, 1]`` for all 21 signals (the paper's range);
* ``damping_range_per_s = [0, 15]``: extra Lorentzian damping, 0 to 4.8 Hz of extra linewidth
  (FWHM = damping / pi), the spread of in-vivo linewidth changes at 3 T;
* ``shift_range_hz = [-3, 3]``: frequency drift of about +-0.025 ppm at 123 MHz.

Everything beyond the paper is off by default, so the default is the paper's noiseless model:
noise at a given SNR, zero- and first-order phase, one shift and damping per signal instead of per
metabolite, Gaussian/Voigt lineshapes and a smooth baseline. ``docs/simulation-config.yaml``
documents every key with its units; :mod:`scaloquant.simulate` defines SNR and the baseline.

Ranges are ``[min, max]`` pairs; ``min == max`` gives a fixed value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, get_args

from .._config import true_or_false, whole_number
from ..errors import ConfigError, UnknownMetaboliteError

Lineshape = Literal["lorentzian", "gaussian", "voigt"]
Range = tuple[float, float]

#: Gaussian damping range used by the ``gaussian`` and ``voigt`` lineshapes when none is given:
#: g = 9 1/s is a 4.8 Hz wide Gaussian, the same largest extra width as the Lorentzian default.
DEFAULT_GAUSSIAN_DAMPING_RANGE_PER_S: Range = (0.0, 9.0)


def _where(context: str, key: str) -> str:
    return f"{context}.{key}" if context else key


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(value: Any, what: str) -> float:
    # bool is an int subclass; `true` for a number is a typo, not 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str) and _parses_as_float(value):
            hint = " (YAML reads 1e-3 as text; write 1.0e-3)"
        raise ConfigError(f"{what} must be a number, got {value!r}{hint}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _range(value: Any, what: str, *, minimum: float | None = None, strict: bool = False) -> Range:
    """A ``[min, max]`` pair of finite numbers with ``min <= max`` (``<`` when ``strict``)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ConfigError(f"{what} must be a [min, max] pair of numbers, got {value!r}")
    if len(value) != 2:
        raise ConfigError(f"{what} must be a [min, max] pair of numbers, got {len(value)} values")
    lo, hi = (_number(v, what) for v in value)
    if lo > hi or (strict and lo == hi):
        wrong, right = (">=", "<") if strict else (">", "<=")
        raise ConfigError(
            f"{what}: min {lo:g} {wrong} max {hi:g}; give [min, max] with min {right} max"
        )
    if minimum is not None and lo < minimum:
        raise ConfigError(f"{what} must not go below {minimum:g}, got min {lo:g}")
    return (lo, hi)


def _optional_range(value: Any, what: str, **kwargs: Any) -> Range | None:
    return None if value is None else _range(value, what, **kwargs)


def _check_keys(mapping: Any, valid: Sequence[str], context: str) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping):
        where = context or "the simulation config"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {mapping!r}")
    unknown = [str(k) for k in mapping if k not in valid]
    if unknown:
        where = f"in {context} " if context else ""
        raise ConfigError(
            f"unknown simulation config key(s) {where}{', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(valid)}"
        )
    return mapping


def _snr_range(value: Any) -> Range | None:
    """``snr`` is one positive number (fixed) or a ``[min, max]`` range."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    lo, hi = _range(value, "snr")
    if lo <= 0:
        raise ConfigError(f"snr must be positive (peak height / noise sd), got {lo:g}")
    return (lo, hi)


def _as_list(value: Range | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


@dataclass(frozen=True)
class MetaboliteRanges:
    """Per-metabolite replacements of the global ranges; ``None`` keeps the global one."""

    amplitude_range: Range | None = None
    damping_range_per_s: Range | None = None
    shift_range_hz: Range | None = None
    gaussian_damping_range_per_s: Range | None = None

    @classmethod
    def from_dict(cls, mapping: Any, context: str) -> MetaboliteRanges:
        keys = [f.name for f in fields(cls)]
        m = _check_keys(mapping, keys, context)
        return cls(
            amplitude_range=_optional_range(
                m.get("amplitude_range"), _where(context, "amplitude_range"), minimum=0.0
            ),
            damping_range_per_s=_optional_range(
                m.get("damping_range_per_s"), _where(context, "damping_range_per_s"), minimum=0.0
            ),
            shift_range_hz=_optional_range(
                m.get("shift_range_hz"), _where(context, "shift_range_hz")
            ),
            gaussian_damping_range_per_s=_optional_range(
                m.get("gaussian_damping_range_per_s"),
                _where(context, "gaussian_damping_range_per_s"),
                minimum=0.0,
            ),
        )

    def to_dict(self) -> dict[str, list[float]]:
        return {
            f.name: _as_list(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class BaselineConfig:
    """A smooth random baseline: ``n_humps`` broad Gaussian lines added to every signal.

    Each hump is the FID ``a exp(2 pi i f_c t) exp(-(g t)^2)``, causal like a real broad signal,
    so its real spectrum is a Gaussian hump centred at ``centre_ppm`` with full width at half
    maximum ``fwhm_ppm``. ``height`` is the hump's peak in the real spectrum as a fraction of the
    reference peak height (see ``reference_window_ppm``); negative heights give dips.
    """

    n_humps: int = 3
    centre_range_ppm: Range = (0.5, 4.2)
    fwhm_range_ppm: Range = (0.4, 1.5)
    height_range: Range = (0.0, 0.3)

    @classmethod
    def from_dict(cls, mapping: Any) -> BaselineConfig:
        keys = [f.name for f in fields(cls)]
        m = _check_keys(mapping, keys, "baseline")
        n_humps = whole_number("baseline.n_humps", m.get("n_humps", cls.n_humps), 1)
        fwhm = _range(m.get("fwhm_range_ppm", cls.fwhm_range_ppm), "baseline.fwhm_range_ppm")
        if fwhm[0] <= 0:
            raise ConfigError(f"baseline.fwhm_range_ppm must be positive, got min {fwhm[0]:g}")
        return cls(
            n_humps=n_humps,
            centre_range_ppm=_range(
                m.get("centre_range_ppm", cls.centre_range_ppm), "baseline.centre_range_ppm"
            ),
            fwhm_range_ppm=fwhm,
            height_range=_range(m.get("height_range", cls.height_range), "baseline.height_range"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_humps": self.n_humps,
            "centre_range_ppm": _as_list(self.centre_range_ppm),
            "fwhm_range_ppm": _as_list(self.fwhm_range_ppm),
            "height_range": _as_list(self.height_range),
        }


@dataclass(frozen=True)
class SimulationConfig:
    """Parameter ranges of the simulator; build it with :meth:`from_dict` to validate.

    Attributes
    ----------
    amplitude_range : ``A_m`` of Eq. 1, dimensionless (a multiple of the basis FID), >= 0.
    damping_range_per_s : Lorentzian damping ``alpha_m`` in 1/s, >= 0.
    shift_range_hz : frequency shift ``df_m`` in Hz.
    per_metabolite : ``False`` draws one damping (and Gaussian damping) and one shift per signal
        and applies it to every metabolite.
    lineshape : ``lorentzian`` (Eq. 1), ``gaussian`` (``exp(-(g t)^2)`` instead of
        ``exp(-alpha t)``; alpha is 0) or ``voigt`` (both factors).
    gaussian_damping_range_per_s : ``g`` in 1/s, FWHM = ``2 sqrt(ln 2) g / pi`` Hz; only with the
        ``gaussian`` and ``voigt`` lineshapes, which default to
        :data:`DEFAULT_GAUSSIAN_DAMPING_RANGE_PER_S`.
    overrides : metabolite name -> :class:`MetaboliteRanges` replacing the global ranges.
    snr : ``None`` (noiseless) or the SNR range of complex Gaussian noise.
    reference_window_ppm : where the reference peak height of SNR and baseline is measured.
    phase0_range_deg : ``None`` or the zero-order phase range in degrees.
    phase1_range_deg_per_ppm : ``None`` or the first-order phase range in degrees per ppm,
        zero at ``phase1_pivot_ppm``.
    baseline : ``None`` or the :class:`BaselineConfig` of a smooth random baseline.
    """

    amplitude_range: Range = (0.0, 1.0)
    damping_range_per_s: Range = (0.0, 15.0)
    shift_range_hz: Range = (-3.0, 3.0)
    per_metabolite: bool = True
    lineshape: Lineshape = "lorentzian"
    gaussian_damping_range_per_s: Range | None = None
    overrides: Mapping[str, MetaboliteRanges] = field(default_factory=dict)
    snr: Range | None = None
    reference_window_ppm: Range = (1.9, 2.1)
    phase0_range_deg: Range | None = None
    phase1_range_deg_per_ppm: Range | None = None
    phase1_pivot_ppm: float = 4.65
    baseline: BaselineConfig | None = None

    def __post_init__(self) -> None:
        # a read-only view keeps the frozen config from being changed through its overrides
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None = None) -> SimulationConfig:
        """Validate a plain mapping (from YAML, TOML or CLI flags); missing keys take defaults.

        Raises :class:`~scaloquant.errors.ConfigError` with one line naming the bad key.
        """
        keys = [f.name for f in fields(cls)]
        m = _check_keys({} if mapping is None else mapping, keys, "")
        d = cls()  # the defaults

        per_metabolite = true_or_false("per_metabolite", m.get("per_metabolite", d.per_metabolite))
        lineshape = m.get("lineshape", d.lineshape)
        if lineshape not in get_args(Lineshape):
            raise ConfigError(
                f"lineshape must be one of {', '.join(get_args(Lineshape))}, got {lineshape!r}"
            )
        gaussian = _optional_range(
            m.get("gaussian_damping_range_per_s"), "gaussian_damping_range_per_s", minimum=0.0
        )
        if lineshape == "lorentzian" and gaussian is not None:
            raise ConfigError(
                "gaussian_damping_range_per_s needs lineshape gaussian or voigt; "
                "set the lineshape or remove the range"
            )
        if lineshape != "lorentzian" and gaussian is None:
            gaussian = DEFAULT_GAUSSIAN_DAMPING_RANGE_PER_S

        overrides_in = m.get("overrides") or {}
        if not isinstance(overrides_in, Mapping):
            raise ConfigError(
                f"overrides must map metabolite names to ranges, got {overrides_in!r}"
            )
        overrides = {
            str(name): MetaboliteRanges.from_dict(ranges, f"overrides.{name}")
            for name, ranges in overrides_in.items()
        }
        for name, ranges in overrides.items():
            if not per_metabolite and (
                ranges.damping_range_per_s
                or ranges.shift_range_hz
                or ranges.gaussian_damping_range_per_s
            ):
                raise ConfigError(
                    f"overrides.{name} sets a damping or shift range, but per_metabolite is "
                    "false (one value per signal); remove it or set per_metabolite: true"
                )
            if lineshape == "lorentzian" and ranges.gaussian_damping_range_per_s is not None:
                raise ConfigError(
                    f"overrides.{name}.gaussian_damping_range_per_s needs lineshape gaussian "
                    "or voigt"
                )

        baseline_in = m.get("baseline")
        return cls(
            amplitude_range=_range(
                m.get("amplitude_range", d.amplitude_range), "amplitude_range", minimum=0.0
            ),
            damping_range_per_s=_range(
                m.get("damping_range_per_s", d.damping_range_per_s),
                "damping_range_per_s",
                minimum=0.0,
            ),
            shift_range_hz=_range(m.get("shift_range_hz", d.shift_range_hz), "shift_range_hz"),
            per_metabolite=per_metabolite,
            lineshape=lineshape,
            gaussian_damping_range_per_s=gaussian,
            overrides=overrides,
            snr=_snr_range(m.get("snr")),
            reference_window_ppm=_range(
                m.get("reference_window_ppm", d.reference_window_ppm),
                "reference_window_ppm",
                strict=True,
            ),
            phase0_range_deg=_optional_range(m.get("phase0_range_deg"), "phase0_range_deg"),
            phase1_range_deg_per_ppm=_optional_range(
                m.get("phase1_range_deg_per_ppm"), "phase1_range_deg_per_ppm"
            ),
            phase1_pivot_ppm=_number(
                m.get("phase1_pivot_ppm", d.phase1_pivot_ppm), "phase1_pivot_ppm"
            ),
            baseline=None if baseline_in is None else BaselineConfig.from_dict(baseline_in),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready mapping; ``from_dict(to_dict())`` gives the same config."""
        return {
            "amplitude_range": _as_list(self.amplitude_range),
            "damping_range_per_s": _as_list(self.damping_range_per_s),
            "shift_range_hz": _as_list(self.shift_range_hz),
            "per_metabolite": self.per_metabolite,
            "lineshape": self.lineshape,
            "gaussian_damping_range_per_s": _as_list(self.gaussian_damping_range_per_s),
            "overrides": {name: r.to_dict() for name, r in self.overrides.items()},
            "snr": _as_list(self.snr),
            "reference_window_ppm": _as_list(self.reference_window_ppm),
            "phase0_range_deg": _as_list(self.phase0_range_deg),
            "phase1_range_deg_per_ppm": _as_list(self.phase1_range_deg_per_ppm),
            "phase1_pivot_ppm": self.phase1_pivot_ppm,
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
        }

    @property
    def uses_gaussian(self) -> bool:
        return self.lineshape != "lorentzian"

    @property
    def uses_lorentzian(self) -> bool:
        return self.lineshape != "gaussian"

    @property
    def needs_reference_height(self) -> bool:
        """Whether noise or baseline scale with the reference peak height."""
        return self.snr is not None or self.baseline is not None

    def check_names(self, names: Sequence[str]) -> None:
        """Refuse overrides of metabolites that are not in ``names`` (the basis set's)."""
        unknown = [n for n in self.overrides if n not in names]
        if unknown:
            raise UnknownMetaboliteError(
                f"overrides name metabolite(s) not in the basis set: {', '.join(unknown)}; "
                f"valid names: {', '.join(names)}"
            )
