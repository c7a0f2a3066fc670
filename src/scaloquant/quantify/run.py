"""``quantify`` and ``fit`` as library calls: match every input to the model's (or basis')
grid, estimate, derive ratios and concentrations, and gather what the outputs need.

Both commands produce a :class:`Run`, which :func:`scaloquant.report.outputs.write_run`
writes; they differ only in how the columns are estimated.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import defaults
from ..errors import ConfigError, IncompatibleDataError, InvalidDataError, NeedsOption, Option
from ..fit import (
    FitConfig,
    FitResult,
    FitStart,
    fit_given_amplitudes,
    fit_spectra,
    fitted_spectra,
    phase_corrected,
)
from ..fit.scale import signal_per_proton
from ..models.physics_config import PHYSICS_KINDS
from ..signal.quality import (
    WATER_NEAR_WINDOW_RATIO,
    QualityFigures,
    qc_flags,
    quality_figures,
    reference_correction_ppm,
    singlet_lags_ppm,
    unmeasurable,
)
from ..threads import blas_threads
from ..types import FID, Acquisition, BasisSet
from .inputs import SpectraInput
from .results import QC_FLAGS, SpectraResult, tcr_ratios, total_creatine
from .water import WaterScaling, concentrations_mM, water_area

if TYPE_CHECKING:  # torch loads only with a model: ``fit`` needs none
    from ..models.adapt import AdaptConfig, AdaptResult
    from ..models.checkpoint import LoadedModel

Command = Literal["quantify", "fit"]


@dataclass(frozen=True)
class Options:
    """Options shared by ``quantify`` and ``fit``.

    Attributes
    ----------
    force : accept acquisition mismatches that matching cannot convert safely (with warnings).
    batch_size : spectra per network batch (None: the model's fastest default,
        :meth:`~scaloquant.models.Quantifier.default_batch_size`).
    max_figures : fit figures at most (for the spectra with the largest signal); 0 draws none.
    mrsi_figures : ``fit``, and ``quantify --refine`` with a regression CNN (the runs with a fit
        residual for every voxel and fit figures): fit figures per MRSI input (at most
        ``max_figures``), of the voxels at evenly spaced ranks of the fit residual
        (:func:`representative_voxels`); its voxels do not compete for ``max_figures`` with the
        largest signals of other inputs.
    refine : ``quantify`` only: also run the full fit started from the network's estimate.
    water_scaling : tissue and relaxation assumptions of the mM columns.
    echo_time_given : ``water_scaling.echo_time_ms`` was given by the user; otherwise a file
        that states its echo time is scaled with that one.
    fit_config : options of the classical fit (figures, ``--refine``, ``fit``).
    adapt : ``quantify`` with a physics-head model only: fine-tune a copy of its encoder on the
        run's usable spectra by the reconstruction loss before quantifying them
        (:func:`scaloquant.models.adapt.adapt_encoder`); None: no adaptation.
    polish_iterations : ``quantify`` with a physics-head model only: the polish's ``K`` (the
        fit's iterations after the network; 0: the network alone); None: the checkpoint's.
    referencing : reference each 1H spectrum from its own NAA, creatine and choline singlets
        before it is fitted or quantified, as LCModel does (its ``DOREFS``), where they stand
        clearly away from their shifts (:func:`scaloquant.signal.quality.reference_correction_ppm`);
        False: every spectrum on its file's ppm axis (the CLI's ``--referencing off``, and
        ``--ppm-reference`` given).
    """

    force: bool = False
    batch_size: int | None = None
    max_figures: int = defaults.MAX_FIGURES
    mrsi_figures: int = defaults.MRSI_FIGURES
    refine: bool = False
    water_scaling: WaterScaling = field(default_factory=WaterScaling)
    echo_time_given: bool = False
    fit_config: FitConfig = field(default_factory=FitConfig)
    adapt: AdaptConfig | None = None
    polish_iterations: int | None = None
    referencing: bool = True

    def __post_init__(self) -> None:
        for flag, value, least in (
            ("--batch-size", self.batch_size, 1),
            ("--polish-iterations", self.polish_iterations, 0),
            ("--max-figures", self.max_figures, 0),
            ("--mrsi-figures", self.mrsi_figures, 0),
        ):
            if value is not None and value < least:
                raise ConfigError(f"{flag} must be >= {least}, got {value}")


@dataclass(frozen=True)
class Run:
    """Everything the outputs of one ``quantify`` or ``fit`` run are written from.

    Attributes
    ----------
    command : which command.
    names : metabolites, in column order.
    results : one per input file.
    suffixes : per-metabolite column suffixes, in order (``""`` is the amplitude).
    sd_suffix : the column that gives the summary's %SD (``"_sd"`` or ``"_crlb_sd"``).
    notes : sentences for the summary and results.json (ratios, mM, figures...).
    facts : JSON-able facts for provenance.json (model, basis, water scaling...).
    adaptation : ``quantify --adapt``: the adapted model and its figures (None otherwise).
    """

    command: Command
    names: tuple[str, ...]
    results: tuple[SpectraResult, ...]
    suffixes: tuple[str, ...]
    sd_suffix: str
    notes: tuple[str, ...]
    facts: Mapping[str, Any]
    adaptation: AdaptResult | None = field(default=None, compare=False, repr=False)

    @property
    def n_spectra(self) -> int:
        return sum(r.input.n_spectra for r in self.results)


def model_basis(
    basis_meta: Mapping[str, Any], basis: BasisSet | None, basis_name: str | None
) -> tuple[BasisSet | None, str]:
    """The basis a model was trained on: ``basis`` (checked against the checkpoint's hash) or,
    when None, the embedded default if it is that basis. Returns it (or None) and a sentence."""
    want = basis_meta.get("content_hash")
    if basis is not None:
        if basis.content_hash() != want:
            raise NeedsOption(
                Option("basis"),
                f" {basis_name} is not the basis the model was trained on (its content hash "
                "differs); give that basis, or leave ",
                Option("basis"),
                " out",
            )
        return basis, f"basis: {basis_name} (the model's, hash checked)"
    from ..io.default import DEFAULT_BASIS_NAME, default_basis

    default = default_basis()
    if default.content_hash() == want:
        return default, f"basis: {DEFAULT_BASIS_NAME} (the model's, hash checked)"
    return None, (
        "the model was not trained on the embedded basis and no --basis was given: no fit "
        "figures, no --refine and no mM (give --basis with the training basis)"
    )


def _match(fid: FID, target: Acquisition, stated: Mapping[str, Any], force: bool, target_what: str):
    from ..signal.match import basis_sequence, match_acquisition

    sequence, echo_time_s = basis_sequence(stated)
    return match_acquisition(
        fid,
        target,
        sequence=sequence,
        echo_time_s=echo_time_s,
        force=force,
        target_what=target_what,
    )


def _scaling_for(inp: SpectraInput, options: Options) -> WaterScaling:
    """The water scaling of one input: its file's echo time when it states one and the user
    gave none (``--force`` may have let a file of another TE through)."""
    from ..signal.match import stated_sequence

    _, echo_time_s = stated_sequence(inp.fid)
    if options.echo_time_given or echo_time_s is None:
        return options.water_scaling
    return replace(options.water_scaling, echo_time_ms=echo_time_s * 1e3)


@dataclass(frozen=True)
class _Prepared:
    """One input on the target grid, checked, before estimation.

    ``quality``: the quality figures of its spectra, each ``(N,)``, on each spectrum's
    referenced axis; ``flags``: the QC flags known before estimation (all but
    ``residual_large``), one list per spectrum; ``reference_correction_ppm``: ``(N,)`` what
    the referencing added to each spectrum's ppm reference (0: nothing; None: not referenced).
    ``fid``: on the model's grid, each spectrum from its referenced axis (``quantify``); or the
    data as read, its spectra fitted on their referenced axes (``fit``, :meth:`groups`).
    """

    input: SpectraInput
    fid: FID
    conversions: tuple[str, ...]
    warnings: tuple[str, ...]
    water_quality: dict[str, float]
    quality: QualityFigures
    flags: list[list[str]]
    reference_correction_ppm: np.ndarray | None = None

    @property
    def usable(self) -> np.ndarray:
        """``(N,)`` False for the spectra with nothing to quantify."""
        return ~unmeasurable(self.flags)

    def groups(self, rows: np.ndarray) -> list[tuple[np.ndarray, FID]]:
        """The spectra ``rows`` of :attr:`fid` (the data as read) by referenced axis: ``(rows
        of one correction, fid with that ppm reference)``, the uncorrected first (the FID
        itself: one group, the FID as it was, where nothing was corrected)."""
        correction = self.reference_correction_ppm
        if correction is None or not correction[rows].any():
            return [(rows, self.fid)]
        return [
            (rows[correction[rows] == c], replace(self.fid, ppm_reference=reference))
            for c, reference in _references(self.fid, correction, rows)
        ]


def _matched_inputs(
    inputs: Sequence[SpectraInput],
    target: Acquisition,
    stated: Mapping[str, Any],
    force: bool,
    target_what: str,
    *,
    referencing: bool,
    on_data_grid: bool = False,
) -> list[_Prepared]:
    """Each input on the target grid, checked; ``target_what`` names the target in refusals.

    ``referencing``: each 1H spectrum's ppm reference corrected from its own singlets where
    they stand clearly elsewhere (:func:`~scaloquant.signal.quality.reference_correction_ppm`),
    its quality figures measured on that axis and the correction said in the conversions;
    ``on_data_grid``: the target is each input's own grid (``fit``, where the basis goes to the
    data): the corrected spectra keep their samples, fitted on their axes
    (:meth:`_Prepared.groups`), rather than matched to ``target`` from them.
    """
    out = []
    for inp in inputs:
        water_notes, water_quality = inp.water_checks(force)
        m = _match(inp.fid, target, stated, force, target_what)
        # measured on the data as acquired: resampling to another band would put zeros (no
        # noise) where the noise is measured; the mirror ratios from the figures' spectra (one
        # FFT of the data for both)
        raw = inp.fid
        quality = _quality(raw, _flat(raw))
        correction = None
        conversions = tuple(m.conversions)
        fid = m.fid
        if referencing and raw.nucleus == "1H":
            correction = reference_correction_ppm(quality, _lags(raw))
            if correction.any():
                quality = _referenced_quality(raw, quality, correction)
                conversions += (referencing_note(correction),)
                if not on_data_grid:
                    fid = _referenced_match(
                        inp, m.fid, correction, target, stated, force, target_what
                    )
        out.append(
            _Prepared(
                inp,
                fid,
                conversions,
                (*inp.checks(quality.mirror_ratio, quality.snr), *m.warnings, *water_notes),
                water_quality,
                quality,
                qc_flags(quality),
                correction,
            )
        )
    return out


def _quality(grid: FID, fids: np.ndarray) -> QualityFigures:
    """:func:`~scaloquant.signal.quality.quality_figures` of the flat ``fids`` ``(N, n_points)``
    on ``grid``'s axis."""
    # one BLAS thread for the noise's small least-squares fits, one per block of spectra:
    # OpenBLAS's second thread made them 7x dearer (4096 spectra 0.39 -> 2.9 s of CPU)
    with blas_threads(1):
        return quality_figures(
            fids,
            grid.dwell_time_s,
            grid.spectrometer_freq_mhz,
            grid.ppm_reference,
            proton=grid.nucleus == "1H",
        )


def _lags(fid: FID) -> np.ndarray:
    """The singlet search's shifts on ``fid``'s grid (:func:`singlet_lags_ppm`)."""
    return singlet_lags_ppm(fid.n_points, fid.dwell_time_s, fid.spectrometer_freq_mhz)


def _references(
    fid: FID, correction: np.ndarray | None, rows: np.ndarray
) -> list[tuple[float, float]]:
    """``(correction, ppm reference)`` of each referenced axis among ``rows`` of ``fid``, the
    uncorrected first."""
    if correction is None:
        return [(0.0, fid.ppm_reference)]
    values = sorted(set(correction[rows].tolist()), key=lambda c: (c != 0, c))
    return [(c, fid.ppm_reference + c if c else fid.ppm_reference) for c in values]


def _referenced_quality(
    raw: FID, quality: QualityFigures, correction: np.ndarray
) -> QualityFigures:
    """``quality`` with the figures of the corrected spectra (``correction`` ``(N,)`` not 0)
    measured again on their referenced axes: the SNR's NAA window, the water and noise regions
    and the singlet search where the spectrum's lines are. Not the mirror ratio: whether the
    samples were stored conjugated is about the file's 0 Hz, which the correction does not
    move (a spectrum moved by its scanner's frequency keeps its water away from 0 Hz, and the
    metabolite window's mirror on the corrected axis would take the water for a mirrored line:
    the spant spectrum moved by +0.3 ppm). And the noise SD, which the SNR and the singlets'
    strength divide by, is the smaller of its two measurements, on the file's axis and on the
    corrected one: noise is the same on either, and a noise region can only gain signal or an
    artefact by the move (the Siemens spectrum moved by its scanner's frequency: its band edges'
    content in the corrected noise region, SNR 152 -> 7)."""
    from ..signal.quality import noise_sd

    figures = {k: np.array(v, copy=True) for k, v in quality._asdict().items()}
    flat = _flat(raw)
    grid = (raw.dwell_time_s, raw.spectrometer_freq_mhz)
    for c, reference in _references(raw, correction, np.flatnonzero(correction)):
        rows = np.flatnonzero(correction == c)
        again = _quality(replace(raw, ppm_reference=reference), flat[rows])
        with blas_threads(1):
            moved = noise_sd(flat[rows], *grid, reference)
            larger = moved / np.fmin(moved, noise_sd(flat[rows], *grid, raw.ppm_reference))
        larger = np.nan_to_num(larger, nan=1.0)
        for name, whole in figures.items():
            if name in ("snr", "singlet_strength"):
                whole[rows] = getattr(again, name) * larger
            elif name != "mirror_ratio":
                whole[rows] = getattr(again, name)
    return QualityFigures(**figures)


def _referenced_match(
    inp: SpectraInput,
    matched: FID,
    correction: np.ndarray,
    target: Acquisition,
    stated: Mapping[str, Any],
    force: bool,
    target_what: str,
) -> FID:
    """``matched`` (``inp`` on ``target``'s grid from its file's axis) with its corrected
    spectra matched from their referenced axes instead: the model reads every spectrum on its
    own grid, so a spectrum's reference is corrected by the frequency shift that matching makes
    between two references (:func:`scaloquant.signal.match.to_grid`)."""
    samples = np.array(_flat(matched), copy=True)
    flat = _flat(inp.fid)
    for c, reference in _references(inp.fid, correction, np.flatnonzero(correction)):
        rows = np.flatnonzero(correction == c)
        moved = replace(inp.fid.with_samples(flat[rows]), ppm_reference=reference)
        samples[rows] = _flat(_match(moved, target, stated, force, target_what).fid)
    return matched.with_samples(samples.reshape(matched.samples.shape))


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


def _flat(fid: FID) -> np.ndarray:
    return fid.samples.reshape(-1, fid.n_points)


def _figure_choice(
    prepared: Sequence[_Prepared], max_figures: int, skip: Sequence[bool] = ()
) -> list[list[int]]:
    """Per input, the spectra to draw: the ``max_figures`` of largest RMS over all inputs
    (in MRSI the voxels with signal rather than the corners of the field of view), of those
    with something to quantify; none of the inputs whose ``skip`` is True."""
    skip = list(skip) or [False] * len(prepared)
    rms = [
        np.where(p.usable & (not s), np.sqrt(np.mean(np.abs(_flat(p.fid)) ** 2, axis=1)), -np.inf)
        for p, s in zip(prepared, skip, strict=True)
    ]
    order = sorted(
        ((float(r), i, j) for i, rs in enumerate(rms) for j, r in enumerate(rs)),
        key=lambda t: -t[0],
    )[:max_figures]
    chosen: list[list[int]] = [[] for _ in prepared]
    for r, i, j in order:
        if r == -np.inf:
            continue
        chosen[i].append(j)
    return [sorted(c) for c in chosen]


def representative_voxels(residual: np.ndarray, usable: np.ndarray, k: int) -> list[int]:
    """The ``k`` spectra at evenly spaced ranks of the fit ``residual`` ``(N,)`` among the
    ``usable`` ``(N,)`` ones with a finite residual, best first: for ``k = 5`` the best, the
    quartiles, the median and the worst fit (fewer when fewer are usable)."""
    candidates = np.flatnonzero(usable & np.isfinite(residual))
    if k <= 0 or candidates.size == 0:
        return []
    ranked = candidates[np.argsort(residual[candidates], kind="stable")]
    ranks = np.unique(np.round(np.linspace(0, ranked.size - 1, min(k, ranked.size))).astype(int))
    return [int(i) for i in ranked[ranks]]


def figure_note(results: Sequence[SpectraResult], *, representative: bool) -> list[str]:
    """What the fit figures show, one sentence: how many of how many spectra, chosen how
    (``representative``: MRSI inputs by :func:`representative_voxels`, ``fit``)."""
    n_all = sum(r.input.n_spectra for r in results)
    mrsi = [r for r in results if representative and r.input.is_mrsi]
    others = [r for r in results if r not in mrsi]
    n_fig = sum(len(r.figures) for r in others)
    n_other = sum(r.input.n_spectra for r in others)
    parts = []
    if others and (n_fig or not mrsi):
        parts.append(
            f"fit figures drawn for {n_fig} of {n_other if mrsi else n_all} spectra"
            + (" (those of largest signal; --max-figures)" if n_fig < n_other else "")
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


def _subset(fid: FID, index: Sequence[int]) -> FID:
    return fid.with_samples(_flat(fid)[list(index)])


def _derived(
    names: tuple[str, ...],
    amplitudes: np.ndarray,
    inp: SpectraInput,
    unit: float | None,
    scaling: WaterScaling,
    no_molarity: Sequence[str],
) -> dict[str, np.ndarray]:
    ratios, _ = tcr_ratios(names, amplitudes)
    out = {"_ratio_tcr": ratios}
    if unit is None:
        return out
    water = inp.water_areas_source()
    if water is None:
        out["_mM"] = np.full(amplitudes.shape, np.nan)
        return out
    areas = np.broadcast_to(water_area(water, inp.water.acquisition), inp.fid.batch_shape)
    areas = areas.reshape(-1)
    mM = concentrations_mM(amplitudes, areas, unit, scaling)
    mM[:, [i for i, n in enumerate(names) if n in no_molarity]] = np.nan
    out["_mM"] = mM
    return out


def _water_notes(
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
    if macromolecules:
        notes.append(
            f"{', '.join(macromolecules)}: macromolecules (a measured spectrum, no proton count): "
            "no mM"
        )
    return unit, notes


def _named_columns(
    values: np.ndarray, given: tuple[str, ...], names: tuple[str, ...]
) -> np.ndarray:
    """The columns ``(N, len(names))`` of ``values`` ``(N, len(given))`` (a fit's, over its
    components ``given``) for ``names`` (the model's), by name: NaN for a name the fit did
    not fit (the measured macromolecules its preset replaced by parametric ones)."""
    out = np.full((values.shape[0], len(names)), np.nan)
    for j, name in enumerate(names):
        if name in given:
            out[:, j] = values[:, given.index(name)]
    return out


def _fit_checks(result: FitResult) -> tuple[np.ndarray, np.ndarray]:
    """``(|data - model| / |data|, |metabolites| / |data|)`` over the fit window of each
    spectrum of a fit, ``(N,)`` each (NaN for an empty spectrum; ``metabolites`` the model
    without its baseline): :attr:`FitResult.relative_residual` and
    :attr:`~FitResult.metabolite_fraction`, which the fit measures on the model it rebuilds for
    its SNR (rebuilding every spectrum's model again here: 1.7 of the 61 s of a 16 x 16
    slice)."""
    n = int(np.prod(result.batch_shape, dtype=int))
    if result.relative_residual is None or result.metabolite_fraction is None:
        raise InvalidDataError("the fit result has no residual checks (not a batched fit)")
    return result.relative_residual.reshape(n), result.metabolite_fraction.reshape(n)


def _water_near_window(
    samples: np.ndarray,
    fid: FID,
    window_high_ppm: float,
    removed_water: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`scaloquant.signal.quality.water_near_window` ``(N,)`` of the FIDs ``samples``
    ``(N, n_points)`` on ``fid``'s grid as the fit or model saw them (less the water the fit
    removed, ``removed_water``), above a window that ends at ``window_high_ppm``; NaN for other
    nuclei than 1H (the ppm windows are those of brain 1H spectra). The fit's
    (:func:`_fit_facts`) and a physics-head model's (:func:`_physics_estimates`; its rows as
    they are: an ``FID`` of them would copy them, 0.8 s at 8192 spectra)."""
    from ..signal.quality import water_near_window

    n = samples.size // samples.shape[-1]
    if fid.nucleus != "1H":
        return np.full(n, np.nan)
    seen = samples.reshape(n, -1)
    if removed_water is not None:
        seen = seen - removed_water.reshape(n, -1)
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    return water_near_window(seen, *grid, window_high_ppm)


def _physics_estimates(
    quantifier, samples: np.ndarray, fid: FID, batch_size: int | None, polish: int | None
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """A physics-head model's
    :meth:`~scaloquant.models.physics.PhysicsQuantifier.predict_with_checks` arrays of the FIDs ``samples`` ``(N, n_points)`` on ``fid``'s grid, their
    :func:`_water_near_window` ``(N,)`` above the model's window, and how many spectra it saw
    less their residual water; ``polish``: the polish's ``K`` (None: the model's).

    The model removes no water itself, and its error grows with the water just above its
    window as the fit's would without its water removal (docs/history/physics-models-log.md
    "Residual water near the window and the physics-head models (session 19, `water19`)").
    Where the model's fit settings remove water (``water_removal="hlsvd"``, the ``invivo``
    preset's), the spectra whose ratio exceeds
    :data:`~scaloquant.signal.quality.WATER_NEAR_WINDOW_RATIO` are quantified again less the
    water the fit's HLSVD removes (:func:`scaloquant.signal.water.remove_water`, as the fit does
    before its fit), their arrays and ratio replaced; the others, as they are (measured:
    docs/history/physics-models-log.md "The fit's water removal before the physics-head models
    (session 20)")."""

    def predict(fids: np.ndarray) -> tuple[np.ndarray, ...]:
        return quantifier.predict_with_checks(fids, batch_size=batch_size, polish_iterations=polish)

    outputs = list(predict(samples))
    top = quantifier.config.fit_config.ppm_range[1]
    near = _water_near_window(samples, fid, top)
    wet = np.flatnonzero(near > WATER_NEAR_WINDOW_RATIO)
    if quantifier.config.fit_config.water_removal != "hlsvd" or not wet.size:
        return outputs, near, 0
    import torch

    from ..signal.water import remove_water

    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    dry = remove_water(samples[wet], *grid, threads=torch.get_num_threads())
    again = predict(dry)
    for column, values in zip(outputs, again, strict=True):
        column[wet] = values
    near[wet] = _water_near_window(dry, fid, top)
    return outputs, near, int(wet.size)


def _fit_facts(result: FitResult, fid: FID) -> dict[str, np.ndarray]:
    """The :data:`~scaloquant.quantify.results.FIT_FACTS` of a fit of the flat ``fid`` that
    it has, ``(N, ...)`` each: ``lineshape_kernel`` ``(N, 2, 2 J + 1)``, offsets (Hz, on
    ``fid``'s grid, where the batched fit convolves) and weights, ascending;
    ``water_near_window`` (:func:`_water_near_window`, which the qc flag reads in
    :func:`_finish`)."""
    n = int(np.prod(result.batch_shape, dtype=int))
    out = {}
    for name, value in (
        ("fwhm_hz", result.linewidth_hz),
        ("baseline_ed_per_ppm", result.baseline_ed_per_ppm),
    ):
        if value is not None:
            out[name] = np.asarray(value, dtype=np.float64).reshape(n)
    shift_hz = np.asarray(result.singlet_shift_hz, dtype=np.float64).reshape(n)
    out["shift_ppm"] = shift_hz / fid.spectrometer_freq_mhz
    if result.window_ppm is not None:
        out["window_ppm"] = np.asarray(result.window_ppm, dtype=np.float64).reshape(n, 2)
    if result.lineshape_kernel is not None:
        from ..fit.problem import kernel_offsets

        kernel = result.lineshape_kernel.reshape(n, -1)
        offsets = np.asarray(kernel_offsets((kernel.shape[1] - 1) // 2))
        order = np.argsort(offsets)
        bin_hz = 1.0 / (fid.n_points * fid.dwell_time_s)
        hz = np.broadcast_to(offsets[order] * bin_hz, kernel.shape)
        out["lineshape_kernel"] = np.stack([hz, kernel[:, order]], axis=1)
    # last, as results.json lists it
    out["water_near_window"] = _water_near_window(
        fid.samples, fid, result.config.ppm_range[1], result.removed_water
    )
    return out


def _blank_fit_facts(
    facts: dict[str, np.ndarray] | None, unusable: np.ndarray
) -> dict[str, np.ndarray] | None:
    """``facts`` (:func:`_fit_facts`) with NaN for the ``unusable`` ``(N,)`` spectra: a fitted
    FWHM, stiffness or kernel of a spectrum with nothing to measure means nothing either (the
    kernel's offsets, a property of the grid, are kept)."""
    if not facts or not unusable.any():
        return facts
    out = {}
    for name, value in facts.items():
        value = np.array(value, dtype=np.float64, copy=True)
        if name == "lineshape_kernel":
            value[unusable, 1] = np.nan
        else:
            value[unusable] = np.nan
        out[name] = value
    return out


def _quality_columns(prep: _Prepared, fit_residual: np.ndarray | None) -> dict[str, np.ndarray]:
    q = prep.quality
    n = prep.input.n_spectra
    return {
        "snr": q.snr.reshape(n),
        "fwhm_hz": q.fwhm_hz.reshape(n),
        "fwhm_ppm": q.fwhm_ppm.reshape(n),
        "fit_residual": np.full(n, np.nan) if fit_residual is None else fit_residual,
    }


def _no_creatine(amplitudes: np.ndarray, names: Sequence[str]) -> np.ndarray | None:
    """``(N,)`` True where the estimate of ``amplitudes`` ``(N, M)`` has no total creatine
    (Cr + PCr not above 0; NaN, a spectrum not estimated: False); None without either."""
    total = total_creatine(names, amplitudes)
    return None if total is None else total <= 0


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
        f"quality flags (column qc) on {n_all} spectra: {parts}; "
        f"{'/'.join(UNMEASURABLE_FLAGS)} spectra are not quantified (their estimates are NaN)",
        *(f"{flag}: {QC_FLAGS[flag]}" for flag in order if flag in QC_FLAGS),
    ]


def _finish(
    command: Command,
    names: tuple[str, ...],
    # per input: prepared spectra, estimate columns, figures, and of the fit (or None): relative
    # residual, fitted FWHM (ppm), metabolite model over data, and its facts (_fit_facts; the
    # fit's water_near_window among them, which its qc flag reads)
    partial: list[tuple[_Prepared, dict[str, np.ndarray], dict, tuple]],
    *,
    basis: BasisSet | None,
    base_suffixes: tuple[str, ...],
    sd_suffix: str,
    notes: list[str],
    facts: dict[str, Any],
    options: Options,
    representative: bool,
) -> Run:
    """Flag, blank the estimates of unusable spectra, derive ratios and mM, and gather
    (``representative``: the MRSI inputs' figures are :func:`representative_voxels`)."""
    from ..signal.quality import fit_flags, singlet_lags_ppm

    inputs = [p[0].input for p in partial]
    unit, water_notes = _water_notes(inputs, basis, options.water_scaling)
    results = []
    macromolecules = tuple(basis.metadata.get("macromolecules") or ()) if basis else ()
    for prep, columns, figures, checks in partial:
        inp = prep.input
        fit_residual, fit_linewidth_ppm, fit_metabolites, fit_facts = checks
        near_window = fit_facts.get("water_near_window")
        n = inp.n_spectra
        flags = fit_flags(
            prep.flags,
            fit_residual,
            fit_linewidth_ppm,
            fit_metabolites,
            near_window,
            singlets=(
                prep.quality.singlet_profile.reshape(n, -1),
                singlet_lags_ppm(
                    inp.fid.n_points, inp.fid.dwell_time_s, inp.fid.spectrometer_freq_mhz
                ),
                prep.quality.singlet_strength.reshape(n),
            ),
            placed_shift_ppm=fit_facts.get("shift_ppm"),
            no_creatine=_no_creatine(columns[""], names),
        )
        unusable = unmeasurable(flags)
        # nothing to measure: NaN, never a number (an empty FID gave ratios of 0.5 before)
        columns = {k: np.where(unusable[:, None], np.nan, v) for k, v in columns.items()}
        fit_facts = _blank_fit_facts(fit_facts, unusable)
        scaling = _scaling_for(inp, options)
        derived = _derived(names, columns[""], inp, unit, scaling, macromolecules)
        used = scaling if unit is not None and inp.water is not None else None
        results.append(
            SpectraResult(
                inp,
                prep.fid,
                prep.conversions,
                prep.warnings,
                {**columns, **derived},
                figures,
                used,
                quality=_quality_columns(prep, fit_residual),
                qc=tuple(";".join(f) for f in flags),
                water_quality=prep.water_quality,
                fit=fit_facts,
                reference_correction_ppm=prep.reference_correction_ppm,
            )
        )
    _, ratio_note = tcr_ratios(names, np.zeros((0, len(names))))
    suffixes = (*base_suffixes, "_ratio_tcr", *(("_mM",) if unit is not None else ()))
    if basis is not None:
        notes += figure_note(results, representative=representative)
    facts = {**facts, "water_scaling": options.water_scaling.to_dict() if unit else None}
    return Run(
        command=command,
        names=names,
        results=tuple(results),
        suffixes=suffixes,
        sd_suffix=sd_suffix,
        notes=tuple([*notes, *quality_note(results), ratio_note, *water_notes]),
        facts=facts,
    )


def quantify_inputs(
    inputs: Sequence[SpectraInput],
    model: LoadedModel,
    *,
    basis: BasisSet | None = None,
    basis_name: str | None = None,
    options: Options | None = None,
) -> Run:
    """Quantify every spectrum of ``inputs`` with a trained :class:`~scaloquant.models.Quantifier`.

    Parameters
    ----------
    inputs : from :func:`~scaloquant.quantify.inputs.read_inputs`.
    model : the trained network and its checkpoint's metadata, from
        :func:`scaloquant.models.load_model`.
    basis : the training basis, when not the embedded default (checked against the
        checkpoint's hash); needed for the fit figures, ``refine`` and mM.
    basis_name : how to call ``basis`` in messages.
    options : see :class:`Options`.

    Raises
    ------
    IncompatibleDataError
        An input does not match the model's acquisition and ``force`` was not given (or no
        conversion exists), or ``basis`` is not the model's.
    ConfigError
        ``refine`` without a known basis.
    """
    options = options or Options()
    quantifier, meta = model.quantifier, model.metadata
    names = tuple(quantifier.metabolites)
    target = Acquisition(**meta.acquisition)
    basis, basis_note = model_basis(meta.basis, basis, basis_name)
    physics = quantifier.config.model in PHYSICS_KINDS
    if options.refine and physics:
        raise ConfigError(
            "--refine is for the regression CNNs; a physics-head model already ends with the "
            "fit's polish iterations (its amplitudes are least-squares ones)"
        )
    if options.refine and basis is None:
        raise NeedsOption(
            Option("refine"), " needs the basis the model was trained on; give it with ",
            Option("basis"),
        )  # fmt: skip
    if options.polish_iterations is not None and not physics:
        raise ConfigError(
            "--polish-iterations is for the physics-head models (spectrum_physics, "
            f"scalogram_physics); {quantifier.config.model} is a regression CNN, which has no "
            "polish"
        )
    if options.adapt is not None and not physics:
        raise ConfigError(
            f"--adapt needs a physics-head model (spectrum_physics, scalogram_physics); "
            f"{quantifier.config.model} is a regression CNN, which has no reconstruction to "
            "adapt to"
        )
    prepared = _matched_inputs(
        inputs,
        target,
        meta.basis_metadata,
        options.force,
        "the model",
        referencing=options.referencing,
    )
    adaptation = None
    if options.adapt is not None:
        adaptation = _adapted(quantifier, prepared, options.adapt)
        quantifier = adaptation.model
    # a physics-head model's names include the fit's macromolecules and lipids, which the
    # figures' fit with given amplitudes (on the training basis) does not know
    drawing = basis is not None and not physics
    # MRSI inputs with --refine: voxels representative of the refined fit, as ``fit`` draws
    # them (below); without a fit residual, the largest signals of all inputs
    representative = [options.refine and p.input.is_mrsi for p in prepared]
    chosen = (
        _figure_choice(prepared, options.max_figures, skip=representative)
        if drawing
        else [[] for _ in prepared]
    )
    partial = []
    water_removed = 0  # spectra a physics-head model saw less their residual water
    unreported: set[str] = set()  # components the refined fit adds to the model's
    for prep, drawn, by_residual in zip(prepared, chosen, representative, strict=True):
        fid = prep.fid
        # as ``fit``: the spectra with nothing to quantify are not run through the model (their
        # estimates are NaN all the same, _finish)
        rows = _estimated_rows(prep)
        spread = functools.partial(_spread, rows=rows, n=prep.input.n_spectra)
        estimated = _flat(fid) if rows.size == prep.input.n_spectra else _flat(fid)[rows]
        fit_residual = fit_linewidth = fit_metabolites = None
        fit_facts: dict[str, np.ndarray] = {}
        if physics:
            # the CRLB of the polished fit, and the network's own calibrated SD
            # fit_residual and the metabolites over the data: the final model's, as the fit's
            # column and checks (relative_fit_residual, metabolite_fraction)
            outputs, near, dried = _physics_estimates(
                quantifier, estimated, fid, options.batch_size, options.polish_iterations
            )
            amplitudes, crlb_sd, sd, fit_residual, fit_metabolites = map(spread, outputs)
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(amplitudes > 0, 100 * crlb_sd / amplitudes, np.inf)
            columns = {"": amplitudes, "_sd": sd, "_crlb_sd": crlb_sd, "_crlb_pct": pct}
            fit_facts = {"water_near_window": spread(near)}
            water_removed += dried
        else:
            # SDs are NaN for a model trained without uncertainty (Quantifier.predict_with_sd)
            amplitudes, sd = map(
                spread, quantifier.predict_with_sd(estimated, batch_size=options.batch_size)
            )
            columns = {"": amplitudes, "_sd": sd}
        if options.refine:
            flat = fid.with_samples(estimated)
            with blas_threads(1):
                start = fit_given_amplitudes(flat, basis, amplitudes[rows])
            refined = fit_spectra(
                flat,
                basis,
                replace(options.fit_config, phase1_pivot_ppm=start.phase1_pivot_ppm),
                start=FitStart.from_result(start),
            )
            columns |= {
                suffix: spread(_named_columns(values, refined.names, names))
                for suffix, values in (
                    ("_refined", refined.amplitudes),
                    ("_crlb_sd", refined.crlb_sd),
                    ("_crlb_pct", refined.crlb_pct),
                )
            }
            unreported |= set(refined.names) - set(names)
            fit_residual, fit_metabolites = (spread(v) for v in _fit_checks(refined))
            fit_linewidth = spread(refined.linewidth_ppm)
            fit_facts = _spread_fit_facts(refined, flat, rows, prep.input.n_spectra)
        if drawing and by_residual:
            k = min(options.mrsi_figures, options.max_figures)
            drawn = sorted(representative_voxels(fit_residual, prep.usable, k))
        figures = {}
        if drawn:
            # one global damping/shift/phase with the network's amplitudes held fixed: a
            # per-metabolite lineshape would absorb the network's errors and flatter the figure
            with blas_threads(1):  # small matrices; see scaloquant.threads
                given = fit_given_amplitudes(_subset(fid, drawn), basis, amplitudes[drawn])
            spectra = phase_corrected(fitted_spectra(given, _subset(fid, drawn), basis), given)
            figures = {j: _row(spectra, k) for k, j in enumerate(drawn)}
        checks = (fit_residual, fit_linewidth, fit_metabolites, fit_facts)
        partial.append((prep, columns, figures, checks))
    base = ("", "_sd", *(("_refined", "_crlb_sd", "_crlb_pct") if options.refine else ()))
    if physics:
        base = ("", "_sd", "_crlb_sd", "_crlb_pct")
    notes = [basis_note]
    if not quantifier.has_uncertainty:
        notes.append("the model was trained without uncertainty: the _sd columns are empty (NaN)")
    if physics and quantifier.config.network_sd_factors is None:
        notes.append(
            "the model's own SD was not calibrated at training time: the _sd columns are the "
            "Cramér-Rao bound at the network's parameters, unscaled"
        )
    if physics:
        notes.append(polish_note(quantifier.config.polish_iterations, options.polish_iterations))
    if adaptation is not None:
        notes.append(adaptation_note(adaptation))
    if water_removed:
        which = "1 spectrum" if water_removed == 1 else f"{water_removed} spectra"
        notes.append(
            f"residual water just above the model's window: {which} quantified less the water "
            "that the fit's HLSVD removes (a water_near_window above "
            f"{WATER_NEAR_WINDOW_RATIO:g}; the model's fit settings remove water); the "
            "water_near_window listed is that of the spectra the model saw"
        )
    if unreported:
        notes.append(
            f"the refined fit also fitted {', '.join(sorted(unreported))} (its preset's "
            "components beyond the model's); their amplitudes are not in this table: run "
            "`scaloquant fit` for them"
        )
    facts = {
        "adaptation": None if adaptation is None else adaptation.facts(),
        "model": {
            "kind": quantifier.config.model,
            "acquisition": dict(meta.acquisition),
            "basis": {k: meta.basis.get(k) for k in ("content_hash", "metadata")},
            "has_uncertainty": quantifier.has_uncertainty,
        },
        "basis_note": basis_note,
        "fit_config": options.fit_config.to_dict() if (options.refine or basis) else None,
    }
    run = _finish(
        "quantify",
        names,
        partial,
        # a physics-head model's own prepared basis names its macromolecules and lipids
        basis=quantifier.basis() if physics else basis,
        base_suffixes=base,
        # a physics-head model's summary reads the CRLB of its polished fit, as the fit's
        sd_suffix="_crlb_sd" if physics else "_sd",
        notes=notes,
        facts=facts,
        options=options,
        representative=options.refine,
    )
    return replace(run, adaptation=adaptation)


def polish_note(own: int, given: int | None) -> str:
    """What a physics-head model's run did after its network: ``given`` (``--polish-iterations``)
    or the checkpoint's ``own`` polish iterations."""
    k = own if given is None else given
    source = "the checkpoint's" if given is None else "--polish-iterations"
    if k == 0:
        return f"the network's parameters with least-squares amplitudes, no polish ({source} K = 0)"
    return (
        f"the network's parameters, then {k} polish iteration{'s' if k != 1 else ''} of the "
        f"fit's solver ({source} K = {k})"
    )


def _adapted(quantifier, prepared: Sequence[_Prepared], config: AdaptConfig) -> AdaptResult:
    """``quantify --adapt``: a copy of the physics-head ``quantifier`` whose encoder is
    fine-tuned on the usable spectra of every input (on the model's grid, as they are
    quantified) by the reconstruction loss (:func:`scaloquant.models.adapt.adapt_encoder`)."""
    from ..models.adapt import adapt_encoder

    spectra = [_flat(p.fid)[p.usable] for p in prepared]
    fids = np.concatenate(spectra) if spectra else np.zeros((0, 0), np.complex128)
    if len(fids) == 0:
        raise ConfigError("--adapt: no usable spectrum to adapt the model to (all are flagged)")
    return adapt_encoder(quantifier, fids, config)


def adaptation_note(result: AdaptResult) -> str:
    """One sentence on what ``--adapt`` did (summary, results.json, the terminal)."""
    c = result.config
    kept = (
        f"weights of step {result.best_step} kept"
        if result.best_step
        else "no step lowered it: the model as trained was used"
    )
    return (
        f"--adapt: the encoder fine-tuned on the {result.n_spectra} usable spectra of this run by "
        f"the reconstruction loss alone ({c.steps} steps of {min(c.batch_size, result.n_spectra)}"
        f" spectra, learning rate "
        f"{c.learning_rate:g}, seed {c.seed}; {result.wall_time_s:.1f} s): mean relative "
        f"residual at the network's parameters {result.reconstruction_before:.4g} -> "
        f"{result.reconstruction_after:.4g} ({kept}); the checkpoint file is unchanged"
    )


def fit_inputs(
    inputs: Sequence[SpectraInput],
    basis: BasisSet,
    *,
    basis_name: str,
    options: Options | None = None,
) -> Run:
    """Fit every spectrum of ``inputs`` with ``basis`` (:func:`scaloquant.fit.fit_spectra`).

    The basis goes to each input's grid (in :func:`~scaloquant.fit.fit_spectra`; the
    conversions are reported with the input's), the inputs are only checked against the basis'
    sequence and echo time, and the columns gain LCModel's combined rows (tNAA, tCr, tCho, Glx,
    CRLB from the covariance). The per-spectrum SNR and linewidth are the quality figures measured on the data
    (:mod:`scaloquant.signal.quality`), for the fit as for ``quantify``. With
    ``options.referencing`` a spectrum whose own singlets stand clearly away from their shifts
    is fitted on its corrected ppm axis (:meth:`_Prepared.groups`: one fit per correction of
    an input, the uncorrected spectra together as before)."""
    options = options or Options()
    # the basis goes to each input's grid (in fit_spectra), not the data to its
    prepared = [
        _matched_inputs(
            [i],
            i.fid.acquisition,
            basis.metadata,
            options.force,
            "the basis set",
            referencing=options.referencing,
            on_data_grid=True,
        )[0]
        for i in inputs
    ]
    # MRSI inputs: voxels representative of the fit (chosen from its residuals below), not the
    # largest signals (16 figures: 8 of the 61 s of a 16 x 16 slice; the maps show every voxel)
    mrsi = [p.input.is_mrsi for p in prepared]
    chosen = _figure_choice(prepared, options.max_figures, skip=mrsi)
    partial = []
    names = tuple(basis.names)
    for prep, drawn in zip(prepared, chosen, strict=True):
        n = prep.input.n_spectra
        # the spectra with nothing to quantify are not fitted: their estimates would be NaN
        # all the same (_finish); those whose reference was corrected, on their own axes
        fits = [
            (rows, group, *_fitted_rows(group, rows, n, basis, options.fit_config))
            for rows, group in prep.groups(_estimated_rows(prep))
        ]
        names = fits[0][3]
        _windows_alike(fits, n)
        columns, residual, metabolites, linewidth, facts = _merged(
            [(rows, values) for rows, _, _, _, values in fits]
        )
        done = [c for _, _, result, _, _ in fits for c in result.conversions]
        prep = replace(prep, conversions=(*prep.conversions, *dict.fromkeys(done)))
        if prep.input.is_mrsi:
            k = min(options.mrsi_figures, options.max_figures)
            drawn = sorted(representative_voxels(residual, prep.usable, k))
        figures = {}
        for rows, group, result, _, _ in fits:  # usable spectra only, all fitted
            ours = set(rows.tolist())
            mine = [j for j in drawn if j in ours]
            if not mine:
                continue
            shown = result.take(np.searchsorted(rows, mine).tolist())
            spectra = phase_corrected(fitted_spectra(shown, _subset(group, mine), basis), shown)
            figures |= {j: _row(spectra, k) for k, j in enumerate(mine)}
        checks = (residual, linewidth, metabolites, facts)
        partial.append((prep, columns, figures, checks))
    noise = options.fit_config.noise_estimate
    notes = [
        f"basis: {basis_name}",
        f"CRLB noise SD from the {'fit residual' if noise == 'residual' else 'noise region'}",
    ]
    facts = {"basis_name": basis_name, "fit_config": options.fit_config.to_dict()}
    from ..fit.problem import prepare_basis, same_scanner

    # the names and macromolecules of the fitted model; areas do not depend on the grid
    scanner = same_scanner(basis.spectrometer_freq_mhz, prepared[0].fid.spectrometer_freq_mhz)
    basis = prepare_basis(basis, options.fit_config, same_scanner=scanner)
    return _finish(
        "fit",
        names,
        partial,
        basis=basis,
        base_suffixes=("", "_crlb_sd", "_crlb_pct"),
        sd_suffix="_crlb_sd",
        notes=notes,
        facts=facts,
        options=options,
        representative=True,
    )


def _fitted_rows(
    fid: FID, rows: np.ndarray, n: int, basis: BasisSet, config: FitConfig
) -> tuple[FitResult, tuple[str, ...], tuple]:
    """``fit``'s fit of the spectra ``rows`` of ``fid`` (``n`` spectra, on one axis): the
    :class:`FitResult`, the names of its columns (its components, then LCModel's combined rows:
    tNAA, tCr, tCho, Glx) and its values as ``(n, ...)`` arrays, NaN on the other rows:
    ``(columns, relative residual, metabolites over data, fitted FWHM in ppm, facts)``
    (:func:`_spread_fit_facts`)."""
    from ..fit.result import combined

    flat = fid.with_samples(_flat(fid))
    spread = functools.partial(_spread, rows=rows, n=n)
    seen = flat.with_samples(flat.samples[rows])
    result = fit_spectra(seen, basis, config)
    sums = combined(result)
    amplitude = np.stack([a for a, _ in sums.values()], axis=-1)
    sd = np.stack([s for _, s in sums.values()], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(amplitude > 0, 100 * sd / amplitude, np.inf)
    columns = {
        "": spread(np.concatenate([result.amplitudes, amplitude], axis=-1)),
        "_crlb_sd": spread(np.concatenate([result.crlb_sd, sd], axis=-1)),
        "_crlb_pct": spread(np.concatenate([result.crlb_pct, pct], axis=-1)),
    }
    residual, metabolites = (spread(v) for v in _fit_checks(result))
    facts = _spread_fit_facts(result, seen, rows, n)
    values = (columns, residual, metabolites, spread(result.linewidth_ppm), facts)
    return result, (*result.names, *sums), values


def _merged(parts: list[tuple[np.ndarray, Any]]) -> Any:
    """One set of per-spectrum values from those of groups of spectra: ``parts`` holds each
    group's rows and its values (:func:`_fitted_rows`: arrays ``(n, ...)``, NaN outside its
    rows, in tuples and dicts alike across groups); each row taken from its group's."""
    (_, first), *others = parts
    for rows, values in others:
        _take_rows(first, values, rows)
    return first


def _windows_alike(fits: list[tuple], n: int) -> None:
    """Give every group of ``fits`` (:func:`fit_inputs`' ``(rows, fid, result, names, values)``
    of one input's referenced axes) the fact ``window_ppm`` where any group has it: a fit whose
    adaptive rule refitted no spectrum has none (``FitResult.window_ppm`` None: all over its
    ``config.ppm_range``), so that :func:`_merged` neither drops the refitted spectra's windows
    nor finds the fact missing from a later group."""
    if not any("window_ppm" in values[-1] for *_, values in fits):
        return
    for rows, _, result, _, values in fits:
        facts = values[-1]
        if "window_ppm" not in facts:
            ranges = np.asarray(result.config.ppm_range, dtype=float)
            window = _spread(np.broadcast_to(ranges, (len(rows), 2)), rows, n)
            # in _fit_facts' order: after shift_ppm
            items = list(facts.items())
            at = [name for name, _ in items].index("shift_ppm") + 1
            facts.clear()
            facts.update([*items[:at], ("window_ppm", window), *items[at:]])


def _take_rows(into: Any, values: Any, rows: np.ndarray) -> None:
    """``into[rows] = values[rows]`` for every array of ``into`` (fresh arrays of
    :func:`_spread`, nested in tuples and dicts as ``values``')."""
    if isinstance(into, dict):
        for name, whole in into.items():
            _take_rows(whole, values[name], rows)
    elif isinstance(into, tuple):
        for whole, part in zip(into, values, strict=True):
            _take_rows(whole, part, rows)
    else:
        into[rows] = values[rows]


def _estimated_rows(prep: _Prepared) -> np.ndarray:
    """The rows of ``prep`` to estimate: its usable spectra (in MRSI not the voxels outside
    the head: empty, no_signal, water), as LCModel's and FSL-MRS's MRSI fits take a mask;
    all of them where none or all are usable."""
    rows = np.flatnonzero(prep.usable)
    if rows.size in (0, prep.input.n_spectra):
        return np.arange(prep.input.n_spectra)
    return rows


def _spread_fit_facts(
    result: FitResult, fitted: FID, rows: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """:func:`_fit_facts` of a fit of the flat FIDs ``fitted``, the spectra ``rows`` of ``n``,
    as ``(n, ...)`` arrays, NaN for the other rows (the kernel's offsets, a property of the
    grid, on every row). ``fit`` and ``quantify --refine`` alike."""
    facts = {name: _spread(v, rows, n) for name, v in _fit_facts(result, fitted).items()}
    if "lineshape_kernel" in facts:
        facts["lineshape_kernel"][:, 0] = facts["lineshape_kernel"][rows[0], 0]
    return facts


def _spread(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``values`` ``(len(rows), ...)`` of the spectra ``rows`` as ``(n, ...)``, NaN elsewhere."""
    if len(rows) == n:  # every spectrum estimated: the values as they are
        return values
    values = np.asarray(values, dtype=np.float64)
    out = np.full((n, *values.shape[1:]), np.nan)
    out[rows] = values
    return out


def _row(spectra, k: int):
    """Spectrum ``k`` of a batch ``(n, ...)`` of fitted spectra."""
    return type(spectra)(spectra.ppm, *(getattr(spectra, f)[k] for f in spectra._fields[1:]))
