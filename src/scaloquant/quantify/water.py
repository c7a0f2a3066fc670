"""Metabolite concentrations in mM from an unsuppressed water reference (pure functions).

The formula is the one of the ISMRM 2016 MRS fitting challenge (its README, "Water scaling
information"; Marjańska et al., Magn Reson Med 2022;87:11-32)::

    [met] = [H2O]_rc * R_met * area_met / area_H2O

    [H2O]_rc = sum_t f_t * d_t / M_H2O * exp(-TE / T2_H2O,t)      (29697 mM for its defaults)
    R_met    = 1 / exp(-TE / T2_met)                                (1.206 for its defaults)

with ``f_t`` the volume fraction of tissue ``t`` (GM 0.6, WM 0.4), ``d_t`` its water content
(0.78 and 0.65 g/ml), ``M_H2O = 18.015 g/mol``, water T2 110 and 80 ms, metabolite T2 160 ms,
TE 30 ms and TR >> T1 (no T1 saturation term). Both areas are **per proton**: the challenge's
formula divides molecules of water by molecules of metabolite, and one molecule of water gives
two protons' worth of signal.

How the areas are measured here
-------------------------------
Both areas are the value at t = 0 of the lines that make them: a FID's value at t = 0 is the
integral of its spectrum whatever the lineshape. It is not simply the first point: LCModel
bases made by makebasis (``3t.basis``, ``press_30ms_3T.basis``, Osprey's) and Philips water
references (as spec2nii reads them) store a first point about half the lines' value at t = 0,
and the ISMRM 2016 basis adds a 0.1 reference singlet at 0 ppm to every metabolite ("fid[0] =
number of protons + 0.1", its README); the first point would take the first two for half the
signal (mM off by about 2x) and the third for 2 % more creatine.

* Water: ``|w(0)|`` extrapolated from the magnitude of samples 4, 5, ... (:func:`water_area`:
  a quadratic in ``t`` through ``log |w|``, exact for a Voigt line at any frequency and
  phase, blind to the first samples); per proton ``|w(0)| / 2``. It assumes the water FID has
  the same receiver gain and number of averages as the metabolite data.
* Metabolite: its amplitude ``a`` on the basis scale times the basis set's signal per proton,
  ``u``. A basis FID simulated for one molecule starts at ``n_protons * u``, but only for
  uncoupled spins: J-evolution by the echo time makes the first point of a coupled metabolite
  smaller than its proton count (in the ISMRM 2016 basis at TE 30 ms: Lac 2.90 for 4 protons,
  Glu 3.88 for 5), while singlets keep it exactly (Cr 5, PCr 5, sIns 6, Gly 2). So ``u`` is
  measured on the lines of a singlet-only metabolite of the basis, within their band: ``u =
  |b_Cr(0)| / 5`` (else PCr, else sIns); every metabolite of a basis simulated per molecule
  shares it. The lines' value at t = 0 is measured by HLSVD (:func:`scaloquant.signal.water.
  band_amplitude`: the damped exponentials of samples 1, 2, ... whose frequency lies in the
  singlet's band, carried back to t = 0; exact on a simulated basis). Per proton: ``a * u``
  (the signal of one molecule's proton at TE, the basis holding no T2 decay, which ``R_met``
  corrects).

Hence::

    [met] = [H2O]_rc * R_met * (a * u) / (|w(0)| / 2) / (1 - f_CSF)

The last factor is 1 for the challenge's defaults (no CSF): with a CSF fraction, the water of
CSF (0.97 g/ml, Ernst, Kreis & Ross, J Magn Reson B 1993;102:1-8; T2 about 2 s at 3 T) joins
the sum and the metabolites are taken to live in GM and WM only (Gasparovic et al., Magn Reson
Med 2006;55:1219-1226), so their concentration is per litre of GM + WM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from .. import defaults
from ..errors import ConfigError
from ..types import Acquisition

#: g/mol (the challenge README's 18.015).
WATER_MOLAR_MASS_G_PER_MOL = 18.015
#: Protons of one water molecule.
WATER_PROTONS = 2
#: The water area is extrapolated from this sample on (LCModel's log-linear water area starts
#: at its 10th, NWSST): Philips water references (as spec2nii writes them) hold a first point
#: about half the next and a second about 5 % above the trend of the following ones.
WATER_FIT_START = 4
#: ... up to this time (ms), where a 6 Hz line keeps 70 % of its signal ...
WATER_FIT_MS = 20.0
#: ... and over this many samples at least.
WATER_FIT_MIN_POINTS = 16
TISSUES = defaults.TISSUES


@dataclass(frozen=True)
class WaterScaling:
    """Tissue and relaxation assumptions of the water scaling (defaults: the ISMRM 2016
    challenge README; CSF values only matter when ``tissue_fractions`` gives CSF a share).

    Attributes
    ----------
    tissue_fractions : volume fractions of GM, WM and CSF in the voxel (sum 1).
    water_content_g_per_ml : water content of GM, WM and CSF, g/ml.
    water_t2_ms : water T2 of GM, WM and CSF, ms.
    metabolite_t2_ms : T2 of every metabolite, ms.
    echo_time_ms : TE of the data and the water reference, ms.
    """

    tissue_fractions: tuple[float, float, float] = defaults.TISSUE_FRACTIONS
    water_content_g_per_ml: tuple[float, float, float] = defaults.WATER_CONTENT_G_PER_ML
    water_t2_ms: tuple[float, float, float] = defaults.WATER_T2_MS
    metabolite_t2_ms: float = defaults.METABOLITE_T2_MS
    echo_time_ms: float = defaults.ECHO_TIME_MS

    def __post_init__(self) -> None:
        for name in ("tissue_fractions", "water_content_g_per_ml", "water_t2_ms"):
            values = _triple(name, getattr(self, name))
            object.__setattr__(self, name, values)
        fractions = self.tissue_fractions
        if min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-3):
            raise ConfigError(
                f"tissue_fractions (GM WM CSF) must be >= 0 and sum to 1, got {fractions}"
            )
        if fractions[2] >= 1.0:
            raise ConfigError(
                "tissue_fractions: the voxel is all CSF; metabolite concentrations need GM or WM"
            )
        for name in ("water_content_g_per_ml", "water_t2_ms"):
            if min(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} (GM WM CSF) must be > 0, got {getattr(self, name)}")
        for name in ("metabolite_t2_ms", "echo_time_ms"):
            value = float(getattr(self, name))
            object.__setattr__(self, name, value)
            # TE 0 went through, against the message's 'positive'; a file's TE of 0 reads as
            # not stated (scaloquant.signal.match.stated_sequence), so none comes here
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of ms, got {value}")

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> WaterScaling:
        """Rebuild from :meth:`to_dict` (its derived figures are recomputed, not read; the
        per-tissue values as ``{"GM": .., "WM": .., "CSF": ..}`` or a sequence in that order)."""
        derived = {"relaxation_corrected_water_mM", "metabolite_relaxation_correction"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known - derived)
        if unknown:
            raise ConfigError(
                f"unknown water-scaling setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        values = {}
        for name in known & set(d):
            value = d[name]
            if isinstance(value, Mapping):
                missing = [t for t in TISSUES if t not in value]
                if missing or set(value) - set(TISSUES):
                    raise ConfigError(f"{name} must give {', '.join(TISSUES)}, got {dict(value)}")
                value = tuple(value[t] for t in TISSUES)
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        return {
            "tissue_fractions": dict(zip(TISSUES, self.tissue_fractions, strict=True)),
            "water_content_g_per_ml": dict(zip(TISSUES, self.water_content_g_per_ml, strict=True)),
            "water_t2_ms": dict(zip(TISSUES, self.water_t2_ms, strict=True)),
            "metabolite_t2_ms": self.metabolite_t2_ms,
            "echo_time_ms": self.echo_time_ms,
            "relaxation_corrected_water_mM": relaxation_corrected_water_mM(self),
            "metabolite_relaxation_correction": metabolite_relaxation_correction(self),
        }


def _triple(name: str, values: Sequence[float]) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be three numbers (GM WM CSF), got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be three finite numbers (GM WM CSF), got {values!r}")
    return out  # type: ignore[return-value]


def relaxation_corrected_water_mM(scaling: WaterScaling) -> float:
    """``[H2O]_rc`` in mM: ``sum_t f_t d_t / M_H2O exp(-TE / T2_t)`` (29697 mM by default)."""
    per_litre = [
        f * d * 1000.0 / WATER_MOLAR_MASS_G_PER_MOL * math.exp(-scaling.echo_time_ms / t2)
        for f, d, t2 in zip(
            scaling.tissue_fractions,
            scaling.water_content_g_per_ml,
            scaling.water_t2_ms,
            strict=True,
        )
    ]
    return 1000.0 * sum(per_litre)  # mol/l -> mM


def metabolite_relaxation_correction(scaling: WaterScaling) -> float:
    """``R_met = exp(TE / T2_met)`` (1.206 by default)."""
    return math.exp(scaling.echo_time_ms / scaling.metabolite_t2_ms)


def water_area(water: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """Area of water FIDs ``(..., n_points)`` on the grid of ``acquisition``: ``|w(0)|``
    extrapolated from samples :data:`WATER_FIT_START` onwards, shape ``(...)`` (see the module
    docstring). ``log |w(t)|`` is fitted by a quadratic in ``t`` over the samples from
    :data:`WATER_FIT_START` to :data:`WATER_FIT_MS` (at least :data:`WATER_FIT_MIN_POINTS`):
    exact for a Voigt line (``log A - pi FWHM_L t - (g t)^2``) at any frequency and phase, and
    blind to the first samples, which converters and vendors' digital filters alter. 0 where
    a FID has no signal there."""
    x = np.abs(np.asarray(water, dtype=np.complex128))
    n = x.shape[-1]
    start = min(WATER_FIT_START, max(n - 3, 0))
    stop = int(round(WATER_FIT_MS * 1e-3 / acquisition.dwell_time_s)) + 1
    stop = min(n, max(stop, start + WATER_FIT_MIN_POINTS))
    if stop - start < 3:
        return x[..., 0]
    t = np.arange(start, stop) * acquisition.dwell_time_s
    design = np.stack([np.ones_like(t), t, t * t], axis=1)
    flat = x[..., start:stop].reshape(-1, stop - start)
    ok = np.all(flat > 0, axis=1)
    area = np.zeros(flat.shape[0])
    if ok.any():
        coef, *_ = np.linalg.lstsq(design, np.log(flat[ok]).T, rcond=None)
        area[ok] = np.exp(coef[0])
    return area.reshape(x.shape[:-1])


def concentrations_mM(
    amplitudes: np.ndarray,
    water_areas: np.ndarray,
    unit_per_proton: float,
    scaling: WaterScaling,
) -> np.ndarray:
    """Concentrations in mM (see the module docstring for the formula and its assumptions).

    Parameters
    ----------
    amplitudes : ``(..., M)`` amplitudes on the basis scale.
    water_areas : ``(...)`` water areas ``|w(0)|`` (:func:`water_area`), broadcastable.
    unit_per_proton : ``u`` of :func:`scaloquant.signal.scale.signal_per_proton`.
    scaling : tissue and relaxation assumptions.

    Returns
    -------
    ``(..., M)`` mM; NaN where the water area is 0.
    """
    factor = (
        relaxation_corrected_water_mM(scaling)
        * metabolite_relaxation_correction(scaling)
        * WATER_PROTONS
        * unit_per_proton
        / (1.0 - scaling.tissue_fractions[2])
    )
    area = np.asarray(water_areas, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_area = np.where(area > 0, factor / area, np.nan)
    return np.asarray(amplitudes, dtype=np.float64) * per_area[..., None]
