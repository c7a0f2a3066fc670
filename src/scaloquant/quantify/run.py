"""``quantify`` and ``fit`` as library calls: match every input to the model's (or basis')
grid, estimate, derive ratios and concentrations, and gather what the outputs need.

Both commands produce a :class:`Run`, which :func:`scaloquant.report.outputs.write_run`
writes; they differ only in how the columns are estimated.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from .. import defaults
from .._config import whole_number
from .._words import counted
from ..errors import ConfigError, IncompatibleDataError, NeedsOption, Option
from ..fit import (
    FitConfig,
    FitResult,
    FitStart,
    fit_given_amplitudes,
    fit_spectra,
    fitted_spectra,
    phase_corrected,
)
from ..models.physics_config import PHYSICS_KINDS
from ..signal.match import require_same_field
from ..signal.noise import residual_over_noise
from ..signal.quality import unmeasurable
from ..signal.singlets import singlet_lags_ppm
from ..signal.water_peak import WATER_NEAR_WINDOW_RATIO
from ..threads import blas_threads
from ..types import FID, Acquisition, BasisSet
from .checks import (
    blank_fit_facts,
    fit_checks,
    no_creatine,
    quality_columns,
    spread_fit_facts,
    water_near_window_seen,
    window_holds_lines,
)
from .figures import figure_choice, fitted_spectrum, representative_voxels, spectra_subset
from .inputs import MMSpectrumFile, SpectraInput
from .matching import Prepared, estimated_rows, matched_inputs
from .notes import (
    adaptation_note,
    adapted_checkpoint_note,
    baseline_note,
    correlation_note,
    ecc_notes,
    figure_note,
    polish_note,
    quality_note,
    water_scaling_notes,
)
from .results import SpectraResult, tcr_ratios
from .rows import fitted_windows, flat_samples, merged_rows, spread_rows, windows_alike
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
    max_figures : fit figures at most (for the flagged spectra, then those of highest SNR:
        :func:`figure_choice`); 0 draws none.
    mrsi_figures : ``fit``, and ``quantify --refine`` with a regression CNN (the runs with a fit
        residual for every voxel and fit figures): fit figures per MRSI input (at most
        ``max_figures``), of the voxels at evenly spaced ranks of the fit residual
        (:func:`representative_voxels`); its voxels do not compete for ``max_figures`` with the
        spectra of other inputs.
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
    baseline_stiffness : ``quantify`` with a physics-head model with a spline baseline only:
        ``"adaptive"`` (None, the default: as the fit's default) screens each polished
        spectrum with LCModel's F-test against a more flexible baseline and fits those that ask
        for one as ``fit``'s default does, their rows ``fit``'s (:func:`_physics_estimates`);
        ``"fixed"``: the polish's fixed stiffness for every spectrum.
    referencing : reference each 1H spectrum from its own NAA, creatine and choline singlets
        before it is fitted or quantified, as LCModel does (its ``DOREFS``), where they stand
        clearly away from their shifts (:func:`scaloquant.signal.quality.reference_correction_ppm`);
        False: every spectrum on its file's ppm axis (the CLI's ``--referencing off``, and
        ``--ppm-reference`` given).
    ecc : correct each input's spectra by the phase of its water reference before anything
        else (Klose 1990, :func:`scaloquant.quantify.inputs.eddy_corrected`; the CLI's
        ``--ecc``); every input needs a water reference.
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
    baseline_stiffness: Literal["adaptive", "fixed"] | None = None
    referencing: bool = True
    ecc: bool = False

    def __post_init__(self) -> None:
        for key, least, or_none in (
            ("batch_size", 1, True),
            ("polish_iterations", 0, True),
            ("max_figures", 0, False),
            ("mrsi_figures", 0, False),
        ):
            value = whole_number(key, getattr(self, key), least, or_none=or_none)
            object.__setattr__(self, key, value)
        if self.baseline_stiffness not in (None, "adaptive", "fixed"):
            raise ConfigError(
                "baseline_stiffness of quantify must be adaptive or fixed, got "
                f"{self.baseline_stiffness!r}"
            )


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
    model_label : what the fit figures' model curve is, where the command's usual label
        (:mod:`scaloquant.report.outputs`) does not say it (a physics-head model's); None: that.
    """

    command: Command
    names: tuple[str, ...]
    results: tuple[SpectraResult, ...]
    suffixes: tuple[str, ...]
    sd_suffix: str
    notes: tuple[str, ...]
    facts: Mapping[str, Any]
    adaptation: AdaptResult | None = field(default=None, compare=False, repr=False)
    model_label: str | None = None

    @property
    def n_spectra(self) -> int:
        return sum(r.input.n_spectra for r in self.results)


def model_basis(
    basis_meta: Mapping[str, Any],
    basis: BasisSet | None,
    basis_name: str | None,
    *,
    carried: bool = False,
) -> tuple[BasisSet | None, str]:
    """The basis a model was trained on: ``basis`` (checked against the checkpoint's hash) or,
    when None, the embedded default if it is that basis. Returns it (or None) and a sentence.

    ``carried``: the model keeps its basis in its checkpoint (a physics-head model), so without
    either it still draws its figures and has mM; the sentence says so."""
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
    if carried:
        source = (basis_meta.get("provenance") or {}).get("source")
        trained = f" (trained with {Path(source).name})" if source else ""
        return None, f"basis: the model's own, kept in its checkpoint{trained}"
    return None, (
        "the model was not trained on the embedded basis and no --basis was given: no fit "
        "figures, no --refine and no mM (give --basis with the training basis)"
    )


def _scaling_for(inp: SpectraInput, options: Options) -> WaterScaling:
    """The water scaling of one input: its file's echo time when it states one and the user
    gave none (``--force`` may have let a file of another TE through)."""
    from ..signal.match import stated_sequence

    _, echo_time_s = stated_sequence(inp.fid)
    if options.echo_time_given or echo_time_s is None:
        return options.water_scaling
    return replace(options.water_scaling, echo_time_ms=echo_time_s * 1e3)


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


@dataclass(frozen=True)
class PhysicsRows:
    """What :func:`_physics_estimates` gives for ``N`` spectra: ``columns`` (amplitudes, CRLB
    SDs, the model's own SDs, each ``(N, M)``, the relative fit residual, the metabolites
    over the data and the residual over the noise, each ``(N,)``), ``facts`` (per-spectrum
    facts for results.json, ``(N, ...)`` each: ``baseline_ed_per_ppm`` (NaN without a spline
    baseline, as ``fit``'s), ``window_ppm`` where a spectrum fitted again had another window
    than ``ppm_range`` (:func:`~scaloquant.quantify.rows.fitted_windows`, ``fit``'s rule),
    ``anticorrelated`` with a polish (every pair's correlation coefficient, the polish's or,
    where a spectrum was fitted again, that fit's: :func:`_physics_estimates`) and
    ``water_near_window``), ``dried``: the spectra quantified less their residual water,
    ``refitted``: those whose polish asked for a more flexible baseline, fitted again as
    ``fit`` fits them; for the figures (:func:`_physics_figures`): ``seen`` ``(N, n_points)``
    the FIDs the model saw, ``theta`` ``(N, P)`` its final parameters, and ``refit``, the fit
    of the spectra fitted again (``refit_rows``, indices into the ``N``, their FIDs
    ``refit_fid``; None: none)."""

    columns: list[np.ndarray]
    facts: dict[str, np.ndarray]
    dried: int
    refitted: int
    seen: np.ndarray
    theta: np.ndarray
    refit: FitResult | None = None
    refit_rows: np.ndarray | None = None
    refit_fid: FID | None = None


def _physics_estimates(
    quantifier,
    samples: np.ndarray,
    fid: FID,
    batch_size: int | None,
    polish: int | None,
    baseline_stiffness: str | None = None,
) -> PhysicsRows:
    """A physics-head model's :class:`PhysicsRows` of the FIDs ``samples`` ``(N, n_points)``
    on ``fid``'s grid (:meth:`~scaloquant.models.physics.PhysicsQuantifier.predict_estimates`);
    ``polish``: the polish's ``K`` (None: the model's); ``baseline_stiffness``:
    :attr:`Options.baseline_stiffness`.

    The model removes no water itself, and its error grows with the water just above its
    window as the fit's would without its water removal (docs/history/physics-models-log.md
    "Residual water near the window and the physics-head models (session 19, `water19`)").
    Where the model's fit settings remove water (``water_removal="hlsvd"``, the ``invivo``
    preset's), the spectra are quantified less the water the fit's HLSVD removes
    (:func:`scaloquant.signal.water.remove_water`, as the fit does before its fit), their
    ratio that of the spectrum the model saw: with a polish (``K`` > 0) every spectrum, as the
    fit; the network alone (``K`` = 0) only those whose ratio exceeds
    :data:`~scaloquant.signal.water_peak.WATER_NEAR_WINDOW_RATIO`, the others as they are (the
    HLSVD would cost about the network's own time). Each spectrum goes through the model once.
    Measured: docs/history/physics-models-log.md "The fit's water removal before the
    physics-head models (session 20)" and "The water of every spectrum removed before a
    polish (session 28)".

    The polish keeps its fit model's fixed baseline stiffness. With a spline baseline, a polish
    (``K`` > 0) and ``baseline_stiffness`` not ``"fixed"``, the fit's default is followed
    (``baseline_stiffness="adaptive"``): each spectrum's polish is screened with LCModel's
    F-test against the most flexible baseline
    (:meth:`~scaloquant.models.physics.PhysicsQuantifier.asks_for_flexible_baseline`), and the
    spectra that ask for a more flexible one are fitted as ``fit`` fits them: the fit's
    ``"adaptive"`` rule with the model's fit settings (its fixed stiffness over ``ppm_range``,
    its own screen at that fit, and LCModel's F-test stiffness over the window of
    :func:`~scaloquant.fit.spectra.flexible_baseline_config` for the spectra that screen
    flags), on the model's own basis, from the spectra as matched to the model, with the fit's
    own water removal; their columns are that fit's (the model's own SD replaced by its CRLB)
    and so are their facts, window and stiffness included: each such row is ``fit``'s row of
    that spectrum, also where the polish's screen flags a spectrum that the fit's own keeps at
    the fixed stiffness (docs/history/physics-models-log.md "The polish follows the fit's
    adaptive baseline (session 27)" and "quantify's refit is fit's row (session 31,
    `refit31`)").

    With a polish, every spectrum's pair correlations (results.json ``anticorrelated``, the
    run's note) are the polish's covariance bound's, read as the fit reads its own
    (:attr:`~scaloquant.models.physics.PhysicsPrediction.pair_correlations`), those of a
    spectrum fitted again that fit's; the network alone (``K = 0``) forms no covariance, and
    gives none."""
    fit_config = quantifier.config.fit_config
    top = fit_config.ppm_range[1]
    k = quantifier.config.polish_iterations if polish is None else polish
    near = water_near_window_seen(samples, fid, top)
    # with a polish, every spectrum less its water, as the fit (the HLSVD costs ~0.7 ms a
    # spectrum, the polish tens); the network alone (K = 0) only where the water is tall
    wet = np.flatnonzero(near > WATER_NEAR_WINDOW_RATIO) if k == 0 else np.arange(len(samples))
    if fit_config.water_removal != "hlsvd":
        wet = wet[:0]
    seen = samples  # what the model sees: each spectrum once, less its water where wet
    if wet.size:
        import torch

        from ..signal.water import remove_water

        grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        # every spectrum (a polish): the FIDs less their water are what the model sees, not
        # a copy of them, nor of the FIDs before (32 kB a spectrum of 2048 points each, at
        # quantify's peak: docs/history/benchmarks-log.md "Memory of fit and quantify
        # (session 33, `mem33`)"); each FID's water is its own in any batch (remove_water)
        every = wet.size == len(samples)
        dry = remove_water(samples if every else samples[wet], *grid,
                           threads=torch.get_num_threads())  # fmt: skip
        near[wet] = water_near_window_seen(dry, fid, top)
        if every:
            seen = dry
        else:
            seen = np.array(samples)
            seen[wet] = dry
    spline = fit_config.baseline_kind == "spline"
    # the screen by the polish's own threads, each batch's after its polish
    screen = spline and baseline_stiffness != "fixed" and k > 0
    # the pairs the polish cannot tell apart from its covariance, as the fit's (K = 0: none)
    p = quantifier.predict_estimates(
        seen, batch_size=batch_size, polish_iterations=polish, screen=screen, correlations=True
    )
    columns = [p.amplitudes, p.sd, p.network_sd, p.fit_residual, p.metabolite_fraction]
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    proton = fid.nucleus == "1H"
    columns.append(residual_over_noise(p.residual_sd, seen, *grid, proton=proton))
    theta = p.theta
    dried = int(wet.size)
    n = len(samples)
    # in the fit's order (_fit_facts), water_near_window last; NaN without a spline, as fit's
    stiffness = fit_config.baseline_ed_per_ppm if spline else np.nan
    facts = {"baseline_ed_per_ppm": np.full(n, stiffness)}
    pairs = {} if p.pair_correlations is None else {"anticorrelated": p.pair_correlations}
    if not screen or not n:
        facts |= pairs | {"water_near_window": near}
        return PhysicsRows(columns, facts, dried, 0, seen, theta)
    flagged = np.flatnonzero(p.flexible)
    if not flagged.size:
        facts |= pairs | {"water_near_window": near}
        return PhysicsRows(columns, facts, dried, 0, seen, theta)
    # the fit's own adaptive rule, not its flexible refit alone: each row is then fit's row
    # of that spectrum also where the fit's screen keeps it at the fixed stiffness over
    # ppm_range (the polish's screen flags more where it ends away from the fit's minimum)
    adaptive = replace(
        fit_config, baseline_stiffness="adaptive", device=quantifier.basis_fids.device.type
    )
    names = tuple(quantifier.metabolites)
    again = fid.with_samples(samples[flagged])
    with blas_threads(1):
        refit = fit_spectra(again, quantifier.basis(), adaptive)
    sd = _named_columns(refit.crlb_sd, refit.names, names)
    replaced = (_named_columns(refit.amplitudes, refit.names, names), sd, sd, *fit_checks(refit))
    for column, values in zip(columns, replaced, strict=True):
        column[flagged] = values
    refit_facts = spread_fit_facts(refit, again, flagged, n, names)
    facts["baseline_ed_per_ppm"][flagged] = refit_facts["baseline_ed_per_ppm"][flagged]
    # as fit lists it: only where the refit's own screen gave some spectrum another window
    polished = np.setdiff1d(np.arange(n), flagged)
    window = fitted_windows(
        [(polished, {}, fit_config.ppm_range), (flagged, refit_facts, adaptive.ppm_range)], n
    )
    if window is not None:
        facts["window_ppm"] = window
    # the pairs of the spectra fitted again are that fit's, the others the polish's
    facts["anticorrelated"] = pairs.get("anticorrelated", refit_facts["anticorrelated"])
    facts["anticorrelated"][flagged] = refit_facts["anticorrelated"][flagged]
    near[flagged] = refit_facts["water_near_window"][flagged]
    facts["water_near_window"] = near
    return PhysicsRows(columns, facts, dried, int(flagged.size), seen, theta, refit, flagged, again)


def _model_figures(
    quantifier,
    basis: BasisSet | None,
    fid: FID,
    rows: np.ndarray,
    amplitudes: np.ndarray,
    estimates: PhysicsRows | None,
    drawn: list[int],
) -> dict[int, Any]:
    """``quantify``'s fit figures of an input's spectra ``drawn``: a physics-head model's own
    (``estimates`` of its ``rows``, :func:`_physics_figures`), or for a regression CNN one
    global damping/shift/phase with the network's ``amplitudes`` ``(N, M)`` held fixed."""
    if not drawn:
        return {}
    if estimates is not None:
        position = {int(r): k for k, r in enumerate(rows)}  # input row -> estimated row
        at = [position[j] for j in drawn]
        with blas_threads(1):  # small matrices; see scaloquant.threads
            own = _physics_figures(quantifier, estimates, fid, at)
        return {j: own[k] for j, k in zip(drawn, at, strict=True)}
    # a per-metabolite lineshape would absorb the network's errors and flatter the figure
    with blas_threads(1):  # small matrices; see scaloquant.threads
        given = fit_given_amplitudes(spectra_subset(fid, drawn), basis, amplitudes[drawn])
    spectra = phase_corrected(fitted_spectra(given, spectra_subset(fid, drawn), basis), given)
    return {j: fitted_spectrum(spectra, k) for k, j in enumerate(drawn)}


def _physics_figures(
    quantifier, estimates: PhysicsRows, fid: FID, drawn: list[int]
) -> dict[int, Any]:
    """The fit figures of a physics-head model's spectra ``drawn`` (indices into the ``N`` FIDs
    of ``estimates``, on ``fid``'s grid): its final model as the fit draws its
    own (:func:`~scaloquant.fit.spectra.fit_result_at` at the polished parameters, on the
    spectra the model saw, with its baseline and components), and for a spectrum fitted
    again with a flexible baseline that fit's."""
    from ..fit.spectra import fit_result_at

    basis = quantifier.basis()
    figures: dict[int, Any] = {}
    again = [] if estimates.refit_rows is None else list(estimates.refit_rows)
    polished = [j for j in drawn if j not in again]
    if polished:
        subset = fid.with_samples(estimates.seen[polished])
        # the spectra as the model saw them (less their water where it was removed): no
        # water removal again; on the model's device
        config = replace(
            quantifier.config.fit_config,
            water_removal="none",
            device=quantifier.basis_fids.device.type,
        )
        result = fit_result_at(subset, basis, config, estimates.theta[polished], deviations=True)
        spectra = phase_corrected(fitted_spectra(result, subset, basis), result)
        figures |= {j: fitted_spectrum(spectra, k) for k, j in enumerate(polished)}
    redrawn = [j for j in drawn if j in again]
    if redrawn:
        refit = estimates.refit
        spectra = phase_corrected(fitted_spectra(refit, estimates.refit_fid, basis), refit)
        figures |= {j: fitted_spectrum(spectra, again.index(j)) for j in redrawn}
    return figures


class _FitChecks(NamedTuple):
    """An input's figures of its fit (``fit``, ``--refine``, a physics-head model's final
    model), ``(N,)`` each, None without a fit: the relative residual, the fitted FWHM (ppm), the
    metabolite model over the data, the residual over the noise, and its facts
    (:func:`spread_fit_facts`; the fit's water_near_window among them, which its flag reads)."""

    residual: np.ndarray | None
    linewidth_ppm: np.ndarray | None
    metabolites: np.ndarray | None
    over_noise: np.ndarray | None
    facts: dict[str, np.ndarray]


def _flagged(
    prep: Prepared, estimates: np.ndarray, names: tuple[str, ...], checks: _FitChecks
) -> tuple[list[list[str]], _FitChecks]:
    """An input's QC flags after its fit (:func:`~scaloquant.signal.quality.fit_flags`), from
    its ``checks`` and ``estimates`` ``(N, M)``, and the checks blanked where the data hold
    nothing to measure. Before the figures are chosen: the flagged spectra are drawn first
    (:func:`figure_choice`)."""
    from ..signal.quality import fit_flags

    inp = prep.input
    fit_residual, fit_linewidth_ppm, fit_metabolites, fit_noise, fit_facts = checks
    # where every spectrum of an input is unusable all are estimated (estimated_rows); a
    # fit of nothing to measure tells nothing either: no fit_residual, no fit flags (a
    # water reference given as data was 'water;residual_large' with a residual of 0.96)
    data_unusable = unmeasurable(prep.flags)
    if data_unusable.any():
        fit_residual, fit_linewidth_ppm, fit_metabolites, fit_noise = (
            None if v is None else np.where(data_unusable, np.nan, v)
            for v in (fit_residual, fit_linewidth_ppm, fit_metabolites, fit_noise)
        )
        fit_facts = blank_fit_facts(fit_facts, data_unusable) or {}
    n = inp.n_spectra
    flags = fit_flags(
        prep.flags,
        fit_residual,
        fit_linewidth_ppm,
        fit_metabolites,
        fit_facts.get("water_near_window"),
        singlets=(
            prep.quality.singlet_profile.reshape(n, -1),
            singlet_lags_ppm(inp.fid.n_points, inp.fid.dwell_time_s, inp.fid.spectrometer_freq_mhz),
            prep.quality.singlet_strength.reshape(n),
        ),
        placed_shift_ppm=fit_facts.get("shift_ppm"),
        no_creatine=no_creatine(estimates, names),
        residual_over_noise=fit_noise,
    )
    return flags, _FitChecks(fit_residual, fit_linewidth_ppm, fit_metabolites, fit_noise, fit_facts)


def _figure_rows(
    prepared: Sequence[Prepared],
    flags: Sequence[list[list[str]]],
    checks: Sequence[_FitChecks],
    representative: Sequence[bool],
    options: Options,
) -> list[list[int]]:
    """Per input, the spectra whose fit figures a run draws: the flagged ones first, worst
    first, then the highest SNRs of all inputs (:func:`figure_choice`); for the
    ``representative`` inputs (MRSI with a fit residual for every voxel) the voxels at evenly
    spaced ranks of that residual (:func:`representative_voxels`, ``mrsi_figures`` of them:
    16 figures of the highest SNRs were 8 of the 61 s of a 16 x 16 slice, and the maps show
    every voxel)."""
    chosen = figure_choice(
        prepared,
        options.max_figures,
        skip=representative,
        flags=flags,
        residual_over_noise=[c.over_noise for c in checks],
    )
    k = min(options.mrsi_figures, options.max_figures)
    return [
        sorted(representative_voxels(c.residual, p.usable, k)) if by_residual else drawn
        for p, c, by_residual, drawn in zip(prepared, checks, representative, chosen, strict=True)
    ]


def _finish(
    command: Command,
    names: tuple[str, ...],
    # per input: prepared spectra, estimate columns, figures, the fit's checks (or None; as
    # _flagged returns them) and its flags (_flagged)
    partial: list[tuple[Prepared, dict[str, np.ndarray], dict, _FitChecks, list[list[str]]]],
    *,
    basis: BasisSet | None,
    base_suffixes: tuple[str, ...],
    sd_suffix: str,
    notes: list[str],
    facts: dict[str, Any],
    options: Options,
    representative: bool,
) -> Run:
    """Blank the estimates of unusable spectra, derive ratios and mM, and gather
    (``representative``: the MRSI inputs' figures are :func:`representative_voxels`)."""
    inputs = [p[0].input for p in partial]
    unit, water_notes = water_scaling_notes(inputs, basis, options.water_scaling)
    results = []
    macromolecules = tuple(basis.metadata.get("macromolecules") or ()) if basis else ()
    for prep, columns, figures, checks, flags in partial:
        inp = prep.input
        fit_residual, fit_noise, fit_facts = checks.residual, checks.over_noise, checks.facts
        unusable = unmeasurable(flags)
        # nothing to measure: NaN, never a number (an empty FID gave ratios of 0.5 before)
        columns = {k: np.where(unusable[:, None], np.nan, v) for k, v in columns.items()}
        fit_facts = blank_fit_facts(fit_facts, unusable)
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
                quality=quality_columns(prep, fit_residual, fit_noise),
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
    if options.ecc:
        notes += ecc_notes([p.input.water_path for p, *_ in partial])
        facts["eddy_current_correction"] = {
            "method": "klose",
            "water_references": [str(p.input.water_path) for p, *_ in partial],
        }
    return Run(
        command=command,
        names=names,
        results=tuple(results),
        suffixes=suffixes,
        sd_suffix=sd_suffix,
        notes=tuple(
            [
                *notes,
                *quality_note(results),
                *correlation_note(results, names),
                ratio_note,
                *water_notes,
            ]
        ),
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
    physics = quantifier.config.model in PHYSICS_KINDS
    basis, basis_note = model_basis(meta.basis, basis, basis_name, carried=physics)
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
    if options.baseline_stiffness is not None and not (
        physics and quantifier.config.fit_config.baseline_kind == "spline"
    ):
        raise ConfigError(
            "--baseline-stiffness is for the physics-head models with a spline baseline (the "
            f"invivo simulation's); {quantifier.config.model} "
            + ("has no baseline" if physics else "is a regression CNN, which has no polish")
        )
    if options.adapt is not None and not physics:
        raise ConfigError(
            f"--adapt needs a physics-head model (spectrum_physics, scalogram_physics); "
            f"{quantifier.config.model} is a regression CNN, which has no reconstruction to "
            "adapt to"
        )
    prepared = matched_inputs(
        inputs,
        target,
        meta.basis_metadata,
        options.force,
        "the model",
        referencing=options.referencing,
        ecc=options.ecc,
    )
    adaptation = None
    if options.adapt is not None:
        adaptation = _adapted(quantifier, prepared, options.adapt)
        quantifier = adaptation.model
    # a regression CNN's figures need the basis it was trained on; a physics-head model's
    # are its own final model's (_physics_figures)
    drawing = basis is not None or physics
    # MRSI inputs with --refine or a physics-head model: voxels representative of the fit's
    # residual, as ``fit`` draws them (below); without one, as the other inputs, the flagged
    # spectra first, then the highest SNRs of all inputs
    by_fit = options.refine or physics
    representative = [by_fit and p.input.is_mrsi for p in prepared]
    estimated_inputs = []
    water_removed = 0  # spectra a physics-head model saw less their residual water
    refitted = 0  # spectra of a physics-head model fitted again as fit fits them
    unreported: set[str] = set()  # components the refined fit adds to the model's
    for prep in prepared:
        fid = prep.fid
        estimates = None
        # as ``fit``: the spectra with nothing to quantify are not run through the model (their
        # estimates are NaN all the same, _finish)
        rows = estimated_rows(prep)
        spread = functools.partial(spread_rows, rows=rows, n=prep.input.n_spectra)
        estimated = (
            flat_samples(fid) if rows.size == prep.input.n_spectra else flat_samples(fid)[rows]
        )
        fit_residual = fit_linewidth = fit_metabolites = fit_noise = None
        fit_facts: dict[str, np.ndarray] = {}
        if physics:
            # the CRLB of the polished fit, and the network's own calibrated SD
            # fit_residual and the metabolites over the data: the final model's, as the fit's
            # column and checks (fit_residual_checks, metabolite_fraction)
            estimates = _physics_estimates(
                quantifier,
                estimated,
                fid,
                options.batch_size,
                options.polish_iterations,
                options.baseline_stiffness,
            )
            amplitudes, crlb_sd, sd, fit_residual, fit_metabolites, fit_noise = map(
                spread, estimates.columns
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(amplitudes > 0, 100 * crlb_sd / amplitudes, np.inf)
            columns = {"": amplitudes, "_sd": sd, "_crlb_sd": crlb_sd, "_crlb_pct": pct}
            fit_facts = {name: spread(value) for name, value in estimates.facts.items()}
            water_removed += estimates.dried
            refitted += estimates.refitted
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
            fit_residual, fit_metabolites, fit_noise = (spread(v) for v in fit_checks(refined))
            fit_linewidth = spread(refined.linewidth_ppm)
            fit_facts = spread_fit_facts(refined, flat, rows, prep.input.n_spectra, names)
        checks = _FitChecks(fit_residual, fit_linewidth, fit_metabolites, fit_noise, fit_facts)
        flags, checks = _flagged(prep, columns[""], names, checks)
        drawn_at = functools.partial(
            _model_figures, quantifier, basis, fid, rows, amplitudes, estimates
        )
        estimated_inputs.append((prep, columns, checks, flags, drawn_at))
    # MRSI inputs with --refine or a physics-head model: voxels representative of the fit's
    # residual, as ``fit`` draws them
    chosen = (
        _figure_rows(
            prepared,
            [e[3] for e in estimated_inputs],
            [e[2] for e in estimated_inputs],
            representative,
            options,
        )
        if drawing
        else [[] for _ in prepared]
    )
    partial = [
        (prep, columns, drawn_at(drawn), checks, flags)
        for (prep, columns, checks, flags, drawn_at), drawn in zip(
            estimated_inputs, chosen, strict=True
        )
    ]
    base = ("", "_sd", *(("_refined", "_crlb_sd", "_crlb_pct") if options.refine else ()))
    if physics:
        base = ("", "_sd", "_crlb_sd", "_crlb_pct")
    notes = [basis_note]
    earlier = meta.raw.get("adaptation")
    if earlier:
        notes.append(adapted_checkpoint_note(earlier))
    if not quantifier.has_uncertainty:
        notes.append("the model was trained without uncertainty: the _sd columns are empty (NaN)")
    if physics and quantifier.config.network_sd_factors is None:
        notes.append(
            "the model's own SD was not calibrated at training time: the _sd columns are the "
            "Cramér-Rao bound at the network's parameters, unscaled"
        )
    # the polish's K of this run (a physics-head model's; _physics_estimates reads it alike)
    own_k = quantifier.config.polish_iterations if physics else 0
    k = own_k if options.polish_iterations is None else options.polish_iterations
    if physics:
        notes.append(polish_note(own_k, options.polish_iterations))
        baseline = baseline_note(
            quantifier.config.fit_config, options.baseline_stiffness, k, refitted
        )
        if baseline is not None:
            notes.append(baseline)
    if adaptation is not None:
        notes.append(adaptation_note(adaptation))
    if water_removed:
        which = counted(water_removed, "spectrum", "spectra")
        why = (
            "as the fit, before the polish"
            if k > 0
            else f"a water_near_window above {WATER_NEAR_WINDOW_RATIO:g}"
        )
        notes.append(
            f"residual water: {which} quantified less the water that the fit's HLSVD removes "
            f"({why}; the model's fit settings remove water); the water_near_window listed "
            "is that of the spectra the model saw"
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
        representative=by_fit,
    )
    label = None
    if physics:
        label = (
            "model (the network's parameters, polished by the fit; a spectrum fitted again: "
            "that fit)"
        )
    return replace(run, adaptation=adaptation, model_label=label)


def _adapted(quantifier, prepared: Sequence[Prepared], config: AdaptConfig) -> AdaptResult:
    """``quantify --adapt``: a copy of the physics-head ``quantifier`` whose encoder is
    fine-tuned on the usable spectra of every input (on the model's grid, as they are
    quantified) by the reconstruction loss (:func:`scaloquant.models.adapt.adapt_encoder`)."""
    from ..models.adapt import adapt_encoder

    spectra = [flat_samples(p.fid)[p.usable] for p in prepared]
    fids = np.concatenate(spectra) if spectra else np.zeros((0, 0), np.complex128)
    if len(fids) == 0:
        raise ConfigError("--adapt: no usable spectrum to adapt the model to (all are flagged)")
    return adapt_encoder(quantifier, fids, config)


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
    # the CLI makes the same check before it reads the inputs
    window_holds_lines(basis, options.fit_config.ppm_range)
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
        # all the same (_finish); those whose reference was corrected, on their own axes
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
        checks = _FitChecks(residual, linewidth, metabolites, over_noise, facts)
        flags, checks = _flagged(prep, columns[""], names, checks)
        fitted_inputs.append((prep, columns, fits, checks, flags, own_basis))
    # MRSI inputs: voxels representative of the fit, from its residuals
    chosen = _figure_rows(
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
    return _finish(
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

    Raises
    ------
    ConfigError : ``mm_spectra`` with ``config.macromolecules`` ``"parametric"`` or ``"none"``,
        or a number of them that is neither 0, 1 nor one per input.
    IncompatibleDataError : an MM spectrum of another nucleus or scanner than its input's.
    """
    from ..fit.measured_mm import clean_mm_spectrum, with_measured_mm
    from ..signal.match import require_same_scanner

    if not mm_spectra:
        return [basis] * len(prepared), prepared, []
    if config.macromolecules in ("parametric", "none"):
        raise ConfigError(
            f"a measured MM spectrum is the fit's macromolecules, and macromolecules "
            f"{config.macromolecules!r} asks for {config.macromolecules} instead: give one or "
            "the other (with the spectrum, macromolecules 'auto' adds the parametric lipids, "
            "'basis' none)"
        )
    if len(mm_spectra) not in (1, len(prepared)):
        raise ConfigError(
            f"{counted(len(mm_spectra), 'MM spectrum', 'MM spectra')} for "
            f"{counted(len(prepared), 'input')}; give one for all inputs or one per input, in "
            "the same order"
        )
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
    from ..fit.measured_mm import MM_COMPONENTS

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

    Raises
    ------
    NeedsOption : the spectrum looks like water.
    IncompatibleDataError : it looks like water only as read, not conjugated: an MM spectrum
        mirrored about its reference.
    """
    from ..signal import water_peak

    fid = mm.fid
    if fid.nucleus != "1H":
        return
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    ratio = float(water_peak.water_ratio(fid.samples, *grid))
    if not water_peak.looks_like_water(ratio):
        return
    if not water_peak.looks_like_water(water_peak.water_ratio(np.conj(fid.samples), *grid)):
        # mirrored about the reference, an MM spectrum's lines leave the metabolite window and
        # its residual water looks tall (Osprey's sub-01 conjugated: 331x); water stays water
        raise IncompatibleDataError(
            f"the MM spectrum {mm.path.name} looks mirrored about its ppm reference (stored "
            "in the other orientation than the inputs): rewrite it in theirs (scaloquant "
            "convert FILE OUT.nii.gz --conjugate)"
        )
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
    from ..fit.result import combined

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
    sums = combined(result)
    # a basis holding none of the combined rows' parts (a .BASIS cut after its first block,
    # Mac alone) has no such columns: np.stack of none was a traceback
    none = np.empty((*result.amplitudes.shape[:-1], 0))
    amplitude = np.stack([a for a, _ in sums.values()], axis=-1) if sums else none
    sd = np.stack([s for _, s in sums.values()], axis=-1) if sums else none
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(amplitude > 0, 100 * sd / amplitude, np.inf)
    columns = {
        "": spread(np.concatenate([result.amplitudes, amplitude], axis=-1)),
        "_crlb_sd": spread(np.concatenate([result.crlb_sd, sd], axis=-1)),
        "_crlb_pct": spread(np.concatenate([result.crlb_pct, pct], axis=-1)),
    }
    residual, metabolites, over_noise = (spread(v) for v in fit_checks(result))
    facts = spread_fit_facts(result, seen, rows, n)
    values = (columns, residual, metabolites, spread(result.linewidth_ppm), over_noise, facts)
    return result, (*result.names, *sums), values
