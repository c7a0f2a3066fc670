"""What ``quantify`` (:mod:`.run`) and ``fit`` (:mod:`.fit_run`) share: their :class:`Options`,
the :class:`Run` both produce, which :func:`scaloquant.report.outputs.write_run` writes, and
the gathering both end with: an input's flags after its fit (:func:`flags_and_checks`), the
spectra whose fit figures are drawn (:func:`figure_rows`), and the run's estimates blanked where
there is nothing to measure, with their ratios and mM (:func:`finish_run`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from .. import defaults
from .._config import whole_number
from ..errors import ConfigError
from ..fit import FitConfig
from ..signal.quality import unmeasurable, water_scale_flags
from ..signal.singlets import singlet_lags_ppm
from ..types import BasisSet
from .checks import blank_fit_facts, no_creatine, quality_columns
from .figures import figure_choice, representative_voxels
from .inputs import SpectraInput
from .matching import Prepared
from .notes import correlation_note, ecc_notes, figure_note, quality_note, water_scaling_notes
from .results import SpectraResult, anticorrelated_pairs, tcr_ratios
from .water import WaterScaling, concentrations_mM, water_area

if TYPE_CHECKING:  # torch loads only with a model: ``fit`` needs none
    from ..models.adapt import AdaptConfig, AdaptResult

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
        for one as ``fit``'s default does, their rows ``fit``'s, and so those whose polish may
        have stopped in a worse minimum than the fit's (:func:`~.run._physics_estimates`);
        ``"fixed"``: the polish's fixed stiffness for every spectrum, the latter flagged
        ``polish_minimum``.
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
    terminal_notes : those of ``notes`` the terminal prints too, in its order: ``quantify
        --adapt``'s note, the quality flags, the pairs the fit cannot tell apart, and ``fit``'s
        figure note where an input is MRSI (its figures are a few voxels).
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
    terminal_notes: tuple[str, ...] = ()

    @property
    def n_spectra(self) -> int:
        return sum(r.input.n_spectra for r in self.results)


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


class FitChecks(NamedTuple):
    """An input's figures of its fit (``fit``, ``--refine``, a physics-head model's final
    model), ``(N,)`` each, None without a fit: the relative residual, the fitted FWHM (ppm), the
    metabolite model over the data, the residual over the noise, and its facts
    (:func:`~.checks.spread_fit_facts`; the fit's water_near_window among them, which its flag
    reads)."""

    residual: np.ndarray | None
    linewidth_ppm: np.ndarray | None
    metabolites: np.ndarray | None
    over_noise: np.ndarray | None
    facts: dict[str, np.ndarray]


def flags_and_checks(
    prep: Prepared,
    estimates: np.ndarray,
    names: tuple[str, ...],
    checks: FitChecks,
    polish_stopped: np.ndarray | None = None,
) -> tuple[list[list[str]], FitChecks]:
    """An input's QC flags after its fit (:func:`~scaloquant.signal.quality.fit_flags`), from
    its ``checks``, ``estimates`` ``(N, M)`` and a physics-head model's ``polish_stopped``
    ``(N,)`` (its polish kept where it may have stopped in a worse minimum than the fit's), and
    the checks blanked where the data hold nothing to measure. Before the figures are chosen: the flagged spectra are drawn first
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
        polish_stopped=polish_stopped,
    )
    return flags, FitChecks(fit_residual, fit_linewidth_ppm, fit_metabolites, fit_noise, fit_facts)


def figure_rows(
    prepared: Sequence[Prepared],
    flags: Sequence[list[list[str]]],
    checks: Sequence[FitChecks],
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


def finish_run(
    command: Command,
    names: tuple[str, ...],
    # per input: prepared spectra, estimate columns, figures, the fit's checks (or None; as
    # flags_and_checks returns them) and its flags (flags_and_checks)
    partial: list[tuple[Prepared, dict[str, np.ndarray], dict, FitChecks, list[list[str]]]],
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
        if "_mM" in derived:  # concentrations no tissue holds: the water is not the data's
            flags = water_scale_flags(flags, derived["_mM"])
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
                anticorrelated=anticorrelated_pairs(fit_facts, names),
            )
        )
    _, ratio_note = tcr_ratios(names, np.zeros((0, len(names))))
    suffixes = (*base_suffixes, "_ratio_tcr", *(("_mM",) if unit is not None else ()))
    figures = figure_note(results, representative=representative) if basis is not None else []
    notes = [*notes, *figures]  # a new list: the caller's is left as it was given
    facts = {**facts, "water_scaling": options.water_scaling.to_dict() if unit else None}
    if options.ecc:
        notes += ecc_notes([p.input.water_path for p, *_ in partial])  # the new list
        facts["eddy_current_correction"] = {
            "method": "klose",
            "water_references": [str(p.input.water_path) for p, *_ in partial],
        }
    flagged = [*quality_note(results), *correlation_note(results)]
    # fit's figures of an MRSI input are a few voxels of many: said where the run is seen
    mrsi = command == "fit" and any(r.input.is_mrsi for r in results)
    return Run(
        command=command,
        names=names,
        results=tuple(results),
        suffixes=suffixes,
        sd_suffix=sd_suffix,
        notes=tuple([*notes, *flagged, ratio_note, *water_notes]),
        facts=facts,
        terminal_notes=tuple([*flagged, *(figures if mrsi else ())]),
    )
