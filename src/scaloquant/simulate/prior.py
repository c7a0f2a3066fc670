"""The ``invivo`` preset's prior: every range, its units and its source.

This is the module to read and change to train for another scanner or population
(``docs/invivo-prior.md`` gives each number's source beside it). Literature values are quoted
from memory of the tables named there and are rounded; where a value is a project choice, it
says so. A wider spread than the tables is deliberate (a network must not be pulled to a
prior), and a fraction of the signals draws all concentrations independently of the literature
values.

The ranges are drawn by :func:`.draws.draw_invivo` and rendered by :func:`.invivo.render_invivo`
(the module :mod:`.invivo` maps the preset's modules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Literal

from .._config import dataclass_from_dict, whole_number
from ..errors import ConfigError, UnknownMetaboliteError
from ..metabolites import canonical
from ..physics.macromolecules import LCMODEL_COMPONENTS, MM_COMPONENTS
from .config import BaselineConfig, Range, _range

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

# The parametric macromolecule and lipid components (name -> ((ppm, FWHM ppm, relative area),
# ...)) are the fit's table, scaloquant.physics.macromolecules.LCMODEL_COMPONENTS (LCModel's
# default CHSIMU), so that simulation and fit share one model; their amplitudes are drawn from
# the ranges below.

#: tCr (mM) that scales the measured macromolecules when the basis has neither Cr nor PCr.
_TCR_FALLBACK_MM = 8.0

MacromoleculeSource = Literal["measured", "parametric"]


def _frozen_ranges(mapping: Mapping[str, Range]) -> Mapping[str, Range]:
    return MappingProxyType({str(k): (float(v[0]), float(v[1])) for k, v in mapping.items()})


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
        :func:`~.invivo.render_invivo` refuses bases more than 5 % away. The ranges in ppm are
        converted to Hz at the field of the grid the signals are rendered on
        (:class:`~.linewidths.BasisLines`), so that they hold in ppm on any basis.
    metabolite_t2_range_s : metabolite T2 at 3 T, 150-300 ms (Traeber et al., JMRI
        2004;19:537; Mlynarik et al., NMR Biomed 2001;14:325, at 4 T): Lorentzian damping
        ``alpha = 1 / T2``.
    singlet_fwhm_range_ppm : total FWHM of a rendered singlet (NAA), 0.03-0.12 ppm = 3.7-14.8 Hz:
        3 T brain spectra with a good shim reach 0.03-0.05 ppm, 0.1 ppm is the usual acceptance
        limit (Wilson et al., MRM 2019;82:527, consensus; Juchem et al., NMR Biomed
        2021;34:e4350, shimming consensus). 0.02 ppm is narrower than the T2 limit plus the basis
        lines and is not reachable. The Gaussian part (B0 inhomogeneity) ``beta`` is solved so
        that the basis' own NAA singlet rendered on the grid under ``alpha`` and ``beta`` is that
        wide (:func:`~.linewidths.basis_lines` measures it per basis: the bases' own lines
        differ, 1.1-2.3 Hz, Lorentzian or Gaussian).
    basis_linewidth_hz : FWHM of the basis' own lines taken as Lorentzians where they are not
        measured (a basis without NAA or Cr, or :func:`~.draws.draw_invivo` without ``lines``),
        Hz; 2.1 Hz measured on the NAA singlet of the embedded ISMRM 2016 basis.
    shift_range_ppm : group frequency shift (drift, referencing), +-0.1 ppm = +-12 Hz at 3 T (project
        choice: B0 drift over a scan at 3 T is a few Hz, referencing errors up to ~0.1 ppm).
    shift_deviation_range_ppm : per-metabolite shift around the group's, +-0.005 ppm (project
        choice after LCModel's small individual shift priors, manual sec. 11).
    damping_deviation_range_per_s : per-metabolite damping around the group's, +-1 1/s
        (+-0.3 Hz, T2 differences between metabolites).

    Macromolecules and lipids
    -------------------------
    macromolecules : ``measured`` (the basis' ``Mac``; parametric when the basis has none) or
        ``parametric`` (:data:`~scaloquant.physics.macromolecules.LCMODEL_COMPONENTS`
        ``MM09``...``MM20``; the basis' Mac gets 0).
    mm_per_tcr_range : amplitude of the measured Mac per mM of tCr (Cr + PCr). 0.2-1.1 puts the
        0.9 ppm MM peak at about 10-50 % of the 3.0 ppm tCr peak at 0.05 ppm linewidth, as in
        published 3 T short-TE brain spectra (Cudalbu et al., NMR Biomed 2021;34:e4393,
        macromolecule consensus; project estimate, not a tabulated value).
    mm_parametric_range_mm : amplitude range of each parametric MM component, mM-equivalent
        (its lines' relative areas count protons of the basis' scale as in LCModel and the
        fit: rendered times the basis' signal per proton, :func:`~.invivo.render_invivo`); project
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
                _range(value, f.name)
        for name, r in {**self.concentrations_mm, **self.mm_parametric_range_mm}.items():
            _range(r, f"concentration range of {name}", minimum=0.0)
        for name, r in self.lipid_range_mm.items():
            _range(r, f"lipid range of {name}", minimum=0.0)
        unknown = [
            n
            for n in (*self.mm_parametric_range_mm, *self.lipid_range_mm)
            if n not in LCMODEL_COMPONENTS
        ]
        if unknown:
            raise ConfigError(
                f"no parametric component {', '.join(unknown)}; known: "
                f"{', '.join(LCMODEL_COMPONENTS)}"
            )
        _range(self.literature_spread, "literature_spread", minimum=0.0)
        _range(self.metabolite_t2_range_s, "metabolite_t2_range_s", minimum=1e-3)
        _range(self.singlet_fwhm_range_ppm, "singlet_fwhm_range_ppm", minimum=0.0)
        _range(self.water_fwhm_range_hz, "water_fwhm_range_hz", minimum=1e-3)
        _range(self.water_height_range, "water_height_range", minimum=1e-12)
        _range(self.snr_range, "snr_range", minimum=1e-12)
        _range(self.eddy_time_constant_range_s, "eddy_time_constant_range_s", minimum=1e-6)
        for name in ("mm_damping_range_per_s", "lipid_damping_range_per_s"):
            _range(getattr(self, name), name, minimum=0.0)
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

    def for_fitted(self, fitted_names: tuple[str, ...] | list[str]) -> InvivoPrior:
        """This prior with the macromolecules of a fit whose basis holds ``fitted_names``:
        ``parametric`` where the fit models them by LCModel's components (a basis without a
        measured spectrum, or data from another scanner type:
        :func:`scaloquant.fit.problem.macromolecule_choice`), so that the signals hold what the
        fit estimates; else unchanged. What ``train`` renders a physics-head model's signals
        with and ``simulate --preset invivo --grid-from`` renders its file with."""
        if set(MM_COMPONENTS) <= set(fitted_names) and self.macromolecules == "measured":
            return replace(self, macromolecules="parametric")
        return self

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
