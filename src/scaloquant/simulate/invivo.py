"""The ``invivo`` simulation preset: a documented prior for tissue-like 3 T brain spectra.

The paper's simulator (:mod:`.parameters`) draws every amplitude, damping and shift
independently and uniformly, which makes spectra no tissue gives: each metabolite with its own
linewidth, no lipids, no residual water. This prior draws signals that look like short-TE
brain spectra at 3 T, in the terms of the batched signal model of the fit
(``scaloquant.physics``, being written on another branch): for spectrum ``b`` and basis signal ``m`` in group ``g(m)``::

    z_bm(t) = c_bm X_m(t) exp((-(alpha_bg + da_bm) + 2 pi i (df_bg + dd_bm)) t - beta_bg t^2)

plus parametric macromolecule/lipid Gaussians (same lineshape terms, their own groups),
residual water, a smooth baseline, an eddy-current phase ``exp(i A exp(-t / tau))``, zero- and
first-order phase and complex white noise at an SNR. ``c`` are concentrations in mM: the
embedded basis holds one FID per molecule, so the amplitude of a basis FID is the
concentration (the measured ``Mac`` is the exception: its amplitude is a multiple of the
measured spectrum, drawn relative to tCr).

Every range, its units and its source are in :class:`InvivoPrior` and in
``docs/invivo-prior.md``. Literature values are quoted from memory of the tables named there
and are rounded; where a value is a project choice, it says so. A wider spread than the tables
is deliberate (a network must not be pulled to a prior), and a fraction of the signals draws
all concentrations independently of the literature values.

Draws (:func:`draw_invivo`) and rendering (:func:`render_invivo`) are separate: the parameters
are a frozen container of numpy arrays (:class:`InvivoParameters`) whose terms are those of the
physics model (``damping_per_s`` = alpha, ``gauss_per_s2`` = beta, ``shift_hz`` per group,
``damping_dev_per_s``/``shift_dev_hz`` per metabolite; phases here in degrees, ``phase0_deg``
and ``phase1_deg_per_ppm`` with the pivot, where the physics model takes radians). The
resonances are rendered by the physics model (through :func:`.model.synthesize`), the water
lines and the first-order phase by its ramp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from .._config import dataclass_from_dict, whole_number
from ..errors import ConfigError, IncompatibleDataError, UnknownMetaboliteError
from ..metabolites import canonical
from ..physics.macromolecules import LCMODEL_COMPONENTS
from ..physics.model import exp_ramp
from ..signal import axes, lineshapes, snr_fwhm
from ..signal.scale import component_unit
from ..types import Acquisition, BasisSet
from . import effects
from .config import BaselineConfig, Range
from .dataset import BLOCK_SIZE, DEFAULT_CHUNK_SIZE, check_run, stream_blocks
from .model import synthesize
from .parameters import SimulationParameters

#: Concentration ranges (mM) of normal adult human brain, rounded, per basis name.
#: Sources (from memory of the tables; see docs/invivo-prior.md for each row):
#: [G] Govindaraju, Young, Maudsley, NMR Biomed 2000;13:129-153, Table 1;
#: [dG] de Graaf, In Vivo NMR Spectroscopy, 3rd ed., Wiley 2019, Table 2.x (brain metabolites);
#: [T] Terpstra & Gruetter, MRM 2004;51:225 (ascorbate ~1 mM).
LITERATURE_CONCENTRATIONS_MM: Mapping[str, Range] = MappingProxyType(
    {
        "Ace": (0.0, 0.5),  # [dG] acetate, usually below detection in brain
        "Ala": (0.1, 1.5),  # [G, dG]
        "Asc": (0.5, 1.5),  # [T, dG]
        "Asp": (1.0, 2.0),  # [dG]
        "Cr": (4.5, 6.0),  # [dG] (tCr 7.5-11.5 with PCr; [G] 5.1-10.6 for tCr)
        "GABA": (1.0, 2.0),  # [G, dG]
        "Glc": (1.0, 2.0),  # [dG]
        "Gln": (3.0, 6.0),  # [G 3.0-5.8, dG]
        "Glu": (6.0, 12.5),  # [G]
        "Gly": (0.4, 1.0),  # [dG]
        "GPC": (0.5, 1.5),  # [dG] (tCho 0.9-2.5 [G])
        "GSH": (1.0, 3.0),  # [dG]
        "Ins": (4.0, 9.0),  # [G 3.8-8.1, dG]
        "sIns": (0.1, 0.5),  # [dG]
        "Lac": (0.2, 1.0),  # [G, dG]
        "PCr": (3.0, 5.5),  # [G 3.2-5.5, dG]
        "PCho": (0.2, 1.0),  # [dG]
        "PE": (1.0, 2.0),  # [dG]
        "NAA": (7.5, 17.0),  # [G 7.9-16.6, dG]
        "NAAG": (0.5, 2.5),  # [G 0.6-2.7, dG]
        "Tau": (2.0, 6.0),  # [G]; in-vivo human values are often lower (1-2 mM)
    }
)


#: Basis names of a measured macromolecule spectrum.
MEASURED_MM_NAMES = ("Mac", "MM", "MMBL", "MMexp")

#: Parametric macromolecule and lipid components: name -> ((ppm, FWHM ppm, relative area), ...),
#: the fit's table (LCModel's default ``CHSIMU``), so that simulation and fit share one model.
PARAMETRIC_COMPONENTS: Mapping[str, tuple[tuple[float, float, float], ...]] = MappingProxyType(
    LCMODEL_COMPONENTS
)
MM_COMPONENTS = ("MM09", "MM12", "MM14", "MM17", "MM20")
LIPID_COMPONENTS = ("Lip09", "Lip13", "Lip20")

#: Lineshape groups: metabolites share one lineshape, macromolecules and lipids have their own.
GROUPS = ("metabolites", "macromolecules", "lipids")
METABOLITES, MACROMOLECULES, LIPIDS = range(3)

#: Olivero & Longbothum, JQSRT 1977;17:233: Voigt FWHM ~ 0.5346 fL + sqrt(0.2166 fL^2 + fG^2),
#: better than 0.02 %.
_VOIGT_C1, _VOIGT_C2 = 0.5346, 0.2166
#: tCr (mM) that scales the measured macromolecules when the basis has neither Cr nor PCr.
_TCR_FALLBACK_MM = 8.0

MacromoleculeSource = Literal["measured", "parametric"]


def _frozen_ranges(mapping: Mapping[str, Range]) -> Mapping[str, Range]:
    return MappingProxyType({str(k): (float(v[0]), float(v[1])) for k, v in mapping.items()})


def check_range(value: Range, what: str, *, minimum: float | None = None) -> None:
    lo, hi = value
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ConfigError(f"{what} must be a [min, max] pair with min <= max, got {value!r}")
    if minimum is not None and lo < minimum:
        raise ConfigError(f"{what} must not go below {minimum:g}, got {value!r}")


def _check_fraction(value: float, what: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{what} must lie in [0, 1], got {value!r}")


@dataclass(frozen=True)
class InvivoPrior:
    """Ranges of the ``invivo`` preset; every draw is uniform unless said otherwise.

    Concentrations
    --------------
    concentrations_mm : literature range ``[lo, hi]`` per metabolite, mM
        (:data:`LITERATURE_CONCENTRATIONS_MM`; sources there).
    literature_spread : ``(s_lo, s_hi)``: a literature-anchored draw is uniform on
        ``[s_lo lo, s_hi hi]``, wider than the tables (inter-subject, regional and disease
        variation; project choice 0.5 and 1.5).
    independent_fraction : fraction of signals whose concentrations are all drawn
        independently, uniform on ``[0, independent_scale hi]`` (project choice 0.3 and 2), so
        that no ratio between metabolites is learned as a prior.

    Lineshape (3 T)
    ---------------
    spectrometer_freq_mhz : field the prior is for, 123.261703 MHz (the ISMRM 2016 basis):
        :func:`render_invivo` refuses bases more than 5 % away. The ranges in ppm are converted
        to Hz at the field of the grid the signals are rendered on (:class:`BasisLines`), so
        that they hold in ppm on any basis.
    metabolite_t2_range_s : metabolite T2 at 3 T, 150-300 ms (Traeber et al., JMRI
        2004;19:537; Mlynarik et al., NMR Biomed 2001;14:325 at 4 T): Lorentzian damping
        ``alpha = 1 / T2``.
    singlet_fwhm_range_ppm : total FWHM of a rendered singlet (NAA), 0.03-0.12 ppm = 3.7-14.8 Hz:
        3 T brain spectra with a good shim reach 0.03-0.05 ppm, 0.1 ppm is the usual acceptance
        limit (Wilson et al., MRM 2019;82:527, consensus; Juchem et al., NMR Biomed
        2021;34:e4350, shimming consensus). 0.02 ppm is narrower than the T2 limit plus the basis
        lines and is not reachable. The Gaussian part (B0 inhomogeneity) ``beta`` is solved so
        that the basis' own NAA singlet rendered on the grid under ``alpha`` and ``beta`` is that
        wide (:func:`basis_lines` measures it per basis: the bases' own lines differ, 1.1-2.3 Hz,
        Lorentzian or Gaussian).
    basis_linewidth_hz : FWHM of the basis' own lines taken as Lorentzians where they are not
        measured (a basis without NAA or Cr, or :func:`draw_invivo` without ``lines``), Hz; 2.1 Hz
        measured on the NAA singlet of the embedded ISMRM 2016 basis.
    shift_range_ppm : group frequency shift (drift, referencing), +-0.1 ppm = +-12 Hz at 3 T (project
        choice: B0 drift over a scan at 3 T is a few Hz, referencing errors up to ~0.1 ppm).
    shift_deviation_range_ppm : per-metabolite shift around the group's, +-0.005 ppm (project
        choice after LCModel's small individual shift priors, manual sec. 11).
    damping_deviation_range_per_s : per-metabolite damping around the group's, +-1 1/s
        (+-0.3 Hz, T2 differences between metabolites).

    Macromolecules and lipids
    -------------------------
    macromolecules : ``measured`` (the basis' ``Mac``; parametric when the basis has none) or
        ``parametric`` (:data:`PARAMETRIC_COMPONENTS` ``MM09``...``MM20``; the basis' Mac gets 0).
    mm_per_tcr_range : amplitude of the measured Mac per mM of tCr (Cr + PCr). 0.2-1.1 puts the
        0.9 ppm MM peak at about 10-50 % of the 3.0 ppm tCr peak at 0.05 ppm linewidth, as in
        published 3 T short-TE brain spectra (Cudalbu et al., NMR Biomed 2021;34:e4393,
        macromolecule consensus; project estimate, not a tabulated value).
    mm_parametric_range_mm : amplitude range of each parametric MM component, mM-equivalent
        (its lines' relative areas count protons of the basis' scale as in LCModel and the
        fit: rendered times the basis' signal per proton, :func:`render_invivo`); project
        estimate of typical LCModel results at 3 T, uncertain by about a factor 2.
    mm_damping_range_per_s, mm_shift_deviation_range_ppm : the macromolecule group's own
        Lorentzian damping and its shift relative to the metabolites' (project choice); it shares
        the metabolites' Gaussian part (the same B0 inhomogeneity).
    lipid_fraction : fraction of signals with lipids (scalp contamination, tumours; the ISMRM
        2016 challenge had lipid-contaminated spectra; project choice 0.25).
    lipid_range_mm : amplitude range of each lipid component when present, mM-equivalent as
        the MM's (project choice, up to several times tCr in height).
    lipid_damping_range_per_s, lipid_shift_deviation_range_ppm : the lipid group's own damping
        and shift relative to the metabolites' (lipids come from outside the voxel).

    Artefacts
    ---------
    water_fraction : fraction of signals with residual water (project choice 0.7).
    water_components : lines of the residual water (a distorted, partly suppressed peak).
    water_centre_range_ppm : each line's centre, 4.65 +- 0.3 ppm.
    water_fwhm_range_hz : Lorentzian FWHM of each line (project choice 3-25 Hz).
    water_height_range : peak height of each line's magnitude spectrum relative to the
        reference height ``H`` (NAA), log-uniform 0.2-20 (water suppression by CHESS/VAPOR
        leaves residuals from below to far above the metabolites; Tkac et al., MRM 1999;41:649).
    baseline : smooth humps (:class:`~scaloquant.simulate.config.BaselineConfig`, heights
        relative to ``H``, negative ones are dips; project choice +-0.15).
    phase0_range_deg : zero-order phase, the full circle.
    phase1_range_deg_per_ppm : first-order phase around ``phase1_pivot_ppm``, +-10 deg/ppm (an
        acquisition delay of up to 0.23 ms at 123 MHz: 360 deg x 123 Hz x 0.23 ms).
    eddy_fraction : fraction of signals with an eddy-current phase ``A exp(-t / tau)`` rad
        (Klose, MRM 1990;14:26; project choice 0.5).
    eddy_amplitude_range_rad, eddy_time_constant_range_s : ``A`` in +-1 rad, ``tau`` 10-100 ms
        (project choice; an uncorrected eddy current gives an initial frequency error ``A/tau``
        of up to ~16 Hz).

    Noise
    -----
    snr_range : SNR, **log-uniform** on [5, 150] (as many signals per factor of SNR; the
        definition of :mod:`.effects`: reference peak height over the sd of the real spectral
        noise).
    reference_window_ppm : window of the reference height ``H`` (NAA singlet), measured on the
        metabolites and macromolecules before lipids, water, eddy currents, baseline and phase.
    """

    concentrations_mm: Mapping[str, Range] = field(
        default_factory=lambda: LITERATURE_CONCENTRATIONS_MM
    )
    literature_spread: Range = (0.5, 1.5)
    independent_fraction: float = 0.3
    independent_scale: float = 2.0
    spectrometer_freq_mhz: float = 123.261703
    metabolite_t2_range_s: Range = (0.15, 0.30)
    singlet_fwhm_range_ppm: Range = (0.03, 0.12)
    basis_linewidth_hz: float = 2.1
    shift_range_ppm: Range = (-0.1, 0.1)
    shift_deviation_range_ppm: Range = (-0.005, 0.005)
    damping_deviation_range_per_s: Range = (-1.0, 1.0)
    macromolecules: MacromoleculeSource = "measured"
    mm_per_tcr_range: Range = (0.2, 1.1)
    mm_parametric_range_mm: Mapping[str, Range] = field(
        default_factory=lambda: {
            "MM09": (2.0, 8.0),
            "MM12": (1.0, 6.0),
            "MM14": (2.0, 8.0),
            "MM17": (1.0, 6.0),
            "MM20": (4.0, 14.0),
        }
    )
    mm_damping_range_per_s: Range = (0.0, 5.0)
    mm_shift_deviation_range_ppm: Range = (-0.02, 0.02)
    lipid_fraction: float = 0.25
    lipid_range_mm: Mapping[str, Range] = field(
        default_factory=lambda: {"Lip09": (0.0, 10.0), "Lip13": (0.0, 30.0), "Lip20": (0.0, 10.0)}
    )
    lipid_damping_range_per_s: Range = (0.0, 10.0)
    lipid_shift_deviation_range_ppm: Range = (-0.05, 0.05)
    water_fraction: float = 0.7
    water_components: int = 3
    water_centre_range_ppm: Range = (4.35, 4.95)
    water_fwhm_range_hz: Range = (3.0, 25.0)
    water_height_range: Range = (0.2, 20.0)
    baseline: BaselineConfig = field(
        default_factory=lambda: BaselineConfig(height_range=(-0.15, 0.15))
    )
    phase0_range_deg: Range = (-180.0, 180.0)
    phase1_range_deg_per_ppm: Range = (-10.0, 10.0)
    phase1_pivot_ppm: float = 4.65
    eddy_fraction: float = 0.5
    eddy_amplitude_range_rad: Range = (-1.0, 1.0)
    eddy_time_constant_range_s: Range = (0.01, 0.1)
    snr_range: Range = (5.0, 150.0)
    reference_window_ppm: Range = (1.9, 2.1)

    def __post_init__(self) -> None:
        for name in ("concentrations_mm", "mm_parametric_range_mm", "lipid_range_mm"):
            object.__setattr__(self, name, _frozen_ranges(getattr(self, name)))
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_fraction"):
                _check_fraction(value, f.name)
            elif isinstance(value, tuple) and len(value) == 2 and f.name != "literature_spread":
                check_range(value, f.name)
        for name, r in {**self.concentrations_mm, **self.mm_parametric_range_mm}.items():
            check_range(r, f"concentration range of {name}", minimum=0.0)
        for name, r in self.lipid_range_mm.items():
            check_range(r, f"lipid range of {name}", minimum=0.0)
        unknown = [
            n
            for n in (*self.mm_parametric_range_mm, *self.lipid_range_mm)
            if n not in PARAMETRIC_COMPONENTS
        ]
        if unknown:
            raise ConfigError(
                f"no parametric component {', '.join(unknown)}; known: "
                f"{', '.join(PARAMETRIC_COMPONENTS)}"
            )
        check_range(self.literature_spread, "literature_spread", minimum=0.0)
        check_range(self.metabolite_t2_range_s, "metabolite_t2_range_s", minimum=1e-3)
        check_range(self.singlet_fwhm_range_ppm, "singlet_fwhm_range_ppm", minimum=0.0)
        check_range(self.water_fwhm_range_hz, "water_fwhm_range_hz", minimum=1e-3)
        check_range(self.water_height_range, "water_height_range", minimum=1e-12)
        check_range(self.snr_range, "snr_range", minimum=1e-12)
        check_range(self.eddy_time_constant_range_s, "eddy_time_constant_range_s", minimum=1e-6)
        for name in ("mm_damping_range_per_s", "lipid_damping_range_per_s"):
            check_range(getattr(self, name), name, minimum=0.0)
        if self.macromolecules not in ("measured", "parametric"):
            raise ConfigError(
                f"macromolecules must be measured or parametric, got {self.macromolecules!r}"
            )
        water = whole_number("water_components", self.water_components, 1)
        object.__setattr__(self, "water_components", water)
        # the per-metabolite damping must keep every line decaying
        if 1.0 / self.metabolite_t2_range_s[1] + self.damping_deviation_range_per_s[0] < 0:
            raise ConfigError("damping_deviation_range_per_s makes the metabolite damping negative")

    def concentration_range_mm(self, name: str) -> Range:
        """Literature range of basis name ``name`` (aliases resolved)."""
        key = canonical(name)
        if key not in self.concentrations_mm:
            raise UnknownMetaboliteError(
                f"the invivo prior has no concentration range for {name!r}; known: "
                f"{', '.join(self.concentrations_mm)}; give one in InvivoPrior.concentrations_mm"
            )
        return self.concentrations_mm[key]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvivoPrior:
        """Rebuild a prior from :meth:`to_dict` output (lists as ranges, ``baseline`` as a
        mapping); unknown keys are an error."""
        plain: dict[str, Any] = {}
        for key, value in data.items():
            if key == "baseline" and isinstance(value, Mapping):
                value = BaselineConfig.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            plain[key] = value
        return dataclass_from_dict(cls, plain, "invivo prior")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping of every range (recorded in output files)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                out[f.name] = {k: list(v) for k, v in value.items()}
            elif isinstance(value, BaselineConfig):
                out[f.name] = value.to_dict()
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out


@dataclass(frozen=True)
class InvivoParameters:
    """Every drawn parameter of ``B`` signals: float64 arrays (bool for presence flags).

    Basis signals ``M`` (the basis' names), parametric components ``C``, groups ``G`` =
    :data:`GROUPS`, water lines ``W``, baseline humps ``H``.

    Attributes
    ----------
    basis_names : (M,) basis names, the column order of the (B, M) arrays.
    component_names : (C,) parametric components (MM and lipids) rendered with this draw.
    group_of_basis, group_of_component : (M,), (C,) int group index of each signal.
    concentrations_mm : (B, M) amplitude of each basis FID: mM for metabolites, a multiple of the
        measured spectrum for ``Mac``.
    independent : (B,) bool, concentrations drawn independently of the literature ranges.
    component_amplitudes_mm : (B, C) amplitudes of the parametric components, mM-equivalent
        (protons of the basis' scale, the fit's unit).
    lipids_present : (B,) bool.
    damping_per_s : (B, G) Lorentzian damping ``alpha``, 1/s.
    gauss_per_s2 : (B, G) Gaussian decay ``beta`` of ``exp(-beta t^2)``, 1/s^2.
    shift_hz : (B, G) group frequency shift, Hz.
    damping_dev_per_s, shift_dev_hz : (B, M) per-signal deviations (0 outside the metabolites).
    water_centre_ppm, water_damping_per_s, water_height, water_phase_deg : (B, W) residual water
        lines; heights relative to the reference height, 0 where no water.
    baseline_centre_ppm, baseline_fwhm_ppm, baseline_height : (B, H) baseline humps.
    eddy_amplitude_rad, eddy_time_constant_s : (B,) eddy-current phase ``A exp(-t / tau)``;
        ``A`` is 0 where there is none.
    phase0_deg, phase1_deg_per_ppm : (B,) phases; ``phase1_pivot_ppm`` the pivot.
    snr : (B,) signal-to-noise ratio.
    spectrometer_freq_mhz : field the prior's ppm ranges were converted to Hz at (that of the
        grid the draw was for, :class:`BasisLines`); :func:`render_invivo` refuses another.
    reference_window_ppm : where the reference height is measured.
    """

    basis_names: tuple[str, ...]
    component_names: tuple[str, ...]
    group_of_basis: np.ndarray
    group_of_component: np.ndarray
    concentrations_mm: np.ndarray
    independent: np.ndarray
    component_amplitudes_mm: np.ndarray
    lipids_present: np.ndarray
    damping_per_s: np.ndarray
    gauss_per_s2: np.ndarray
    shift_hz: np.ndarray
    damping_dev_per_s: np.ndarray
    shift_dev_hz: np.ndarray
    water_centre_ppm: np.ndarray
    water_damping_per_s: np.ndarray
    water_height: np.ndarray
    water_phase_deg: np.ndarray
    baseline_centre_ppm: np.ndarray
    baseline_fwhm_ppm: np.ndarray
    baseline_height: np.ndarray
    eddy_amplitude_rad: np.ndarray
    eddy_time_constant_s: np.ndarray
    phase0_deg: np.ndarray
    phase1_deg_per_ppm: np.ndarray
    snr: np.ndarray
    spectrometer_freq_mhz: float
    phase1_pivot_ppm: float = 4.65
    reference_window_ppm: Range = (1.9, 2.1)

    def __post_init__(self) -> None:
        n = self.n_signals
        for name, value in self.columns().items():
            if np.shape(value)[0] != n:
                raise ValueError(f"{name} has {np.shape(value)[0]} rows, concentrations {n}")

    @property
    def n_signals(self) -> int:
        return int(np.shape(self.concentrations_mm)[0])

    def columns(self) -> dict[str, np.ndarray]:
        """The per-signal arrays by field name (everything with one row per signal)."""
        skip = {"group_of_basis", "group_of_component"}
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray) and f.name not in skip
        }

    def _with_columns(self, columns: Mapping[str, np.ndarray]) -> InvivoParameters:
        fixed = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in columns}
        return InvivoParameters(**fixed, **columns)

    def take(self, index: slice | np.ndarray) -> InvivoParameters:
        """The parameters of the signals ``index`` selects."""
        return self._with_columns({k: v[index] for k, v in self.columns().items()})

    @staticmethod
    def concatenate(parts: Sequence[InvivoParameters]) -> InvivoParameters:
        """Stack draws of the same prior and basis along the signal axis."""
        keys = parts[0].columns().keys()
        stacked = {k: np.concatenate([p.columns()[k] for p in parts], axis=0) for k in keys}
        return parts[0]._with_columns(stacked)

    def basis_lineshape(self, *, gaussian: bool = True) -> SimulationParameters:
        """Eq. 1 parameters of the basis signals: group terms plus deviations, (B, M) each;
        without the Gaussian factor when ``gaussian`` is false."""
        g = self.group_of_basis
        return SimulationParameters(
            amplitudes=self.concentrations_mm,
            damping_per_s=self.damping_per_s[:, g] + self.damping_dev_per_s,
            shift_hz=self.shift_hz[:, g] + self.shift_dev_hz,
            gaussian_damping_per_s=np.sqrt(self.gauss_per_s2[:, g]) if gaussian else None,
        )

    def component_lineshape(
        self, which: Sequence[str], *, gaussian: bool = True
    ) -> SimulationParameters:
        """Eq. 1 parameters of the parametric components ``which`` (their group's terms)."""
        idx = [self.component_names.index(name) for name in which]
        g = self.group_of_component[idx]
        return SimulationParameters(
            amplitudes=self.component_amplitudes_mm[:, idx],
            damping_per_s=self.damping_per_s[:, g],
            shift_hz=self.shift_hz[:, g],
            gaussian_damping_per_s=np.sqrt(self.gauss_per_s2[:, g]) if gaussian else None,
        )

    @property
    def shares_gaussian(self) -> bool:
        """Whether every group of every signal has the same ``beta`` (the draws' case)."""
        return bool(np.all(self.gauss_per_s2 == self.gauss_per_s2[:, :1]))


def voigt_fwhm_hz(lorentzian_fwhm_hz, gaussian_fwhm_hz):
    """Voigt FWHM from its parts (Olivero & Longbothum 1977, better than 0.02 %)."""
    fl = np.asarray(lorentzian_fwhm_hz, dtype=np.float64)
    fg = np.asarray(gaussian_fwhm_hz, dtype=np.float64)
    return _VOIGT_C1 * fl + np.sqrt(_VOIGT_C2 * fl**2 + fg**2)


def gaussian_fwhm_for_voigt_hz(voigt_fwhm, lorentzian_fwhm_hz):
    """Gaussian FWHM that with ``lorentzian_fwhm_hz`` gives ``voigt_fwhm`` (0 if narrower)."""
    fv = np.asarray(voigt_fwhm, dtype=np.float64)
    fl = np.asarray(lorentzian_fwhm_hz, dtype=np.float64)
    return np.sqrt(np.maximum((fv - _VOIGT_C1 * fl) ** 2 - _VOIGT_C2 * fl**2, 0.0) * (fv > fl))


def gauss_per_s2_from_fwhm_hz(fwhm_hz):
    """``beta`` of ``exp(-beta t^2)`` whose line is ``fwhm_hz`` wide: ``g^2`` of
    :func:`scaloquant.signal.lineshapes.gaussian_damping_from_fwhm_hz`."""
    return np.square(lineshapes.gaussian_damping_from_fwhm_hz(fwhm_hz))


#: Singlets whose rendered width :func:`basis_lines` measures, in this order: (name, window ppm).
WIDTH_SINGLETS: tuple[tuple[str, Range], ...] = (("NAA", (1.9, 2.1)), ("Cr", (2.9, 3.1)))
#: Rows (metabolite dampings) and columns (Gaussian widths) of :class:`BasisLines`' table.
_WIDTH_TABLE_DAMPINGS, _WIDTH_TABLE_GAUSSIANS = 5, 65


@dataclass(frozen=True)
class BasisLines:
    """What a draw needs of the grid its signals will be rendered on (:func:`basis_lines`).

    Attributes
    ----------
    spectrometer_freq_mhz : the grid's field: the prior's ppm ranges are converted to Hz at it.
    linewidth_hz : the basis' lines taken as Lorentzians this wide, Hz, where there is no table.
    damping_per_s : (A,) metabolite dampings ``alpha`` of the table's rows, increasing, A >= 2.
    gaussian_fwhm_hz : (G,) Gaussian widths of its columns, increasing from 0.
    singlet_fwhm_hz : (A, G) FWHM (Hz) of the basis' own singlet (:data:`WIDTH_SINGLETS`)
        rendered on the grid under ``exp(-alpha t)`` and the Gaussian, as :func:`render_invivo`
        renders it, non-decreasing along G; the three are None where the basis has no such
        singlet or it was not measured.
    """

    spectrometer_freq_mhz: float
    linewidth_hz: float
    damping_per_s: np.ndarray | None = None
    gaussian_fwhm_hz: np.ndarray | None = None
    singlet_fwhm_hz: np.ndarray | None = None

    def __post_init__(self) -> None:
        table = (self.damping_per_s, self.gaussian_fwhm_hz, self.singlet_fwhm_hz)
        if all(x is None for x in table):
            return
        if any(x is None for x in table) or np.shape(self.singlet_fwhm_hz) != (
            np.size(self.damping_per_s),
            np.size(self.gaussian_fwhm_hz),
        ):
            raise ValueError("the width table needs (A,) dampings, (G,) Gaussians, (A, G) widths")
        if np.size(self.damping_per_s) < 2:
            raise ValueError("the width table needs at least 2 dampings")

    def gaussian_fwhm_for(self, total_fwhm_hz, damping_per_s) -> np.ndarray:
        """(n,) Gaussian FWHM (Hz) that gives the basis' singlet a total FWHM of
        ``total_fwhm_hz`` under the damping ``damping_per_s`` (n,) each; 0 where the target is
        narrower than the damping alone allows.

        From the table: the Gaussian width is interpolated linearly along each row, then
        between rows (dampings outside the rows take the nearest row). Without a table: the
        Voigt width (:func:`gaussian_fwhm_for_voigt_hz`) with the Lorentzian part
        ``linewidth_hz + alpha / pi``.
        """
        target = np.asarray(total_fwhm_hz, dtype=np.float64)
        alpha = np.asarray(damping_per_s, dtype=np.float64)
        if self.singlet_fwhm_hz is None:
            return gaussian_fwhm_for_voigt_hz(
                target, self.linewidth_hz + lineshapes.lorentzian_fwhm_hz(alpha)
            )
        rows = np.stack(
            [np.interp(target, w, self.gaussian_fwhm_hz) for w in self.singlet_fwhm_hz]
        )  # (A, n)
        a = self.damping_per_s
        pos = np.interp(alpha, a, np.arange(a.size, dtype=np.float64))
        lo = np.minimum(pos.astype(np.int64), a.size - 2)
        frac = pos - lo
        cols = np.arange(target.size)
        return (1.0 - frac) * rows[lo, cols] + frac * rows[lo + 1, cols]


def basis_lines(basis: BasisSet, prior: InvivoPrior) -> BasisLines:
    """Measure :class:`BasisLines` of ``basis`` on its own grid for ``prior``'s draws.

    The basis' lines have widths of their own (the embedded basis' NAA 2.2 Hz, Osprey's 1.1 Hz,
    spant's 1.3 Hz, suspect's 2.3 Hz, of Lorentzian or Gaussian shape), and the grid's length
    truncates them: rather than a model of that, the total width of the first singlet of
    :data:`WIDTH_SINGLETS` in ``basis`` is measured (:func:`scaloquant.signal.snr_fwhm.fwhm_ppm`,
    no baseline removal: it is alone) on ``A`` dampings spanning the prior's metabolite T2 and
    ``G`` Gaussian widths from 0 to the prior's widest singlet, so that a drawn width is the
    rendered one. Without such a singlet, the lines are taken as ``prior.basis_linewidth_hz``
    wide Lorentzians. Cost: ``A G`` zero-filled transforms (0.04 s on 1024 points, 0.4 s on
    8192, on 2 busy cores), once per basis.
    """
    sf = basis.spectrometer_freq_mhz
    names = [canonical(x) for x in basis.names]
    found = [(names.index(n), w) for n, w in WIDTH_SINGLETS if n in names]
    if not found:
        return BasisLines(sf, prior.basis_linewidth_hz)
    index, window = found[0]
    t2_lo, t2_hi = prior.metabolite_t2_range_s
    dampings = np.linspace(1.0 / t2_hi, 1.0 / t2_lo, _WIDTH_TABLE_DAMPINGS)
    gaussians = np.linspace(0.0, prior.singlet_fwhm_range_ppm[1] * sf, _WIDTH_TABLE_GAUSSIANS)
    t = basis.acquisition.time_axis_s()
    gauss = lineshapes.gaussian_decay(
        lineshapes.gaussian_damping_from_fwhm_hz(gaussians)[:, None], t
    )  # (G, N)
    table = (
        np.stack(
            [
                snr_fwhm.fwhm_ppm(
                    basis.fids[index] * np.exp(-a * t) * gauss,
                    basis.dwell_time_s,
                    sf,
                    basis.ppm_reference,
                    window,
                    remove_baseline=False,
                )
                for a in dampings
            ]
        )
        * sf
    )
    if not np.isfinite(table).all():
        return BasisLines(sf, prior.basis_linewidth_hz)
    # the widths grow with the Gaussian; the running maximum keeps the reading's last digits
    # from making a row step back
    return BasisLines(
        sf, prior.basis_linewidth_hz, dampings, gaussians, np.maximum.accumulate(table, axis=1)
    )


def eddy_current_phase_rad(amplitude_rad, time_constant_s, time_s) -> np.ndarray:
    """(B, N) phase ``A exp(-t / tau)`` of (B,) amplitudes and time constants (Klose 1990)."""
    a = np.asarray(amplitude_rad, dtype=np.float64)[:, None]
    tau = np.asarray(time_constant_s, dtype=np.float64)[:, None]
    return a * np.exp(-np.asarray(time_s)[None, :] / tau)


def parametric_component_fids(names: Sequence[str], acquisition: Acquisition) -> np.ndarray:
    """(C, N) FIDs of the named :data:`PARAMETRIC_COMPONENTS`, internal convention.

    Each line is ``area exp(2 pi i f t) exp(-(g t)^2)`` at its ppm with ``g`` from its FWHM, so
    the FID's first point (the spectral area divided by N) is the sum of its relative areas: one
    proton per unit of area; :func:`render_invivo` multiplies by the basis' signal per proton.
    """
    t = acquisition.time_axis_s()
    sf = acquisition.spectrometer_freq_mhz
    out = np.zeros((len(names), acquisition.n_points), dtype=np.complex128)
    for i, name in enumerate(names):
        for ppm, fwhm_ppm, area in PARAMETRIC_COMPONENTS[name]:
            f_hz = axes.ppm_to_hz(ppm, sf, acquisition.ppm_reference)
            g = lineshapes.gaussian_damping_from_fwhm_hz(fwhm_ppm * sf)
            out[i] += area * lineshapes.gaussian_decay(g, t) * np.exp(2j * np.pi * f_hz * t)
    return out


def _layout(prior: InvivoPrior, basis_names: Sequence[str]) -> tuple[np.ndarray, int | None]:
    """(M,) group per basis name, and the column of the measured MM (None if none)."""
    groups = np.full(len(basis_names), METABOLITES, dtype=np.int64)
    mm_column = None
    for i, name in enumerate(basis_names):
        if name in MEASURED_MM_NAMES:
            if mm_column is not None:
                raise ConfigError(
                    f"the basis has two measured macromolecule signals ({basis_names[mm_column]}"
                    f", {name}); the invivo prior handles one"
                )
            groups[i], mm_column = MACROMOLECULES, i
        else:
            prior.concentration_range_mm(name)  # refuses names without a range
    return groups, mm_column


def _log_uniform(rng: np.random.Generator, bounds: Range, shape) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size=shape))


def draw_invivo(
    prior: InvivoPrior,
    basis_names: Sequence[str],
    n: int,
    rng: np.random.Generator,
    lines: BasisLines | None = None,
) -> InvivoParameters:
    """Draw the parameters of ``n`` signals for a basis with ``basis_names``.

    Vectorised; every array is drawn in a fixed order whatever is present (absent effects are
    zeroed afterwards), so a generator in a given state gives the same parameters.

    Parameters
    ----------
    prior : the ranges.
    basis_names : basis metabolite names; each needs a concentration range (aliases in
        :func:`scaloquant.metabolites.canonical`) or is a measured macromolecule (:data:`MEASURED_MM_NAMES`).
    n : number of signals, >= 0.
    rng : the only source of randomness.
    lines : the grid the signals will be rendered on (:func:`basis_lines` of the basis): its
        field converts the prior's ppm ranges to Hz, its singlet's measured widths give the
        Gaussian part. None: a grid at ``prior.spectrometer_freq_mhz`` whose lines are
        ``prior.basis_linewidth_hz`` wide Lorentzians (the embedded basis on its own grid, to
        1 % in the singlet's width).
    """
    n = whole_number("the number of signals", n, 0)
    names = tuple(str(x) for x in basis_names)
    groups, mm_column = _layout(prior, names)
    measured = prior.macromolecules == "measured" and mm_column is not None
    mm_names = () if measured else MM_COMPONENTS
    component_names = (*mm_names, *LIPID_COMPONENTS)
    m, c = len(names), len(component_names)
    if lines is None:
        lines = BasisLines(prior.spectrometer_freq_mhz, prior.basis_linewidth_hz)
    sf = lines.spectrometer_freq_mhz

    # concentrations: literature-anchored or, for a fraction, independent of the literature
    ranges = np.array(
        [
            (0.0, 0.0) if i == mm_column else prior.concentration_range_mm(x)
            for i, x in enumerate(names)
        ]
    ).reshape(m, 2)
    s_lo, s_hi = prior.literature_spread
    literature = rng.uniform(s_lo * ranges[:, 0], s_hi * ranges[:, 1], size=(n, m))
    free = rng.uniform(0.0, prior.independent_scale * ranges[:, 1], size=(n, m))
    independent = rng.random(n) < prior.independent_fraction
    conc = np.where(independent[:, None], free, literature)

    cr = [i for i, x in enumerate(names) if canonical(x) in ("Cr", "PCr")]
    tcr = conc[:, cr].sum(axis=1) if cr else np.full(n, _TCR_FALLBACK_MM)
    tcr_max = sum(ranges[i, 1] for i in cr) if cr else _TCR_FALLBACK_MM
    mm_ratio = rng.uniform(*prior.mm_per_tcr_range, size=n)
    mm_free = rng.uniform(
        0.0, prior.independent_scale * prior.mm_per_tcr_range[1] * tcr_max, size=n
    )
    if mm_column is not None:
        conc[:, mm_column] = np.where(independent, mm_free, mm_ratio * tcr) if measured else 0.0

    # parametric components: MM as the concentrations, lipids for a fraction of the signals
    comp_ranges = {**prior.mm_parametric_range_mm, **prior.lipid_range_mm}
    bounds = np.array([comp_ranges.get(x, (0.0, 0.0)) for x in component_names]).reshape(c, 2)
    comp_lit = rng.uniform(bounds[:, 0], bounds[:, 1], size=(n, c))
    comp_free = rng.uniform(0.0, prior.independent_scale * bounds[:, 1], size=(n, c))
    lipids_present = rng.random(n) < prior.lipid_fraction
    comp = np.where(independent[:, None] & np.isin(component_names, mm_names), comp_free, comp_lit)
    is_lipid = np.isin(component_names, LIPID_COMPONENTS)
    comp[:, is_lipid] *= lipids_present[:, None]
    group_of_component = np.where(is_lipid, LIPIDS, MACROMOLECULES).astype(np.int64)

    # lineshape: metabolites' Gaussian part from T2 and the total singlet width on the basis'
    # lines; MM and lipids their own
    alpha_met = 1.0 / rng.uniform(*prior.metabolite_t2_range_s, size=n)
    target_hz = rng.uniform(*prior.singlet_fwhm_range_ppm, size=n) * sf
    beta = gauss_per_s2_from_fwhm_hz(lines.gaussian_fwhm_for(target_hz, alpha_met))
    shift_met = rng.uniform(*prior.shift_range_ppm, size=n) * sf
    alpha_mm = rng.uniform(*prior.mm_damping_range_per_s, size=n)
    shift_mm = shift_met + rng.uniform(*prior.mm_shift_deviation_range_ppm, size=n) * sf
    alpha_lip = rng.uniform(*prior.lipid_damping_range_per_s, size=n)
    shift_lip = shift_met + rng.uniform(*prior.lipid_shift_deviation_range_ppm, size=n) * sf
    is_met = (groups == METABOLITES)[None, :]
    damping_dev = rng.uniform(*prior.damping_deviation_range_per_s, size=(n, m)) * is_met
    shift_dev = rng.uniform(*prior.shift_deviation_range_ppm, size=(n, m)) * sf * is_met

    # residual water
    w = prior.water_components
    water_centre = rng.uniform(*prior.water_centre_range_ppm, size=(n, w))
    water_damping = np.pi * rng.uniform(*prior.water_fwhm_range_hz, size=(n, w))
    water_height = _log_uniform(rng, prior.water_height_range, (n, w))
    water_phase = rng.uniform(-180.0, 180.0, size=(n, w))
    water_height *= (rng.random(n) < prior.water_fraction)[:, None]

    bl = prior.baseline
    hump_shape = (n, bl.n_humps)
    baseline = {
        "baseline_centre_ppm": rng.uniform(*bl.centre_range_ppm, size=hump_shape),
        "baseline_fwhm_ppm": rng.uniform(*bl.fwhm_range_ppm, size=hump_shape),
        "baseline_height": rng.uniform(*bl.height_range, size=hump_shape),
    }
    eddy_amplitude = rng.uniform(*prior.eddy_amplitude_range_rad, size=n)
    eddy_tau = rng.uniform(*prior.eddy_time_constant_range_s, size=n)
    eddy_amplitude *= rng.random(n) < prior.eddy_fraction
    phase0 = rng.uniform(*prior.phase0_range_deg, size=n)
    phase1 = rng.uniform(*prior.phase1_range_deg_per_ppm, size=n)
    snr = _log_uniform(rng, prior.snr_range, n)

    return InvivoParameters(
        basis_names=names,
        component_names=component_names,
        group_of_basis=groups,
        group_of_component=group_of_component,
        concentrations_mm=conc,
        independent=independent,
        component_amplitudes_mm=comp,
        lipids_present=lipids_present,
        damping_per_s=np.stack([alpha_met, alpha_mm, alpha_lip], axis=1),
        gauss_per_s2=np.repeat(beta[:, None], len(GROUPS), axis=1),
        shift_hz=np.stack([shift_met, shift_mm, shift_lip], axis=1),
        damping_dev_per_s=damping_dev,
        shift_dev_hz=shift_dev,
        water_centre_ppm=water_centre,
        water_damping_per_s=water_damping,
        water_height=water_height,
        water_phase_deg=water_phase,
        eddy_amplitude_rad=eddy_amplitude,
        eddy_time_constant_s=eddy_tau,
        phase0_deg=phase0,
        phase1_deg_per_ppm=phase1,
        snr=snr,
        spectrometer_freq_mhz=sf,
        phase1_pivot_ppm=prior.phase1_pivot_ppm,
        reference_window_ppm=prior.reference_window_ppm,
        **baseline,
    )


def water_fids(
    acquisition: Acquisition,
    centre_ppm: np.ndarray,
    damping_per_s: np.ndarray,
    height: np.ndarray,
    phase_deg: np.ndarray,
    reference_height: np.ndarray,
) -> np.ndarray:
    """(B, N) residual water: Lorentzian lines from (B, W) parameters and the (B,) height ``H``.

    Line ``w`` is ``a exp(i phase) exp((-alpha + 2 pi i f) t)``, with ``a`` such that its
    magnitude spectrum peaks at ``height * H``: the DFT at the line's own frequency is the
    geometric sum ``(1 - r^N) / (1 - r)``, ``r = exp(-alpha dT)``.
    """
    r = np.exp(-damping_per_s * acquisition.dwell_time_s)
    peak = (1.0 - r**acquisition.n_points) / (1.0 - r)
    amplitude = height * reference_height[:, None] / peak * np.exp(1j * np.deg2rad(phase_deg))
    freq_hz = axes.ppm_to_hz(
        centre_ppm, acquisition.spectrometer_freq_mhz, acquisition.ppm_reference
    )
    rate = torch.from_numpy(-damping_per_s + 2j * np.pi * freq_hz)  # (B, W), 1/s
    # exp(rate t) by the physics model's ramp (few exponentials); W is a few lines
    ramp = exp_ramp(rate, torch.from_numpy(acquisition.time_axis_s()))  # (B, W, N)
    return torch.einsum("bw,bwn->bn", torch.from_numpy(amplitude), ramp).numpy()


class InvivoRendering(NamedTuple):
    """Rendered signals: (B, N) complex FIDs, the (B,) reference height ``H`` and the (B,)
    time-domain noise sd per part (None when noiseless)."""

    fids: np.ndarray
    reference_height: np.ndarray
    noise_sd: np.ndarray | None


def _check_basis(basis: BasisSet, params: InvivoParameters, prior_freq_mhz: float | None) -> None:
    if tuple(basis.names) != params.basis_names:
        raise IncompatibleDataError(
            "the parameters were drawn for the basis names "
            f"{', '.join(params.basis_names)}, not {', '.join(basis.names)}; draw them again"
        )
    if not math.isclose(basis.spectrometer_freq_mhz, params.spectrometer_freq_mhz, rel_tol=1e-9):
        raise IncompatibleDataError(
            f"the parameters were drawn for a grid at {params.spectrometer_freq_mhz:g} MHz (their "
            f"ppm ranges in Hz), the basis is at {basis.spectrometer_freq_mhz:g} MHz; draw them "
            "with lines=basis_lines(basis, prior)"
        )
    if prior_freq_mhz is not None:
        ratio = basis.spectrometer_freq_mhz / prior_freq_mhz
        if abs(ratio - 1.0) > 0.05:
            raise IncompatibleDataError(
                f"the invivo prior is for {prior_freq_mhz:g} MHz (3 T), the basis is at "
                f"{basis.spectrometer_freq_mhz:g} MHz; use a 3 T basis or adapt the prior"
            )


def render_invivo(
    basis: BasisSet,
    params: InvivoParameters,
    rng: np.random.Generator | None = None,
    *,
    prior_freq_mhz: float | None = None,
    unit_per_proton: float | None = None,
) -> InvivoRendering:
    """Render ``params`` on the basis' grid (float64 numpy); noise only when ``rng`` is given.

    Order: basis signals under their group Voigt lineshapes (:func:`.model.synthesize`) and the
    parametric macromolecules; the reference height ``H`` (:func:`.effects.reference_peak_height`
    in ``params.reference_window_ppm``) on these; then lipids, residual water, the eddy-current
    phase (a B0 effect: on all resonances), the baseline (:func:`.effects.baseline_fids`), zero-
    and first-order phase (:func:`.effects.apply_phase`) and finally noise at the SNR
    (:func:`.effects.noise_sd_for_snr`). ``prior_freq_mhz`` refuses a basis far from the
    prior's field; a basis at another field than ``params`` were drawn for is refused too.

    The parametric components' amplitudes count protons of the basis' scale, as the fit's do
    (:func:`scaloquant.signal.scale.component_unit`: the basis' signal per proton ``u``, 1 for
    the embedded basis, 0.009 to 16 for scanner bases); ``unit_per_proton`` gives ``u`` (a
    caller rendering many batches on one basis measures it once), else it is measured here.
    """
    _check_basis(basis, params, prior_freq_mhz)
    acq = basis.acquisition
    if unit_per_proton is None and params.component_names:
        unit_per_proton = component_unit(basis.names, basis.fids, acq)
    dwell = basis.dwell_time_s
    # one shared Gaussian factor multiplies the sum once instead of every metabolite's term
    # (the exp of every sample is the cost of a Gaussian per metabolite): the same numbers
    shared = params.shares_gaussian
    envelope = None
    if shared and params.n_signals:
        g = np.sqrt(params.gauss_per_s2[:, :1])
        envelope = lineshapes.gaussian_decay(g, acq.time_axis_s())

    def resonances(fids_in: np.ndarray, lineshape: SimulationParameters) -> np.ndarray:
        out = synthesize(fids_in, lineshape, dwell)
        return out if envelope is None else out * envelope

    fids = resonances(basis.fids, params.basis_lineshape(gaussian=not shared))
    mm = [x for x in params.component_names if x in MM_COMPONENTS]
    lipids = [x for x in params.component_names if x in LIPID_COMPONENTS]
    if mm:
        fids += resonances(
            parametric_component_fids(mm, acq) * unit_per_proton,
            params.component_lineshape(mm, gaussian=not shared),
        )
    mask = effects.reference_window_mask(acq, params.reference_window_ppm)
    reference_height = effects.reference_peak_height(fids, mask)
    if lipids:
        fids += resonances(
            parametric_component_fids(lipids, acq) * unit_per_proton,
            params.component_lineshape(lipids, gaussian=not shared),
        )
    fids += water_fids(
        acq,
        params.water_centre_ppm,
        params.water_damping_per_s,
        params.water_height,
        params.water_phase_deg,
        reference_height,
    )
    fids *= np.exp(
        1j
        * eddy_current_phase_rad(
            params.eddy_amplitude_rad, params.eddy_time_constant_s, acq.time_axis_s()
        )
    )
    fids = effects.add_baseline_and_phase(
        fids, acq, params, reference_height, params.phase1_pivot_ppm
    )
    noise_sd = None
    if rng is not None:
        noise_sd = effects.noise_sd_for_snr(reference_height, params.snr, basis.n_points)
        fids = fids + effects.complex_noise(noise_sd, basis.n_points, rng)
    return InvivoRendering(fids, reference_height, noise_sd)


class InvivoSignals(NamedTuple):
    """A batch of ``invivo`` signals: parameters, (B, N) FIDs, reference height, noise sd."""

    parameters: InvivoParameters
    fids: np.ndarray
    reference_height: np.ndarray
    noise_sd: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        """Per-signal truth by name: ``amplitudes`` (= concentrations, the name the HDF5
        reader needs), every parameter, then the derived heights and noise."""
        return {
            "amplitudes": self.parameters.concentrations_mm,
            **self.parameters.columns(),
            "reference_height": self.reference_height,
            "noise_sd": self.noise_sd,
        }

    def take(self, index: slice) -> InvivoSignals:
        return InvivoSignals(
            self.parameters.take(index),
            self.fids[index],
            self.reference_height[index],
            self.noise_sd[index],
        )

    @staticmethod
    def concatenate(parts: list[InvivoSignals]) -> InvivoSignals:
        return InvivoSignals(
            InvivoParameters.concatenate([p.parameters for p in parts]),
            *(np.concatenate([getattr(p, k) for p in parts]) for k in InvivoSignals._fields[1:]),
        )


def simulate_invivo_batch(
    basis: BasisSet,
    prior: InvivoPrior,
    n: int,
    rng: np.random.Generator,
    *,
    unit_per_proton: float | None = None,
    lines: BasisLines | None = None,
) -> InvivoSignals:
    """Draw and render ``n`` noisy signals; parameters first, then the noise, from ``rng``
    (``unit_per_proton``: :func:`render_invivo`'s; ``lines``: :func:`draw_invivo`'s, measured
    on ``basis`` by :func:`basis_lines` when not given: a caller drawing many batches on one
    basis measures both once)."""
    if lines is None:
        lines = basis_lines(basis, prior)
    params = draw_invivo(prior, basis.names, n, rng, lines)
    fids, height, noise_sd = render_invivo(
        basis,
        params,
        rng,
        prior_freq_mhz=prior.spectrometer_freq_mhz,
        unit_per_proton=unit_per_proton,
    )
    return InvivoSignals(params, fids, height, noise_sd)


def simulate_invivo_dataset(
    basis: BasisSet,
    prior: InvivoPrior,
    n: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
):
    """Stream ``n`` seeded signals in chunks, block by block like
    :func:`scaloquant.simulate.simulate_dataset` (the same seed gives the same signals whatever
    the chunk size). Names, field and reference window are checked before the first chunk."""
    check_run(n, seed, chunk_size)
    lines = basis_lines(basis, prior)
    names_checked = draw_invivo(prior, basis.names, 0, np.random.default_rng(0), lines)
    _check_basis(basis, names_checked, prior.spectrometer_freq_mhz)
    effects.reference_window_mask(basis.acquisition, prior.reference_window_ppm)
    unit = component_unit(basis.names, basis.fids, basis.acquisition)
    return stream_blocks(
        lambda rng: simulate_invivo_batch(
            basis, prior, BLOCK_SIZE, rng, unit_per_proton=unit, lines=lines
        ),
        n,
        seed,
        chunk_size,
    )
