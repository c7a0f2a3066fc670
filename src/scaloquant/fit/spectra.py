"""The batch API: fit every spectrum of a :class:`~scaloquant.types.FID` with a basis set."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, InvalidDataError
from ..signal import axes
from ..signal.noise import residual_sum_of_squares
from ..types import FID, Acquisition, BasisSet
from .config import FIT_PRESETS, FitConfig
from .result import BATCH_FIELDS, FitResult, FitSpectra, FitStart


def fit_spectra(
    fid: FID,
    basis: BasisSet,
    config: FitConfig | None = None,
    *,
    start: FitStart | None = None,
    covariance: bool = False,
) -> FitResult:
    """Fit every spectrum of ``fid`` as a linear combination of ``basis``.

    See :mod:`scaloquant.physics.model` for the model and :mod:`scaloquant.fit.batched` for the
    method and the bounds (:mod:`scaloquant.fit.search` for the per-metabolite model's global
    moves).

    Parameters
    ----------
    fid : samples ``(..., n_points)``. The basis is resampled to the data's grid
        (:func:`scaloquant.fit.basis_grid.basis_on_grid`: same nucleus, field within 5%), and
        macromolecules/lipids are set up as ``config.macromolecules`` says, so the result's
        ``names`` may differ from the basis'.
    basis : the metabolites to fit (use ``basis.subset(...)`` to fit fewer).
    config : options; default ``FIT_PRESETS["simulated"]`` (the per-metabolite model with
        its spread priors; ``FitConfig()`` is the same without them, ``simulated-plain``).
    start : optional starting values (e.g. from a network), see :class:`FitStart`.
    covariance : keep the amplitudes' whole covariance bound
        (:attr:`FitResult.amplitude_covariance`, ``(..., M, M)``, for the bound of any sum,
        :meth:`FitResult.crlb_sd_of_sum`); by default only what the outputs read of it is kept
        (the combined rows' SDs and the pairs' correlation coefficients), read chunk by chunk.

    Returns
    -------
    FitResult
        Arrays of the batch shape ``(...)`` of ``fid``.

    Raises
    ------
    IncompatibleDataError
        The data's nucleus or field differs from the basis set's.
    ConfigError
        The ppm window or noise region lies off the data's axis, holds too few points, or a
        grouping names an unknown metabolite.
    InvalidDataError
        A starting value has the wrong shape or is not finite.
    """
    config = config or FIT_PRESETS["simulated"]
    return _fit_batched(fid, basis, config, start, covariance)


def fit_given_amplitudes(
    fid: FID, basis: BasisSet, amplitudes: np.ndarray, config: FitConfig | None = None
) -> FitResult:
    """Fit only the nonlinear parameters of the model, with every amplitude held fixed.

    For a network's estimate: the result draws its fit figure (:func:`fitted_spectra`) and
    starts a full fit (``fit_spectra(..., start=FitStart.from_result(result))``). The model is
    that of :func:`fit_spectra` with ``a_m`` given, solved by
    :func:`scaloquant.fit.batched.solve_given_amplitudes` for all spectra at once: first one
    damping and shift for all metabolites with the phases (and Gaussian, if configured),
    started from the cross-correlation shift, ``config.initial_damping_per_s`` and the
    zero-order phase that aligns the model with the data; then, unless ``config.grouping`` is
    ``"global"``, a damping and shift per group started from those, with the restarts and twin
    swaps of :mod:`scaloquant.fit.search` for the per-metabolite model. A baseline, if
    configured, is eliminated in closed form. The basis is resampled to the data's grid as
    :func:`fit_spectra` does (``macromolecules="basis"``).

    The default grouping here is ``"global"``: a network's amplitudes come without lineshapes
    of their own, and a damping and shift per metabolite would partly absorb the amplitudes'
    errors (a flattering figure) at twenty times the cost (100-120 evaluations per spectrum
    instead of 7 for estimates with a MAE of 0.07, default simulator: about 4.5 instead of 100
    spectra per CPU-second). Started from the global result, a full fit without continuation
    stages reaches about the same amplitudes as one from scratch (``benchmarks/bench_fit.py``).

    Parameters
    ----------
    fid : samples ``(..., n_points)``.
    basis : the metabolites of ``amplitudes``, in their order.
    amplitudes : ``(..., M)`` amplitudes on the basis scale, finite (any sign: a network's
        estimate is drawn as it is).
    config : options; default ``FitConfig(grouping="global")``.

    Returns
    -------
    FitResult
        ``amplitudes`` as given; ``crlb_sd``, ``crlb_pct``, ``combined_crlb_sd`` and
        ``amplitude_correlations`` NaN, no ``amplitude_covariance``
        (bounds of amplitudes that were not estimated would mean nothing); ``noise_sd`` from
        the residual, counting only the nonlinear and baseline parameters as fitted.

    Raises
    ------
    IncompatibleDataError
        The data's nucleus or field differs from the basis set's.
    InvalidDataError
        ``amplitudes`` has the wrong shape or is not finite.
    ConfigError
        As for :func:`fit_spectra`.
    """
    config = config or FitConfig(grouping="global")
    batch_shape, m = fid.batch_shape, basis.n_metabolites
    values = np.asarray(amplitudes, dtype=np.float64)
    if values.shape != (*batch_shape, m):
        raise InvalidDataError(
            f"amplitudes have shape {values.shape}; give one per metabolite of the basis set for "
            f"each spectrum: {(*batch_shape, m)}"
        )
    if not np.all(np.isfinite(values)):
        raise InvalidDataError("amplitudes contain NaN or Inf; give finite values")
    return _given_batched(fid, basis, values.reshape(-1, m), config)


def _given_batched(
    fid: FID, basis: BasisSet, amplitudes: np.ndarray, config: FitConfig
) -> FitResult:
    """:func:`fit_given_amplitudes` on the batched solver
    (:func:`scaloquant.fit.batched.solve_given_amplitudes`), ``amplitudes`` ``(B, M)``."""
    from . import batched

    with threadpool_limits(limits=1, user_api="blas"):  # see _fit_batched
        prepared, conversions = _prepared(basis, fid, config)
        if prepared.names != basis.names:
            raise ConfigError(
                "amplitudes are given for the basis' metabolites, but macromolecules="
                f"{config.macromolecules!r} changes them; use macromolecules='basis'"
            )
        fids = _without_water(fid, config)
    fit = batched.solve_given_amplitudes(fids, prepared, config, amplitudes)
    fixed = config.baseline_ed_per_ppm if config.baseline_kind == "spline" else np.nan
    baseline_ed = np.full(fids.shape[0], fixed)
    return _batched_result(fit, baseline_ed, fid, fids, prepared, config, conversions)


def region_noise_sd(
    spectra: np.ndarray, ppm: np.ndarray, ppm_range: tuple[float, float]
) -> np.ndarray:
    """Noise SD per real part from a signal-free region, ``(B, N)`` spectra -> ``(B,)``.

    A straight complex line is removed first (two complex parameters), so a slowly varying
    residual baseline or water tail does not count as noise.
    """
    lo, hi = ppm_range
    sel = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    if sel.size < 8:
        raise ConfigError(
            f"noise_ppm_range ({lo:g}, {hi:g}) holds {sel.size} spectral points of the data "
            f"(axis {ppm[0]:.2f} to {ppm[-1]:.2f} ppm); pick a signal-free range with at least 8"
        )
    design = np.stack([np.ones(sel.size), ppm[sel] - ppm[sel].mean()], axis=1)
    dof = 2 * sel.size - 4
    return np.sqrt(residual_sum_of_squares(design, spectra[:, sel].T) / dof)


def _prepared(basis: BasisSet, fid: FID, config: FitConfig) -> tuple[BasisSet, tuple[str, ...]]:
    """The basis on the data's grid with the configured macromolecules, and the conversions."""
    _, prepared, conversions = prepared_on_grid(basis, fid.acquisition, config)
    return prepared, conversions


def prepared_on_grid(
    basis: BasisSet, acquisition: Acquisition, config: FitConfig
) -> tuple[BasisSet, BasisSet, tuple[str, ...]]:
    """How the batched fit prepares ``basis`` for data on ``acquisition``: ``(the basis on
    that grid (its reference corrected from its singlets where needed), that basis with the
    configured macromolecules (what the fit's model uses), the conversions made)``."""
    from .basis_grid import basis_for_data
    from .problem import macromolecule_choice, prepare_basis, same_scanner

    on_grid, conversions = basis_for_data(basis, acquisition)
    scanner = same_scanner(basis.spectrometer_freq_mhz, acquisition.spectrometer_freq_mhz)
    prepared = prepare_basis(on_grid, config, same_scanner=scanner)
    choice = macromolecule_choice(on_grid, config, same_scanner=scanner)
    if (
        config.macromolecules == "auto"
        and choice == "parametric"
        and prepared.names != on_grid.names
    ):
        conversions = (
            *conversions,
            "the basis' measured macromolecules replaced by LCModel's parametric ones (the "
            "data come from another scanner type)",
        )
    return on_grid, prepared, conversions


def _without_water(fid: FID, config: FitConfig) -> np.ndarray:
    """The FIDs ``(B, N)`` the batched fit sees: less their residual water with
    ``config.water_removal == "hlsvd"`` (:func:`scaloquant.signal.water.remove_water`), on
    as many threads as the solver's torch threads (``--threads``; the same FIDs to the bit on
    any number: until session 30 they moved by ~1e-13 of the water with torch's threads, which
    the fit carried to up to 4e-6 of some amplitudes, docs/history/fit-log.md "The same
    numbers on any number of threads (session 30, threads30)")."""
    fids = fid.samples.reshape(-1, fid.n_points)
    if config.water_removal != "hlsvd":
        return fids
    import torch

    from ..signal.water import remove_water

    return remove_water(
        fids,
        fid.dwell_time_s,
        fid.spectrometer_freq_mhz,
        fid.ppm_reference,
        threads=torch.get_num_threads(),
    )


def _start_arrays(
    start: FitStart | None, batch_shape: tuple[int, ...], names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """A :class:`FitStart` as flat arrays: ``(B, M)`` for damping and shift (in the order of
    ``names``, the fitted basis'), ``(B,)`` else; a value of another shape is refused with one
    line naming it."""
    if start is None:
        return {}
    n, m = int(np.prod(batch_shape, dtype=int)), len(names)
    out = {}
    for name in ("damping_per_s", "shift_hz", "phase0_rad", "phase1_rad_per_ppm", "gauss_per_s2"):
        value = getattr(start, name)
        if value is None:
            continue
        arr = np.asarray(value)
        per_metabolite = name in ("damping_per_s", "shift_hz")
        if per_metabolite and start.names is not None:
            arr = _start_columns(arr, name, start.names, names)
        try:
            if not per_metabolite:
                out[name] = np.broadcast_to(arr, batch_shape).reshape(n)
                continue
            if arr.shape[-1:] != (m,) or arr.ndim != len(batch_shape) + 1:
                arr = np.broadcast_to(arr.reshape(*arr.shape, 1), (*batch_shape, m))
            out[name] = np.broadcast_to(arr, (*batch_shape, m)).reshape(n, m)
        except ValueError:
            shapes = f"{batch_shape}"
            if per_metabolite:
                shapes += f" or per metabolite {(*batch_shape, m)}"
            raise InvalidDataError(
                f"starting value {name} has shape {arr.shape}; give one value per spectrum {shapes}"
            ) from None
    return out


def _start_columns(
    arr: np.ndarray, name: str, given: tuple[str, ...], names: tuple[str, ...]
) -> np.ndarray:
    """The per-component start ``arr`` ``(..., len(given))`` of the components ``given`` as
    ``(..., len(names))`` in the order of ``names``: a name the start does not give starts at
    the mean of the given columns of its spectrum (:class:`FitStart`)."""
    if arr.shape[-1:] != (len(given),):
        raise InvalidDataError(
            f"starting value {name} has shape {arr.shape}; its last axis must hold one value "
            f"per named component ({len(given)})"
        )
    if given == names:
        return arr
    known = [given.index(n) if n in given else -1 for n in names]
    if all(k < 0 for k in known):
        raise InvalidDataError(
            f"the start names none of the fitted components ({', '.join(names[:4])}, ...); "
            "start from a fit on the same basis"
        )
    mean = arr.mean(axis=-1)
    return np.stack([arr[..., k] if k >= 0 else mean for k in known], axis=-1)


def _solve(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    region: np.ndarray | None,
    start: dict[str, np.ndarray],
    also_from: np.ndarray | None = None,
    covariance: bool = False,
):
    """``(BatchedFit, baseline effective dimensions per ppm (B,), NaN without a spline)`` of
    :func:`scaloquant.fit.batched.solve`. With ``config.baseline_stiffness == "ftest"`` (a
    spline baseline), LCModel's rule: each spectrum keeps the fit of the stiffest candidate
    whose real-part residual stays within the F-test bound of the most flexible candidate's
    fit (:func:`~scaloquant.fit.batched.baseline_ftest_bound`), found cheaply:

    1. the fit with the most flexible candidate (the reference); given ``also_from``
       (``(B, P)`` nonlinear parameters: ``"adaptive"``'s fixed fit's ``theta``, with
       ``config.baseline_ftest_two_starts``), that fit again from there without the
       continuation stages, as more rows of the same solve (:func:`_reference`), each
       spectrum keeping the one with the lower score (:func:`lower_reference`);
    2. every candidate scored at the reference's lineshape, amplitudes and baseline solved
       again (no refit; :func:`~scaloquant.fit.batched.baseline_ftest_ssq`): a lineshape
       adapted to the flexible baseline can only favour it, so the stiffest candidate that
       passes there is an upper bound of the flexibility;
    3. refits from the reference (from its own nonlinear parameters, ``BatchedFit.theta``,
       without the continuation stages) one candidate stiffer at a time while they pass; a
       spectrum whose first stiffer refit fails is refitted at the candidate of step 2, and
       while that refit fails the bound, one candidate more flexible (up to the reference);
       each round one batched fit of every spectrum refitted in it, whatever their candidates
       (``batched.solve(baseline_ed_per_ppm=...)``: the same fits as one solve per
       candidate); while that solve stays below ``batched.ONE_THREAD_BELOW`` spectra, it also
       refits what the next round may ask of them (the candidate after a pass and after a
       failure), and the next round takes its refits from it: the same fits in one solve
       where two ran (docs/history/fit-log.md "The F-test's refit rounds in one solve
       (session 31, speed31)").

    Measured (docs/history/fit-log.md "The F-test made cheap"): the same choice as refitting
    every candidate on the six in-vivo spectra of ``../shared``, with 2 refits a spectrum instead
    of 7; the refits' start: "The adaptive rule's refit (session 24)"."""
    from . import batched

    if config.baseline_kind != "spline" or config.baseline_stiffness == "fixed":
        fit = batched.solve(
            fids, basis, config, region_noise_sd=region, start=start, covariance=covariance
        )
        fixed = config.baseline_ed_per_ppm if config.baseline_kind == "spline" else np.nan
        return fit, np.full(fids.shape[0], fixed)
    candidates = config.baseline_ed_candidates_per_ppm
    fit, score = _reference(fids, basis, config, region, start, also_from, covariance)

    def refit(k: np.ndarray, rows: np.ndarray):
        """The spectra ``rows`` refitted from the reference, each with its candidate ``k``
        ``(len(rows),)``: one batched fit whatever their mix."""
        return batched.solve(
            fids[rows],
            basis,
            replace(config, continuation_broadening_per_s=()),
            region_noise_sd=None if region is None else region[rows],
            start={"theta": fit.theta[rows]},
            baseline_ed_per_ppm=np.asarray(candidates)[k],
            covariance=covariance,
        )

    # each candidate's problem built once (the bound's, the first scores', the refit rounds'),
    # and the candidates scored at the reference's lineshape in one pass (its columns formed
    # once): the stiffer ones, and the reference's own score where its choice did not give it
    problems = [batched.baseline_problem(basis, config, ed) for ed in candidates]
    flexible = problems[-1]
    scores = batched.baseline_ftest_ssq(
        fids, problems[:-1] if score is not None else [flexible, *problems[:-1]], fit, fit
    )
    if score is None:
        score, scores = scores[0], scores[1:]
    # (C, B): one row for every candidate (the same row under LCModel's rule)
    bound = np.stack(
        [
            batched.baseline_ftest_bound(
                fids, basis, config, fit, ed, score=score, flexible=flexible, stiff=stiff
            )
            for ed, stiff in zip(candidates, problems, strict=True)
        ]
        if config.baseline_ftest_rule == "nested"
        else [
            batched.baseline_ftest_bound(fids, basis, config, fit, score=score, flexible=flexible)
        ]
        * len(candidates)
    )
    within = np.stack(
        [ssq <= bound[k] for k, (ssq, _) in enumerate(scores)]
        + [np.ones(fids.shape[0], dtype=bool)]
    )  # (C, B) at the reference's lineshape
    index = np.argmax(within, axis=0)
    parts = {f: np.array(getattr(fit, f)) for f in batched.BatchedFit.__dataclass_fields__}
    last = len(candidates) - 1
    # each spectrum's refits, in rounds of one batched fit for all whatever their candidates:
    # one candidate stiffer at a time while they pass (searching); where none passed, at step
    # 2's candidate and, while that fails, one more flexible, up to the reference (refitted:
    # the spectrum's fit is that of its candidate ``index``). Every refit starts from the
    # reference, so a spectrum's refits are the same in any round and any company: a round's
    # solve also refits, where the solve stays small (one thread, fewer than ONE_THREAD_BELOW),
    # what the next round may ask of its spectra (after a pass and after a failure), and the
    # next round takes its refits from that solve (one solve where two ran, the same fits:
    # docs/history/fit-log.md "The F-test's refit rounds in one solve (session 31, speed31)")
    state = _FtestSearch.start(index, last)
    solved: tuple[batched.BatchedFit, dict[tuple[int, int], int]] | None = None
    while state.pending.any():
        rows = np.flatnonzero(state.pending)
        k = state.trial[rows]
        pairs = list(zip(rows.tolist(), k.tolist(), strict=True))
        if solved is None or any(pair not in solved[1] for pair in pairs):
            ahead = state.next_pairs(rows, k)
            if len(pairs) + len(ahead) < batched.ONE_THREAD_BELOW:
                pairs += ahead
            at = np.array([r for r, _ in pairs])
            solved = refit(np.array([c for _, c in pairs]), at), {p: j for j, p in enumerate(pairs)}
            sub = solved[0].take(np.arange(rows.size))
        else:
            sub = solved[0].take(np.array([solved[1][p] for p in pairs]))
        ok = np.empty(rows.size, dtype=bool)
        for c in np.unique(k):
            at = np.flatnonzero(k == c)
            [(ssq, _)] = batched.baseline_ftest_ssq(
                fids[rows[at]], [problems[c]], sub.take(at), fit.take(rows[at])
            )
            ok[at] = ssq <= bound[c, rows[at]]
        for name, value in parts.items():
            value[rows[ok]] = getattr(sub, name)[ok]
        state = state.judged(rows, k, ok)
    return replace(fit, **parts), np.asarray(candidates)[state.index]


def _reference(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    region: np.ndarray | None,
    start: dict[str, np.ndarray],
    also_from: np.ndarray | None,
    covariance: bool = False,
):
    """:func:`_solve`'s reference fit, ``config``'s at the most flexible of its
    ``baseline_ed_candidates_per_ppm``, and its
    :func:`~scaloquant.fit.batched.baseline_ftest_score` where it was scored (else None).
    With ``also_from`` ``(B, P)``, each spectrum's lower of it and the fit from ``also_from``
    without the continuation stages (:func:`lower_reference`): both starts as rows of one
    solve (``batched.solve(second_start=...)``; the per-metabolite model's global moves, whose
    second search runs the stages again, in a solve of their own)."""
    from . import batched, search

    flexible = replace(config, baseline_ed_per_ppm=config.baseline_ed_candidates_per_ppm[-1])
    if also_from is None:
        fit = batched.solve(
            fids, basis, flexible, region_noise_sd=region, start=start, covariance=covariance
        )
        return fit, None
    if search.applies(config):
        fit = batched.solve(
            fids, basis, flexible, region_noise_sd=region, start=start, covariance=covariance
        )
        other = batched.solve(
            fids,
            basis,
            replace(flexible, continuation_broadening_per_s=()),
            region_noise_sd=region,
            start={"theta": also_from},
            covariance=covariance,
        )
        # side by side, as the one solve's rows
        both = batched.BatchedFit.joined([fit, other]).take(
            batched.side_by_side_rows(fids.shape[0])
        )
    else:
        # the second start's rows join the first's after the stages: the same fits, where two
        # solves cost two passes (docs/history/fit-log.md "The reference's two starts in one
        # solve (session 34, twostart34)")
        both = batched.solve(
            fids,
            basis,
            flexible,
            region_noise_sd=region,
            start=start,
            second_start=also_from,
            covariance=covariance,
        )
    return lower_reference(fids, basis, config, both)


def lower_reference(fids: np.ndarray, basis: BasisSet, config: FitConfig, both):
    """Of two fits of each of the FIDs ``fids`` ``(B, N)`` with the most flexible of
    ``config.baseline_ed_candidates_per_ppm``, side by side in ``both``
    (:class:`~scaloquant.fit.batched.BatchedFit` of ``2 B`` rows, spectrum ``j``'s at rows
    ``2 j`` and ``2 j + 1``, as ``batched.solve(second_start=...)`` gives them), each
    spectrum's with the lower F-test score (the real part of its residual at its own
    lineshape, :func:`~scaloquant.fit.batched.baseline_ftest_score`; the first's on a tie): the
    reference of LCModel's rule, whose bound a reference stuck in a worse minimum loosens
    (``baseline_ftest_two_starts``; LCModel takes a solution below its reference's residual as
    the reference, ``RFALSI`` in ``LCModel.f``). Returns ``(the fits (B, ...), their score)``,
    the score as :func:`~scaloquant.fit.batched.baseline_ftest_bound` takes it: the rows taken
    once by the winners' index, the bound not scored again."""
    from . import batched

    ssq, active = batched.baseline_ftest_score(np.repeat(fids, 2, axis=0), basis, config, both)
    rows = 2 * np.arange(fids.shape[0]) + (ssq[1::2] < ssq[0::2])
    return both.take(rows), (ssq[rows], active[rows])


@dataclass(frozen=True)
class _FtestSearch:
    """The state of :func:`_solve`'s refit rounds, per spectrum ``(B,)``: ``index`` (the
    candidate whose fit the spectrum keeps), ``refitted`` (that fit is a refit's, or the
    reference's), ``searching`` (still trying one candidate stiffer) and ``trial`` (the
    candidate of its next refit); ``last``: the reference's candidate."""

    index: np.ndarray
    refitted: np.ndarray
    searching: np.ndarray
    trial: np.ndarray
    last: int

    @classmethod
    def start(cls, index: np.ndarray, last: int) -> _FtestSearch:
        """The search from step 2's candidates ``index``."""
        searching = index > 0
        return cls(index, index == last, searching, np.where(searching, index - 1, index), last)

    @property
    def pending(self) -> np.ndarray:
        """A refit to come."""
        return self.searching | ~self.refitted

    def judged(self, rows: np.ndarray, k: np.ndarray, ok: np.ndarray) -> _FtestSearch:
        """The state after the spectra ``rows``' refits at their candidates ``k`` passed
        (``ok``) or not."""
        index, refitted = self.index.copy(), self.refitted.copy()
        searching, trial = self.searching.copy(), self.trial.copy()
        refitted[rows[ok]] = True
        index[rows[ok]] = k[ok]
        was_searching = searching[rows]
        stiffer = was_searching & ok & (k > 0)
        trial[rows[stiffer]] = k[stiffer] - 1
        searching[rows[was_searching & ~stiffer]] = False
        worse = ~was_searching & ~ok
        index[rows[worse]] = k[worse] + 1
        refitted[rows[worse]] = k[worse] + 1 == self.last
        back = ~searching[rows] & ~refitted[rows]  # refitted next at their candidate
        trial[rows[back]] = index[rows[back]]
        return _FtestSearch(index, refitted, searching, trial, self.last)

    def next_pairs(self, rows: np.ndarray, k: np.ndarray) -> list[tuple[int, int]]:
        """The ``(row, candidate)`` refits the next round may ask of the spectra ``rows``
        refitted at ``k`` now: the round after a pass and after a failure of each."""
        ahead: list[tuple[int, int]] = []
        for outcome in (True, False):
            after = self.judged(rows, k, np.full(rows.size, outcome))
            ahead += [(r, int(after.trial[r])) for r in rows[after.pending[rows]].tolist()]
        return ahead


def _fit_batched(
    fid: FID, basis: BasisSet, config: FitConfig, start: FitStart | None, covariance: bool
) -> FitResult:
    """:func:`fit_spectra` with the batched solver (:mod:`scaloquant.fit.batched`)."""
    # numpy's BLAS on one thread around the whole fit: the basis, water and noise steps, every
    # problem's spline baseline matrices (the solves', the F-test's) and the rebuilt spectra
    # call it on small matrices, where a threaded BLAS spins on busy cores (64 spectra: 1.6x
    # the CPU time of the whole fit without this; OpenBLAS made such decompositions up to 100
    # times slower on a busy 2-core machine; the spline matrices 21 ms a call on 2 threads at
    # load 5 against ~1 ms on one:
    # docs/history/fit-log.md "The slice's fit (session 27, slice27)")
    with threadpool_limits(limits=1, user_api="blas"):
        prepared, conversions = _prepared(basis, fid, config)
        fids = _without_water(fid, config)
        n = fids.shape[0]
        try:
            region = region_noise_sd(
                fid.spectrum().reshape(n, -1), fid.ppm_axis(), config.noise_ppm_range
            )
        except ConfigError:
            if config.noise_estimate == "region":
                raise
            region = None
        batch_shape = fid.batch_shape
        start_arrays = _start_arrays(start, batch_shape, prepared.names)
        if config.baseline_kind == "spline" and config.baseline_stiffness == "adaptive":
            return _fit_adaptive(
                fid, fids, prepared, config, region, start_arrays, conversions, covariance
            )
        fit, baseline_ed = _solve(fids, prepared, config, region, start_arrays, None, covariance)
        return _batched_result(fit, baseline_ed, fid, fids, prepared, config, conversions)


def flexible_baseline_config(config: FitConfig) -> FitConfig:
    """The fit model of ``baseline_stiffness="adaptive"``'s refits of the spectra that ask for a
    more flexible baseline (:func:`asks_for_flexible_baseline`): ``config`` with LCModel's
    F-test stiffness (``"ftest"``) over ``baseline_flexible_ppm_range`` within ``ppm_range``."""
    (lo, hi), (flexible_lo, flexible_hi) = config.ppm_range, config.baseline_flexible_ppm_range
    return replace(
        config,
        baseline_stiffness="ftest",
        ppm_range=(max(lo, flexible_lo), min(hi, flexible_hi)),
    )


def fit_result_at(
    fid: FID, basis: BasisSet, config: FitConfig, theta: np.ndarray, *, deviations: bool
) -> FitResult:
    """The :class:`FitResult` of ``config``'s model of the flat ``fid`` ``(B, N)`` at the
    nonlinear parameters ``theta`` ``(B, P)`` (the layout of its problem with or without the
    per-metabolite ``deviations``), without an iteration
    (:func:`scaloquant.fit.batched.fit_at`): amplitudes, baseline, CRLBs and the outputs
    derived from the fitted spectra, as :func:`fit_spectra`'s; the basis goes to the data's
    grid as there, the water is removed as ``config`` says. For a physics-head model's
    polished parameters, drawn as the fit's figures (:mod:`scaloquant.quantify`)."""
    from . import batched

    with threadpool_limits(limits=1, user_api="blas"):  # small matrices, as _fit_batched
        prepared, conversions = _prepared(basis, fid, config)
        fids = _without_water(fid, config)
        fit = batched.fit_at(fids, prepared, config, theta, deviations=deviations)
    stiffness = config.baseline_ed_per_ppm if config.baseline_kind == "spline" else np.nan
    baseline_ed = np.full(fids.shape[0], stiffness)
    return _batched_result(fit, baseline_ed, fid, fids, prepared, config, conversions)


def asks_for_flexible_baseline(
    fids: np.ndarray, basis: BasisSet, config: FitConfig, fit
) -> np.ndarray:
    """Whether each spectrum's fit ``fit`` (a :class:`~scaloquant.fit.batched.BatchedFit`
    with the fixed ``config.baseline_ed_per_ppm``, or the
    :class:`~scaloquant.fit.batched.Lineshapes` of a physics-head model's polish) fails
    LCModel's F-test against the most flexible of ``config.baseline_ed_candidates_per_ppm``,
    ``(B,)`` bool: the real part of its residual above
    :func:`~scaloquant.fit.batched.baseline_ftest_bound`, both scored at
    ``fit``'s lineshape (amplitudes and baseline solved again, no refit). A lineshape fitted
    with the stiff baseline favours it (the bound is looser than that of a flexible refit), so
    a spectrum flagged here would, as a rule, fail the F-test of
    ``baseline_stiffness="ftest"`` at the fixed stiffness too. The screen costs two linear
    solves, where the F-test costs a fit and about two refits a spectrum."""
    from . import batched

    ed = config.baseline_ed_per_ppm
    # numpy's BLAS on one thread, as around the whole fit (_fit_batched): the problems' spline
    # baseline matrices are small, and a physics-head model's run calls this outside the fit
    with threadpool_limits(limits=1, user_api="blas"):
        # the flexible reference's score (the bound's) and the fixed stiffness' sum in one
        # pass: the model's columns at fit's lineshape formed once for both
        flexible = config.baseline_ed_candidates_per_ppm[-1]
        problems = [batched.baseline_problem(basis, config, e) for e in (flexible, ed)]
        score, (ssq, _) = batched.baseline_ftest_ssq(fids, problems, fit, fit)
        bound = batched.baseline_ftest_bound(
            fids, basis, config, fit, ed, score=score, flexible=problems[0], stiff=problems[1]
        )
        return ssq > bound


def _fit_adaptive(
    fid: FID,
    fids: np.ndarray,
    prepared: BasisSet,
    config: FitConfig,
    region: np.ndarray | None,
    start: dict[str, np.ndarray],
    conversions: tuple[str, ...],
    covariance: bool = False,
) -> FitResult:
    """:func:`fit_spectra` with ``baseline_stiffness="adaptive"``: every spectrum fitted with
    the fixed ``baseline_ed_per_ppm`` over ``ppm_range``; those whose fit asks for a more
    flexible baseline (:func:`asks_for_flexible_baseline`) fitted again with
    ``baseline_stiffness="ftest"`` over ``baseline_flexible_ppm_range`` (within
    ``ppm_range``; :func:`flexible_baseline_config`), their rows of the result replaced
    (:func:`_with_rows`)."""
    fixed, baseline_ed = _solve(
        fids,
        prepared,
        replace(config, baseline_stiffness="fixed"),
        region,
        start,
        covariance=covariance,
    )
    flexible = asks_for_flexible_baseline(fids, prepared, config, fixed)
    result = _batched_result(fixed, baseline_ed, fid, fids, prepared, config, conversions)
    if not flexible.any():
        return result
    rows = np.flatnonzero(flexible)
    window = flexible_baseline_config(config)
    # the F-test starts from the fixed fit's own start and stages, not from its answer
    # (``fixed.theta``): from there the reference fit ends higher on 9 of 13 default-simulator
    # spectra (up to 378 noise variances, 10 picks moved, their MAE +0.034 +- 0.012) and on
    # 1 of 19 tissue-like ones (456), for 9 % fewer LM iterations one after another on the
    # former and 20 % more on the latter (docs/history/fit-log.md "The F-test started from the
    # fixed fit's answer? (session 32, warm32)"; session 24's "The adaptive rule's refit")
    fit, baseline_ed = _solve(
        fids[rows],
        prepared,
        window,
        None if region is None else region[rows],
        {name: value[rows] for name, value in start.items()},
        also_from=fixed.theta[rows] if config.baseline_ftest_two_starts else None,
        covariance=covariance,
    )
    subset = fid.with_samples(fid.samples.reshape(-1, fid.n_points)[rows])
    part = _batched_result(fit, baseline_ed, subset, fids[rows], prepared, window, conversions)
    return _with_rows(result, part, rows)


def _with_rows(result: FitResult, part: FitResult, rows: np.ndarray) -> FitResult:
    """``result`` with its spectra ``rows`` (flat indices) replaced by ``part``'s ``(k,)``,
    fitted over another window (``part.config.ppm_range``, within ``result``'s): each
    spectrum's window in ``window_ppm``, the baseline coefficients padded with NaN to the
    longer of the two designs (:func:`batched_spectra` rebuilds each spectrum on its own)."""
    flat = result.flat()
    n = int(np.prod(result.batch_shape, dtype=int))
    window = np.broadcast_to(np.asarray(result.config.ppm_range, dtype=float), (n, 2)).copy()
    window[rows] = part.config.ppm_range
    width = max(flat.baseline.shape[1], part.baseline.shape[1])
    changes = {"window_ppm": window}
    for name in BATCH_FIELDS:
        value, new = getattr(flat, name), getattr(part, name)
        if value is None or name == "window_ppm":
            continue
        if name == "baseline":
            pad = np.full((n, width), np.nan, dtype=value.dtype)
            pad[:, : value.shape[1]] = value
            pad[rows] = np.nan
            pad[rows, : new.shape[1]] = new
            changes[name] = pad
            continue
        value = np.array(value)
        value[rows] = new
        changes[name] = value
    shape = result.batch_shape
    # a tuple: a single FID's batch shape () with a field of one value per spectrum was
    # reshape() of no argument, a TypeError (fit_spectra of a 1-D FID refitted by "adaptive")
    return replace(flat, **{k: v.reshape((*shape, *v.shape[1:])) for k, v in changes.items()})


def _batched_result(
    fit,
    baseline_ed: np.ndarray,
    fid: FID,
    fids: np.ndarray,
    prepared: BasisSet,
    config: FitConfig,
    conversions: tuple[str, ...],
) -> FitResult:
    """The :class:`FitResult` of a :class:`~scaloquant.fit.batched.BatchedFit` of the FIDs
    ``fids`` ``(B, N)`` (``fid``'s, as fitted) on ``prepared``, with the outputs derived from
    the fitted spectra (linewidth, SNR)."""
    from .problem import make_problem

    batch_shape, m = fid.batch_shape, prepared.n_metabolites
    problem = make_problem(prepared, config, device="cpu")
    sd = fit.crlb_sd
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(fit.amplitudes > 0, 100.0 * sd / fit.amplitudes, np.inf)
    pct[np.isnan(sd)] = np.nan
    first_metabolite = int(np.flatnonzero(problem.group_of.numpy() == 0)[0])

    def batch(values, *tail: int) -> np.ndarray:
        return np.asarray(values).reshape((*batch_shape, *tail))

    result = FitResult(
        names=prepared.names,
        amplitudes=batch(fit.amplitudes, m),
        crlb_sd=batch(sd, m),
        crlb_pct=batch(pct, m),
        amplitude_covariance=batch(fit.covariance, m, m) if fit.covariance.shape[1] else None,
        combined_crlb_sd=batch(fit.combined_sd, fit.combined_sd.shape[1]),
        amplitude_correlations=batch(fit.correlations, fit.correlations.shape[1]),
        damping_per_s=batch(fit.damping_per_s, m),
        shift_hz=batch(fit.shift_hz, m),
        phase0_rad=batch(fit.phase0_rad),
        phase1_rad_per_ppm=batch(fit.phase1_rad_per_ppm),
        phase1_pivot_ppm=float(problem.pivot_ppm),
        gauss_per_s2=batch(fit.gauss_per_s2[:, first_metabolite]),
        baseline=batch(fit.baseline, fit.baseline.shape[1]),
        noise_sd=batch(fit.noise_sd),
        noise_estimate=config.noise_estimate,
        residual_norm=batch(fit.residual_norm),
        n_evaluations=batch(fit.iterations),
        success=batch(fit.converged),
        messages=batch(
            np.where(fit.converged, "converged", "iteration limit reached").astype(object)
        ),
        ppm=problem.ppm.numpy(),
        config=config,
        gauss_by_metabolite_per_s2=batch(fit.gauss_per_s2, m),
        conversions=conversions,
        baseline_ed_per_ppm=batch(baseline_ed),
        lineshape_kernel=(
            batch(fit.lineshape_kernel, fit.lineshape_kernel.shape[1])
            if problem.kernel_offsets.numel() > 1
            else None
        ),
        removed_water=(
            batch(fid.samples.reshape(fids.shape) - fids, fids.shape[-1])
            if config.water_removal == "hlsvd"
            else None
        ),
    )
    from ..signal.noise import residual_over_noise, residual_sd
    from .batched import usable_device

    spectra, linewidth = _derived_spectra(
        result, fids, prepared, problem, usable_device(config.device)
    )
    real_residual = np.sqrt(np.mean(spectra.residual.real**2, axis=-1))
    metabolites = spectra.metabolites.sum(axis=-2)
    phased = metabolites * np.exp(-1j * result.phase0_rad.reshape(-1, 1))
    data = np.linalg.norm(spectra.data, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = phased.real.max(axis=-1) / (2 * real_residual)
        relative = np.where(data > 0, np.linalg.norm(spectra.residual, axis=-1) / data, np.nan)
        fraction = np.where(data > 0, np.linalg.norm(metabolites, axis=-1) / data, np.nan)
    return replace(
        result,
        linewidth_hz=batch(linewidth),
        linewidth_ppm=batch(linewidth / fid.spectrometer_freq_mhz),
        snr=batch(snr),
        relative_residual=batch(relative),
        metabolite_fraction=batch(fraction),
        residual_over_noise=batch(
            residual_over_noise(
                residual_sd(spectra.residual),
                fids,  # as fitted: less the water the fit removed
                fid.dwell_time_s,
                fid.spectrometer_freq_mhz,
                fid.ppm_reference,
                proton=fid.nucleus == "1H",
            )
        ),
    )


def _derived_spectra(
    result: FitResult, fids: np.ndarray, basis: BasisSet, problem, device=None
) -> tuple[FitSpectra, np.ndarray]:
    """``(the summed fitted spectra of _rebuild, the linewidths (B,) of _linewidth_hz)`` of
    ``result`` and its FIDs ``fids`` ``(B, N)``, in chunks of :data:`REBUILD_CHUNK` spectra,
    their transforms on ``device`` (the fit's; default the CPU). On a CPU the chunks run side
    by side on torch's threads where there are several, as the fit's
    (:func:`~scaloquant.fit.batched.chunk_parts`: one thread each; fewer spectra than
    ``ONE_THREAD_BELOW`` on one thread): each spectrum's numbers are its own, the same in any
    chunk. Measured on the 1024 spectra of an MRSI slice
    (docs/history/fit-log.md "Both cores, and the first call (session 15)"): 1.15 -> 1.95 of
    2 threads runnable, 0.74 -> 0.43 s. On a GPU one after another: on the CPU this was 3.6 s
    of a GPU fit's 8.1 s (4096 spectra, an H200's 16 cores; docs/history/benchmarks-log.md
    "On a lent GPU, an H200 (session 20)")."""
    import torch

    from .batched import chunk_parts

    device = torch.device("cpu") if device is None else torch.device(device)

    def part(lo: int, hi: int) -> tuple[FitSpectra, np.ndarray]:
        rows = result.take(range(lo, hi))
        spectra = _rebuild(rows, fids[lo:hi], basis, problem, summed=True, device=device)
        return spectra, _linewidth_hz(rows, basis, device)

    with threadpool_limits(limits=1, user_api="blas"):  # see _fit_batched
        parts = chunk_parts(part, fids.shape[0], device, REBUILD_CHUNK)
    spectra = FitSpectra(
        parts[0][0].ppm,
        *(np.concatenate([getattr(p, f) for p, _ in parts]) for f in FitSpectra._fields[1:]),
    )
    return spectra, np.concatenate([linewidth for _, linewidth in parts])


def _modulated(
    result: FitResult,
    basis: BasisSet,
    index: np.ndarray | None = None,
    rows: slice = slice(None),
    device=None,
):
    """Per-metabolite modulated FIDs ``(B', M', N)`` of the flat result (metabolites
    ``index``, all by default; spectra ``rows``, all by default), through
    :func:`scaloquant.physics.model.modulated_fids`, a complex128 tensor on ``device``
    (default the CPU)."""
    import torch

    from ..physics.model import modulated_fids

    m = len(result.names)
    index = np.arange(m) if index is None else index
    damping = result.damping_per_s.reshape(-1, m)[rows][:, index]
    shift = result.shift_hz.reshape(-1, m)[rows][:, index]
    gauss = result.gauss_by_metabolite_per_s2.reshape(-1, m)[rows][:, index]

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, device=device)  # a copy: the result's arrays may be read-only

    rates = torch.complex(tensor(-damping), tensor(2 * np.pi * shift))
    # the metabolites of a group share their Gaussian: its factor once per distinct column
    # (as the fit's model evaluates it), not once per metabolite
    gauss, group_of = np.unique(gauss, axis=1, return_inverse=True)
    return modulated_fids(
        tensor(basis.fids[index]),
        tensor(basis.time_axis_s()),
        rates,
        tensor(gauss),
        tensor(group_of.reshape(-1)),
    )


#: Spectra whose model is rebuilt at a time (bounds the ``(B, M, N)`` modulated FIDs).
REBUILD_CHUNK = 128


def _rebuild(
    result: FitResult,
    fids: np.ndarray,
    basis: BasisSet,
    problem,
    *,
    summed: bool = False,
    device=None,
) -> FitSpectra:
    """The fitted spectra of a batched result over its window (flat batch ``(B, ...)``),
    :data:`REBUILD_CHUNK` spectra at a time, transformed on ``device`` (default the CPU).
    ``summed``: ``metabolites`` holds only their amplitude-weighted sum ``(B, 1, K)``, one
    transform per spectrum instead of one per metabolite (what the SNR needs)."""
    import torch

    from ..physics.model import fft, kernel_window_columns, window_columns

    window = problem.window
    index = problem.data_fft_index.to(device)  # the window's bins in the unshifted FFT
    offsets = problem.kernel_offsets.to(device)
    n = fids.shape[0]
    amplitudes = result.amplitudes.reshape(n, -1)
    phase = np.exp(
        1j
        * (
            result.phase0_rad.reshape(n, 1)
            + result.phase1_rad_per_ppm.reshape(n, 1) * (result.ppm - result.phase1_pivot_ppm)
        )
    )
    kernel = result.lineshape_kernel
    data, parts = [], []
    for lo in range(0, n, REBUILD_CHUNK):
        rows = slice(lo, min(n, lo + REBUILD_CHUNK))
        x = torch.tensor(fids[rows], device=device)
        data.append(fft(x)[..., index].cpu().numpy())
        z = _modulated(result, basis, rows=rows, device=device)
        if summed:  # the model's time signal (b, 1, N)
            weights = torch.tensor(amplitudes[rows, None, :], device=device)
            z = weights.to(z.dtype) @ z
        if kernel is None:
            columns = window_columns(z, index, overwrite=True)
        else:  # the free-form kernel: sum_j s_j S(f_k - j), as the fit's model convolves it
            weights = torch.tensor(kernel.reshape(n, -1)[rows], device=device)
            columns = kernel_window_columns(z, index, offsets, weights, overwrite=True)
        columns = columns.transpose(-1, -2).cpu().numpy() * phase[rows, None, :]
        parts.append(columns if summed else columns * amplitudes[rows, :, None])
    data = np.concatenate(data) if data else np.zeros((0, window.size), complex)
    metabolites = np.concatenate(parts)
    baseline = result.baseline.reshape(n, -1) @ problem.baseline_design.numpy().T
    model = metabolites.sum(axis=1) + baseline
    return FitSpectra(result.ppm, data, model, baseline, data - model, metabolites)


#: Zero-filling factor of the spectrum :func:`_linewidth_hz` reads the FWHM off.
LINEWIDTH_ZERO_FILL = 8


def _linewidth_hz(result: FitResult, basis: BasisSet, device=None) -> np.ndarray:
    """FWHM (Hz) of the fitted NAA singlet near 2.01 ppm (Cr's near 3.03 ppm without NAA),
    read off the real part of its :data:`LINEWIDTH_ZERO_FILL`-times zero-filled spectrum
    (transformed on ``device``, default the CPU), convolved with the free-form kernel when the
    fit has one (its weights on bins ``0, -J..-1, 1..J`` of the unfilled grid: shifts of
    ``LINEWIDTH_ZERO_FILL`` bins here, as :func:`_rebuild` convolves the model); NaN without
    either singlet."""
    import torch

    from ..physics.model import kernel_window_columns, window_columns

    singlets = (("NAA", 2.01), ("Cr", 3.03))
    name, centre = next(((n, c) for n, c in singlets if n in result.names), (None, 0.0))
    if name is None:
        return np.full(int(np.prod(result.batch_shape, dtype=int)), np.nan)
    i = result.names.index(name)
    z = _modulated(result, basis, np.array([i]), device=device)  # (B, 1, N)
    n_fft = LINEWIDTH_ZERO_FILL * z.shape[-1]
    filled = torch.zeros(*z.shape[:-1], n_fft, dtype=z.dtype, device=z.device)
    filled[..., : z.shape[-1]] = z
    hz = axes.frequency_axis_hz(n_fft, basis.dwell_time_s)
    ppm = basis.ppm_reference + hz / basis.spectrometer_freq_mhz
    near = np.flatnonzero(np.abs(ppm - centre) < 0.15)
    index = torch.as_tensor(np.fft.fftshift(np.arange(n_fft))[near], device=z.device)
    if result.lineshape_kernel is None:
        spec = window_columns(filled, index, overwrite=True)
    else:
        from .problem import kernel_offsets

        kernel = result.lineshape_kernel.reshape(z.shape[0], -1)
        offsets = torch.as_tensor(
            [LINEWIDTH_ZERO_FILL * j for j in kernel_offsets((kernel.shape[1] - 1) // 2)],
            device=z.device,
        )
        weights = torch.tensor(kernel, device=z.device)
        spec = kernel_window_columns(filled, index, offsets, weights, overwrite=True)
    spec = spec[..., 0].real.cpu().numpy()  # (B, bins near the singlet)
    out = np.full(z.shape[0], np.nan)
    f = hz[near]
    for b, row in enumerate(spec):
        top = int(np.argmax(row))
        half = row[top] / 2
        if half <= 0:
            continue
        left = top
        while left > 0 and row[left] > half:
            left -= 1
        right = top
        while right < row.size - 1 and row[right] > half:
            right += 1
        if row[left] > half or row[right] > half:
            continue
        out[b] = _crossing(f, row, right, right - 1, half) - _crossing(f, row, left, left + 1, half)
    return out


def _crossing(hz: np.ndarray, row: np.ndarray, a: int, c: int, half: float) -> float:
    """Frequency where ``row`` crosses ``half`` between samples ``a`` and ``c`` (linear)."""
    return hz[a] + (half - row[a]) / (row[c] - row[a]) * (hz[c] - hz[a])


def batched_spectra(result: FitResult, fid: FID, basis: BasisSet) -> FitSpectra:
    """:func:`~scaloquant.fit.fitted_spectra` for a result of the batched solver: ``basis``
    is the one given to the fit (it is prepared again the same way)."""
    from .problem import make_problem

    prepared, _ = _prepared(basis, fid, result.config)
    if prepared.names != result.names:
        raise InvalidDataError("the basis set's metabolites differ from those of the fit result")
    problem = make_problem(prepared, result.config, device="cpu")
    flat = result.flat()
    if result.removed_water is None:
        fids = _without_water(fid, result.config)
    else:  # the data as fitted, without a second HLSVD
        fids = fid.samples.reshape(-1, fid.n_points) - flat.removed_water
    if flat.window_ppm is None:
        spectra = _rebuild(flat, fids, prepared, problem)
    else:
        spectra = _rebuild_windows(flat, fids, prepared, problem)
    shape = result.batch_shape
    return FitSpectra(
        spectra.ppm,
        *(
            getattr(spectra, f).reshape(*shape, *getattr(spectra, f).shape[1:])
            for f in spectra._fields[1:]
        ),
    )


def _rebuild_windows(result: FitResult, fids: np.ndarray, basis: BasisSet, problem) -> FitSpectra:
    """:func:`_rebuild` of a flat result whose spectra were fitted over different windows
    (``result.window_ppm``), on ``problem``'s (the widest): each spectrum rebuilt on its own
    window's problem, its model, baseline, residual and metabolites NaN past that window
    (the data everywhere)."""
    from .problem import make_problem

    data = _rebuild(result, fids, basis, problem, summed=True).data
    n, k = data.shape
    m = len(result.names)
    model = np.full((n, k), np.nan, complex)
    baseline = np.full((n, k), np.nan, complex)
    metabolites = np.full((n, m, k), np.nan, complex)
    windows, which = np.unique(result.window_ppm, axis=0, return_inverse=True)
    for w, window in enumerate(windows):
        rows = np.flatnonzero(which.reshape(-1) == w)
        own = make_problem(basis, replace(result.config, ppm_range=tuple(window)), device="cpu")
        part = result.take(rows)
        coefficients = part.baseline[:, : own.baseline_design.shape[1]]
        part = replace(part, baseline=coefficients, ppm=own.ppm.numpy())
        spectra = _rebuild(part, fids[rows], basis, own)
        columns = np.searchsorted(problem.window, own.window)
        model[np.ix_(rows, columns)] = spectra.model
        baseline[np.ix_(rows, columns)] = spectra.baseline
        metabolites[np.ix_(rows, np.arange(m), columns)] = spectra.metabolites
    return FitSpectra(problem.ppm.numpy(), data, model, baseline, data - model, metabolites)


def fitted_spectra(result: FitResult, fid: FID, basis: BasisSet) -> FitSpectra:
    """Rebuild the model of ``result`` for the spectra of ``fid`` that it was fitted to.

    ``basis`` must be the one given to the fit (same names, same grid).
    """
    if fid.batch_shape != result.batch_shape:
        raise InvalidDataError(
            f"the data have batch shape {fid.batch_shape}, the fit result {result.batch_shape}"
        )
    return batched_spectra(result, fid, basis)
