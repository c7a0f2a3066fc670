"""The batched fit: variable projection with non-negative amplitudes and Levenberg–Marquardt,
many spectra in one torch program (CPU or CUDA, float64). This module is the driver:
:func:`solve` (and :func:`solve_given_amplitudes`) cut the spectra into chunks, run the
continuation stages and the final pass, finish near-noiseless spectra on the full grid and
return a :class:`BatchedFit`; the baseline F-test's helpers are here too. Its parts:

* :mod:`scaloquant.fit.problem`: the model and objective, :class:`~scaloquant.fit.problem.Problem`;
* :mod:`scaloquant.fit.evaluation`: the objective at ``theta``, baseline elimination, NNLS;
* :mod:`scaloquant.fit.lm`: the Levenberg–Marquardt solver;
* :mod:`scaloquant.fit.start`: the cross-correlation shift and ``phi0`` starts;
* :mod:`scaloquant.fit.crlb`: the Cramér–Rao bounds;
* :mod:`scaloquant.fit.stages`: the continuation stages;
* :mod:`scaloquant.fit.search`: the per-metabolite model's global moves.

Global strategy, batched: a cross-correlation start for the shift and a least-squares start
for ``phi0``; continuation stages (``FitConfig.continuation_broadening_per_s``: data and basis
broadened alike by ``exp(-L t)``, coarse to fine, each on the FID's first samples while
``exp(-L t)`` is above 0.1: :func:`~scaloquant.fit.problem.stage_points`; exact, not
approximate, since the same factor multiplies data and model, and with large ``L`` multiplets
merge and the residual is smooth in the shifts, so each stage only has to reach the next one's
basin); the per-metabolite deviations are freed only in the final stage, with ``sigma`` taken
from the previous stage's residual (or the signal-free region). With
``grouping="per_metabolite"`` also the re-centred shift bounds, resets, twin swaps and second
search of :mod:`scaloquant.fit.search`. Measured choices: at their constants and in
``docs/fit.md`` ("The solver's constants").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from ..errors import ConfigError
from ..threads import available_cpus, run_side_by_side, torch_threads
from ..types import BasisSet
from . import search
from .config import FitConfig
from .covariance import combined_sds, covariance_pairs
from .crlb import crlb
from .evaluation import (
    Evaluation,
    columns,
    evaluate,
    kernel_weights,
    noise_var_from_residual,
    residual_and_baseline,
)
from .lm import Solution, levenberg_marquardt, put_rows
from .problem import (
    Problem,
    amplitude_prior,
    data_window,
    make_problem,
    parameter_bounds,
)
from .stages import TRIAL_DTYPE, continuation, prior_weight, stage_problem
from .start import phase0_given_amplitudes, phase0_start, start_theta

T = TypeVar("T")

#: Spectra per tensor program on a CPU (working arrays of about 100 MB) and, at most, on a GPU.
#: Spectra leave the batch as they converge, so a chunk's last iterations run a few slow spectra
#: at a cost per iteration dominated by fixed overheads; a larger chunk shares that tail among
#: more spectra (64 SNR-30 spectra, ``invivo``, 1 thread: 12.0 spectra/s in one chunk of 64, 6.9
#: in two of 32; on an H200, ``invivo``: 8192 spectra 645/s in chunks of 1024, 1388/s in one of
#: 8192; 16384 spectra 1020/s in chunks of 8192, 1186/s in one of 16384, peak 23 GiB:
#: docs/history/benchmarks-log.md "On a lent GPU, an H200 (session 20)").
CPU_CHUNK = 128
GPU_CHUNK = 16384
#: Fewest spectra per chunk on a GPU, whatever its free memory (:func:`chunk_size`), and the
#: smallest chunk that an out-of-memory error still halves (:func:`halving_on_oom`).
GPU_CHUNK_MIN = 64
#: Share of the GPU's free memory, when a fit starts, that a chunk's working arrays may take.
GPU_MEMORY_SHARE = 0.6
#: Peak GPU memory of a chunk per spectrum, in bytes per element of its largest problem's model
#: (:func:`spectrum_elements`): torch's peak allocation over a fit on an H200 was 8.9 bytes
#: (``invivo``, chunks of 8192 and 16384) and 6.7 (``simulated``, 8192); a third more here, so
#: that a chunk sized by it stays within its share (docs/history/benchmarks-log.md "On a lent
#: GPU, an H200 (session 20)").
GPU_BYTES_PER_ELEMENT = 12.0


def usable_device(name: str) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:1``) as a torch device; a name torch does not know
    (``gpu``, ``tpu9``) and a CUDA device where torch sees no GPU are refused with what to do
    (torch would fail deep in the first tensor put on it, with a traceback). Named by the
    config key, as the config classes name theirs: the CLI words it with ``--device`` where
    the flag gave it (``cli._common.flag_worded``), not where a ``--config`` file did."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device {name!r} is not a torch device; give cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA GPU is available here; give cpu")
    return device


def spectrum_elements(problems: list[Problem | None]) -> int:
    """Elements of the largest of ``problems``' per-spectrum model arrays: its samples times its
    components and parameters (the basis' modulated FIDs and the Jacobian's columns), which
    the peak memory of a chunk grows with."""
    return max(p.fids.shape[-1] * (p.n_metabolites + p.size) for p in problems if p is not None)


def chunk_size(device: torch.device, problems: list[Problem | None]) -> int:
    """Spectra per tensor program on ``device``: :data:`CPU_CHUNK` on a CPU; on a GPU as many
    as :data:`GPU_MEMORY_SHARE` of its free memory holds at :data:`GPU_BYTES_PER_ELEMENT` per
    :func:`spectrum_elements`, between :data:`GPU_CHUNK_MIN` and :data:`GPU_CHUNK`."""
    if device.type != "cuda":
        return CPU_CHUNK
    free_bytes, _ = torch.cuda.mem_get_info(device)
    per_spectrum = GPU_BYTES_PER_ELEMENT * spectrum_elements(problems)
    return int(max(GPU_CHUNK_MIN, min(GPU_CHUNK, GPU_MEMORY_SHARE * free_bytes // per_spectrum)))


def halving_on_oom(part: Callable[[int, int], T], lo: int, hi: int) -> list[T]:
    """``[part(lo, hi)]`` (the spectra ``[lo, hi)`` of a chunk), or, where the device runs out
    of memory on that chunk, its halves each the same way, down to :data:`GPU_CHUNK_MIN`
    spectra (below that the error stands): a GPU shared with other work may have less free
    memory than :func:`chunk_size` saw, and a network's activations are not counted there."""
    try:
        return [part(lo, hi)]
    except torch.cuda.OutOfMemoryError:
        if hi - lo <= GPU_CHUNK_MIN:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mid = (lo + hi) // 2
    return halving_on_oom(part, lo, mid) + halving_on_oom(part, mid, hi)


#: Fewest spectra per chunk when a CPU batch is shared out among torch's threads
#: (:func:`chunk_ranges`): below it a chunk's tail of slow spectra costs more than a second
#: core gains.
SIDE_BY_SIDE_MIN = 32
#: Spectra below which a CPU call that runs as one chunk (:func:`chunk_parts`) runs it on one
#: torch thread, whatever torch's count: too few to share out in chunks of
#: :data:`SIDE_BY_SIDE_MIN`, and their small operations split over 2 threads of a shared 2-core
#: machine cost more than they gain (32, 48 and 63 tissue-like spectra, median wall of two
#: runs on one thread 0.52/0.59, 0.73/0.87, 1.21/1.29 s, on two 0.56/0.92, 0.85/1.21,
#: 1.40/2.14 s: faster in 53 of 54 rounds, 1 tie; docs/history/fit-log.md "A chunk of 32-63
#: spectra on one torch thread (session 29, chunk29)"); its numbers then those of one
#: thread, as the chunks side by side.
ONE_THREAD_BELOW = 2 * SIDE_BY_SIDE_MIN


def chunk_ranges(n: int, chunk: int, workers: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of ``n`` spectra in chunks of at most ``chunk``: as few chunks as
    that allows, but, for ``workers`` > 1 and enough spectra (:data:`SIDE_BY_SIDE_MIN` each), a
    multiple of ``workers`` of equal size, so that every worker gets a chunk of its own."""
    count = max(1, -(-n // chunk))
    if workers > 1 and n >= workers * SIDE_BY_SIDE_MIN:
        count = -(-count // workers) * workers
    size = -(-n // count) if n else 0
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)] if n else []


@dataclass(frozen=True)
class Lineshapes:
    """Each of ``B`` spectra's fitted lineshapes and phases as numpy arrays (``M``
    metabolites): what the F-test's scores read of a fit (:func:`baseline_ftest_ssq`,
    :func:`baseline_ftest_bound`). A :class:`BatchedFit` has these fields too; a physics-head
    model's polish gives them with :func:`lineshapes`."""

    damping_per_s: np.ndarray  # (B, M) group value + deviation
    shift_hz: np.ndarray  # (B, M)
    gauss_per_s2: np.ndarray  # (B, M)
    phase0_rad: np.ndarray  # (B,)
    phase1_rad_per_ppm: np.ndarray  # (B,)
    lineshape_kernel: np.ndarray  # (B, J + 1) free-form kernel, centre first (kernel_weights)


def lineshapes(problem: Problem, theta: torch.Tensor) -> Lineshapes:
    """The :class:`Lineshapes` of the parameters ``theta`` ``(B, P)`` in ``problem``'s layout:
    each metabolite's damping and shift (its group's plus its deviation), its group's Gaussian,
    the phases and the free-form kernel."""
    sl = problem.slices()
    rates_damping = theta[:, sl["damping"]][:, problem.group_of] * problem.lorentzian
    shift = theta[:, sl["shift"]][:, problem.group_of] + theta[:, sl["shift_dev"]]
    gauss = theta[:, sl["gauss"]][:, problem.group_of] * problem.gaussian

    def out(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    return Lineshapes(
        damping_per_s=out(rates_damping + theta[:, sl["damping_dev"]]),
        shift_hz=out(shift),
        gauss_per_s2=out(gauss),
        phase0_rad=out(theta[:, sl["phase0"]][:, 0]),
        phase1_rad_per_ppm=out(theta[:, sl["phase1"]][:, 0]),
        lineshape_kernel=out(kernel_weights(problem, theta)),
    )


@dataclass(frozen=True)
class BatchedFit:
    """The batched fit of ``B`` spectra as numpy arrays (``M`` metabolites, ``G`` groups, ``C``
    LCModel's combined rows of the metabolites' names, ``P = M (M - 1) / 2`` pairs): of the
    amplitudes' Cramér–Rao covariance bound, what the outputs read (the SDs, the combined rows'
    SDs, the pairs' correlation coefficients: :mod:`scaloquant.fit.covariance`), read chunk by
    chunk; the bound itself ``(B, M, M)`` only where asked (``solve(..., covariance=True)``),
    else ``(B, 0, 0)``."""

    amplitudes: np.ndarray  # (B, M)
    covariance: np.ndarray  # (B, M, M) where asked, else (B, 0, 0)
    crlb_sd: np.ndarray  # (B, M)
    combined_sd: np.ndarray  # (B, C) combined_sds of the problem's names
    correlations: np.ndarray  # (B, P) covariance_pairs
    damping_per_s: np.ndarray  # (B, M) group value + deviation
    shift_hz: np.ndarray  # (B, M)
    gauss_per_s2: np.ndarray  # (B, M)
    phase0_rad: np.ndarray  # (B,)
    phase1_rad_per_ppm: np.ndarray  # (B,)
    baseline: np.ndarray  # (B, nb) complex
    noise_sd: np.ndarray  # (B,)
    residual_norm: np.ndarray  # (B,)
    iterations: np.ndarray  # (B,)
    converged: np.ndarray  # (B,)
    lineshape_kernel: np.ndarray  # (B, J + 1) free-form kernel, centre first (kernel_weights)
    theta: np.ndarray  # (B, P) the nonlinear parameters in the problem's layout (a refit's start)

    def take(self, rows: np.ndarray) -> BatchedFit:
        """The spectra ``rows`` (indices or a mask, in their order)."""
        return replace(self, **{f: getattr(self, f)[rows] for f in self.__dataclass_fields__})

    @classmethod
    def joined(cls, parts: list[BatchedFit]) -> BatchedFit:
        """The fits ``parts`` one after another, as one."""
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


def _solve_chunk(
    stages: list[Problem],
    final: Problem,
    refine: Problem | None,
    config: FitConfig,
    fids: torch.Tensor,
    dwell_time_s: float,
    region_var: torch.Tensor | None,
    start,
    twin_pairs: tuple | None = None,
    exact: Problem | None = None,
    stiffness: torch.Tensor | None = None,
    second: torch.Tensor | None = None,
    covariance: bool = False,
) -> BatchedFit:
    """One chunk of :func:`solve` (``covariance``: keep the amplitudes' bound); ``twin_pairs``
    (not None: the per-metabolite model) turns on the re-centred shift bounds, resets and twin
    swaps of :mod:`scaloquant.fit.search`; ``exact``: the last pass's problem on all ``N``
    samples where its own is decimated (:func:`finish_on_the_full_grid`); ``stiffness`` ``(B,)`` long: each spectrum's baseline
    stiffness in the passes after the continuation stages (an index into the problems'
    ``stiffnesses``); ``second`` ``(B, P)``: a second start of each spectrum (a fit's
    ``theta``), joined as ``B`` more rows after the continuation stages (it has none), the
    fit of ``2 B`` rows those from the start then those from ``second``. Not with
    ``twin_pairs`` (its second search runs the stages again)."""
    sl = final.slices()
    y = data_window(final, fids)
    if "theta" in start:  # a fit's own parameters (BatchedFit.theta): its lineshape exactly
        theta = torch.as_tensor(np.array(start["theta"], dtype=np.float64), device=y.device)
    else:
        theta = start_theta(final, config, y, dwell_time_s, start)
    centre = theta[:, sl["shift"]].mean(-1)
    first = stages[0] if stages else final
    if config.fit_phase0 and "theta" not in start:
        if "phase0_rad" in start:
            arr = np.array(start["phase0_rad"], dtype=np.float64)
            theta[:, sl["phase0"]] = torch.as_tensor(arr, device=y.device)[:, None]
        else:
            theta[:, sl["phase0"]] = phase0_start(first, theta, data_window(first, fids))[:, None]
    # the MM shift prior's weight before the noise level is known (stages.prior_weight)
    prior_var = prior_weight(final, theta, y, region_var, stiffness)
    theta, centre = continuation(
        stages, config, fids, theta, centre, prior_var, twin_pairs is not None
    )
    if second is not None:
        # each spectrum's row again from ``second``, as a solve of its own from there without
        # the stages starts (its bounds' centre and its priors' weight from that start): every
        # row's fit is its own (in_chunks), so the rows after the stages are the same fits
        # as that solve's in the same passes, not a second pass of them
        more_centre = second[:, sl["shift"]].mean(-1)
        more_var = prior_weight(final, second, y, region_var, stiffness)
        theta, centre = torch.cat([theta, second]), torch.cat([centre, more_centre])
        prior_var = torch.cat([prior_var, more_var])
        y, fids = torch.cat([y, y]), torch.cat([fids, fids])
        region_var = None if region_var is None else torch.cat([region_var, region_var])
        stiffness = None if stiffness is None else torch.cat([stiffness, stiffness])
    iterations = torch.zeros(y.shape[0], dtype=torch.long, device=y.device)
    preliminary = None
    # the noise-scaled stopping rule (COST_NOISE_TOL): the per-metabolite model's passes in the
    # smaller of the region's and the residual's variance, the grouped ones' in the residual's
    # beside the relative rule (residual_stop)
    stop_var = region_var if twin_pairs is not None else None
    if refine is None or region_var is None or twin_pairs is not None:
        # without deviations this is the fit; with them, it gives the noise level that weighs
        # their priors when no signal-free region does (and for the per-metabolite model the
        # search, before its spread priors, if any, are added in the last pass)
        lower, upper = parameter_bounds(final, centre, config)
        sol = levenberg_marquardt(
            final,
            theta,
            y,
            prior_var,
            lower,
            upper,
            max_iterations=config.max_iterations,
            column_dtype=TRIAL_DTYPE,
            stop_var=stop_var,
            stiffness=stiffness,
            residual_stop=twin_pairs is None,
        )
        if twin_pairs is not None:
            sol = search.global_moves(
                final, config, sol, y, prior_var, centre, twin_pairs, stop_var=stop_var
            )
            if region_var is not None:
                # the later passes bounded about the second search's centre where it won
                sol, centre = search.second_search(
                    stages, final, config, fids, y, sol, centre, twin_pairs, region_var
                )
                lower, upper = parameter_bounds(final, centre, config)
        iterations, theta = sol.iterations, sol.theta
        last_noise = prior_var
        # (the per-metabolite model's spread priors weigh with this residual's variance, not
        # the region's: it vanishes on noiseless spectra, whose region holds the lines' tails)
        noise_var = noise_var_from_residual(final, sol.evaluation)
    else:
        noise_var = region_var
    lower, upper = parameter_bounds(final, centre, config)
    prior_q = None
    if final.ratio_labels:
        # the ratio priors' widths scale with a preliminary fit's amplitudes (LCModel's)
        preliminary = evaluate(
            final, theta, y, prior_var, derivatives=False, stiffness=stiffness
        ).amplitudes
        prior_q = amplitude_prior(final, preliminary, noise_var)
    # the last pass: with the deviations (refine), or again with the ratio priors
    last = refine if refine is not None else (final if prior_q is not None else None)
    if last is not None:
        lower, upper = parameter_bounds(last, centre, config)
        last_noise = noise_var
        sol = levenberg_marquardt(
            last,
            theta,
            y,
            noise_var,
            lower,
            upper,
            max_iterations=config.max_iterations,
            amplitude_prior=prior_q,
            column_dtype=TRIAL_DTYPE,
            stop_var=stop_var,
            stiffness=stiffness,
            residual_stop=twin_pairs is None,
        )
        iterations = iterations + sol.iterations
        final = last
    if exact is not None:
        before = sol.iterations
        sol = finish_on_the_full_grid(
            exact, final, sol, y, last_noise, lower, upper,
            prior_q if last is not None else None, stop_var, config.max_iterations,
            stiffness=stiffness,
        )  # fmt: skip
        iterations = iterations + (sol.iterations - before)
    ev = sol.evaluation
    if config.noise_estimate == "residual":
        noise_var = noise_var_from_residual(final, ev)
    if preliminary is not None:
        prior_q = amplitude_prior(final, preliminary, noise_var)
    cov, _ = crlb(final, ev, noise_var, prior_q)
    m = final.n_metabolites
    return _batched_fit(final, sol, noise_var, cov[:, :m, :m], iterations, covariance)


def full_grid_twin(
    problem: Problem,
    basis: BasisSet,
    config: FitConfig,
    *,
    deviations: bool,
    device: torch.device,
) -> Problem | None:
    """``problem`` (made of ``basis`` and ``config`` with ``deviations``, and its
    ``stiffnesses``) on all ``N`` samples, for :func:`finish_on_the_full_grid`, where it is
    decimated; ``None`` where it is not."""
    if problem.fids.shape[-1] == basis.n_points:
        return None
    full = replace(config, decimate_model=False)
    each = None if problem.stiffnesses is None else problem.stiffnesses.ed_per_ppm
    return make_problem(
        basis, full, deviations=deviations, device=device, stiffnesses_ed_per_ppm=each
    )


#: Spectra whose window's largest bin exceeds this many times the residual's noise SD are
#: fitted to their end on all ``N`` samples (:func:`finish_on_the_full_grid`): 1000, where the
#: decimated model's error (<= 1e-4 of a column's largest bin, ~3e-6 typical) reaches a few
#: percent of the noise; below it the decimated minimum is the full model's within ~1e-2 of a
#: CRLB SD (docs/history/fit-log.md "The model on the window's band").
FULL_GRID_SNR = 1000.0


def near_noiseless_rows(
    decimated: Problem, ev: Evaluation, y: torch.Tensor, residual_var: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices of the spectra of evaluation ``ev`` (of ``decimated``) over windows ``y``
    ``(B, K)`` whose window peak is above :data:`FULL_GRID_SNR` times their residual's noise
    SD (``residual_var``, :func:`~scaloquant.fit.evaluation.noise_var_from_residual` of ``ev``, if
    the caller has it): those that :func:`finish_on_the_full_grid` and
    :func:`evaluate_on_the_full_grid` take to the full model."""
    if residual_var is None:
        residual_var = noise_var_from_residual(decimated, ev)
    return torch.nonzero(y.abs().amax(-1) > FULL_GRID_SNR * residual_var.sqrt())[:, 0]


def evaluate_on_the_full_grid(
    exact: Problem,
    decimated: Problem,
    theta: torch.Tensor,
    ev: Evaluation,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    column_dtype: torch.dtype | None = None,
) -> tuple[Evaluation, torch.Tensor]:
    """``ev``, the evaluation of ``decimated`` at ``theta`` ``(B, P)`` (with ``noise_var``), with
    the near-noiseless spectra's rows (:func:`near_noiseless_rows`) evaluated again with
    ``exact`` (the same problem on all ``N`` samples; ``column_dtype`` as
    :func:`~scaloquant.fit.evaluation.evaluate`'s): a model evaluated at parameters without fitting
    (the physics-head network's), exact to rounding at the truth as the full model is. ``ev`` is
    updated in place and returned with its residual's noise variance
    (:func:`~scaloquant.fit.evaluation.noise_var_from_residual`, formed once: the rows' choice needs
    it too)."""
    residual_var = noise_var_from_residual(decimated, ev)
    rows = near_noiseless_rows(decimated, ev, y, residual_var)
    if rows.numel():
        more = evaluate(exact, theta[rows], y[rows], noise_var[rows], column_dtype=column_dtype)
        put_rows(ev, rows, more)
        residual_var[rows] = noise_var_from_residual(decimated, more)
    return ev, residual_var


def finish_on_the_full_grid(
    exact: Problem,
    decimated: Problem,
    sol: Solution,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    amplitude_prior: torch.Tensor | None,
    stop_var: torch.Tensor | None,
    max_iterations: int,
    fixed_amplitudes: torch.Tensor | None = None,
    stiffness: torch.Tensor | None = None,
) -> Solution:
    """``sol`` of the decimated model (``decimated``), with the spectra whose window peak is
    above :data:`FULL_GRID_SNR` times their residual's noise SD (noiseless and near-noiseless
    ones, whose fit the decimated model's error would limit) fitted on from there with
    ``exact`` (the same problem on all ``N`` samples): Levenberg–Marquardt iterations (at most
    ``max_iterations``) that end on the full model's minimum, where its stopping rule ends them
    (a noiseless spectrum within ~1e-5, as without decimation). The others keep the decimated
    model's fit."""
    rows = near_noiseless_rows(decimated, sol.evaluation, y)
    return fit_rows_on(
        exact,
        sol,
        rows,
        y,
        noise_var,
        lower,
        upper,
        max_iterations,
        amplitude_prior=amplitude_prior,
        stop_var=stop_var,
        fixed_amplitudes=fixed_amplitudes,
        stiffness=stiffness,
    )


def fit_rows_on(
    problem: Problem,
    sol: Solution,
    rows: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    max_iterations: int,
    **per_spectrum: torch.Tensor | None,
) -> Solution:
    """``sol`` with the spectra ``rows`` (indices) fitted on from there with ``problem``:
    :func:`~scaloquant.fit.lm.levenberg_marquardt` (at most ``max_iterations``, single-precision
    columns) on those rows of ``y``, ``noise_var``, ``lower``, ``upper`` and of the keyword
    arguments ``per_spectrum`` (``amplitude_prior``, ``stop_var``, ``fixed_amplitudes``,
    ``stiffness``: every spectrum's, or None); the others as they were. ``sol``'s evaluation takes the rows' new ones
    in place."""
    if rows.numel() == 0:
        return sol
    more = levenberg_marquardt(
        problem,
        sol.theta[rows],
        y[rows],
        noise_var[rows],
        lower[rows],
        upper[rows],
        max_iterations=max_iterations,
        column_dtype=TRIAL_DTYPE,
        **{name: None if t is None else t[rows] for name, t in per_spectrum.items()},
    )
    out = Solution(sol.theta.clone(), sol.evaluation, sol.iterations.clone(), sol.converged.clone())
    out.theta[rows] = more.theta
    put_rows(out.evaluation, rows, more.evaluation)
    out.iterations[rows] += more.iterations
    out.converged[rows] = more.converged
    return out


def _batched_fit(
    final: Problem,
    sol: Solution,
    noise_var: torch.Tensor,
    covariance: torch.Tensor,
    iterations: torch.Tensor,
    keep_covariance: bool = False,
) -> BatchedFit:
    """The :class:`BatchedFit` of ``sol`` of ``final``, with the noise variance ``(B,)``, the
    amplitudes' covariance ``(B, M, M)`` (read here; kept with ``keep_covariance``) and the
    iterations ``(B,)``."""
    ev = sol.evaluation
    theta = sol.theta
    full_residual, coef = residual_and_baseline(final, ev)

    def out(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    # a view of the whole bound (B, M + P_free, M + P_free) (crlb's, 83 x 83 for the invivo
    # preset's 24 components): read here, nothing of it kept but copies, so that the chunks of
    # solve do not hold it to the end (55 kB a spectrum, where the M x M block is 4.5 kB and what
    # the outputs read of it 2.2 kB)
    cov = out(covariance)
    return BatchedFit(
        amplitudes=out(ev.amplitudes),
        covariance=(cov if keep_covariance else cov[:, :0, :0]).copy(),
        crlb_sd=np.sqrt(np.diagonal(cov, axis1=1, axis2=2)),
        combined_sd=combined_sds(cov, final.names),
        correlations=covariance_pairs(cov),
        baseline=out(coef),
        noise_sd=out(noise_var.sqrt()),
        residual_norm=out(full_residual.abs().square().sum(-1).sqrt()),
        iterations=out(iterations),
        converged=out(sol.converged),
        theta=out(theta),
        **vars(lineshapes(final, theta)),
    )


def has_deviations(config: FitConfig) -> bool:
    """Whether ``config``'s model ends with a pass with the per-metabolite deviations (their
    priors, the spread priors, or the free-form lineshape's kernel): :func:`solve`'s last
    problem's layout."""
    return (
        config.shift_prior_sd_hz is not None
        or config.damping_prior_sd_per_s is not None
        or config.has_spread_priors
        or config.lineshape_kind == "freeform"
    )


def fit_at(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    theta: np.ndarray,
    *,
    deviations: bool,
) -> BatchedFit:
    """The :class:`BatchedFit` of ``config``'s model of FIDs ``(B, N)`` on ``basis``' grid
    (prepared, as :func:`solve`'s) at the nonlinear parameters ``theta`` ``(B, P)`` (the
    layout of that model's problem with or without the per-metabolite ``deviations``), without
    an iteration: the amplitudes by NNLS, the baseline, the noise level from the residual and
    the CRLB covariance, on the model's band as ``config.decimate_model`` says (the problem
    :func:`solve`'s last pass and a physics-head model's polish use). E.g. a physics-head
    model's polished parameters, drawn as the fit's figures (``scaloquant.quantify``)."""
    device = usable_device(config.device)
    problem = make_problem(basis, config, deviations=deviations, device=device)
    x = torch.as_tensor(np.array(fids), dtype=torch.complex128, device=device)
    y = data_window(problem, x)
    th = torch.as_tensor(np.array(theta, dtype=np.float64), device=device)
    ones = torch.ones(y.shape[0], dtype=torch.float64, device=device)
    # with the derivatives: the residual's degrees of freedom count the nonlinear parameters
    # (without, the noise SD came 5.6 % under the polish's and the fit's at the same end). One
    # evaluation for the noise level and the CRLB: the noise variance weighs the priors in its
    # cost alone (not the amplitudes, columns or derivative columns), and neither the CRLB nor
    # the BatchedFit reads that cost
    ev = evaluate(problem, th, y, ones)
    noise_var = noise_var_from_residual(problem, ev)
    cov, _ = crlb(problem, ev, noise_var)
    m = problem.n_metabolites
    none = torch.zeros(y.shape[0], dtype=torch.long, device=device)
    sol = Solution(th, ev, none, torch.ones_like(none, dtype=torch.bool))
    return _batched_fit(problem, sol, noise_var, cov[:, :m, :m], none)


def solve(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    *,
    region_noise_sd: np.ndarray | None = None,
    start: dict[str, np.ndarray] | None = None,
    baseline_ed_per_ppm: np.ndarray | None = None,
    second_start: np.ndarray | None = None,
    covariance: bool = False,
) -> BatchedFit:
    """Fit FIDs ``(B, N)`` on ``basis``' grid (already
    :func:`~scaloquant.fit.problem.prepare_basis`-ed) in chunks of :func:`chunk_size` spectra on
    ``config.device`` (on a GPU, a chunk that runs out of memory is halved).

    ``region_noise_sd`` ``(B,)``: noise SD per real part from a signal-free region (used for
    the priors' weight, and for the bounds when ``config.noise_estimate == "region"``);
    ``start``: starting values by name, ``damping_per_s``/``shift_hz`` ``(B, M)``,
    ``phase0_rad``/``phase1_rad_per_ppm``/``gauss_per_s2`` ``(B,)``, or ``theta`` ``(B, P)``
    (a :class:`BatchedFit`'s own ``theta`` of a problem of the same basis and model: every
    nonlinear parameter, the group values and deviations apart, the others ignored).

    ``baseline_ed_per_ppm`` ``(B,)``: a spline baseline's stiffness per spectrum, in place of
    ``config.baseline_ed_per_ppm``, in one tensor program whatever their mix
    (:class:`~scaloquant.fit.problem.BaselineStiffnesses`; the baseline F-test's refits,
    :func:`scaloquant.fit.spectra._solve`): each spectrum's fit is the one a solve at its
    stiffness alone gives, to the bit on a CPU (as any spectrum's fit is its own,
    :func:`in_chunks`) where it starts from ``theta`` without continuation stages; the starts
    and continuation stages otherwise see ``config.baseline_ed_per_ppm``. With the
    per-metabolite model's global moves (:mod:`scaloquant.fit.search`, whose problems are of
    one stiffness), each stiffness' spectra are a solve of their own, at that stiffness from
    the stages on (the same fits as solves of each stiffness alone).

    ``second_start`` ``(B, P)``: each spectrum fitted also from there (a fit's ``theta``, as
    ``start``'s), without the continuation stages, as ``B`` more rows of the same tensor
    program after the stages (the F-test reference's two starts,
    ``FitConfig.baseline_ftest_two_starts``): the fit has ``2 B`` rows, each spectrum's two
    side by side (spectrum ``j``'s from ``start`` at row ``2 j``, from ``second_start`` at
    ``2 j + 1``), each the fit that a solve of its own from that start gives (to the bit on a
    CPU, :func:`in_chunks`), where the two solves took two passes. Not with
    ``baseline_ed_per_ppm`` nor the per-metabolite model's global moves.

    ``covariance``: keep the amplitudes' covariance bound (:attr:`BatchedFit.covariance`,
    ``(B, M, M)``); without it, only what the outputs read of it, chunk by chunk."""
    device = usable_device(config.device)
    with_deviations = has_deviations(config)
    each, index = None, None
    if second_start is not None and (baseline_ed_per_ppm is not None or search.applies(config)):
        raise ConfigError(
            "a second start is not implemented with a stiffness per spectrum nor the "
            "per-metabolite model's global moves; solve from each start on its own"
        )
    if baseline_ed_per_ppm is not None:
        each_row = np.asarray(baseline_ed_per_ppm, dtype=float).reshape(-1)
        if search.applies(config):
            # the global moves search at one stiffness (their problems are the config's): each
            # stiffness' spectra in a solve of their own, the fits put back in the rows' order
            # (a stiffness per spectrum of the F-test's rules: fit --groups per_metabolite
            # --baseline-stiffness ftest stopped here until session 35)
            groups = [np.flatnonzero(each_row == v) for v in np.unique(each_row)]
            fits = [
                solve(
                    fids[rows],
                    basis,
                    replace(config, baseline_ed_per_ppm=float(each_row[rows[0]])),
                    region_noise_sd=None if region_noise_sd is None else region_noise_sd[rows],
                    start={name: value[rows] for name, value in (start or {}).items()},
                    covariance=covariance,
                )
                for rows in groups
            ]
            return BatchedFit.joined(fits).take(np.argsort(np.concatenate(groups)))
        order = np.argsort(each_row, kind="stable")
        if np.any(np.diff(order) < 0):
            # sorted by stiffness, each stiffness' rows are slices of every array, whatever
            # rows the LM keeps (evaluation.stiffness_rows), not gathered copies
            fit = solve(
                fids[order],
                basis,
                config,
                region_noise_sd=None if region_noise_sd is None else region_noise_sd[order],
                start={name: value[order] for name, value in (start or {}).items()},
                baseline_ed_per_ppm=each_row[order],
                covariance=covariance,
            )
            return fit.take(np.argsort(order))
        values, index = np.unique(each_row, return_inverse=True)
        each, index = tuple(float(v) for v in values), index.reshape(-1)
    stages = [stage_problem(basis, config, L, device) for L in config.continuation_broadening_per_s]
    final = make_problem(
        basis, config, deviations=False, device=device, stiffnesses_ed_per_ppm=each
    )
    refine = (
        make_problem(basis, config, device=device, stiffnesses_ed_per_ppm=each)
        if with_deviations
        else None
    )
    last = refine if refine is not None else final
    exact = full_grid_twin(last, basis, config, deviations=with_deviations, device=device)
    twin_pairs = None
    if search.applies(config):
        twin_pairs = search.twins(basis, config, final.group_of.cpu().numpy())

    def part(lo: int, hi: int) -> BatchedFit:
        x = torch.as_tensor(np.array(fids[lo:hi]), dtype=torch.complex128, device=device)
        region = None
        if region_noise_sd is not None:
            region = torch.as_tensor(region_noise_sd[lo:hi] ** 2, device=device)
        part_start = {k: v[lo:hi] for k, v in (start or {}).items()}
        stiffness = None
        if index is not None:
            stiffness = torch.as_tensor(index[lo:hi], dtype=torch.long, device=device)
        second = None
        if second_start is not None:
            arr = np.array(second_start[lo:hi], dtype=np.float64)
            second = torch.as_tensor(arr, device=device)
        fit = _solve_chunk(
            stages,
            final,
            refine,
            config,
            x,
            basis.dwell_time_s,
            region,
            part_start,
            twin_pairs,
            exact,
            stiffness,
            second,
            covariance,
        )
        if second is None:
            return fit
        # each spectrum's two rows side by side, so the chunks join in spectrum order
        return fit.take(side_by_side_rows(hi - lo))

    return in_chunks(part, fids.shape[0], device, [*stages, final, refine, exact])


def side_by_side_rows(b: int) -> np.ndarray:
    """``(2 b,)`` the rows that put the fits of ``b`` spectra from two starts, given one start's
    ``b`` rows then the other's, side by side: spectrum ``j``'s first at row ``2 j``, its second
    at ``2 j + 1`` (:func:`solve`'s ``second_start`` rows, ``fit.spectra.lower_reference``'s
    input)."""
    return np.arange(2 * b).reshape(2, -1).T.reshape(-1)


def in_chunks(
    part: Callable[[int, int], BatchedFit],
    n: int,
    device: torch.device,
    problems: list[Problem | None],
) -> BatchedFit:
    """``part(lo, hi)`` (the fit of spectra ``[lo, hi)``) over ``n`` spectra in the chunks of
    :func:`chunk_parts`, concatenated in order. Each spectrum's fit does not depend on the
    others in its chunk, nor on the chunk's size or its place in it: to the bit on a CPU with
    MKL's reproducible mode (scaloquant.threads.prefer_reproducible_mkl), which the command
    sets; docs/fit.md "Where it stands" says how far where it is not set, and on a GPU."""
    return BatchedFit.joined(chunk_parts(part, n, device, chunk_size(device, problems)))


def chunk_parts(part: Callable[[int, int], T], n: int, device: torch.device, chunk: int) -> list[T]:
    """``[part(lo, hi), ...]`` over ``n`` spectra in chunks of at most ``chunk``
    (:func:`chunk_ranges`), in order: the batched fit's (:func:`in_chunks`), its F-test scores'
    (:func:`baseline_ftest_ssq`) and its result's rebuilt spectra
    (``scaloquant.fit.spectra._derived_spectra``). On a CPU with 2+ threads, a chunk per thread side
    by side (one core each) rather than every small operation of one chunk split over the
    threads, which kept 2 cores ~1.3 busy; on a GPU one chunk after the other, halved where the
    device runs out of memory (:func:`halving_on_oom`). For a ``part`` whose numbers for a
    spectrum are its own, the same in any chunk."""
    workers = min(torch.get_num_threads(), available_cpus()) if device.type == "cpu" else 1
    ranges = chunk_ranges(n, chunk, workers)
    if workers > 1 and len(ranges) > 1:
        jobs = {f"{lo}": (lambda lo=lo, hi=hi: part(lo, hi)) for lo, hi in ranges}
        parts = [result for result, _ in run_side_by_side(jobs, workers).values()]
    else:
        # a chunk of fewer than ONE_THREAD_BELOW spectra on a CPU: on one torch thread, as each
        # chunk side by side, not its small operations split over the threads (5 spectra
        # refitted by quantify's adaptive baseline, 2 threads on a shared 2-core machine at load
        # 3: 2.6-3.9 s against 0.36 s on one; docs/history/physics-models-log.md "Where
        # quantify's time goes with the polish (session 29, `qstage29`)"; 32-63 spectra:
        # ONE_THREAD_BELOW), its numbers those of one thread whatever the count
        small = device.type == "cpu" and n < ONE_THREAD_BELOW
        with torch_threads(1) if small else contextlib.nullcontext():
            parts = [fit for lo, hi in ranges for fit in halving_on_oom(part, lo, hi)]
    return parts


def solve_given_amplitudes(
    fids: np.ndarray, basis: BasisSet, config: FitConfig, amplitudes: np.ndarray
) -> BatchedFit:
    """Fit only the nonlinear parameters of FIDs ``(B, N)`` on ``basis``' grid (already
    :func:`~scaloquant.fit.problem.prepare_basis`-ed) with the amplitudes held at ``amplitudes``
    ``(B, M)`` (any sign), in chunks as :func:`solve`: one damping, shift (and Gaussian) for all
    metabolites with the phases, started from the cross-correlation shift,
    ``config.initial_damping_per_s`` and the ``phi0`` that aligns the model with the data
    (:func:`~scaloquant.fit.start.phase0_given_amplitudes`); then, with more than one group, a
    damping and shift per group started from those, with the resets and twin swaps of
    :mod:`scaloquant.fit.search` for the per-metabolite model. No per-metabolite deviations and
    no continuation stages. The covariance is NaN (bounds of amplitudes that were not
    estimated would mean nothing); the noise SD from the residual, counting the nonlinear and
    baseline parameters as fitted."""
    device = usable_device(config.device)
    global_config = replace(config, grouping="global")
    common = make_problem(basis, global_config, deviations=False, device=device)
    final = make_problem(basis, config, deviations=False, device=device)
    last, last_config = (final, config) if final.n_groups > 1 else (common, global_config)
    exact = full_grid_twin(last, basis, last_config, deviations=False, device=device)
    twin_pairs = None
    if search.applies(config) and final.n_groups > 1:
        twin_pairs = search.twins(basis, config, final.group_of.cpu().numpy())

    def part(lo: int, hi: int) -> BatchedFit:
        x = torch.as_tensor(np.array(fids[lo:hi]), dtype=torch.complex128, device=device)
        a = torch.as_tensor(amplitudes[lo:hi], dtype=torch.float64, device=device)
        ones = torch.ones(x.shape[0], dtype=torch.float64, device=device)
        y = data_window(common, x)
        theta = start_theta(common, config, y, basis.dwell_time_s, {})
        sl = common.slices()
        if config.fit_phase0:
            theta[:, sl["phase0"]] = phase0_given_amplitudes(common, theta, y, a)[:, None]
        centre = theta[:, sl["shift"]].mean(-1)
        lower, upper = parameter_bounds(common, centre, config)
        sol = levenberg_marquardt(
            common, theta, y, ones, lower, upper,
            max_iterations=config.max_iterations, fixed_amplitudes=a,
        )  # fmt: skip
        problem, iterations, weight = common, sol.iterations, ones
        if final.n_groups > 1:
            fs = final.slices()
            theta = torch.zeros(x.shape[0], final.size, dtype=torch.float64, device=device)
            for key in ("damping", "shift", "gauss"):
                theta[:, fs[key]] = sol.theta[:, sl[key]]
            for key in ("phase0", "phase1"):
                theta[:, fs[key]] = sol.theta[:, sl[key]]
            lower, upper = parameter_bounds(final, centre, config)
            # the MM shift prior (if any) weighed by the common fit's residual variance, not 1
            # (the data's units: stages.prior_weight)
            weight = prior_weight(final, theta, y, noise_var_from_residual(common, sol.evaluation))
            sol = levenberg_marquardt(
                final, theta, y, weight, lower, upper,
                max_iterations=config.max_iterations, fixed_amplitudes=a,
            )  # fmt: skip
            if twin_pairs is not None:
                sol = search.global_moves(
                    final, config, sol, y, weight, centre, twin_pairs, fixed_amplitudes=a
                )
            problem, iterations = final, iterations + sol.iterations
        if exact is not None:
            before = sol.iterations
            sol = finish_on_the_full_grid(
                exact, problem, sol, y, weight, lower, upper, None, None, config.max_iterations,
                fixed_amplitudes=a,
            )  # fmt: skip
            iterations = iterations + (sol.iterations - before)
        noise_var = noise_var_from_residual(problem, sol.evaluation)
        m = final.n_metabolites
        nan = torch.full((x.shape[0], m, m), float("nan"), dtype=torch.float64, device=device)
        return _batched_fit(problem, sol, noise_var, nan, iterations)

    return in_chunks(part, fids.shape[0], device, [common, final, exact])


def first_members(group_of: np.ndarray) -> list[int]:
    """The first metabolite of each group ``0 .. G - 1`` (whose group values a per-metabolite
    result carries), from ``group_of`` ``(M,)``."""
    return [int(np.flatnonzero(group_of == g)[0]) for g in range(int(group_of.max()) + 1)]


def _theta_of(problem: Problem, fit: BatchedFit | Lineshapes, rows: slice) -> torch.Tensor:
    """``theta`` ``(B, P)`` in ``problem``'s layout that reproduces the lineshapes of ``fit``
    (spectra ``rows``): group damping and shift at 0 and each metabolite's whole damping and
    shift as its deviation, each group's Gaussian from its first member, the phases, the
    free-form kernel."""
    dev = problem.ppm.device
    sl = problem.slices()
    damping = torch.as_tensor(fit.damping_per_s[rows], dtype=torch.float64, device=dev)
    theta = torch.zeros(damping.shape[0], problem.size, dtype=torch.float64, device=dev)
    theta[:, sl["damping_dev"]] = damping
    theta[:, sl["shift_dev"]] = torch.as_tensor(fit.shift_hz[rows], device=dev)
    first = first_members(problem.group_of.cpu().numpy())
    theta[:, sl["gauss"]] = torch.as_tensor(fit.gauss_per_s2[rows][:, first], device=dev)
    theta[:, sl["phase0"]] = torch.as_tensor(fit.phase0_rad[rows], device=dev)[:, None]
    theta[:, sl["phase1"]] = torch.as_tensor(fit.phase1_rad_per_ppm[rows], device=dev)[:, None]
    theta[:, sl["kernel"]] = torch.as_tensor(fit.lineshape_kernel[rows][:, 1:], device=dev)
    return theta


def baseline_ftest_ssq(
    fids: np.ndarray,
    problems: list[Problem],
    fit: BatchedFit | Lineshapes,
    reference: BatchedFit | Lineshapes,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The residual sums of squares compared with :func:`baseline_ftest_bound`, one
    ``(S (B,), active amplitudes (B,))`` for each of ``problems`` (:func:`baseline_problem`:
    candidate stiffnesses of one basis and lineshape model): the sum of squares of the real
    part of ``fit``'s residual over the problem's window (amplitudes and baseline solved again
    at ``fit``'s lineshape and the problem's stiffness), ``reference``'s phases removed; the
    model's columns, which do not depend on the baseline, formed once for all. Scored at a fit
    with that stiffness, or (cheaply) at the reference's: a lineshape adapted to the flexible
    baseline favours it (on spant the first port of the rule, scoring every candidate there,
    picked 3-4 per ppm where refits give 1-2). With the most flexible candidate's problem
    first, the first pair is :func:`baseline_ftest_bound`'s ``score`` at ``reference``'s
    lineshape."""
    first = problems[0]
    device = first.ppm.device
    n = fids.shape[0]
    offset = first.ppm - first.pivot_ppm

    def part(lo: int, hi: int) -> list[tuple[np.ndarray, np.ndarray]]:
        rows = slice(lo, hi)
        x = torch.as_tensor(np.array(fids[rows]), dtype=torch.complex128, device=device)
        zeros = torch.zeros(x.shape[0], dtype=torch.float64, device=device)
        phi0 = torch.as_tensor(reference.phase0_rad[rows], device=device)[:, None]
        phi1 = torch.as_tensor(reference.phase1_rad_per_ppm[rows], device=device)[:, None]
        unphase = torch.exp(-1j * (phi0 + phi1 * offset.to(phi1.dtype)))  # (b, K)
        theta, y = _theta_of(first, fit, rows), data_window(first, x)
        formed = columns(first, theta)
        out = []
        for problem in problems:
            ev = evaluate(problem, theta, y, zeros, derivatives=False, formed=formed)
            r, _ = residual_and_baseline(problem, ev)  # ev.stiffness None: problem's stiffness
            ssq = (r * unphase).real.square().sum(-1).cpu().numpy()
            out.append((ssq, ev.passive.sum(-1).cpu().numpy()))
        return out

    # the chunks side by side on the threads, as the fit's (the adaptive rule's screen of every
    # spectrum ran here on the caller's thread, its small operations split over torch's threads)
    parts = chunk_parts(part, n, device, chunk_size(device, [first]))
    if not parts:
        return [(np.empty(0), np.empty(0)) for _ in problems]
    return [
        (
            np.concatenate([chunk[i][0] for chunk in parts]),
            np.concatenate([chunk[i][1] for chunk in parts]),
        )
        for i in range(len(problems))
    ]


def baseline_ftest_score(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    reference: BatchedFit | Lineshapes,
) -> tuple[np.ndarray, np.ndarray]:
    """``(S_ref (B,), active amplitudes (B,))`` of :func:`baseline_ftest_bound`: the sum of
    squares of the real part of the residual of the fits ``reference`` of the FIDs ``fids``
    ``(B, N)`` at their own lineshape and phases, with the most flexible of
    ``config.baseline_ed_candidates_per_ppm`` (amplitudes and baseline solved again), and the
    fits' active amplitudes there. Also the F-test reference's choice between its two starts
    (``fit.spectra.lower_reference``), which hands the winner's to the bound."""
    return baseline_ftest_ssq(fids, [_flexible_problem(basis, config)], reference, reference)[0]


def baseline_problem(basis: BasisSet, config: FitConfig, ed_per_ppm: float) -> Problem:
    """The problem of ``config``'s model with a spline baseline of ``ed_per_ppm`` effective
    dimensions per ppm: an F-test candidate's (:func:`baseline_ftest_ssq`), built once by a
    caller that scores it more than once."""
    candidate = replace(config, baseline_ed_per_ppm=ed_per_ppm)
    return make_problem(basis, candidate, device=usable_device(config.device))


def _flexible_problem(basis: BasisSet, config: FitConfig) -> Problem:
    """The problem of ``config``'s model with the most flexible of its
    ``baseline_ed_candidates_per_ppm``: the F-test reference's."""
    return baseline_problem(basis, config, config.baseline_ed_candidates_per_ppm[-1])


def baseline_ftest_bound(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    reference: BatchedFit | Lineshapes,
    ed_per_ppm: float | None = None,
    *,
    score: tuple[np.ndarray, np.ndarray] | None = None,
    flexible: Problem | None = None,
    stiff: Problem | None = None,
) -> np.ndarray:
    """The largest residual sum of squares ``(B,)`` a stiffer baseline may leave:
    ``S_ref (1 + n / (K - n) F^-1(p; n, K - n))``, ``S_ref`` that of ``reference`` (the fit
    with the most flexible of ``config.baseline_ed_candidates_per_ppm``), ``n`` its degrees
    of freedom (active amplitudes, free nonlinear parameters, the baseline's effective
    dimension), ``p`` = ``config.baseline_ftest_probability``: LCModel's choice of its
    baseline regulariser (the largest ``alphaB`` whose Fisher variance ratio to the reference
    solution has a probability to reject between 0.02 and 0.08; ``TWOREG``, ``FSHSSQ`` in
    ``LCModel.f``); ``baseline_stiffness="ftest"`` keeps the stiffest candidate within it
    (``fit.spectra._solve``). As LCModel fits the real part of the phased spectrum, ``S`` is
    the sum over the real part of the residual with the fitted phases removed, ``K`` the
    window's points, and the baseline counts once (on the complex residual with ``2K`` and
    twice the baseline, the rule picked 3 effective dimensions per ppm on the spant spectrum
    where LCModel's ``alphaB`` is 2, and 6-7 on the Osprey spectra where LCModel's is 5-7; on
    the real part 1 and 4-6: ``benchmarks/diag_baseline_ftest.py``,
    docs/history/fit-log.md "The in-vivo disagreement with LCModel").

    With ``config.baseline_ftest_rule == "nested"`` the bound is that of the candidate
    ``ed_per_ppm`` (required then): the extra-sum-of-squares F-test of nested fits,
    ``S_ref (1 + dn / (K - n) F^-1(1 - p; dn, K - n))``, ``dn`` the effective dimensions the
    candidate's baseline has fewer than the reference's (0: no increase allowed).

    ``score``: ``reference``'s :func:`baseline_ftest_score`, where the caller has it (the
    two-start reference's, from its choice), so that it is not computed again; ``flexible``:
    the most flexible candidate's problem (:func:`baseline_problem`), and ``stiff``, the
    candidate ``ed_per_ppm``'s (the nested rule's), where the caller built them, so that they
    are not built again."""
    from scipy.special import fdtri

    problem = _flexible_problem(basis, config) if flexible is None else flexible
    if score is None:
        score = baseline_ftest_ssq(fids, [problem], reference, reference)[0]
    ssq, active = score
    points = problem.ppm.numel()
    dof = np.clip(active + int(problem.free.sum()) + problem.baseline_ed, 1, points - 2)
    p = config.baseline_ftest_probability
    if config.baseline_ftest_rule == "region":
        return ssq * (1 + dof / (points - dof) * fdtri(dof, points - dof, p))
    if ed_per_ppm is None:
        raise ValueError("the nested F-test bound is per candidate: give ed_per_ppm")
    if stiff is None:
        stiff = baseline_problem(basis, config, ed_per_ppm)
    dn = problem.baseline_ed - stiff.baseline_ed
    if dn <= 1e-9:
        return ssq
    return ssq * (1 + dn / (points - dof) * fdtri(dn, points - dof, 1 - p))
