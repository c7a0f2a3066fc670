"""A measured macromolecule spectrum as the fit's macromolecule basis (``fit --mm-spectrum``).

The MRS consensus on macromolecules (Cudalbu et al., NMR Biomed 2021;34:e4393) recommends a
metabolite-nulled spectrum, acquired by inversion recovery with the data's own protocol, as the
macromolecule basis. Such a spectrum is noisy and holds what the inversion left of the
metabolites (creatine's CH2 at 3.9 ppm and its CH3, NAA's singlet), so it is cleaned before it
becomes a basis spectrum, as Osprey does (``fit_OspreyCleanMM.m`` in OspreyFit: the
metabolite-nulled spectrum is fitted, the fitted metabolites are subtracted and the rest is
modelled noise-free).

Here the metabolite-nulled spectrum is fitted by the same fit as the data
(:func:`~scaloquant.fit.spectra.fit_spectra`), its macromolecules as LCModel's parametric
MM09..MM20 (:mod:`scaloquant.physics.macromolecules`), the basis' metabolites that survive the
inversion (:data:`MM_FIT_METABOLITES`) taking up their remains, two broad lines
(:data:`MM_FIT_REST_LINES`) the signal at 3.7-4.0 ppm that LCModel's components leave, and the
fit's baseline (at the fixed stiffness) the broad rest; its groups' lines are bounded
(:data:`MM_FIT_DAMPING_BOUNDS_PER_S`) and it is started from two shifts
(:func:`clean_mm_spectrum`). The measured macromolecule basis spectrum is the noise-free sum of
the fitted MM components (not the rest lines), each with its fitted amplitude and
lineshape, with the fit's zero- and first-order phase removed and the metabolites' shift removed
(the MM spectrum referenced by its own metabolite remains, its macromolecules where that fit put
them relative to the metabolites). No lipids are fitted: LCModel's Lip09 and MM09 are the same
line within their widths, and lipid contamination differs from scan to scan (it is the scalp's,
moved by the subject), so the data's own fit keeps LCModel's parametric lipids beside the
measured spectrum, as ``macromolecules="auto"`` keeps them beside a basis' measured
macromolecules. The residual metabolites, the rest lines, the baseline and the noise are left
out. The MM components plus the baseline (the broad rest, as Osprey keeps it) measured no better
on Osprey's two subjects (docs/history/fit-log.md, session 33).

With LCModel's free-form lineshape (``lineshape="freeform"``) the MM spectrum is cleaned with
the free-form model's Voigt lines without its kernel: the cleaning measures the MM lines, and
the data's fit then convolves every basis spectrum, ``MM_measured`` among them, with its own
kernel, as LCModel convolves a measured MM spectrum of its basis (docs/history/fit-log.md,
session 36, freemm36).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidDataError
from ..metabolites import canonical
from ..physics.macromolecules import LCMODEL_COMPONENTS, MM_COMPONENTS
from ..types import FID, Acquisition, BasisSet
from .basis_grid import basis_for_data, basis_on_grid
from .config import MEASURED_KEY, FitConfig, macromolecule_names
from .problem import with_components

#: The name of the cleaned measured macromolecule spectrum in the fit's basis.
MEASURED_MM_NAME = "MM_measured"
#: The metabolites of the basis fitted to a metabolite-nulled spectrum: those whose singlets
#: (long T1, high concentration) stay visible after an inversion that nulls most metabolites
#: (NAA's CH3 at 2.01 ppm, creatine's CH3 and CH2 at 3.03 and 3.93 ppm, choline's at 3.2 ppm).
#: The others, given the broad macromolecule lines to fit, broaden their group and take
#: macromolecule signal (the whole basis on Osprey's sub-01 TI 600 ms spectrum: GABA, Asp and
#: PE at 3-6 times the creatine, the lines 'too_broad').
MM_FIT_METABOLITES = ("NAA", "NAAG", "Cr", "PCr", "GPC", "PCho")
#: The MM spectrum's fit: its groups' extra Lorentzian damping (1/s) and Gaussian ``beta``
#: (1/s^2) at most these, lines of at most ~3 Hz and ~9 Hz FWHM more than the basis' (an in-vivo
#: 3 T metabolite line), and the baseline at the fixed stiffness. With the data's bounds (60/s,
#: 3000/s^2) and the adaptive stiffness, Osprey's two TI 600 ms spectra were fitted with
#: zero-order phases 90 degrees apart (-246 and -336), a flexible baseline taking most of the
#: macromolecules, or (fixed stiffness) NAA and creatine broadened to take the MM lines at
#: 2.0-2.3 ppm (docs/history/fit-log.md, session 33). The MM components' own widths are
#: LCModel's (0.14-0.20 ppm FWHM), so the bounds leave them room to broaden too.
MM_FIT_DAMPING_BOUNDS_PER_S = (0.0, 10.0)
MM_FIT_GAUSS_BOUNDS_PER_S2 = (0.0, 300.0)
#: Two broad lines fitted beside the parametric components summed into the measured
#: macromolecule spectrum (:data:`~scaloquant.physics.macromolecules.MM_COMPONENTS`, no lipids)
#: to take the MM spectrum's signal at 3.7-4.0 ppm, which LCModel's components leave
#: (Gaussian lines ``(ppm, FWHM ppm, relative area)``, in the
#: macromolecules' group), and left out of the measured spectrum. The positions are two of the
#: consensus macromolecule peaks of the brain (Cudalbu et al., NMR Biomed 2021, near 3.8 and
#: 3.96 ppm). Fitted, they took the MM spectrum's residual_over_noise from 1.96 and 1.93 to 1.62
#: on Osprey's two TI 600 ms spectra; summed into the measured spectrum, or the consensus peaks
#: in place of LCModel's, the data's fits moved further from LCModel's ratios or dropped the
#: measured spectrum (docs/history/fit-log.md, session 33, mmclean33).
MM_FIT_REST_LINES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "Rest38": ((3.80, 0.15, 1.0),),
    "Rest40": ((3.96, 0.20, 1.0),),
}


@dataclass(frozen=True)
class MeasuredMM:
    """A cleaned metabolite-nulled spectrum, and what its fit measured.

    Attributes
    ----------
    fid : ``(n_points,)`` the noise-free macromolecule FID on ``acquisition``'s grid (internal
        convention, absorption phase), scaled so that its amplitude in a fit counts the sum of
        the parametric MM components' amplitudes (their unit, protons of the basis' scale).
    acquisition : the metabolite-nulled spectrum's grid.
    residual_over_noise : its fit's residual SD over the noise SD.
    shift_hz : the shift its fit found for the metabolite remains (how far the spectrum sat
        from its reference), removed from the MM spectrum.
    phase0_deg, phase1_deg_per_ppm : its fit's phases, removed.
    amplitudes : its fit's amplitudes (basis scale), of the MM components and the metabolite
        remains.
    lineshape : its fit's lineshape (``"voigt"`` where the data's fit is free-form).
    """

    fid: np.ndarray
    acquisition: Acquisition
    residual_over_noise: float
    shift_hz: float
    phase0_deg: float
    phase1_deg_per_ppm: float
    amplitudes: dict[str, float]
    lineshape: str

    def facts(self) -> dict[str, Any]:
        """JSON-able facts for results.json."""

        def number(x: float) -> float | None:
            return float(f"{x:.6g}") if math.isfinite(x) else None

        return {
            "basis_name": MEASURED_MM_NAME,
            "cleaning": f"fitted with {self.lineshape} lines: LCModel's parametric "
            f"{', '.join(MM_COMPONENTS)}, the basis' {', '.join(MM_FIT_METABOLITES)} (those present), broad lines "
            f"{', '.join(MM_FIT_REST_LINES)} at 3.8 and 3.96 ppm and a spline baseline at "
            "the fixed stiffness; the basis spectrum is the sum of the fitted MM components, "
            "phased and referenced by that fit",
            "residual_over_noise": number(self.residual_over_noise),
            "shift_hz": number(self.shift_hz),
            "phase0_deg": number(self.phase0_deg),
            "phase1_deg_per_ppm": number(self.phase1_deg_per_ppm),
            "amplitudes": {k: number(v) for k, v in self.amplitudes.items()},
        }


def clean_mm_spectrum(mm: FID, basis: BasisSet, config: FitConfig) -> MeasuredMM:
    """The measured macromolecule spectrum of the metabolite-nulled ``mm`` (module docstring).

    Parameters
    ----------
    mm : one metabolite-nulled spectrum (samples ``(n_points,)``, or any batch shape of one
        spectrum).
    basis : the data's basis set: its :data:`MM_FIT_METABOLITES` are fitted to ``mm``.
    config : the data's fit options; the MM spectrum's fit takes them with LCModel's
        parametric :data:`~scaloquant.physics.macromolecules.MM_COMPONENTS` as its
        macromolecules (no lipids), no ratio priors, metabolites and macromolecules grouped
        apart (``grouping="metabolites_and_mm"``), Voigt lines in place of the free-form
        lineshape (its kernel is the data's fit's), the baseline at the fixed stiffness, the
        groups' lines bounded
        (:data:`MM_FIT_DAMPING_BOUNDS_PER_S`, :data:`MM_FIT_GAUSS_BOUNDS_PER_S2`), and the better
        (lower residual) of two starts: the cross-correlation shift and none.

    Raises
    ------
    ConfigError : the basis holds none of :data:`MM_FIT_METABOLITES`.
    InvalidDataError : ``mm`` holds more than one spectrum, or its fit found no macromolecules.
    IncompatibleDataError : as :func:`~scaloquant.fit.spectra.fit_spectra`.
    """
    from .spectra import _modulated, fit_spectra, prepared_on_grid

    samples = mm.samples.reshape(-1, mm.n_points)
    if samples.shape[0] != 1:
        raise InvalidDataError(
            f"the MM spectrum holds {samples.shape[0]} spectra; give one (average its transients)"
        )
    kept = [n for n in basis.names if canonical(n) in MM_FIT_METABOLITES]
    if not kept:
        raise ConfigError(
            f"the basis holds none of {', '.join(MM_FIT_METABOLITES)}, which take up what the "
            "inversion left of the metabolites in the MM spectrum; give a basis with them"
        )
    fid = mm.with_samples(samples[0])
    # the MM components only: LCModel's Lip09 and MM09 (and Lip13, MM12/MM14) are the same
    # lines within their widths, and the fit split the 0.9 ppm peak between them (Osprey
    # sub-01: Lip09 15e-6, MM09 4e-6); lipids are left to the data's fit. Beside them the
    # two rest lines at 3.8-4.0 ppm, fitted in the MM group and left out of the sum below
    table = {**{n: LCMODEL_COMPONENTS[n] for n in MM_COMPONENTS}, **MM_FIT_REST_LINES}
    # in protons of the metabolites' scale, as prepare_basis states LCModel's components
    metabolites_only = basis.subset(kept)
    sub = with_components(metabolites_only, tuple(table), unit_of=metabolites_only, table=table)
    mm_config = replace(
        config,
        macromolecules="basis",
        # the free-form model's groups are Voigt lines: the MM spectrum's fit is that model
        # without its kernel, which the data's fit then convolves every basis spectrum with,
        # MM_measured included (as LCModel convolves a measured MM spectrum of its basis)
        lineshape="voigt" if config.lineshape_kind == "freeform" else config.lineshape,
        ratio_priors="none",
        grouping="metabolites_and_mm",
        baseline_stiffness="fixed",
        damping_bounds_per_s=MM_FIT_DAMPING_BOUNDS_PER_S,
        gauss_bounds_per_s2=MM_FIT_GAUSS_BOUNDS_PER_S2,
        initial_damping_per_s=min(config.initial_damping_per_s, MM_FIT_DAMPING_BOUNDS_PER_S[1]),
        initial_gauss_per_s2=min(config.initial_gauss_per_s2, MM_FIT_GAUSS_BOUNDS_PER_S2[1]),
    )
    # two starts, the better kept: the shift of the basis' singlets (cross-correlation), which
    # finds a spectrum far from its reference when the inversion left clear singlets, and
    # none (the file's own reference), since without singlets the cross-correlation lands
    # anywhere (a known component without creatine: -40 Hz, its cleaned spectrum 112 % off)
    result = min(
        (fit_spectra(fid, sub, replace(mm_config, initial_shift=s)) for s in ("xcorr", "zero")),
        key=lambda r: float(np.asarray(r.residual_norm)),
    )
    _, prepared, _ = prepared_on_grid(sub, fid.acquisition, mm_config)
    fitted_names = result.names
    metabolites = [fitted_names.index(n) for n in kept]
    mm_rows = [fitted_names.index(n) for n in MM_COMPONENTS]
    amplitudes = np.asarray(result.amplitudes, dtype=np.float64)
    total = float(amplitudes[mm_rows].sum())
    if not total > 0:
        raise InvalidDataError(
            "the MM spectrum's fit found no macromolecule signal (every MM component 0): "
            "is it a metabolite-nulled spectrum of the data's protocol?"
        )
    reference_hz = float(np.median(np.asarray(result.shift_hz)[metabolites]))
    # the MM components with their fitted lineshapes, the metabolites' shift taken out, through
    # the fit's own model of its components (physics.model.modulated_fids)
    unshifted = replace(result, shift_hz=np.asarray(result.shift_hz) - reference_hz)
    mm_lines = _modulated(unshifted, prepared, index=np.array(mm_rows)).numpy()[0]
    cleaned = (amplitudes[mm_rows, None] * mm_lines).sum(axis=0) / total
    return MeasuredMM(
        fid=cleaned,
        acquisition=fid.acquisition,
        residual_over_noise=float(np.asarray(result.residual_over_noise)),
        shift_hz=reference_hz,
        phase0_deg=math.degrees(float(result.phase0_rad)),
        phase1_deg_per_ppm=math.degrees(float(result.phase1_rad_per_ppm)),
        amplitudes={n: float(a) for n, a in zip(fitted_names, amplitudes, strict=True)},
        lineshape=mm_config.lineshape_kind,
    )


def with_measured_mm(
    basis: BasisSet, measured: MeasuredMM, target: Acquisition
) -> tuple[BasisSet, tuple[str, ...]]:
    """``basis`` on the data's grid ``target`` with :data:`MEASURED_MM_NAME` (``measured``'s
    spectrum) in place of its own macromolecules (its lipids, names beginning with Lip, kept),
    and one sentence per conversion made.

    The basis goes to ``target`` as the fit takes it there
    (:func:`~scaloquant.fit.basis_grid.basis_for_data`), and so does the measured spectrum
    (:func:`~scaloquant.fit.basis_grid.basis_on_grid`: ppm kept, another dwell time or number of
    points converted), each once: the fit then finds the basis on the data's grid. The metadata
    list the measured spectrum under ``"macromolecules"`` and
    :data:`~scaloquant.fit.config.MEASURED_KEY`.

    Raises
    ------
    IncompatibleDataError : as :func:`~scaloquant.fit.basis_grid.basis_on_grid`.
    ConfigError : the basis already holds a spectrum named :data:`MEASURED_MM_NAME`.
    """
    if MEASURED_MM_NAME in basis.names:
        raise ConfigError(f"the basis already holds a spectrum named {MEASURED_MM_NAME}")
    on_grid, conversions = basis_for_data(basis, target)
    acq = measured.acquisition
    own = BasisSet(
        names=(MEASURED_MM_NAME,),
        fids=measured.fid[None],
        dwell_time_s=acq.dwell_time_s,
        spectrometer_freq_mhz=acq.spectrometer_freq_mhz,
        ppm_reference=acq.ppm_reference,
        nucleus=acq.nucleus,
    )
    mm_on_grid, mm_steps = basis_on_grid(own, target)
    mm_names = set(macromolecule_names(on_grid.names, on_grid.metadata))
    kept = [n for n in on_grid.names if n not in mm_names or n.lower().startswith("lip")]
    base = on_grid.subset(kept)
    lipids = [n for n in kept if n in mm_names]
    combined = replace(
        base,
        names=(*base.names, MEASURED_MM_NAME),
        fids=np.concatenate([base.fids, mm_on_grid.fids]),
        metadata={
            **base.metadata,
            "macromolecules": [*lipids, MEASURED_MM_NAME],
            MEASURED_KEY: [MEASURED_MM_NAME],
        },
    )
    return combined, (*conversions, *(f"MM spectrum {s.removeprefix('basis ')}" for s in mm_steps))
