"""Configuration of the linear-combination fit: a frozen, validated :class:`FitConfig` and the
named presets :data:`FIT_PRESETS` (an optional starting point, for example a network's estimate,
is a :class:`~scaloquant.fit.result.FitStart`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import InitVar, dataclass, fields
from itertools import pairwise
from typing import Any, Literal

from .._config import dataclass_from_dict, positive_number, true_or_false, whole_number
from .._words import counted
from ..errors import ConfigError, NeedsOption, Option
from ..signal.axes import WINDOW_PPM_1H

#: How metabolites share their damping and shift: all metabolites in one group and the
#: macromolecules and lipids in one group of each kind (FSL-MRS's in-vivo default), or each
#: macromolecule and lipid component in a group of its own (LCModel's model), one pair each, one
#: pair for all, or explicit groups (tuples of metabolite names; names in no group keep a pair
#: of their own).
Grouping = (
    Literal["metabolites_and_mm", "metabolites_and_each_mm", "per_metabolite", "global"]
    | tuple[tuple[str, ...], ...]
)
#: The named groupings, in the order help texts list them (``scaloquant fit --groups``).
GROUPING_NAMES = ("metabolites_and_mm", "metabolites_and_each_mm", "per_metabolite", "global")
#: The groupings with a group named ``"metabolites"`` that ``mm_shift_prior_sd_hz`` holds the
#: others to.
MM_APART_GROUPINGS = ("metabolites_and_mm", "metabolites_and_each_mm")
#: Basis names taken as macromolecules or lipids when the basis metadata does not list them.
_MM_PATTERN = re.compile(r"^(mm|mac|lip)", re.IGNORECASE)


#: Basis metadata key naming the macromolecule spectra measured with the data's own protocol
#: (``fit --mm-spectrum``, :func:`scaloquant.fit.measured_mm.with_measured_mm`):
#: ``macromolecules="auto"`` keeps them for data from another scanner type than the basis'
#: (:func:`scaloquant.fit.problem.prepare_basis`), where it replaces a basis' own.
MEASURED_KEY = "measured_macromolecules"


def macromolecule_names(names: Sequence[str], metadata: Mapping | None = None) -> tuple[str, ...]:
    """The macromolecule and lipid signals of a basis: those its metadata lists under
    ``"macromolecules"``, else names beginning with MM, Mac or Lip (LCModel's and the ISMRM
    basis' spelling)."""
    listed = set((metadata or {}).get("macromolecules") or ())
    return tuple(n for n in names if n in listed or _MM_PATTERN.match(n))


def check_range(name: str, value: Sequence[float], *, allow_infinite: bool = False) -> None:
    """Refuse a ``(low, high)`` pair that is not two finite numbers in order (``allow_infinite``:
    infinities allowed), naming it ``name``: a config key, or a front end's flag (ConfigError)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair of numbers (low, high), got {value!r}") from None
    ok = (lambda v: not math.isnan(v)) if allow_infinite else math.isfinite
    if not (ok(lo) and ok(hi)):
        raise ConfigError(f"{name} must hold finite numbers, got ({lo}, {hi})")
    if not lo < hi:
        raise ConfigError(f"{name} must have low < high, got ({lo}, {hi}); swap or widen it")


#: SDs of the per-metabolite damping and shift the default simulator draws, uniformly over
#: [0, 15] 1/s and [-3, 3] Hz (``scaloquant.simulate.config``): width / sqrt(12). The
#: per-metabolite model's spread priors (``FitConfig.damping_spread_prior_sd_per_s``,
#: ``shift_spread_prior_sd_hz``) are the Gaussians of that mean and variance about the
#: spectrum's common value: the population the simulator draws from, not a fitted width.
SIMULATOR_DAMPING_SD_PER_S = 15.0 / math.sqrt(12.0)
SIMULATOR_SHIFT_SD_HZ = 6.0 / math.sqrt(12.0)


@dataclass(frozen=True)
class FitConfig:
    """Options of :func:`scaloquant.fit.fit_spectra`; every field is keyword-only by convention.

    Attributes
    ----------
    ppm_range : ``(low, high)`` chemical-shift window of the fit, ppm (default 0.2-4.2 ppm).
    grouping : ``"per_metabolite"`` (a damping and a shift per metabolite, the family of the
        paper's Eq. 1), ``"global"`` (one pair for all), ``"metabolites_and_mm"`` (the
        metabolites in one group, the macromolecules in a second and the lipids in a third:
        :func:`scaloquant.fit.model.metabolite_and_mm_groups`), ``"metabolites_and_each_mm"``
        (the metabolites in one group, each macromolecule and lipid component in a group of its
        own, as LCModel gives each of its MM and lipid lines its own width and shift:
        :func:`scaloquant.fit.model.metabolite_and_each_mm_groups`), or a tuple of name tuples
        that share a pair (names in no group keep their own).
    damping_bounds_per_s : bounds of the extra Lorentzian damping ``alpha`` in 1/s, applied as
        ``exp(-alpha t)`` on top of the basis' own linewidth.
    shift_bounds_hz : bounds of the frequency shift ``df`` in Hz (applied as
        ``exp(2 pi i df t)``) *relative to the spectrum's common starting shift*: each
        metabolite may move this far from where the whole spectrum sits.
    global_shift_range_hz : range searched for that common shift by cross-correlation.
    fit_phase0 : fit a global zero-order phase ``phi0`` (rad).
    fit_phase1 : fit a global first-order phase ``phi1`` (rad/ppm) about ``phase1_pivot_ppm``;
        the model is multiplied by ``exp(i (phi0 + phi1 (ppm - pivot)))``.
    phase1_pivot_ppm : pivot of the first-order phase; ``None`` means the data's reference
        (0 Hz), where a first-order phase is exactly a time shift of the FID.
    gaussian : fit a global Gaussian broadening ``exp(-beta t^2)``, ``beta`` in 1/s^2 (a Voigt
        lineshape with the Lorentzian damping). ``beta`` enters linearly in the exponent so its
        derivative does not vanish at ``beta = 0``; the Gaussian FWHM in Hz is
        ``2 sqrt(beta ln 2) / pi``.
    gauss_bounds_per_s2 : bounds of ``beta``.
    baseline_order : degree of a complex polynomial baseline over the window (Legendre
        polynomials of the ppm scaled to [-1, 1]; linear parameters, of either sign); ``None``
        for no baseline (the paper's Eq. 1 has none).
    noise_estimate : how the noise SD of the CRLB (the SD of each real part of the spectrum,
        unnormalised FFT) is estimated. ``"residual"`` (default): ``|r|^2 / (2K - P)`` over the
        window, ``P`` the active amplitudes, identifiable nonlinear parameters and baseline
        coefficients. It needs no signal-free region (many files are cut to a narrow band, and
        scanner filters attenuate the spectrum's edges) and it includes model misfit, so the
        bounds err on the safe side, like LCModel's. ``"region"``: the spectrum in
        ``noise_ppm_range`` after removing a straight complex line; independent of the fit, but
        only right where that region truly holds no signal or artefact.
    noise_ppm_range : signal-free window for ``noise_estimate="region"``, ppm (default 9.5-11.5:
        above the 1H amide and NAA NH resonances near 7.8-8.2 ppm, inside a 3 T 2 kHz band).
    initial_damping_per_s : starting damping of every group.
    initial_shift : ``"xcorr"`` (one shift for all from the cross-correlation of the magnitude
        spectra of data and basis sum) or ``"zero"``.
    continuation_broadening_per_s : extra Lorentzian broadening ``L`` (1/s) of data and basis in
        the stages fitted before the final, unbroadened one, decreasing; ``()`` for none (see
        :mod:`scaloquant.fit.batched`).
    max_resets : how many times metabolites that end on a bound are restarted (with
        ``grouping="per_metabolite"``, :mod:`scaloquant.fit.search`), before and again after
        the twin swaps. 1 (was 2; 128 SNR-30 spectra of ``bench_fit_engine.py``, seed 1): the
        second round changed 1 of 128 spectra's amplitudes by more than 0.1 CRLB SD (by 1.1),
        amplitude MAE 0.0653 with it and 0.0652 without, 8 % of the CPU time
        (docs/history/fit-log.md "Fewer iterations, again (session 9)").
    twin_max_separation_hz : metabolites whose largest peaks lie this close (Cr/PCr and GPC/PCho
        in the default basis, 0.74 Hz apart at 3 T) get a second fit with their lineshapes
        swapped; 0 disables it (as ``max_resets``).
    solver : retired (issue 12): the fit has one solver, the batched one
        (:mod:`scaloquant.fit.batched`: many spectra in one torch program, the basis resampled
        to the data). Not a field: ``"batched"`` is accepted and ignored, so code, config files
        and checkpoints that name it keep working; ``"scipy"`` is refused with one line
        (:func:`retired_settings`).
    lineshape : ``"lorentzian"``, ``"voigt"`` or ``"gaussian"`` per group; ``None`` follows
        ``gaussian``. ``"freeform"``: the group Voigt lineshapes,
        and every column convolved with one kernel per spectrum shared by all basis signals
        (LCModel's free-form lineshape): ``2 J + 1`` weights on whole frequency bins ``-J..J``
        (``J`` the bins within ``freeform_halfwidth_hz``), summing to 1, non-negative off the
        centre, under a second-difference smoothness prior of SD ``freeform_smoothness_sd``
        (in units of the noise, as the deviations' priors); fitted in the last pass, with the
        per-metabolite deviations (:func:`scaloquant.fit.problem.make_problem`).
    freeform_halfwidth_hz : half-width of the free-form kernel, Hz.
    freeform_smoothness_sd : SD of the kernel's second differences (its smoothness prior).
    freeform_prior : ``"lcmodel"``: the prior on the kernel's own second differences (LCModel's;
        a delta kernel costs ``6 / sd^2`` noise variances, so it favours a smooth kernel);
        ``"delta"``: on its departure from a delta (the Voigt fit costs nothing).
    baseline : ``"none"``, ``"poly"`` (Legendre, degree ``baseline_order``, default 2) or
        ``"spline"`` (penalised cubic B-splines, knots
        ``baseline_knot_spacing_ppm`` apart, stiffness from ``baseline_ed_per_ppm`` effective
        dimensions per ppm; :mod:`scaloquant.physics.baseline`); ``None`` follows
        ``baseline_order``.
    baseline_stiffness : spline baseline only: ``"fixed"`` (``baseline_ed_per_ppm``
        for every spectrum) or ``"ftest"``: per spectrum, the stiffest of
        ``baseline_ed_candidates_per_ppm`` whose residual stays within an F-test of the most
        flexible candidate's at probability ``baseline_ftest_probability`` (LCModel's rule for
        its baseline regulariser, ``PRMNMX`` 0.02-0.08 in ``LCModel.f``;
        :func:`scaloquant.fit.batched.baseline_ftest_bound`), found with about two refits a
        spectrum (``fit.spectra._solve``). The candidates, 2 to 7 per ppm, lie in
        LCModel's own range: its ``alphaB`` from ``ALPBMN`` (its F-test reference) to
        ``ALPBMX`` is 7.3 to 1.1-2.4 effective dimensions per ppm on the in-vivo spectra of
        ``../shared`` (``benchmarks/_lcmodel.py``, :func:`baseline_ed_per_ppm`), and it chose
        its stiffest end on the Philips spant spectrum. They start at the fixed default's 2:
        from 1 per ppm the rule chose 1 for 123 of 128 tissue-like spectra of known truth (MAE
        1.80 against 1.50 mM from 2) and for spant (Glx/tCr +22 % from LCModel's against -9 %);
        docs/history/fit-log.md "The F-test's stiffest candidate (session 22)".
        ``"adaptive"`` (session 23; ``FIT_PRESETS["invivo"]``'s since session 25): every
        spectrum fitted with the fixed
        ``baseline_ed_per_ppm`` over ``ppm_range``, then LCModel's F-test screened at that
        fit (the most flexible candidate scored at its lineshape, no refit;
        :func:`scaloquant.fit.spectra.asks_for_flexible_baseline`); the spectra whose data
        ask for a more flexible baseline are fitted again with ``"ftest"`` over
        ``baseline_flexible_ppm_range``, the others keep the fixed fit bit for bit
        (``FitResult.window_ppm`` says which window each spectrum had). Why the window
        follows the stiffness: a flexible spline over 4.0-4.2 ppm can follow the residual
        water's tail and trade it with the lines of Ins and tCr at 3.9-4.1 ppm (the cause
        session 9 gave; the Osprey Ins fell 22-25 % under ``"ftest"`` over 0.2-4.2, not
        isolated further), which is why LCModel's window ends at 4.0; a stiff one cannot,
        and the longer window gives it more of those lines (0.2-4.0 cost 7 % of the MAE on
        tissue-like spectra of known truth). Measured (docs/history/fit-log.md
        "One rule for the scanner and the simulated spectra (session 23)"): 0 of 24 scanner
        ratios outside the issue's tolerances (as ``"ftest"`` over 0.2-4.0), the tissue-like
        truth the fixed default's (0, 0 and 1 of 128 spectra refitted at SNR 15, 30, 60), but
        each refitted spectrum costs a fit and refits more (11-13 of 128 default-simulator
        spectra: 33-53 % fewer spectra per CPU-second there since session 25's one solve per
        round, half before).
    baseline_flexible_ppm_range : ``(low, high)`` ppm, ``"adaptive"`` only: the window of
        the spectra refitted with a flexible baseline (clipped to ``ppm_range``); default
        LCModel's 0.2-4.0 ppm.
    baseline_ftest_rule : the bound of ``"ftest"``: ``"region"`` (LCModel's: the stiff fit's
        residual within the confidence region of all ``n`` parameters of the reference) or
        ``"nested"`` (the extra-sum-of-squares F-test of nested fits at level
        ``baseline_ftest_probability``, on the effective dimensions the stiffer baseline drops;
        opt-in, docs/history/fit-log.md "What the simulated spectra ask of the baseline").
    baseline_ftest_two_starts : ``"adaptive"`` only: the F-test's reference fit (the most
        flexible candidate) of a flagged spectrum also started from the fixed fit's answer
        (its ``theta``, no continuation stage), each spectrum keeping the fit whose real-part
        residual is lower (:func:`scaloquant.fit.spectra.lower_reference`): a reference stuck
        in a worse minimum loosens the bound and moves the pick. Opt-in (``--config``):
        steadier picks on the scanner spectra (copies of them moved beyond 1 CRLB SD 6.1 ->
        3.9 %), the same ratios and tissue-like truth (docs/history/fit-log.md "How steady
        the baseline's pick is (session 34, edpick34)"), for more rows in the reference's
        solve: the second start's rows join the first's after the continuation stages
        (``batched.solve(second_start=...)``), the same fits as a second solve at about half
        its extra cost (the 13 flagged default-simulator spectra's reference 0.20-0.45 CPU-s
        dearer, where a second solve cost 0.55-0.83; docs/history/fit-log.md "The reference's
        two starts in one solve (session 34, twostart34)").
    macromolecules : ``"basis"`` (as the basis has them), ``"parametric"``
        (LCModel's MM/lipid Gaussians instead), ``"none"`` or ``"auto"`` (measured ones plus
        parametric lipids, or all parametric when the basis has none);
        :func:`scaloquant.fit.problem.prepare_basis`.
    shift_prior_sd_hz, damping_prior_sd_per_s : per-metabolite deviations from
        their group's shift and damping, held by zero-mean Gaussian priors of these SDs
        (LCModel's approach); ``None`` for none.
    damping_spread_prior_sd_per_s, shift_spread_prior_sd_hz : ``grouping="per_metabolite"``
        only (other groupings ignore them): each metabolite's damping and shift held about
        the metabolites' unweighted mean (the spectrum's common damping and shift, itself
        free) by a Gaussian prior of this SD, ``sum_m (x_m - mean x)^2 / sd^2`` noise
        variances (:func:`scaloquant.fit.problem.spread_prior`); added in a last pass after
        the search, weighted by the noise variance of the residual before it (0 on a
        noiseless spectrum, which the fit then meets exactly), and part of the CRLB.
        ``None`` (the default, so configs and checkpoints written before them keep their
        model) for none; preset ``simulated`` sets the SDs of the default simulator's uniform
        draws, :data:`SIMULATOR_DAMPING_SD_PER_S` and :data:`SIMULATOR_SHIFT_SD_HZ`
        (docs/history/fit-log.md "The per-metabolite model's spread priors").
    mm_shift_prior_sd_hz : ``grouping="metabolites_and_mm"`` or ``"metabolites_and_each_mm"``
        only (other groupings ignore it): the macromolecule and lipid groups' shifts held to the metabolites' by a Gaussian
        prior of this SD, ``(df_k - df_metabolites)^2 / sd^2`` noise variances per group, in every
        pass and part of the CRLB (LCModel holds each of its simulated MM and lipid lines
        within 0.005-0.03 ppm of its position by such priors, its ``CHSIMU`` ``+-``); in the
        passes before the noise level is known (the continuation stages, a first pass) weighed
        by the signal-free region's noise variance, or the start's residual variance
        (:func:`scaloquant.fit.stages.prior_weight`), so that the fit does not depend on the
        data's units. ``None`` (the default, so configs and checkpoints written before it keep
        their model) for none (the groups' shifts free within ``shift_bounds_hz``); preset
        ``invivo`` sets 1.3 Hz (0.01 ppm at 3 T) since session 29: from 16 starts of the MM
        and lipid groups the scanner spectra of ``../shared`` end on ratios at most 2.3 points
        apart, but Osprey TE 35 sub-01 (7.5), where without it 5 of 7 ended 8-15 points
        apart; at the same speed (docs/fit.md, docs/history/fit-log.md "The MM shift prior's
        cost and weight (session 29, mm29)").
    ratio_priors : soft Gaussian priors on amplitude ratios, LCModel's
        ``CHRATO`` (:mod:`scaloquant.physics.priors`): ``"none"``, ``"mm"`` (its
        macromolecule/lipid ratios, which only apply to the parametric components) or
        ``"lcmodel"`` (those and its metabolite priors: Asp, GABA, Glc, Scyllo, Tau to NAA + Cr
        + 3 Cho, GSH to Gln + GSH); their widths scale with a preliminary fit's amplitudes.
    initial_gauss_per_s2 : starting Gaussian ``beta`` with a Voigt or Gaussian lineshape.
    max_iterations : Levenberg–Marquardt iterations per stage.
    water_removal : ``"hlsvd"`` subtracts the residual water (the HLSVD components
        between 4.4 and 5.2 ppm, :mod:`scaloquant.signal.water`) from the data before the fit;
        ``"none"`` fits the data as they are.
    device : torch device of the solver (``"cpu"``, ``"cuda"``).
    decimate_model : form the model's columns from the window's band decimated to ``N / D``
        samples (:mod:`scaloquant.signal.decimate`: their window bins within
        :data:`~scaloquant.signal.decimate.MAX_RELATIVE_ERROR` of the full model's, checked
        for each basis, which is otherwise fitted in full) instead of all ``N``; ``False``
        for the full model (docs/history/fit-log.md "The model on the window's band").
    """

    ppm_range: tuple[float, float] = WINDOW_PPM_1H
    grouping: Grouping = "per_metabolite"
    damping_bounds_per_s: tuple[float, float] = (0.0, 50.0)
    shift_bounds_hz: tuple[float, float] = (-5.0, 5.0)
    global_shift_range_hz: tuple[float, float] = (-10.0, 10.0)
    fit_phase0: bool = True
    fit_phase1: bool = True
    phase1_pivot_ppm: float | None = None
    gaussian: bool = False
    gauss_bounds_per_s2: tuple[float, float] = (0.0, 5000.0)
    baseline_order: int | None = None
    noise_estimate: Literal["residual", "region"] = "residual"
    noise_ppm_range: tuple[float, float] = (9.5, 11.5)
    initial_damping_per_s: float = 2.0
    initial_shift: Literal["xcorr", "zero"] = "xcorr"
    continuation_broadening_per_s: tuple[float, ...] = (40.0, 10.0)
    max_resets: int = 1
    twin_max_separation_hz: float = 1.0
    lineshape: Literal["lorentzian", "voigt", "gaussian", "freeform"] | None = None
    freeform_halfwidth_hz: float = 5.0
    freeform_smoothness_sd: float = 0.1
    freeform_prior: Literal["lcmodel", "delta"] = "lcmodel"
    baseline: Literal["none", "poly", "spline"] | None = None
    baseline_knot_spacing_ppm: float = 0.15
    baseline_ed_per_ppm: float = 2.0
    baseline_stiffness: Literal["fixed", "ftest", "adaptive"] = "fixed"
    baseline_flexible_ppm_range: tuple[float, float] = (0.2, 4.0)
    baseline_ed_candidates_per_ppm: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    baseline_ftest_probability: float = 0.05
    baseline_ftest_rule: Literal["region", "nested"] = "region"
    baseline_ftest_two_starts: bool = False
    macromolecules: Literal["basis", "parametric", "none", "auto"] = "basis"
    shift_prior_sd_hz: float | None = None
    damping_prior_sd_per_s: float | None = None
    damping_spread_prior_sd_per_s: float | None = None
    shift_spread_prior_sd_hz: float | None = None
    mm_shift_prior_sd_hz: float | None = None
    ratio_priors: Literal["none", "mm", "lcmodel"] = "none"
    initial_gauss_per_s2: float = 0.0
    max_iterations: int = 60
    device: str = "cpu"
    decimate_model: bool = True
    water_removal: Literal["none", "hlsvd"] = "none"
    solver: InitVar[str | None] = None

    def __post_init__(self, solver: str | None) -> None:
        retired_settings({} if solver is None else {"solver": solver})
        self._resolve_model_choices()
        self._check_fields()

    def _resolve_model_choices(self) -> None:
        """Fill ``lineshape``/``gaussian`` and ``baseline``/``baseline_order`` from each other
        (the older fields stay valid) and check the choices."""
        if self.lineshape is not None:
            if self.lineshape not in ("lorentzian", "voigt", "gaussian", "freeform"):
                raise ConfigError(
                    "lineshape must be 'lorentzian', 'voigt', 'gaussian' or 'freeform', got "
                    f"{self.lineshape!r}"
                )
            object.__setattr__(self, "gaussian", self.lineshape != "lorentzian")
        # checked before the baseline's choice may drop it: a bad degree is refused, not lost
        order = whole_number("baseline_order", self.baseline_order, 0, or_none=True)
        object.__setattr__(self, "baseline_order", order)
        if self.baseline is not None:
            if self.baseline not in ("none", "poly", "spline"):
                raise ConfigError(
                    f"baseline must be 'none', 'poly' or 'spline', got {self.baseline!r}"
                )
            if self.baseline == "poly" and order is None:
                object.__setattr__(self, "baseline_order", 2)
            if self.baseline != "poly" and order is not None:
                # a degree the fit would not use, dropped without a word, was a setting the
                # user believed applied
                raise ConfigError(
                    f"baseline_order {order} is the degree of the 'poly' baseline, but the "
                    f"baseline is {self.baseline!r}: drop baseline_order, or set baseline 'poly'"
                )
        if self.macromolecules not in ("basis", "parametric", "none", "auto"):
            raise ConfigError(
                "macromolecules must be 'basis', 'parametric', 'none' or 'auto', got "
                f"{self.macromolecules!r}"
            )
        if self.ratio_priors not in ("none", "mm", "lcmodel"):
            raise ConfigError(
                f"ratio_priors must be 'none', 'mm' or 'lcmodel', got {self.ratio_priors!r}"
            )
        for name in (
            "shift_prior_sd_hz",
            "damping_prior_sd_per_s",
            "damping_spread_prior_sd_per_s",
            "shift_spread_prior_sd_hz",
            "mm_shift_prior_sd_hz",
        ):
            value = positive_number(name, getattr(self, name), or_none=True)
            object.__setattr__(self, name, value)
        for name in (
            "baseline_knot_spacing_ppm",
            "baseline_ed_per_ppm",
            "freeform_halfwidth_hz",
            "freeform_smoothness_sd",
        ):
            object.__setattr__(self, name, positive_number(name, getattr(self, name)))
        if self.freeform_prior not in ("lcmodel", "delta"):
            raise ConfigError(
                f"freeform_prior must be 'lcmodel' or 'delta', got {self.freeform_prior!r}"
            )
        if self.baseline_stiffness not in ("fixed", "ftest", "adaptive"):
            raise ConfigError(
                "baseline_stiffness must be 'fixed', 'ftest' or 'adaptive', got "
                f"{self.baseline_stiffness!r}"
            )
        lo, hi = (float(v) for v in self.baseline_flexible_ppm_range)
        if not lo < hi:
            raise ConfigError(
                "baseline_flexible_ppm_range must be (low, high) with low < high, got "
                f"{self.baseline_flexible_ppm_range!r}"
            )
        object.__setattr__(self, "baseline_flexible_ppm_range", (lo, hi))
        try:
            candidates = tuple(sorted(float(v) for v in self.baseline_ed_candidates_per_ppm))
        except (TypeError, ValueError):
            candidates = ()
        if not candidates or not all(math.isfinite(v) and v > 0 for v in candidates):
            raise ConfigError(
                "baseline_ed_candidates_per_ppm must hold positive numbers, got "
                f"{self.baseline_ed_candidates_per_ppm!r}"
            )
        object.__setattr__(self, "baseline_ed_candidates_per_ppm", candidates)
        if self.baseline_ftest_rule not in ("region", "nested"):
            raise ConfigError(
                "baseline_ftest_rule must be 'region' or 'nested', got "
                f"{self.baseline_ftest_rule!r}"
            )
        if not 0 < self.baseline_ftest_probability < 1:
            raise ConfigError(
                "baseline_ftest_probability must be in (0, 1), got "
                f"{self.baseline_ftest_probability!r}"
            )
        object.__setattr__(
            self, "max_iterations", whole_number("max_iterations", self.max_iterations, 1)
        )

    @property
    def lineshape_kind(self) -> Literal["lorentzian", "voigt", "gaussian", "freeform"]:
        """``lineshape``, or when not given, Voigt with ``gaussian`` and Lorentzian without."""
        if self.lineshape is not None:
            return self.lineshape
        return "voigt" if self.gaussian else "lorentzian"

    @property
    def has_spread_priors(self) -> bool:
        """The per-metabolite model with a spread prior on its dampings or shifts (the only
        model they apply to)."""
        return self.grouping == "per_metabolite" and (
            self.damping_spread_prior_sd_per_s is not None
            or self.shift_spread_prior_sd_hz is not None
        )

    @property
    def baseline_kind(self) -> Literal["none", "poly", "spline"]:
        """``baseline``, or when not given, ``"poly"`` with a ``baseline_order``, else none."""
        if self.baseline is not None:
            return self.baseline
        return "none" if self.baseline_order is None else "poly"

    def _check_fields(self) -> None:
        for name in (f.name for f in fields(self) if f.type in (bool, "bool")):  # every switch
            true_or_false(name, getattr(self, name))
        for name in (
            "ppm_range",
            "damping_bounds_per_s",
            "shift_bounds_hz",
            "global_shift_range_hz",
            "gauss_bounds_per_s2",
            "noise_ppm_range",
        ):
            check_range(name, getattr(self, name))
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.water_removal not in ("none", "hlsvd"):
            raise ConfigError(f"water_removal must be none or hlsvd, got {self.water_removal!r}")
        if self.gauss_bounds_per_s2[0] < 0:
            raise ConfigError("gauss_bounds_per_s2 must be >= 0: beta is a Gaussian decay rate")
        if isinstance(self.grouping, str):
            if self.grouping not in GROUPING_NAMES:
                raise ConfigError(
                    f"grouping must be one of {', '.join(GROUPING_NAMES)} or groups of names, "
                    f"got {self.grouping!r}"
                )
        else:
            try:
                groups = tuple(tuple(str(n) for n in g) for g in self.grouping)
            except TypeError:
                raise ConfigError(
                    f"grouping must be one of {', '.join(GROUPING_NAMES)} or groups of names, "
                    f"got {self.grouping!r}"
                ) from None
            object.__setattr__(self, "grouping", groups)
        if self.noise_estimate not in ("residual", "region"):
            raise ConfigError(
                f"noise_estimate must be 'residual' or 'region', got {self.noise_estimate!r}"
            )
        if self.initial_shift not in ("xcorr", "zero"):
            raise ConfigError(
                f"initial_shift must be 'xcorr' or 'zero', got {self.initial_shift!r}"
            )
        if self.phase1_pivot_ppm is not None and not math.isfinite(self.phase1_pivot_ppm):
            raise ConfigError(f"phase1_pivot_ppm must be finite, got {self.phase1_pivot_ppm}")
        lo, hi = self.damping_bounds_per_s
        if not (
            math.isfinite(self.initial_damping_per_s) and lo <= self.initial_damping_per_s <= hi
        ):
            raise ConfigError(
                f"initial_damping_per_s = {self.initial_damping_per_s} is outside "
                f"damping_bounds_per_s ({lo}, {hi})"
            )
        try:
            stages = tuple(float(v) for v in self.continuation_broadening_per_s)
        except (TypeError, ValueError):
            raise ConfigError(
                "continuation_broadening_per_s must be a sequence of numbers (1/s), "
                f"got {self.continuation_broadening_per_s!r}"
            ) from None
        if not all(math.isfinite(v) and v > 0 for v in stages) or any(
            a <= b for a, b in pairwise(stages)
        ):
            raise ConfigError(
                f"continuation_broadening_per_s must hold positive, decreasing values, got {stages}"
            )
        object.__setattr__(self, "continuation_broadening_per_s", stages)
        object.__setattr__(self, "max_resets", whole_number("max_resets", self.max_resets, 0))
        if not (math.isfinite(self.twin_max_separation_hz) and self.twin_max_separation_hz >= 0):
            raise ConfigError(
                f"twin_max_separation_hz must be >= 0, got {self.twin_max_separation_hz}"
            )

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists), e.g. for a provenance file."""

        def plain(v):
            return [plain(x) for x in v] if isinstance(v, tuple) else v

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitConfig:
        """Rebuild a config from :meth:`to_dict` output (or a config file's mapping); unknown
        keys are an error, the settings of the retired scipy solver as
        :func:`retired_settings` says."""
        data = dict(data)
        retired_settings(data)
        for name in RETIRED_SETTINGS:
            data.pop(name, None)
        return dataclass_from_dict(cls, data, "fit")


#: Settings of the scipy solver retired in issue 12, which older config files and checkpoints
#: (``FitConfig.to_dict``) hold: ``solver`` (only ``"batched"`` is still accepted) and the
#: stopping rules of ``scipy.optimize.least_squares``, ``tolerance`` and ``max_evaluations``,
#: which the batched solver never read (its own is ``max_iterations``); :meth:`FitConfig.from_dict`
#: drops them.
RETIRED_SETTINGS = ("solver", "tolerance", "max_evaluations")


def retired_settings(data: Mapping[str, Any]) -> None:
    """Refuse, with one line, a ``solver`` other than ``"batched"`` in ``data`` (a config's
    settings): the scipy solver was retired."""
    solver = data.get("solver")
    if solver is not None and solver != "batched":
        raise ConfigError(
            f"solver {solver!r} no longer exists: the fit has one solver, the batched one; drop "
            "the setting (preset 'simulated' is the per-metabolite model the scipy fit had)"
        )


def require_mm_spectra_fit(
    n_spectra: int,
    n_inputs: int,
    macromolecules: str | None,
    *,
    setting: str = "macromolecules {!r}",
) -> None:
    """Refuse measured MM spectra (``fit --mm-spectrum``, ``fit_inputs``' ``mm_spectra``; none:
    nothing to check) whose count ``n_spectra`` is neither one for all ``n_inputs`` inputs nor
    one per input, or that come with ``macromolecules`` ``"parametric"`` or ``"none"`` (None:
    not set), which would take the fit's macromolecules from elsewhere. The one check of both:
    the CLI makes it before anything is read, naming its ``--mm`` flag (``setting="--mm {}"``,
    the words of a value), and :func:`scaloquant.quantify.fit_run.fit_inputs` again, naming
    the fit's setting (a Python caller's or a config file's).

    Raises
    ------
    NeedsOption : either refusal, the spectra named as the caller's option ``mm_spectrum``.
    """
    if not n_spectra:
        return
    if n_spectra not in (1, n_inputs):
        raise NeedsOption(
            f"{n_spectra} ",
            Option("mm_spectrum"),
            f" files for {counted(n_inputs, 'input')}; give one for all inputs or one per "
            "input, in the inputs' order",
        )
    if macromolecules in ("parametric", "none"):
        raise NeedsOption(
            Option("mm_spectrum"),
            f" is the fit's macromolecules and {setting.format(macromolecules)} asks for "
            f"{macromolecules} instead: give one or the other (with ",
            Option("mm_spectrum"),
            f", {setting.format('auto')} adds parametric lipids, {setting.format('basis')} none)",
        )


#: Named fit configurations (``scaloquant fit --preset``; start a custom one from them).
#:
#: ``"invivo"``: the model LCModel and FSL-MRS users expect for tissue spectra: one group of
#: metabolites and one of macromolecules/lipids each sharing a Voigt lineshape and a shift, small
#: per-metabolite shift/damping deviations under soft Gaussian priors (SD 0.5 Hz and 0.5/s:
#: LCModel's defaults at 3 T, DESDSH 0.004 ppm and DESDT2 0.4/s scaled by sqrt(MHz / 85.16)), a penalised cubic spline baseline (knots 0.15 ppm apart,
#: 2 effective dimensions per ppm; :mod:`scaloquant.physics.baseline`), the measured
#: macromolecule spectrum of the basis or LCModel's parametric components when it has none, over
#: 0.2-4.2 ppm, solved by the batched variable-projection Levenberg–Marquardt fit on a torch
#: device; a spectrum whose data ask for a more flexible baseline (LCModel's F-test at that fit)
#: is fitted again by LCModel's stiffness rule over its 0.2-4.0 ppm (``baseline_stiffness=
#: "adaptive"``, the default since session 25: every scanner ratio within issue 12's tolerances
#: of LCModel's, where the fixed stiffness left 3 of 24 outside; docs/fit.md). The global shift search spans ±45 Hz (0.35 ppm at 3 T: frequency drift and
#: referencing errors of real scans, as LCModel's referencing; docs/fit.md). ``"simulated"`` (``fit_spectra``'s default): the per-metabolite model
#: for spectra of the simulator (the family of the paper's Eq. 1): a damping and a shift per
#: metabolite, no baseline, with the restarts, twin swaps, re-centred shift bounds and second
#: search of :mod:`scaloquant.fit.search` and the LM damping in scaled parameters
#: (:data:`scaloquant.fit.problem.SCALING_FLOOR_PER_METABOLITE`), and in a last pass the
#: dampings and shifts held about their common value by the spread priors of the simulator's
#: own spread (``damping_spread_prior_sd_per_s``): exact on 64 of 64 noiseless spectra of the
#: default simulator, SD within +-25 % of the CRLB at SNR 30 for NAA, Cr, PCr, GPC+PCho, Ins
#: and Glu on spectrum seeds 0-2 (docs/fit.md "Where it stands"). ``"simulated-plain"``
#: (``FitConfig()``): the same without the spread priors (Glu's SD 1.37 times its CRLB on seed 0).
FIT_PRESETS: dict[str, FitConfig] = {
    "invivo": FitConfig(
        grouping="metabolites_and_mm",
        lineshape="voigt",
        baseline="spline",
        macromolecules="auto",
        shift_prior_sd_hz=0.5,
        damping_prior_sd_per_s=0.5,
        global_shift_range_hz=(-45.0, 45.0),
        shift_bounds_hz=(-10.0, 10.0),
        damping_bounds_per_s=(0.0, 60.0),
        gauss_bounds_per_s2=(0.0, 3000.0),
        initial_damping_per_s=3.0,
        initial_gauss_per_s2=50.0,
        continuation_broadening_per_s=(10.0,),
        water_removal="hlsvd",
        baseline_stiffness="adaptive",
        mm_shift_prior_sd_hz=1.3,
    ),
    "simulated": FitConfig(
        damping_spread_prior_sd_per_s=SIMULATOR_DAMPING_SD_PER_S,
        shift_spread_prior_sd_hz=SIMULATOR_SHIFT_SD_HZ,
    ),
    "simulated-plain": FitConfig(),
}
