"""``fit`` as a library call: every input fitted with the basis, which goes to the input's grid
(:func:`fit_inputs`), with a measured MM spectrum as the fit's macromolecules where one is
given (:func:`_with_mm_spectra`), and gathered as ``quantify``'s runs are (:mod:`.gather`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import IncompatibleDataError, NeedsOption, Option
from ..fit import FitConfig, FitResult, fit_spectra, fitted_spectra, phase_corrected
from ..fit.config import require_mm_spectra_fit
from ..signal.match import require_same_field
from ..types import FID, BasisSet
from .checks import fit_checks, spread_fit_facts, window_holds_lines
from .figures import fitted_spectrum, spectra_subset
from .gather import FitChecks, Options, Run, figure_rows, finish_run, flags_and_checks
from .inputs import MMSpectrumFile, SpectraInput
from .matching import Prepared, estimated_rows, matched_inputs
from .rows import flat_samples, merged_rows, spread_rows, windows_alike


def fit_inputs(
    inputs: Sequence[SpectraInput],
    basis: BasisSet,
    *,
    basis_name: str,
    options: Options | None = None,
    mm_spectra: Sequence[MMSpectrumFile] = (),
) -> Run:
    """Fit every spectrum of ``inputs`` with ``basis`` (:func:`scaloquant.fit.fit_spectra`).

    ``mm_spectra``: none, one metabolite-nulled spectrum for all inputs or one per input in
    their order (:func:`~scaloquant.quantify.inputs.read_mm_spectra`): each is cleaned by its
    own fit and becomes the macromolecule basis spectrum ``MM_measured`` of its inputs' fits
    (:mod:`scaloquant.fit.measured_mm`), in place of the basis' macromolecules or LCModel's
    parametric MM components (the parametric lipids kept under ``macromolecules="auto"``).

    The basis goes to each input's grid (in :func:`~scaloquant.fit.fit_spectra`; the
    conversions are reported with the input's), the inputs are only checked against the basis'
    sequence and echo time, and the columns gain LCModel's combined rows (tNAA, tCr, tCho, Glx,
    CRLB from the covariance). The per-spectrum SNR and linewidth are the quality figures measured on the data
    (:mod:`scaloquant.signal.quality`), for the fit as for ``quantify``. With
    ``options.referencing`` a spectrum whose own singlets stand clearly away from their shifts
    is fitted on its corrected ppm axis (:meth:`Prepared.groups`: one fit per correction of
    an input, the uncorrected spectra together as before)."""
    options = options or Options()
    # the CLI makes the same checks before it reads the inputs
    window_holds_lines(basis, options.fit_config.ppm_range)
    require_mm_spectra_fit(len(mm_spectra), len(inputs), options.fit_config.macromolecules)
    for i in inputs:  # named by file, before any work (the fit's own check says 'the data')
        require_same_field(
            i.fid.acquisition, basis.acquisition, source=i.label, target_what="the basis set"
        )
    # the basis goes to each input's grid (in fit_spectra), not the data to its
    prepared = [
        matched_inputs(
            [i],
            i.fid.acquisition,
            basis.metadata,
            options.force,
            "the basis set",
            referencing=options.referencing,
            ecc=options.ecc,
            on_data_grid=True,
        )[0]
        for i in inputs
    ]
    bases, prepared, mm_facts = _with_mm_spectra(basis, prepared, mm_spectra, options.fit_config)
    # the names and macromolecules of the fitted model; areas do not depend on the grid
    fitted = _one_model_for_all(bases, prepared, options.fit_config)
    fitted_inputs = []
    names = tuple(basis.names)
    for prep, own_basis in zip(prepared, bases, strict=True):
        n = prep.input.n_spectra
        # the spectra with nothing to quantify are not fitted: their estimates would be NaN
        # all the same (finish_run); those whose reference was corrected, on their own axes
        fits = [
            (rows, group, *_fitted_rows(group, rows, n, own_basis, options.fit_config))
            for rows, group in prep.groups(estimated_rows(prep))
        ]
        names = fits[0][3]
        windows_alike(fits, n)
        columns, residual, metabolites, linewidth, over_noise, facts = merged_rows(
            [(rows, values) for rows, _, _, _, values in fits]
        )
        done = [c for _, _, result, _, _ in fits for c in result.conversions]
        prep = replace(prep, conversions=(*prep.conversions, *dict.fromkeys(done)))
        checks = FitChecks(residual, linewidth, metabolites, over_noise, facts)
        flags, checks = flags_and_checks(prep, columns[""], names, checks)
        fitted_inputs.append((prep, columns, fits, checks, flags, own_basis))
    # MRSI inputs: voxels representative of the fit, from its residuals
    chosen = figure_rows(
        [f[0] for f in fitted_inputs],
        [f[4] for f in fitted_inputs],
        [f[3] for f in fitted_inputs],
        [f[0].input.is_mrsi for f in fitted_inputs],
        options,
    )
    partial = []
    for (prep, columns, fits, checks, flags, own_basis), drawn in zip(
        fitted_inputs, chosen, strict=True
    ):
        figures = {}
        for rows, group, result, _, _ in fits:  # usable spectra only, all fitted
            ours = set(rows.tolist())
            mine = [j for j in drawn if j in ours]
            if not mine:
                continue
            shown = result.take(np.searchsorted(rows, mine).tolist())
            spectra = phase_corrected(
                fitted_spectra(shown, spectra_subset(group, mine), own_basis), shown
            )
            figures |= {j: fitted_spectrum(spectra, k) for k, j in enumerate(mine)}
        partial.append((prep, columns, figures, checks, flags))
    noise = options.fit_config.noise_estimate
    notes = [
        f"basis: {basis_name}",
        f"CRLB noise SD from the {'fit residual' if noise == 'residual' else 'noise region'}",
    ]
    facts = {"basis_name": basis_name, "fit_config": options.fit_config.to_dict()}
    if mm_facts:
        notes.append(
            "macromolecules: the measured MM spectrum "
            + ", ".join(f["file"] for f in mm_facts)
            + " (MM_measured), cleaned by its own fit (results.json mm_spectra)"
        )
        facts["mm_spectra"] = mm_facts
    return finish_run(
        "fit",
        names,
        partial,
        basis=fitted,
        base_suffixes=("", "_crlb_sd", "_crlb_pct"),
        sd_suffix="_crlb_sd",
        notes=notes,
        facts=facts,
        options=options,
        representative=True,
    )


def _with_mm_spectra(
    basis: BasisSet,
    prepared: list[Prepared],
    mm_spectra: Sequence[MMSpectrumFile],
    config: FitConfig,
) -> tuple[list[BasisSet], list[Prepared], list[dict[str, Any]]]:
    """The basis each input is fitted with, the inputs with what was done for it in their
    conversions, and results.json's facts of each MM spectrum: ``basis`` for every input
    without ``mm_spectra``; else each MM spectrum checked against its inputs (nucleus and
    scanner, :func:`~scaloquant.signal.match.require_same_scanner`), cleaned once
    (:func:`~scaloquant.fit.measured_mm.clean_mm_spectrum`) and put with the basis on each
    input's grid (:func:`~scaloquant.fit.measured_mm.with_measured_mm`).

    ``mm_spectra``: none, one, or one per input, with ``config.macromolecules`` neither
    ``"parametric"`` nor ``"none"`` (:func:`~scaloquant.fit.config.require_mm_spectra_fit`, in
    :func:`fit_inputs` before any work).

    Raises
    ------
    IncompatibleDataError : an MM spectrum of another nucleus or scanner than its input's.
    """
    from ..fit.measured_mm import clean_mm_spectrum, with_measured_mm
    from ..signal.match import require_same_scanner

    if not mm_spectra:
        return [basis] * len(prepared), prepared, []
    per_input = list(mm_spectra) * len(prepared) if len(mm_spectra) == 1 else list(mm_spectra)
    for prep, mm in zip(prepared, per_input, strict=True):
        require_same_scanner(
            mm.fid.acquisition,
            prep.fid.acquisition,
            what=f"the MM spectrum {mm.path.name}",
            data_what=prep.input.label,
            advice=("give the MM spectrum acquired with the data (", Option("mm_spectrum"), ")"),
        )
    for mm in mm_spectra:
        _require_not_water(mm)
    cleaned = {id(mm): clean_mm_spectrum(mm.fid, basis, config) for mm in mm_spectra}
    bases, out = [], []
    for prep, mm in zip(prepared, per_input, strict=True):
        measured = cleaned[id(mm)]
        own, conversions = with_measured_mm(basis, measured, prep.fid.acquisition)
        said = (
            f"MM spectrum {mm.path.name} cleaned by its fit (residual_over_noise "
            f"{measured.residual_over_noise:.3g}, shift {measured.shift_hz:+.3g} Hz, phase "
            f"{measured.phase0_deg:.4g} deg and {measured.phase1_deg_per_ppm:.4g} deg/ppm) as "
            "the fit's MM_measured"
        )
        bases.append(own)
        warned = _metabolite_mm_warning(mm, measured.amplitudes)
        out.append(
            replace(
                prep,
                conversions=(*prep.conversions, *conversions, said),
                warnings=(*prep.warnings, *warned),
            )
        )
    facts = [
        {
            "file": str(mm.path),
            "inputs": [p.input.label for p, m in zip(prepared, per_input, strict=True) if m is mm],
            **cleaned[id(mm)].facts(),
        }
        for mm in mm_spectra
    ]
    return bases, out, facts


#: tNAA (NAA + NAAG) over the summed MM components of an MM spectrum's cleaning fit above which
#: the spectrum is said to look like a metabolite spectrum. Measured (audit33): Osprey's TI 600 ms
#: spectra 0 and 0.035, their subjects' metabolite spectra given as the MM spectrum 0.285 and
#: 0.273; 0.1 is about 3x from either. With the rest lines at 3.8-4.0 ppm in the cleaning fit
#: (mmclean33): 0 and 0.031, and 0.229 and 0.226.
MM_NAA_WARNING_RATIO = 0.1


def _metabolite_mm_warning(mm: MMSpectrumFile, amplitudes: Mapping[str, float]) -> list[str]:
    """A warning where an MM spectrum's own fit found much NAA (:data:`MM_NAA_WARNING_RATIO`):
    an inversion nulls it, so this is the metabolite spectrum (or a poorly nulled one), whose
    MM_measured then holds the metabolites' lines its MM components took up (the fit of
    Osprey's sub-01 with its metabolite spectrum as MM: its residual_over_noise 5.23, no word)."""
    from ..physics.macromolecules import MM_COMPONENTS

    mm_sum = sum(amplitudes.get(k, 0.0) for k in MM_COMPONENTS)
    naa = amplitudes.get("NAA", 0.0) + amplitudes.get("NAAG", 0.0)
    if not mm_sum > 0 or naa / mm_sum <= MM_NAA_WARNING_RATIO:
        return []
    return [
        f"the MM spectrum {mm.path.name} holds NAA at {naa / mm_sum:.2f}x its macromolecules "
        f"(a metabolite-nulled spectrum's is under {MM_NAA_WARNING_RATIO:g}x): is it the "
        "metabolite spectrum? MM_measured may hold metabolite lines; check its fit "
        "(results.json mm_spectra) and the file given to --mm-spectrum"
    ]


def _require_not_water(mm: MMSpectrumFile) -> None:
    """Refuse an MM spectrum that is a water reference (given to ``mm_spectra`` by mistake): its
    water peak over :data:`~scaloquant.signal.water_peak.WATER_RATIO` times its tallest
    metabolite peak, as the ``water`` flag. Osprey's metabolite-nulled TI 600 ms spectra give
    16-42, their water references 981-1318; one cleaned anyway had residual_over_noise 1.23 and
    a phase of 150 deg/ppm, and no word said so (audit33).

    An MM spectrum mirrored about its reference is refused first, by the inputs' mirror test
    (:func:`~scaloquant.signal.mirror.mirror_ratio` above
    :data:`~scaloquant.signal.mirror.MIRRORED_RATIO` as read and not conjugated; Osprey's
    TI 600 ms spectra 0.47-0.54 as read, 1.85-2.11 conjugated): until session 35 only the water
    test caught it (its lines leave the metabolite window, and its residual water stood 331x
    over the old metabolite height), and the singlet height that the water test measures since
    (95x, under :data:`~scaloquant.signal.water_peak.WATER_RATIO`) let it through to a fit at a
    phase of 178 deg with exit 0.

    Raises
    ------
    NeedsOption : the spectrum looks like water.
    IncompatibleDataError : it looks mirrored (or like water only as read, not conjugated): an
        MM spectrum mirrored about its reference.
    """
    from ..signal import water_peak
    from ..signal.mirror import looks_mirrored, mirror_ratio

    fid = mm.fid
    if fid.nucleus != "1H":
        return
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    mirrored = IncompatibleDataError(
        f"the MM spectrum {mm.path.name} looks mirrored about its ppm reference (stored "
        "in the other orientation than the inputs): rewrite it in theirs (scaloquant "
        "convert FILE OUT.nii.gz --conjugate)"
    )
    as_read, conjugated = looks_mirrored(
        mirror_ratio(np.stack([fid.samples, np.conj(fid.samples)]), *grid)
    )
    if as_read and not conjugated:
        raise mirrored
    ratio = float(water_peak.water_ratio(fid.samples, *grid))
    if not water_peak.looks_like_water(ratio):
        return
    if not water_peak.looks_like_water(water_peak.water_ratio(np.conj(fid.samples), *grid)):
        # water stays water conjugated; a spectrum that is water only as read is mirrored
        raise mirrored
    raise NeedsOption(
        f"the MM spectrum {mm.path.name} looks like water (its water peak {ratio:.0f}x the "
        f"tallest metabolite peak; a water reference's is over {water_peak.WATER_RATIO:g}x): "
        "give the water-suppressed metabolite-nulled spectrum (",
        Option("mm_spectrum"),
        "), and a water reference as ",
        Option("water"),
    )


def _one_model_for_all(
    bases: Sequence[BasisSet], prepared: Sequence[Prepared], config: FitConfig
) -> BasisSet:
    """The components every input of one ``fit`` run is fitted with
    (:func:`~scaloquant.fit.problem.prepare_basis`; one table, one set of columns), checked
    before any fit: under ``macromolecules="auto"`` an input from the basis' scanner type gets
    the basis' measured macromolecules and one from another vendor LCModel's parametric ones
    (:func:`~scaloquant.fit.problem.same_scanner`), so a run mixing both would have two tables.

    Raises
    ------
    NeedsOption
        Two inputs would be fitted with different components."""
    from ..fit.problem import prepare_basis, same_scanner

    models = [
        prepare_basis(
            basis,
            config,
            same_scanner=same_scanner(basis.spectrometer_freq_mhz, p.fid.spectrometer_freq_mhz),
        )
        for basis, p in zip(bases, prepared, strict=True)
    ]
    first = models[0]
    for p, model in zip(prepared, models, strict=True):
        if model.names == first.names:
            continue
        only_first = [n for n in first.names if n not in model.names]
        only_here = [n for n in model.names if n not in first.names]
        raise NeedsOption(
            f"{prepared[0].input.label} and {p.input.label} would be fitted with different "
            f"components ({prepared[0].input.label}: {', '.join(only_first) or 'no others'}; "
            f"{p.input.label}: {', '.join(only_here) or 'no others'}): the basis' measured "
            "macromolecules belong to its own scanner type, and another vendor's data get "
            "LCModel's parametric ones; fit them in separate runs, or give ",
            Option("mm_parametric"),
            " to fit every input with the parametric ones",
        )
    return first


def _fitted_rows(
    fid: FID, rows: np.ndarray, n: int, basis: BasisSet, config: FitConfig
) -> tuple[FitResult, tuple[str, ...], tuple]:
    """``fit``'s fit of the spectra ``rows`` of ``fid`` (``n`` spectra, on one axis): the
    :class:`FitResult`, the names of its columns (its components, then LCModel's combined rows:
    tNAA, tCr, tCho, Glx) and its values as ``(n, ...)`` arrays, NaN on the other rows:
    ``(columns, relative residual, metabolites over data, fitted FWHM in ppm, residual over
    noise, facts)``
    (:func:`spread_fit_facts`)."""
    from ..fit.result import with_combined

    # the input's samples, not copies of them: a view (types._handed_over), all of it where
    # every spectrum is fitted, and the rows taken once otherwise; the two copies this made of
    # every spectrum (32 kB each at 2048 points) were held through the fit, at its peak
    # (docs/history/benchmarks-log.md "Memory of fit and quantify (session 33, `mem33`)")
    flat = fid.with_samples(flat_samples(fid))
    spread = functools.partial(spread_rows, rows=rows, n=n)
    if len(rows) == n:
        seen = flat
    else:
        taken = flat.samples[rows]  # a new array that only ``seen`` holds: handed over
        taken.setflags(write=False)
        seen = flat.with_samples(taken)
    result = fit_spectra(seen, basis, config)
    names, amplitude, sd = with_combined(result)
    m = len(result.names)  # the sums' %SD after the components' own
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(amplitude[..., m:] > 0, 100 * sd[..., m:] / amplitude[..., m:], np.inf)
    columns = {
        "": spread(amplitude),
        "_crlb_sd": spread(sd),
        "_crlb_pct": spread(np.concatenate([result.crlb_pct, pct], axis=-1)),
    }
    residual, metabolites, over_noise = (spread(v) for v in fit_checks(result))
    facts = spread_fit_facts(result, seen, rows, n)
    values = (columns, residual, metabolites, spread(result.linewidth_ppm), over_noise, facts)
    return result, names, values
