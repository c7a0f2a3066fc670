"""The drawn parameters of ``invivo`` signals (:class:`InvivoParameters`) and their draw
(:func:`draw_invivo`) from the prior (:class:`~.prior.InvivoPrior`).

The parameters are a frozen container of numpy arrays whose terms are those of the physics
model (``damping_per_s`` = alpha, ``gauss_per_s2`` = beta, ``shift_hz`` per group,
``damping_dev_per_s``/``shift_dev_hz`` per metabolite; phases here in degrees, ``phase0_deg``
and ``phase1_deg_per_ppm`` with the pivot, where the physics model takes radians).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from .._config import whole_number
from ..errors import ConfigError
from ..metabolites import canonical
from ..physics.macromolecules import LIPID_COMPONENTS, MM_COMPONENTS
from .config import Range
from .linewidths import BasisLines, gauss_per_s2_from_fwhm_hz
from .parameters import SimulationParameters
from .prior import _TCR_FALLBACK_MM, MEASURED_MM_NAMES, InvivoPrior

#: Lineshape groups: metabolites share one lineshape, macromolecules and lipids have their own.
GROUPS = ("metabolites", "macromolecules", "lipids")
METABOLITES, MACROMOLECULES, LIPIDS = range(3)


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
        grid the draw was for, :class:`~.linewidths.BasisLines`);
        :func:`~.invivo.render_invivo` refuses another.
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
    lines : the grid the signals will be rendered on (:func:`~.linewidths.basis_lines` of the
        basis): its field converts the prior's ppm ranges to Hz, its singlet's measured widths
        give the Gaussian part. None: a grid at ``prior.spectrometer_freq_mhz`` whose lines are
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
