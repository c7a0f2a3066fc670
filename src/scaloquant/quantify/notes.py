"""The sentences a ``quantify`` or ``fit`` run says beside its numbers: in the terminal, the
summary, the report and results.json (what the referencing did, which spectra the figures show,
the quality flags found, the polish, ``--adapt``, the water scaling of the mM columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._words import counted
from ..errors import IncompatibleDataError
from ..fit.config import FitConfig
from ..fit.result import ANTICORRELATION_MAX
from ..fit.scale import signal_per_proton
from ..metabolites import COMBINATIONS, canonical
from ..physics.macromolecules import LCMODEL_COMPONENTS
from ..types import BasisSet
from .inputs import SpectraInput
from .results import QC_FLAGS, SpectraResult
from .water import WaterScaling

if TYPE_CHECKING:  # torch loads only with a model: ``fit`` needs none
    from ..models.adapt import AdaptResult


#: The run's note where ``--ecc`` corrected the spectra (each input's conversion says how).
ECC_NOTE = (
    "eddy-current correction (--ecc): each input's spectra multiplied by the conjugate phase "
    "of its water reference (Klose, Magn Reson Med 1990;14:26), before the quality figures, "
    "referencing and fit"
)


def ecc_notes(water_paths: Sequence[Path | None]) -> list[str]:
    """The run's notes where ``--ecc`` corrected the spectra: :data:`ECC_NOTE`, and for each
    water reference that corrected several inputs (``water_paths``, one per input: ``--water``
    given once for all) a sentence that says so. The correction moves each spectrum to that
    water's frequency and takes out its phase: right for spectra of the water's own session,
    voxel and shim, not another subject's (audit33: Osprey's sub-02 corrected by sub-01's water
    said nothing of it)."""
    notes = [ECC_NOTE]
    uses: dict[Path, int] = {}
    for path in water_paths:
        if path is not None:
            uses[path] = uses.get(path, 0) + 1
    for path, n in uses.items():
        if n > 1:
            notes.append(
                f"--ecc corrected {n} inputs by the one water reference {path.name}: right only "
                "for spectra of its own session, voxel and shim (each input is moved to its "
                "frequency and phase); else give each input its own (--water A --water B)"
            )
    return notes


def referencing_note(correction: np.ndarray) -> str:
    """The sentence that says what the referencing did to an input's spectra (``correction``
    ``(N,)``, ppm, 0 for none): a conversion, in the terminal's, summary's and results.json's
    list."""
    moved = correction[correction != 0]
    how = "--referencing off keeps the file's axis"
    if correction.size == 1:
        return (
            f"ppm reference corrected by {moved[0]:+.3f} ppm from the data's singlets (NAA, "
            f"creatine and choline stood {-moved[0]:+.3f} ppm from their shifts; {how})"
        )
    return (
        f"ppm reference corrected from the data's singlets for {moved.size} of "
        f"{correction.size} spectra, by {moved.min():+.3f} to {moved.max():+.3f} ppm "
        f"(results.json spectra[].ppm_reference_correction; {how})"
    )


def figure_note(results: Sequence[SpectraResult], *, representative: bool) -> list[str]:
    """What the fit figures show, one sentence: how many of how many spectra, chosen how
    (``representative``: MRSI inputs by
    :func:`~scaloquant.quantify.figures.representative_voxels`, ``fit``; the others by
    :func:`~scaloquant.quantify.figures.figure_choice`: the flagged first)."""
    n_all = sum(r.input.n_spectra for r in results)
    mrsi = [r for r in results if representative and r.input.is_mrsi]
    others = [r for r in results if r not in mrsi]
    n_fig = sum(len(r.figures) for r in others)
    n_other = sum(r.input.n_spectra for r in others)
    n_flagged = sum(bool(r.qc[j]) for r in others for j in r.figures)
    which = "those of highest SNR"
    if n_flagged:
        which = f"{counted(n_flagged, 'flagged spectrum', 'flagged spectra')} first" + (
            f", then {which}" if n_flagged < n_fig else ""
        )
    parts = []
    if others and (n_fig or not mrsi):
        parts.append(
            f"fit figures drawn for {n_fig} of {n_other if mrsi else n_all} spectra"
            + (f" ({which}; --max-figures)" if n_fig < n_other else "")
        )
    for r in mrsi:
        drawn = sorted(r.figures, key=lambda j: r.quality["fit_residual"][j])
        labels = r.input.labels()
        voxels = ", ".join(f"{labels[j]} ({r.quality['fit_residual'][j]:.3g})" for j in drawn)
        if not drawn:
            parts.append(
                f"no fit figure drawn for the {r.input.n_spectra} voxels of {r.input.label} "
                "(--mrsi-figures N draws N of them)"
            )
            continue
        parts.append(
            f"fit figures drawn for {len(drawn)} of {r.input.n_spectra} voxels of "
            f"{r.input.label}: the voxels at evenly spaced ranks of the fit residual, best to "
            f"worst: {voxels} (--mrsi-figures N for more; the maps show every voxel)"
        )
    return ["; ".join(parts)] if parts else []


def water_scaling_notes(
    inputs: Sequence[SpectraInput], basis: BasisSet | None, scaling: WaterScaling
) -> tuple[float | None, list[str]]:
    if not any(inp.water is not None for inp in inputs):
        return None, ["no water reference: no mM columns (give --water, or an LCModel .H2O)"]
    if basis is None:
        return None, ["a water reference was given but the basis is unknown: no mM columns"]
    try:
        unit, ref = signal_per_proton(basis)
    except IncompatibleDataError as err:
        return None, [str(err)]
    notes = [
        f"mM: [H2O]_rc {scaling.to_dict()['relaxation_corrected_water_mM']:.0f} mM x metabolite "
        f"relaxation {scaling.to_dict()['metabolite_relaxation_correction']:.4f} x amplitude x "
        f"basis signal per proton ({unit:.6g}, {ref}'s lines at t = 0) / (water |w(0)| / 2, "
        "extrapolated from its samples 4 onwards)"
        + (f" / (1 - CSF {scaling.tissue_fractions[2]:g})" if scaling.tissue_fractions[2] else "")
    ]
    missing = [inp.label for inp in inputs if inp.water is None]
    if missing:
        notes.append(f"no water reference for {', '.join(missing)}: its mM columns are empty")
    macromolecules = list(basis.metadata.get("macromolecules") or ())
    # LCModel's parametric components (fit's --mm auto/parametric) are not measured spectra
    parametric = [n for n in macromolecules if n in LCMODEL_COMPONENTS]
    measured = [n for n in macromolecules if n not in LCMODEL_COMPONENTS]
    if measured:
        notes.append(
            f"{', '.join(measured)}: macromolecules (a measured spectrum, no proton count): no mM"
        )
    if parametric:
        notes.append(
            f"{', '.join(parametric)}: LCModel's parametric macromolecule and lipid components "
            "(Gaussian lines, no proton count of a molecule): no mM"
        )
    return unit, notes


def quality_note(results: Sequence[SpectraResult]) -> list[str]:
    """One sentence counting the flagged spectra by flag, then one line for each flag found
    with what it means and what to do (:data:`~scaloquant.quantify.results.QC_FLAGS`), in
    :data:`~scaloquant.signal.quality.FLAG_NAMES`' order: where users read the flags
    (``summary.md``, ``report.html``, the console), not only in ``results.json``. None when
    nothing was flagged."""
    from ..signal.quality import FLAG_NAMES, UNMEASURABLE_FLAGS

    counts: dict[str, int] = {}
    for r in results:
        for flags in r.qc:
            for flag in flags.split(";") if flags else ():
                counts[flag] = counts.get(flag, 0) + 1
    if not counts:
        return []
    n_all = sum(r.input.n_spectra for r in results)
    order = sorted(
        counts, key=lambda f: FLAG_NAMES.index(f) if f in FLAG_NAMES else len(FLAG_NAMES)
    )
    parts = ", ".join(f"{counts[flag]} {flag}" for flag in order)
    return [
        f"quality flags (column qc) on {counted(n_all, 'spectrum', 'spectra')}: {parts}; "
        f"{'/'.join(UNMEASURABLE_FLAGS)} spectra are not quantified (their estimates are NaN)",
        *(f"{flag}: {QC_FLAGS[flag]}" for flag in order if flag in QC_FLAGS),
    ]


#: How many pairs :func:`correlation_note` names, the commonest first (the others counted).
NOTED_PAIRS = 6


def correlation_note(results: Sequence[SpectraResult]) -> list[str]:
    """One sentence on the pairs of metabolites the fit could not tell apart: each pair at or
    below :data:`~scaloquant.fit.result.ANTICORRELATION_MAX` in some spectrum
    (:attr:`SpectraResult.anticorrelated`, results.json ``spectra[].fit.anticorrelated``),
    with its median coefficient there, in how many of the spectra that have the coefficients,
    and which sum to read (LCModel's combined row where the pair is one: tCr, tCho, tNAA,
    Glx); the :data:`NOTED_PAIRS` commonest. None when no spectrum has such a pair, or none
    has the coefficients."""
    found: dict[str, list[float]] = {}
    n_with = 0
    for r in results:
        for pairs in r.anticorrelated or ():
            if pairs is None:
                continue
            n_with += 1
            for pair, coefficient in pairs.items():
                found.setdefault(pair, []).append(coefficient)
    if not found:
        return []
    sums = {frozenset(parts): name for name, parts in COMBINATIONS.items()}
    order = sorted(found, key=lambda pair: (-len(found[pair]), float(np.median(found[pair]))))
    # of one spectrum, no median and no count: "in 1 of 1 spectrum" read as a statistic
    where = "" if n_with == 1 else f" of the {counted(n_with, 'fitted spectrum', 'fitted spectra')}"
    parts = []
    for pair in order[:NOTED_PAIRS]:
        a, b = pair.split("+", 1)
        total = sums.get(frozenset((canonical(a), canonical(b))))
        how_often = "" if n_with == 1 else f" in {len(found[pair])}{where}"
        parts.append(
            f"{a} and {b} correlate at {np.median(found[pair]):.2f}{how_often}: "
            f"read {total if total else 'their sum'}"
        )
    more = len(order) - NOTED_PAIRS
    others = f"; and {counted(more, 'other pair')}" if more > 0 else ""
    median = "" if n_with == 1 else ", the median given"
    return [
        "metabolites the fit cannot tell apart (the correlation of their estimates "
        f"{ANTICORRELATION_MAX:g} or below{median}; per spectrum in results.json "
        "spectra[].fit.anticorrelated): " + "; ".join(parts) + others
    ]


def polish_note(own: int, given: int | None) -> str:
    """What a physics-head model's run did after its network: ``given`` (``--polish-iterations``)
    or the checkpoint's ``own`` polish iterations."""
    k = own if given is None else given
    source = "the checkpoint's" if given is None else "--polish-iterations"
    if k == 0:
        return f"the network's parameters with least-squares amplitudes, no polish ({source} K = 0)"
    return (
        f"the network's parameters, then {counted(k, 'polish iteration')} of the "
        f"fit's solver ({source} K = {k})"
    )


def baseline_note(fit: FitConfig, given: str | None, k: int, refitted: int) -> str | None:
    """What a physics-head model's run did about its baseline's stiffness (None without a
    spline baseline): the fit model ``fit`` of the checkpoint, ``--baseline-stiffness``
    ``given`` (None: adaptive), the polish's ``K`` and the spectra fitted again with a more
    flexible baseline (:func:`scaloquant.quantify.run._physics_estimates`)."""
    if fit.baseline_kind != "spline":
        return None
    from ..fit.spectra import flexible_baseline_config

    stiff = f"fixed {fit.baseline_ed_per_ppm:g} effective dimensions per ppm"
    if given == "fixed":
        return (
            f"the baseline: the polish's {stiff} for every spectrum (--baseline-stiffness fixed; "
            "by default the spectra whose polish asks for a more flexible baseline are fitted "
            "again as fit fits them)"
        )
    if k == 0:
        return (
            f"the baseline: the network's, {stiff}; without a polish (K = 0) no spectrum is "
            "screened for a more flexible baseline, as fit's default screens its fits"
        )
    if not refitted:
        return (
            f"the baseline: no spectrum's polish asked for a more flexible baseline than its "
            f"{stiff} (LCModel's F-test at the polished fit, the screen of fit's default)"
        )
    lo, hi = flexible_baseline_config(fit).ppm_range
    which = counted(refitted, "spectrum", "spectra")
    were, their = ("was", "its") if refitted == 1 else ("were", "their")
    return (
        f"the baseline: {which} asked for a more flexible baseline than the polish's {stiff} "
        f"(LCModel's F-test at the polished fit) and {were} fitted again as fit's default fits "
        f"them, on the model's basis (the fixed stiffness over {fit.ppm_range[0]:g}-"
        f"{fit.ppm_range[1]:g} ppm, and LCModel's F-test stiffness over {lo:g}-{hi:g} ppm where "
        f"the fit's own screen asks for it): {their} estimates, _sd (the CRLB), fit_residual, "
        "residual_over_noise and fit facts (baseline_ed_per_ppm, window_ppm) are fit's"
    )


def minimum_note(restarted: int) -> str:
    """The spectra a physics-head model's run fitted again because their polish may have
    stopped in a worse minimum than the fit's (:func:`scaloquant.quantify.checks.polish_stopped`;
    those the baseline's screen did not send to the fit already), ``restarted`` of them."""
    from ..signal.quality import POLISH_MISFIT_MAX

    which = counted(restarted, "spectrum", "spectra")
    were, their, them = ("was", "its", "it") if restarted == 1 else ("were", "their", "them")
    return (
        f"the polish's minimum: the polish of {which} left more than {POLISH_MISFIT_MAX:g} of the "
        "data's norm over the fit window unexplained beyond the noise (more than the fit's own "
        f"model leaves on the spectra it describes), and {were} fitted again as fit's default "
        f"fits {them}, on the model's basis: {their} estimates, _sd (the CRLB), fit_residual, "
        "residual_over_noise and fit facts are fit's"
    )


def adapted_checkpoint_note(adaptation: Mapping[str, Any]) -> str:
    """One sentence on a checkpoint written by ``quantify --adapt --save-adapted``: its
    ``adaptation`` entry (:func:`scaloquant.models.adapt.write_adapted_checkpoint`), which a later run's
    outputs did not mention, so that its results read as those of the model as trained."""
    n, steps = adaptation.get("n_spectra"), adaptation.get("steps")
    source = (adaptation.get("source") or {}).get("path")
    spectra = counted(n, "spectrum", "spectra") if isinstance(n, int) else "spectra"
    return (
        f"the model is an adapted one (quantify --adapt: its encoder fine-tuned on {spectra} of "
        f"an earlier run, {counted(steps, 'step')}" + (f", from {source}" if source else "") + ")"
    )


def adaptation_note(result: AdaptResult) -> str:
    """One sentence on what ``--adapt`` did (summary, results.json, the terminal)."""
    c = result.config
    kept = (
        f"weights of step {result.best_step} kept"
        if result.best_step
        else "no step lowered it: the model as trained was used"
    )
    usable = counted(result.n_spectra, "usable spectrum", "usable spectra")
    batch = counted(min(c.batch_size, result.n_spectra), "spectrum", "spectra")
    return (
        f"--adapt: the encoder fine-tuned on the {usable} of this run by the reconstruction loss "
        f"alone ({counted(c.steps, 'step')} of {batch}, learning rate "
        f"{c.learning_rate:g}, seed {c.seed}; {result.wall_time_s:.1f} s): mean relative "
        f"residual at the network's parameters {result.reconstruction_before:.4g} -> "
        f"{result.reconstruction_after:.4g} ({kept}); the checkpoint file is unchanged"
    )
