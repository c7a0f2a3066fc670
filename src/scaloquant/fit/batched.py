"""The batched fit: variable projection with non-negative amplitudes and Levenberg–Marquardt,
many spectra in one torch program (CPU or CUDA, float64).

Model (:mod:`scaloquant.physics.model`) of spectrum ``b`` over the window's ``K`` bins::

    y_b(f) ~ sum_m a_bm S_bm(f; theta_b) + sum_k c_bk B_k(f),   a_bm >= 0, c_bk complex

with ``theta`` the nonlinear parameters: per group a damping ``alpha`` (1/s), a shift ``df``
(Hz) and a Gaussian ``beta`` (1/s^2), the global ``phi0``, ``phi1``, and optional per-metabolite
deviations ``da``, ``dd`` held by soft Gaussian priors of SD ``damping_prior_sd_per_s`` and
``shift_prior_sd_hz`` (LCModel's approach). The objective is::

    Phi(theta) = min_{a >= 0, c} |y - S a - B c|^2 + lambda |D2 c|^2 + sigma^2 sum_j (u_j / s_j)^2

over the real and imaginary parts (``u`` the deviations, ``sigma`` the noise SD per real part).

Baseline elimination. For fixed ``a`` the penalised baseline is solved in closed form, which
leaves the residual metric ``W = I - B (B^T B + lambda P)^-1 B^T``: inner products
``<u, v>_W = Re(u^H v) - Re((C u)^H (C v))`` with ``C = R^-1 B^T`` (``R R^T = B^T B + lambda
P``, the real design applied to the real and imaginary parts alike). Everything below is in
Gram form in that metric, ``G = <S, S>_W`` ``(M, M)`` and ``h = <S, y>_W`` ``(M,)``, so no
``(K, K)`` matrix is formed.

Amplitudes. ``min_{a >= 0} a^T G a - 2 h^T a`` by block principal pivoting (Kim & Park, SIAM J
Sci Comput 33:3261, 2011): batched exchanges of the passive set with a solve of the passive
block each step, exact on the final active set, finite termination guaranteed by its backup
rule, warm-started from the previous evaluation's set.

Nonlinear parameters. Levenberg–Marquardt (Marquardt's diagonal scaling; for the
per-metabolite model Levenberg's in the parameters scaled by typical sizes, see
:data:`SCALING_FLOOR_PER_METABOLITE`), one damping factor per spectrum, on the
variable-projection functional with Kaufman's Jacobian (BIT 15:49, 1975)
in the ``W`` metric: with ``D = (dS/dtheta) a`` ``(K, P)`` and ``E = <S_F, D>_W`` over the
passive set ``F``, ``J^T J = <D, D>_W - E^T G_FF^-1 E`` and the gradient ``-<D, r>_W``, plus
the priors' diagonal. Bounds are enforced by projection. ``dS/dtheta`` needs two more FFTs
(of ``t z`` and, with a Gaussian, ``t^2 z``; in :data:`DERIVATIVE_DTYPE`). Spectra that have
converged leave the batch.

Global strategy, batched: a cross-correlation start for the shift and a least-squares start
for ``phi0``; continuation stages (``FitConfig.continuation_broadening_per_s``: data and basis
broadened alike by ``exp(-L t)``, coarse to fine, each on the FID's first samples while
``exp(-L t)`` is above 0.1: :func:`stage_points`; exact, not approximate, since the same factor
multiplies data and model, and with large ``L`` multiplets merge and the residual is smooth in
the shifts, so each stage only has to reach the next one's basin); the per-metabolite deviations are freed only in the
final stage, with ``sigma`` taken from the previous stage's residual (or the signal-free region).
With ``grouping="per_metabolite"`` also the re-centred shift bounds, resets, twin swaps and
second search of :mod:`scaloquant.fit.search`.

Cramér–Rao bounds (:func:`crlb`): the Fisher information of all parameters (amplitudes,
identifiable nonlinear parameters, baseline with its penalty as a Gaussian prior, the
deviations' priors), with the baseline eliminated exactly by the same Schur complement ``W``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import ConfigError, IncompatibleDataError
from ..metabolites import canonical
from ..physics import baseline as baseline_designs
from ..physics.macromolecules import LCMODEL_COMPONENTS, parametric_components
from ..physics.model import (
    fft,
    kernel_window_columns,
    lineshape_rates,
    modulated_fids,
    phase_factor,
    real_weighted_sum,
    times_real,
    window_columns,
)
from ..physics.priors import RATIO_PRIOR_SETS, prior_matrix, ratio_rows
from ..signal import axes
from ..signal.decimate import MARGIN_PPM, band_decimation
from ..signal.match import FREQUENCY_RTOL, basis_sequence
from ..threads import available_cpus, run_side_by_side
from ..types import BasisSet
from .config import FitConfig, macromolecule_names
from .model import metabolite_and_mm_groups, named_groups
from .scale import signal_per_proton

#: Relative cost decrease below which an accepted LM step ends a spectrum's fit. At a good fit
#: the cost is about ``2K sigma^2`` (``K`` ~ 250 window bins), and moving an estimate by one
#: standard deviation changes it by about ``sigma^2``; a last gain of 1e-5 of the cost
#: (~5e-3 ``sigma^2``, with about as much left when LM converges linearly) leaves the estimates
#: within ~0.1 SD of the minimum. Measured against 1e-6 (64 tissue-like ``invivo`` spectra, 64
#: default-simulator spectra with ``simulated-batched``, the 28 challenge spectra): mean
#: iterations of the final run 13.3 -> 9.9, 23.5 -> 17.8, 14.2 -> 9.7, mean absolute errors
#: against the truth unchanged (3.668 -> 3.666 mM, 0.1104 -> 0.1105).
COST_RTOL = 1e-5
#: The noise-scaled stopping rule (``levenberg_marquardt(stop_var=...)``, the per-metabolite
#: model's passes): an accepted step ends a spectrum's run when it lowered the cost by less than
#: ``COST_NOISE_TOL`` noise variances and the undamped step predicts no more than that. In the
#: quadratic model the cost above its minimum, in noise variances, is the squared Mahalanobis
#: distance of the parameters from it in CRLB units, so 0.03 leaves every parameter within
#: ~0.17 CRLB SD (most far closer). The noise variance is the smaller of the signal-free
#: region's and the current residual's (``cost / 2K``): on noiseless spectra, whose region
#: holds the lines' tails, the latter keeps the rule relative (~6e-5 of the cost) and strict.
#: Measured on the trajectories of 64 SNR-30 spectra of ``bench_fit_engine.py`` (seed 1) run
#: to a strict end, cost left above the strict minimum at the stop, in noise variances (median
#: / 90th percentile): the per-metabolite main pass 21.9 -> 16.7 iterations, 0.001 / 0.004 ->
#: 0.007 / 0.045; its last pass 15.5 -> 10.6, 0.001 / 0.005 -> 0.008 / 0.029. The grouped
#: models keep the relative rule: with the noise rule the in-vivo model took more iterations
#: on the default simulator's spectra (23.7 -> 27.2; it does not fit them, and the region's
#: noise is far below the residual) and as many on tissue-like ones (9.8 -> 10.0).
COST_NOISE_TOL = 0.03
#: Relative cost decrease ending a continuation stage (it only has to reach the right basin):
#: 1e-4 (was 1e-5) took 14 -> 11 and 12 -> 10 stage iterations on tissue-like and challenge
#: spectra with the same errors against the truth; 1e-3 (was 1e-4; 64 SNR-30 spectra of
#: ``bench_fit_engine.py``, seed 1): ``invivo`` 13.0 -> 9.6 stage iterations on the default
#: simulator's spectra, 11.5 -> 8.8 on tissue-like ones (ratio-to-tCr MAE 0.2129 -> 0.2130),
#: the per-metabolite model's two stages 40.2 -> 32.8 (MAE 0.0679 -> 0.0682).
STAGE_COST_RTOL = 1e-3
#: Iterations of a continuation stage. 12 (was 25; the same spectra): the per-metabolite
#: model's two stages 40.2 -> 23.3 iterations (most of its spectra ran to 25 in each; MAE
#: 0.0679 -> 0.0673, and the main pass after them no longer), tissue-like ratio MAE 0.2129 ->
#: 0.2124; 8 cost accuracy on tissue-like spectra (ratio MAE 0.2280).
STAGE_ITERATIONS = 12
#: LM damping factor: start, and the factors after a rejected / accepted step. LM_DOWN 0.5
#: (was 0.3; the same spectra): rejected steps per spectrum (trials that cost an evaluation and
#: move nothing) 7.0 -> 4.7 (``invivo`` final pass), 8.0 -> 4.4 (per-metabolite main passes),
#: 2.5 -> 2.0 (tissue-like), and fewer iterations in all (23.7 -> 22.1, 37.4 -> 34.0, 9.8 ->
#: 9.7); LM_UP 4 (was 10) took more (28.5). Session 9 measured the gain-ratio rule (lower the
#: damping by 1/3 only after a step whose gain ratio is >= 0.75; Madsen, Nielsen & Tingleff
#: 2004, sec. 3.1): 1-3 % fewer iterations (``invivo`` 34.2 -> 33.3, tissue-like 18.6 -> 18.5),
#: but with the band-limited water removal it took the spant Philips spectrum to a worse
#: minimum (relative residual 0.0955 -> 0.0960, Glx/tCr 1.371 -> 1.219 against LCModel's
#: 1.510), so the fixed factor stays (docs/fit.md "Fewer iterations, again (session 9)").
LM_START, LM_UP, LM_DOWN = 1e-3, 10.0, 0.5
#: Floor of the LM scaling of a parameter, as a share of the largest scaled curvature
#: ``max_k (J^T J)_kk s_k^2`` (``s`` = ``Problem.scale``), divided by ``s_j^2``. Grouped
#: models: Marquardt's scaling by the curvature, floored only to keep unidentifiable parameters
#: (a group with no amplitude) still. The per-metabolite model: 1, i.e. the damping is the same
#: in every scaled parameter ``theta_j / s_j`` (Levenberg's, as scipy's trust region with
#: ``x_scale``): with Marquardt's scaling a metabolite of small amplitude (small curvature) took
#: long steps onto a neighbour's line and stayed there. 64 noiseless default-simulator spectra
#: (seed 0): mean absolute error 7.1e-4 with 1 of 64 above 1e-3 -> 1.9e-11, none above;
#: ``benchmarks``' CRLB Monte Carlo (200 SNR-30 draws): SD/CRLB of NAA, Cr, PCr, GPC+PCho,
#: Ins, Glu 1.11, 1.67, 1.65, 1.01, 1.03, 1.49 -> 1.08, 0.99, 0.96, 0.99, 1.02, 1.42.
SCALING_FLOOR_GROUPED = 1e-8
SCALING_FLOOR_PER_METABOLITE = 1.0
#: Above this damping factor a spectrum is taken as converged (no step lowers its cost).
LM_MAX = 1e10
#: The stopping rule of the per-metabolite model (``Problem.gauss_newton_stop``): an accepted
#: step's relative gain below ``cost_rtol`` ends a run only where the undamped (Gauss-Newton)
#: step predicts a relative decrease below it too. With Levenberg's damping (the scaling floor
#: of 1) the damping is set by the largest scaled curvature, so the parameters of a small
#: metabolite move by tiny steps of tiny gain far from their minimum, and the gain alone
#: stopped there: 200 SNR-30 draws (``benchmarks/validate_fit_crlb.py``, seed 0), the cost
#: with this rule lower by > 0.1 (> 1) noise variances in 31 (17) draws, higher in 10 (other
#: basins), the same within 0.01 in 146; model evaluations 63.6 -> 84.0 per spectrum
#: (``bench_fit_engine.py``: 3.46 -> 2.63 spectra per CPU-s; docs/fit.md has a looser variant). The
#: grouped models keep the gain alone (Marquardt's scaling moves every parameter by its own
#: curvature). Where a noise variance is given (``stop_var``, the per-metabolite model's passes
#: in :func:`solve`) both thresholds are :data:`COST_NOISE_TOL` noise variances instead.


def prepare_basis(basis: BasisSet, config: FitConfig, *, same_scanner: bool = True) -> BasisSet:
    """The basis the batched model uses: the macromolecules of ``config.macromolecules``
    (``"basis"``: as given; ``"none"``: removed; ``"parametric"``: replaced by LCModel's
    components; ``"auto"``: the measured ones plus LCModel's parametric lipids (Lip09, Lip13,
    Lip20: a measured macromolecule spectrum holds no lipids, which tumour spectra and
    scalp contamination bring) if the basis has any and ``same_scanner``, else all of
    LCModel's components).

    ``same_scanner``: the data were acquired at the basis' spectrometer frequency (see
    :func:`same_scanner`). Metabolite basis spectra are simulated and carry over to another
    vendor's scanner by the ppm-preserving rescale; a *measured* macromolecule spectrum
    belongs to the scanner, sequence and subjects it was measured with, so for data from
    another vendor ``"auto"`` uses LCModel's parametric components instead, as LCModel does
    unless given a macromolecule spectrum measured with the data's own protocol."""
    mm = macromolecule_names(basis.names, basis.metadata)
    choice = config.macromolecules
    if choice == "auto" and not same_scanner:
        choice = "parametric"
    if choice == "basis":
        return basis
    if choice == "auto" and mm:
        kept, names = basis, tuple(n for n in LCMODEL_COMPONENTS if n.startswith("Lip"))
        names = tuple(n for n in names if n not in basis.names)
    else:
        kept = basis.subset([n for n in basis.names if n not in mm])
        names = () if choice == "none" else tuple(LCMODEL_COMPONENTS)
    if not names:
        return kept
    fids = parametric_components(
        names,
        basis.n_points,
        basis.dwell_time_s,
        basis.spectrometer_freq_mhz,
        basis.ppm_reference,
    )
    try:
        # LCModel states a component's amplitude in protons of the basis' scale, so that its
        # amplitudes read like the metabolites' (MM09/tCr as in LCModel's table)
        fids = fids * signal_per_proton(basis)[0]
    except IncompatibleDataError:
        pass  # no singlet to measure the scale on: amplitudes in units of the relative areas
    return replace(
        kept,
        names=(*kept.names, *names),
        fids=np.concatenate([kept.fids, fids]),
        metadata={
            **kept.metadata,
            "macromolecules": [*macromolecule_names(kept.names, kept.metadata), *names],
        },
    )


def same_scanner(basis_mhz: float, data_mhz: float) -> bool:
    """Whether data at ``data_mhz`` come from the basis' scanner type: the spectrometer
    frequencies agree to :data:`scaloquant.signal.match.FREQUENCY_RTOL` (0.1 %)."""
    return abs(data_mhz - basis_mhz) <= FREQUENCY_RTOL * basis_mhz


def group_layout(basis: BasisSet, config: FitConfig) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(group_of (M,), group names)`` for ``config.grouping``."""
    names = basis.names
    if config.grouping == "per_metabolite":
        return np.arange(len(names)), names
    if config.grouping == "global":
        return np.zeros(len(names), dtype=int), ("all",)
    if config.grouping == "metabolites_and_mm":
        return metabolite_and_mm_groups(names, basis.metadata)
    return named_groups(names, config.grouping)


@dataclass(frozen=True)
class Problem:
    """Everything about the model that does not depend on the spectrum (tensors on one device).

    Parameter layout of ``theta`` ``(B, P)``, ``P = 3 G + 2 + 2 M + J``: damping ``(G)``,
    shift ``(G)``, Gaussian ``(G)``, phi0, phi1, damping deviations ``(M)``, shift deviations
    ``(M)``, the free-form kernel's weights off its centre ``(J)`` (``J = 0`` but with
    ``lineshape="freeform"``; the centre weight is 1 less their sum); ``free`` ``(P,)`` marks
    the fitted ones (the others keep their start).
    """

    names: tuple[str, ...]
    group_of: torch.Tensor  # (M,) long
    group_names: tuple[str, ...]
    group_matrix: torch.Tensor  # (M, G)
    #: the model's grid: the basis FIDs (broadened in a continuation stage) on the window's
    #: band decimated by D (signal.decimate; D = 1: all N samples), their sample times, and
    #: the window's bins in their unshifted FFT
    fids: torch.Tensor  # (M, N / D) complex
    time_s: torch.Tensor  # (N / D,)
    fft_index: torch.Tensor  # (K,) long
    #: the decimated samples formed exactly (R = 0 without decimation): the mixed basis at the
    #: full-rate samples they read, those samples' times, and the real weights (S, R)
    edge_rows: torch.Tensor  # (R,) long
    edge_fids: torch.Tensor  # (M, S) complex
    edge_time_s: torch.Tensor  # (S,)
    edge_weights: torch.Tensor  # (S, R)
    apodisation: torch.Tensor  # (N,) exp(-L t) of the stage, for the data
    data_fft_index: torch.Tensor  # (K,) long: window bins in the data's unshifted N-point FFT
    reference_magnitude: torch.Tensor  # (N,) |FFT| the xcorr start slides (_reference_magnitude)
    window: np.ndarray  # (K,) indices into the shifted spectrum
    ppm: torch.Tensor  # (K,)
    pivot_ppm: float
    baseline_design: torch.Tensor  # (K, nb) real
    baseline_whiten: torch.Tensor  # (nb, K) C = R^-1 B^T
    baseline_whiten2: torch.Tensor  # (2 nb, 2K) C for real-stacked vectors (block diagonal)
    baseline_solve: torch.Tensor  # (nb, K) (B^T B + lambda P)^-1 B^T
    baseline_ed: float  # effective dimension per real part
    free: torch.Tensor  # (P,) bool
    free_index: torch.Tensor  # (P_free,) long: the free parameters, the columns of D
    lower: torch.Tensor  # (P,)
    upper: torch.Tensor  # (P,)
    prior_precision: torch.Tensor  # (P,) 1 / s_j^2 (0 without a prior)
    scale: torch.Tensor  # (P,) typical sizes for the LM scaling floor
    scaling_floor: float  # SCALING_FLOOR_GROUPED or SCALING_FLOOR_PER_METABOLITE
    gaussian: bool
    lorentzian: bool
    ratio_coefficients: torch.Tensor  # (R, M) amplitude-ratio priors (physics.priors.RatioRows)
    ratio_scale_terms: torch.Tensor  # (R, M)
    ratio_sd: torch.Tensor  # (R,)
    ratio_labels: tuple[str, ...]
    kernel_offsets: torch.Tensor  # (J + 1,) long: bins of the kernel's weights, centre (0) first
    kernel_active: bool  # the kernel is fitted (its columns are convolved)
    kernel_penalty: torch.Tensor  # (P, P) Q of the quadratic priors x^T Q x + 2 q^T x + c
    kernel_linear: torch.Tensor  # (P,) q
    kernel_constant: float  # c
    #: ``kernel_penalty`` is in the cost: the free-form kernel's prior and/or the group
    #: spread priors (:func:`spread_prior`)
    penalty_active: bool = False
    #: an LM run stops only where the undamped step, too, predicts a relative decrease below
    #: its tolerance (the per-metabolite model; see the note at LM_MAX)
    gauss_newton_stop: bool = False
    #: ``edge_rows`` as runs of consecutive samples ``(first, stop)`` (the FID's first and last
    #: decimated samples), written as slices, not gathered (:func:`_put_edge_rows`)
    edge_runs: tuple[tuple[int, int], ...] = ()

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_metabolites(self) -> int:
        return len(self.names)

    def slices(self) -> dict[str, slice]:
        g, m = self.n_groups, self.n_metabolites
        return {
            "damping": slice(0, g),
            "shift": slice(g, 2 * g),
            "gauss": slice(2 * g, 3 * g),
            "phase0": slice(3 * g, 3 * g + 1),
            "phase1": slice(3 * g + 1, 3 * g + 2),
            "damping_dev": slice(3 * g + 2, 3 * g + 2 + m),
            "shift_dev": slice(3 * g + 2 + m, 3 * g + 2 + 2 * m),
            "kernel": slice(3 * g + 2 + 2 * m, self.size),
        }

    @property
    def size(self) -> int:
        return 3 * self.n_groups + 2 + 2 * self.n_metabolites + self.kernel_offsets.numel() - 1


def kernel_bins(basis: BasisSet, config: FitConfig) -> int:
    """Half-width ``J`` (bins) of the free-form kernel on ``basis``' full grid: the bins within
    ``config.freeform_halfwidth_hz``, at least 1; 0 without ``lineshape="freeform"``."""
    if config.lineshape_kind != "freeform":
        return 0
    bin_hz = 1.0 / (basis.n_points * basis.dwell_time_s)
    return max(1, round(config.freeform_halfwidth_hz / bin_hz))


def kernel_offsets(half_bins: int) -> list[int]:
    """Bin offsets of the free-form kernel's weights, centre first: ``0, -J..-1, 1..J`` for
    ``J = half_bins`` (the order of :attr:`Problem.kernel_offsets` and of
    ``FitResult.lineshape_kernel``)."""
    return [0] + [j for j in range(-half_bins, half_bins + 1) if j != 0]


def kernel_prior(
    half_bins: int, sd: float, about: str = "lcmodel"
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(Q (J, J), q (J,), c)`` of the kernel's smoothness prior ``|D2 s|^2 / sd^2`` written in
    its off-centre weights ``x`` (``s = e0 + E x``: centre ``1 - sum x``), ``D2`` the second
    differences of ``s`` on bins ``-J-1..J+1`` (zero beyond the kernel; LCModel's penalty on its
    lineshape's second differences), ``J = 2 half_bins`` off-centre weights in the order of
    :func:`make_problem`'s offsets. ``about="delta"``: the second differences of ``s - e0``,
    the kernel's departure from a delta (``q = 0``, ``c = 0``: the Voigt model costs
    nothing)."""
    offsets = kernel_offsets(half_bins)
    width = 2 * half_bins + 3  # bins -J-1 .. J+1
    embed = np.zeros((width, len(offsets) - 1))
    centre = np.zeros(width)
    centre[half_bins + 1] = 1.0
    for col, j in enumerate(offsets[1:]):
        embed[j + half_bins + 1, col] = 1.0
        embed[half_bins + 1, col] = -1.0
    d2 = np.diff(np.eye(width), n=2, axis=0)
    a, c = d2 @ embed / sd, d2 @ centre / sd
    if about == "delta":
        c = np.zeros_like(c)
    return a.T @ a, a.T @ c, float(c @ c)


def spread_prior(n_groups: int, sd: float) -> np.ndarray:
    """``Q`` ``(G, G)`` of the prior ``x^T Q x = sum_g (x_g - mean(x))^2 / sd^2`` on the
    groups' dampings or shifts ``x``: each held about the groups' (unweighted) mean, the
    spectrum's common value, by a Gaussian of SD ``sd``
    (``FitConfig.damping_spread_prior_sd_per_s``, ``shift_spread_prior_sd_hz``; the
    per-metabolite model's); the common value itself is free."""
    centred = np.eye(n_groups) - np.full((n_groups, n_groups), 1.0 / n_groups)
    return centred / sd**2


def _too_few_points(lo: float, hi: float, points: int) -> ConfigError:
    return ConfigError(
        f"ppm_range ({lo:g}, {hi:g}) holds {points} spectral points, too few for the model; "
        "widen it or fit fewer parameters"
    )


def make_problem(
    basis: BasisSet,
    config: FitConfig,
    *,
    broadening_per_s: float = 0.0,
    deviations: bool = True,
    device: str | torch.device = "cpu",
    half_kernel_bins: int | None = None,
) -> Problem:
    """The :class:`Problem` of ``basis`` (on the data's grid, after :func:`prepare_basis`).

    ``deviations``: fit the per-metabolite deviations that have priors, and the free-form
    kernel; ``half_kernel_bins``: the kernel's ``J`` (default :func:`kernel_bins` of ``basis``;
    a continuation stage on fewer points keeps the full grid's layout)."""
    dev = torch.device(device)
    f64 = dict(dtype=torch.float64, device=dev)
    group_of, group_names = group_layout(basis, config)
    m, g = basis.n_metabolites, len(group_names)
    ppm_all = basis.ppm_axis()
    lo, hi = config.ppm_range
    if lo < ppm_all[0] or hi > ppm_all[-1]:
        raise ConfigError(
            f"ppm_range ({lo:g}, {hi:g}) is not inside the data's ppm axis "
            f"({ppm_all[0]:.2f}, {ppm_all[-1]:.2f}); narrow it"
        )
    window = np.flatnonzero((ppm_all >= lo) & (ppm_all <= hi))
    ppm = ppm_all[window]
    fft_index = np.fft.fftshift(np.arange(basis.n_points))[window]
    time_s = basis.time_axis_s()
    apod = np.exp(-broadening_per_s * time_s)
    half = kernel_bins(basis, config) if half_kernel_bins is None else half_kernel_bins
    if ppm.size < 2:  # no baseline design, and no model, spans fewer than two points
        raise _too_few_points(lo, hi, ppm.size)
    if config.baseline_kind == "spline":
        design, penalty, smoothing = _spline_baseline(
            ppm.tobytes(), config.baseline_knot_spacing_ppm, config.baseline_ed_per_ppm * (hi - lo)
        )
        design, penalty = np.array(design), np.array(penalty)  # out of the cache
    elif config.baseline_kind == "poly":
        design = baseline_designs.legendre_baseline(ppm, config.baseline_order)
        penalty, smoothing = np.zeros((design.shape[1],) * 2), 0.0
    else:
        design, penalty, smoothing = np.zeros((ppm.size, 0)), np.zeros((0, 0)), 0.0
    if design.shape[1]:
        gram = design.T @ design + smoothing * penalty
        chol = np.linalg.cholesky(gram)
        whiten = np.linalg.solve(chol, design.T)
        solve = np.linalg.solve(gram, design.T)
        ed = float(np.trace(design @ solve))
    else:
        whiten = solve = np.zeros((0, ppm.size))
        ed = 0.0
    offsets = kernel_offsets(half)
    n_kernel = len(offsets) - 1
    n_param = 3 * g + 2 + 2 * m + n_kernel
    if 2 * ppm.size <= m + n_param + 2 * ed:
        raise _too_few_points(lo, hi, ppm.size)
    free = np.zeros(n_param, dtype=bool)
    lower = np.full(n_param, -np.inf)
    upper = np.full(n_param, np.inf)
    precision = np.zeros(n_param)
    scale = np.ones(n_param)
    lorentzian = config.lineshape_kind != "gaussian"
    gaussian = config.lineshape_kind != "lorentzian"
    free[0:g] = lorentzian
    free[g : 2 * g] = True
    free[2 * g : 3 * g] = gaussian
    free[3 * g] = config.fit_phase0
    free[3 * g + 1] = config.fit_phase1
    lower[0:g], upper[0:g] = config.damping_bounds_per_s
    lower[2 * g : 3 * g], upper[2 * g : 3 * g] = config.gauss_bounds_per_s2
    scale[0:g], scale[g : 2 * g], scale[2 * g : 3 * g] = 5.0, 1.0, 100.0
    scale[3 * g], scale[3 * g + 1] = 0.1, 0.01
    dev_d = slice(3 * g + 2, 3 * g + 2 + m)
    dev_s = slice(3 * g + 2 + m, 3 * g + 2 + 2 * m)
    kern = slice(3 * g + 2 + 2 * m, n_param)
    penalty, linear, constant = np.zeros((n_param, n_param)), np.zeros(n_param), 0.0
    kernel_active = deviations and n_kernel > 0
    if kernel_active:
        free[kern] = True
        lower[kern], upper[kern] = 0.0, 1.0
        scale[kern] = 0.05
        q_mat, q_vec, constant = kernel_prior(
            half, config.freeform_smoothness_sd, config.freeform_prior
        )
        penalty[kern, kern], linear[kern] = q_mat, q_vec
    spread = deviations and g > 1 and config.has_spread_priors
    if spread and config.damping_spread_prior_sd_per_s is not None and lorentzian:
        penalty[0:g, 0:g] = spread_prior(g, config.damping_spread_prior_sd_per_s)
    if spread and config.shift_spread_prior_sd_hz is not None:
        penalty[g : 2 * g, g : 2 * g] = spread_prior(g, config.shift_spread_prior_sd_hz)
    if deviations and config.damping_prior_sd_per_s is not None and lorentzian:
        free[dev_d] = True
        precision[dev_d] = config.damping_prior_sd_per_s**-2
        lower[dev_d], upper[dev_d] = -4 * config.damping_prior_sd_per_s, np.inf
    if deviations and config.shift_prior_sd_hz is not None:
        free[dev_s] = True
        precision[dev_s] = config.shift_prior_sd_hz**-2
        lower[dev_s] = -4 * config.shift_prior_sd_hz
        upper[dev_s] = 4 * config.shift_prior_sd_hz
    scale[dev_d], scale[dev_s] = 1.0, 0.2
    group_matrix = np.zeros((m, g))
    group_matrix[np.arange(m), group_of] = 1.0
    pivot = basis.ppm_reference if config.phase1_pivot_ppm is None else config.phase1_pivot_ppm
    echo_time_s = basis_sequence(basis.metadata)[1]
    ratios = ratio_rows(
        RATIO_PRIOR_SETS[config.ratio_priors],
        basis.names,
        None if echo_time_s is None else 1e3 * echo_time_s,
    )
    grid = _model_grid(basis, basis.fids * apod, fft_index, half, config.decimate_model)
    return Problem(
        names=basis.names,
        group_of=torch.as_tensor(group_of, dtype=torch.long, device=dev),
        group_names=tuple(group_names),
        group_matrix=torch.as_tensor(group_matrix, **f64),
        fids=torch.as_tensor(grid.fids, dtype=torch.complex128, device=dev),
        time_s=torch.as_tensor(grid.time_s, **f64),
        fft_index=torch.as_tensor(grid.fft_index, dtype=torch.long, device=dev),
        edge_rows=torch.as_tensor(grid.edge_rows, dtype=torch.long, device=dev),
        edge_fids=torch.as_tensor(grid.edge_fids, dtype=torch.complex128, device=dev),
        edge_time_s=torch.as_tensor(grid.edge_time_s, **f64),
        edge_weights=torch.as_tensor(grid.edge_weights, **f64),
        apodisation=torch.as_tensor(apod, **f64),
        data_fft_index=torch.as_tensor(fft_index, dtype=torch.long, device=dev),
        reference_magnitude=torch.as_tensor(_reference_magnitude(basis, group_of, window), **f64),
        window=window,
        ppm=torch.as_tensor(ppm, **f64),
        pivot_ppm=float(pivot),
        baseline_design=torch.as_tensor(design, **f64),
        baseline_whiten=torch.as_tensor(whiten, **f64),
        baseline_whiten2=torch.as_tensor(
            np.block([[whiten, np.zeros_like(whiten)], [np.zeros_like(whiten), whiten]]), **f64
        ),
        baseline_solve=torch.as_tensor(solve, **f64),
        baseline_ed=ed,
        free=torch.as_tensor(free, device=dev),
        free_index=torch.as_tensor(np.flatnonzero(free), dtype=torch.long, device=dev),
        lower=torch.as_tensor(lower, **f64),
        upper=torch.as_tensor(upper, **f64),
        prior_precision=torch.as_tensor(precision, **f64),
        scale=torch.as_tensor(scale, **f64),
        scaling_floor=SCALING_FLOOR_PER_METABOLITE
        if config.grouping == "per_metabolite"
        else SCALING_FLOOR_GROUPED,
        gaussian=gaussian,
        lorentzian=lorentzian,
        ratio_coefficients=torch.as_tensor(ratios.coefficients, **f64),
        ratio_scale_terms=torch.as_tensor(ratios.scale_terms, **f64),
        ratio_sd=torch.as_tensor(ratios.sd, **f64),
        ratio_labels=ratios.labels,
        kernel_offsets=torch.as_tensor(offsets, dtype=torch.long, device=dev),
        kernel_active=kernel_active,
        kernel_penalty=torch.as_tensor(penalty, **f64),
        kernel_linear=torch.as_tensor(linear, **f64),
        kernel_constant=constant,
        penalty_active=kernel_active or bool(penalty.any()),
        gauss_newton_stop=config.grouping == "per_metabolite",
        edge_runs=_runs(grid.edge_rows),
    )


def _runs(index: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Increasing ``index`` ``(R,)`` as runs of consecutive values ``((first, stop), ...)``."""
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    return tuple((int(run[0]), int(run[-1]) + 1) for run in np.split(index, breaks) if run.size)


@dataclass(frozen=True)
class _ModelGrid:
    """Where :class:`Problem`'s model columns are formed (its fields of the same names)."""

    fids: np.ndarray  # (M, N / D)
    time_s: np.ndarray  # (N / D,)
    fft_index: np.ndarray  # (K,)
    edge_rows: np.ndarray  # (R,)
    edge_fids: np.ndarray  # (M, S)
    edge_time_s: np.ndarray  # (S,)
    edge_weights: np.ndarray  # (S, R)


@functools.lru_cache(maxsize=8)
def _spline_baseline(
    ppm_bytes: bytes, knot_spacing_ppm: float, target_ed: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """The penalised spline baseline of the window's ppm axis (its float64 bytes): ``(design,
    penalty, smoothing)`` of :func:`~scaloquant.physics.baseline.bspline_baseline` and
    :func:`~scaloquant.physics.baseline.smoothing_for_ed` (80 bisection steps), computed once
    for the :class:`Problem` s of a fit (its stages, the final, the full-grid twin, the
    result's); read-only."""
    ppm = np.frombuffer(ppm_bytes, dtype=np.float64)
    design, penalty = baseline_designs.bspline_baseline(ppm, knot_spacing_ppm)
    smoothing = baseline_designs.smoothing_for_ed(design, penalty, target_ed)
    design.setflags(write=False)
    penalty.setflags(write=False)
    return design, penalty, smoothing


def _model_grid(
    basis: BasisSet, fids: np.ndarray, fft_index: np.ndarray, half_kernel_bins: int, decimate: bool
) -> _ModelGrid:
    """The model's grid for the (broadened) basis ``fids`` ``(M, N)`` and the window's bins
    ``fft_index`` (unshifted, of the ``N``-point FFT): the window's band decimated
    (:func:`scaloquant.signal.decimate.band_decimation`, a pass band of
    :data:`~scaloquant.signal.decimate.MARGIN_PPM` and the free-form kernel's reach beyond
    the window) where ``decimate`` and it is accurate for this basis, else all ``N`` samples.
    Computed once for the same arguments (the final, refined, full-grid twin's and result's
    problems of a fit share them) and copied out of the cache."""
    fids = np.ascontiguousarray(fids, dtype=np.complex128)
    index = np.ascontiguousarray(fft_index, dtype=np.int64)
    grid = _cached_model_grid(
        fids.tobytes(), fids.shape, index.tobytes(), basis.n_points, basis.dwell_time_s,
        basis.spectrometer_freq_mhz, half_kernel_bins, decimate,
    )  # fmt: skip
    return _ModelGrid(*(np.array(getattr(grid, f)) for f in _ModelGrid.__dataclass_fields__))


@functools.lru_cache(maxsize=8)
def _cached_model_grid(
    fids_bytes: bytes,
    shape: tuple[int, int],
    index_bytes: bytes,
    n: int,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    half_kernel_bins: int,
    decimate: bool,
) -> _ModelGrid:
    """:func:`_model_grid` of its arguments as bytes (hashable)."""
    fids = np.frombuffer(fids_bytes, dtype=np.complex128).reshape(shape)
    fft_index = np.frombuffer(index_bytes, dtype=np.int64)
    time_s = axes.time_axis_s(n, dwell_time_s)
    dec = None
    if decimate:
        bin_hz = 1.0 / (dwell_time_s * n)
        margin = int(np.ceil(MARGIN_PPM * spectrometer_freq_mhz / bin_hz)) + half_kernel_bins
        signed = np.where(fft_index < n // 2, fft_index, fft_index - n)
        dec = band_decimation(fids, dwell_time_s, signed, margin)
    if dec is None:
        none = np.zeros(0, dtype=np.int64)
        return _ModelGrid(fids, time_s, fft_index, none, fids[:, :0], time_s[:0], np.zeros((0, 0)))
    return _ModelGrid(
        dec.decimate(fids),
        time_s[:: dec.factor],
        dec.window_bins,
        dec.edge_rows,
        dec.mixed(fids)[:, dec.edge_samples],
        time_s[dec.edge_samples],
        dec.edge_weights,
    )


#: Metabolites whose basis spectra make the cross-correlation start's reference, weighted by
#: typical adult brain concentrations (mM; de Graaf, In Vivo NMR Spectroscopy, ch. 2: only
#: their relative sizes matter): the singlets LCModel references a spectrum by (NAA 2.01, Cr
#: 3.03, choline 3.21 ppm), the tallest lines of tissue spectra whatever else the basis holds.
XCORR_WEIGHTS: dict[str, float] = {"NAA": 10.0, "Cr": 5.0, "PCr": 4.0, "GPC": 1.0, "PCho": 0.5}
#: Lorentzian damping (1/s) of that reference: about a tissue linewidth (4.8 Hz FWHM), so that it
#: matches the data's lines rather than the basis' narrow ones.
XCORR_DAMPING_PER_S = 15.0


def _reference_magnitude(basis: BasisSet, group_of: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``|FFT|`` ``(N,)`` (unshifted order) of what the cross-correlation start slides over the
    data: the basis spectra of :data:`XCORR_WEIGHTS` summed with those weights (the metabolite
    group's sum when the basis has none of them), damped by :data:`XCORR_DAMPING_PER_S`, zero
    outside the fit window.

    Measured on the 28 ISMRM 2016 challenge spectra and its creatine-only spectrum (simulated
    without a global shift): the sum of every metabolite at amplitude 1 with a basis holding
    acetate (a 1.90 ppm singlet tissue lacks; the challenge's own jMRUI basis) started 7 spectra
    a NAA-to-acetate distance off, and three fits ended at tCr 0; the five singlets at
    amplitude 1 started every spectrum 1-2.4 Hz off (the 18 choline protons dominate) and the
    creatine-only one at -23 Hz (its Cr under the choline line); weighted as here, -0.5 to 0.8
    Hz with either basis, except dataset 24 (a water artefact), 25 (2 Hz) and 28 (lipids, no
    metabolites). Lines outside the window never take part (a basis' 0 ppm reference singlet
    would slide into a window edge)."""
    time_s = basis.time_axis_s()
    weights = np.array([XCORR_WEIGHTS.get(canonical(n), 0.0) for n in basis.names])
    if not weights.any():
        weights = (group_of == 0).astype(float)
    summed = (basis.fids * weights[:, None] * np.exp(-XCORR_DAMPING_PER_S * time_s)).sum(0)
    magnitude = np.abs(np.fft.fftshift(np.fft.fft(summed)))
    inside = np.zeros_like(magnitude)
    inside[window] = magnitude[window]
    return np.fft.ifftshift(inside)


def data_window(problem: Problem, fids: torch.Tensor) -> torch.Tensor:
    """The window of the spectra of ``fids`` ``(B, N)`` as the stage sees them: ``(B, K)``
    (their first ``N'`` samples when the stage's basis is truncated to ``N'``)."""
    n = problem.apodisation.shape[-1]
    return fft(fids[..., :n] * problem.apodisation)[..., problem.data_fft_index]


#: A continuation stage fits the first ``N / 2^k`` samples of data and basis alike: the fewest
#: (not below ``N / 4``) at whose end the stage's broadening ``exp(-L t)`` has fallen to this.
STAGE_ENVELOPE_END = 0.1


def stage_points(n_points: int, dwell_time_s: float, broadening_per_s: float) -> int:
    """Samples a continuation stage of broadening ``broadening_per_s`` keeps (see
    :data:`STAGE_ENVELOPE_END`). The stage only has to bring the fit into the right basin, and
    its broadening leaves little signal in the late samples; truncating data and model alike
    keeps the stage's fit consistent (a fit of the FID's first samples) at a fraction of the
    cost: 10/s keeps 1024 of 2048 samples at a 0.25 ms dwell time, 40/s 512."""
    keep = n_points
    while (
        keep // 2 >= n_points // 4
        and math.exp(-broadening_per_s * (keep // 2) * dwell_time_s) <= STAGE_ENVELOPE_END
    ):
        keep //= 2
    return keep


def stack(u: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, K, ...)`` -> real ``(B, 2K, ...)``: real parts over imaginary parts.

    Stored column by column (the ``2K`` axis innermost in memory, as the transposed window
    columns of :func:`scaloquant.physics.model.window_columns` are): the copy reads and writes
    along the columns, not across them (the column-major result of the row-major stacking was
    a strided transposition), and :func:`_whiten` is one product for all columns."""
    return torch.cat([u.real.movedim(1, -1), u.imag.movedim(1, -1)], dim=-1).movedim(-1, 1)


def _whiten(problem: Problem, u: torch.Tensor) -> torch.Tensor:
    """``C u`` for real-stacked ``u`` ``(B, 2K, p)`` -> ``(B, 2 nb, p)``: the ``(nb, K)`` matrix
    ``C`` applied to the real and the imaginary half alike (the block-diagonal
    ``baseline_whiten2`` without its zero blocks)."""
    c = problem.baseline_whiten.to(u.dtype)
    b, k2, p = u.shape
    if u.mT.is_contiguous():  # stored column by column (stack, _derivative_columns)
        # one (B p 2, K) x (K, nb) product; the result is stored column by column too
        return (u.mT.reshape(b, p, 2, k2 // 2) @ c.mT).reshape(b, p, -1).mT
    return (c @ u.reshape(b, 2, k2 // 2, p)).reshape(b, 2 * c.shape[0], p)


def _inner(u: torch.Tensor, cu: torch.Tensor, v: torch.Tensor, cv: torch.Tensor) -> torch.Tensor:
    """``<u, v>_W = u^T v - (C u)^T (C v)`` from vectors and their :func:`_whiten` images."""
    return u.mT @ v - cu.mT @ cv


def _w_inner(problem: Problem, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``<u, v>_W`` for real-stacked ``u`` ``(B, 2K, p)``, ``v`` ``(B, 2K, q)`` -> ``(B, p, q)``.

    The baseline part ``(C u)^T (C v)`` applies ``C`` to the real and imaginary halves alike.
    """
    out = u.mT @ v
    if problem.baseline_whiten.shape[0]:
        cu = _whiten(problem, u)
        cv = cu if v is u else _whiten(problem, v)
        out = out - cu.mT @ cv
    return out


def w_inner(problem: Problem, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Public name of the ``W`` inner product (:func:`_w_inner`), for the physics-head models."""
    return _w_inner(problem, u, v)


def spd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^-1 b`` for symmetric positive definite ``a`` ``(B, n, n)`` and ``b`` ``(B, n, r)``:
    by Cholesky, and by LU (:func:`torch.linalg.solve`) for the matrices whose factorisation
    fails (not numerically positive definite). The fit's systems (a passive set's Gram block,
    the Levenberg–Marquardt matrix) are SPD; batched Cholesky takes 25-35 % less time than
    LU on their ``(128, 21-59, 21-59)`` shapes (1 thread), the same solution to rounding."""
    factor, info = torch.linalg.cholesky_ex(a)
    failed = info != 0
    if not bool(failed.any()):
        return torch.cholesky_solve(b, factor)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    x = torch.cholesky_solve(b, torch.where(failed[:, None, None], eye, factor))
    rows = torch.nonzero(failed)[:, 0]
    x[rows] = torch.linalg.solve(a[rows], b[rows])
    return x


def nnls_gram(
    gram: torch.Tensor, h: torch.Tensor, passive: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin_{x >= 0} x^T G x - 2 h^T x`` for a batch: ``G`` ``(B, M, M)`` SPD, ``h``
    ``(B, M)``; block principal pivoting (module docstring). ``passive`` ``(B, M)`` bool is a
    starting guess of the non-zero set. Returns ``(x (B, M), passive set (B, M))``."""
    b, m = h.shape
    eye = torch.eye(m, dtype=gram.dtype, device=gram.device)
    ridge = 1e-13 * torch.diagonal(gram, dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
    gram = gram + ridge[:, None, None] * eye
    f = (h > 0) if passive is None else passive.clone()
    best = torch.full((b,), m + 1, device=h.device)
    backup = torch.full((b,), 3, device=h.device)
    done = torch.zeros(b, dtype=torch.bool, device=h.device)
    tol = 1e-12 * h.abs().amax(-1, keepdim=True).clamp_min(1e-300)
    x = torch.zeros_like(h)
    for _ in range(5 * m + 10):
        both = f[:, :, None] & f[:, None, :]
        masked = torch.where(both, gram, torch.zeros_like(gram)) + torch.diag_embed(
            (~f).to(gram.dtype)
        )
        x = spd_solve(masked, torch.where(f, h, torch.zeros_like(h))[..., None])[..., 0]
        dual = (gram @ x[..., None])[..., 0] - h
        xs = x.abs().amax(-1, keepdim=True).clamp_min(1e-300)
        infeasible = (f & (x < -1e-12 * xs)) | (~f & (dual < -tol))
        count = infeasible.sum(-1)
        done = done | (count == 0)
        if bool(done.all()):
            break
        better = count < best
        best = torch.where(better, count, best)
        backup = torch.where(better, torch.full_like(backup, 3), backup - 1)
        full = better | (backup > 0)
        last = (m - 1) - torch.argmax(infeasible.flip(-1).to(torch.int8), dim=-1)
        single = torch.nn.functional.one_hot(last, m).bool() & infeasible
        swap = torch.where(full[:, None], infeasible, single) & ~done[:, None]
        f = f ^ swap
    x = torch.where(f, x, torch.zeros_like(x)).clamp_min(0.0)
    return x, f & (x > 0)


@dataclass
class Evaluation:
    """The model at ``theta`` for a batch (shapes for ``B`` spectra)."""

    cost: torch.Tensor  # (B,) Phi
    amplitudes: torch.Tensor  # (B, M)
    passive: torch.Tensor  # (B, M)
    columns: torch.Tensor  # (B, 2K, M) real-stacked
    derivs: torch.Tensor  # (B, 2K, P_free) real-stacked D = (dS/dtheta) a
    residual: torch.Tensor  # (B, 2K, 1) real-stacked y - S a (before the baseline)
    gram: torch.Tensor  # (B, M, M)
    w_columns: torch.Tensor  # (B, 2 nb, M) C S
    w_derivs: torch.Tensor  # (B, 2 nb, P_free) C D
    w_residual: torch.Tensor  # (B, 2 nb, 1) C r
    pending: tuple | None = None  # (z, edge, phase, complex columns, kernel) until derivatives


#: Complex dtype of the FFTs of the derivative columns (``t z``, ``t^2 z``). The Jacobian only
#: steers the Levenberg–Marquardt steps (every accepted step is judged by the float64 cost), and
#: single precision (relative error ~1e-7) halves the largest cost of an accepted step.
DERIVATIVE_DTYPE = torch.complex64
#: Complex dtype of the modulated FIDs and their FFTs in the Levenberg–Marquardt iterations of
#: :func:`_solve_chunk` (the columns are rounded once and every product with them stays
#: float64). Rounding the columns to single precision (relative error ~1e-7) perturbs an SNR-30
#: cost by ~1e-8 of itself, three decades below :data:`COST_RTOL`; half the memory traffic and
#: FFT work of an evaluation. The evaluation a fit ends with (amplitudes, CRLBs, residual) is
#: formed again in float64 at the final parameters.
TRIAL_DTYPE = torch.complex64
#: Real dtype of the derivative columns and of their products (``J^T J``, ``E``) in the
#: Levenberg–Marquardt iterations that run in :data:`TRIAL_DTYPE` (the evaluation they return,
#: whose covariance :func:`crlb` forms, is formed again in float64; the gradient and the Schur
#: complement with the Gram block stay float64 in any case). float32 (the columns hold
#: single-precision values already, so ``J^T J`` moves by ~1e-6 of its largest element) took
#: the normal equations from 41 to 29 ms per accepted step (128 ``invivo`` spectra, 1 thread),
#: but the changed steps ended the relative stopping rule elsewhere on 1-2 of 128
#: default-simulator spectra (up to 0.2 CRLB SD; with float64 the fit is main's to 1e-6 SD)
#: and, measured end to end on a loaded machine, paid nothing visible: float64.
NORMAL_EQUATIONS_DTYPE = torch.float64


def _derivative_columns(
    problem: Problem,
    z: torch.Tensor,
    edge: torch.Tensor,
    phase: torch.Tensor,
    cols: torch.Tensor,
    a: torch.Tensor,
    kernel: torch.Tensor,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``D = (dS/dtheta) a`` for the free parameters, real-stacked ``(B, 2K, P_free)`` (see
    :func:`stack`; real ``dtype``, default the columns') in the order of
    ``problem.free_index``: ``dS_m/d alpha = -T1_m``,
    ``dS_m/d df = 2 pi i T1_m``, ``dS_m/d beta = -T2_m``, ``dS/d phi0 = i S``,
    ``dS/d phi1 = i (ppm - pivot) S`` with ``T_k = exp(i phi) DFT[t^k z]``.

    By linearity of the DFT a group's column is the DFT of the amplitude-weighted sum of its
    members' ``t^k z``: ``(B, G, N)`` FFTs instead of ``(B, M, N)`` (with one metabolite per
    group the columns of ``t^k z`` themselves, multiplied by ``a_m`` after the transform, not
    a product with the ``(G, M)`` membership); per-metabolite ``T1`` is transformed only when
    per-metabolite deviations are fitted. The FFTs run in :data:`DERIVATIVE_DTYPE`. With a
    fitted free-form kernel ``kernel`` ``(B, J + 1)`` every transform is convolved with it, and
    ``dS/dx_j = exp(i phi) (W_j - W_0) DFT[sum_m a_m z_m]`` (``W_j`` the window read ``j``
    bins off): one more FFT, the rest are reads. Each block is written once into the
    real-stacked result; the columns of fixed parameters are never formed. On a decimated
    model grid each ``t^k`` product's edge rows are formed from the full-rate samples ``edge``
    ``(B, M, S)`` (:func:`_put_edge_rows`): the derivatives of the model as it is formed."""
    sl = problem.slices()
    b, k, m = cols.shape
    free = problem.free.tolist()
    time = problem.time_s
    # z is the evaluation's own (B, M, N) array, used only here: overwritten when in that dtype
    zd = z if z.dtype == DERIVATIVE_DTYPE else z.to(DERIVATIVE_DTYPE)
    ed = edge.to(DERIVATIVE_DTYPE)
    time_d = time.to(zd.real.dtype)
    # (B, 2, K, P_free) stored column by column, as the transposed window columns written
    # into it are (see stack)
    out = cols.real.new_empty(b, problem.free_index.numel(), 2, k, dtype=dtype)
    out = out.permute(0, 2, 3, 1)
    # the blocks' complex dtype: the result's (single precision: no complex128 pass)
    work = torch.promote_types(out.dtype, torch.complex64)
    first = {}  # the first column of each parameter block in the free order
    position = 0
    for key, s in sl.items():
        first[key] = position
        position += sum(free[s])

    def put(key: str, block: torch.Tensor, factor: float, imaginary: bool = False) -> None:
        """Write ``factor`` (times ``i`` if ``imaginary``) times the complex ``block`` ``(B, K,
        width)`` into the free columns of parameter block ``key``."""
        s = sl[key]
        mask = free[s]
        if not any(mask):
            return
        if not all(mask):
            block = block[..., torch.as_tensor(mask, device=block.device)]
        dst = out[..., first[key] : first[key] + block.shape[-1]]
        re, im = (block.imag, block.real) if imaginary else (block.real, block.imag)
        torch.mul(re, -factor if imaginary else factor, out=dst[:, 0])
        torch.mul(im, factor, out=dst[:, 1])

    deviations = any(free[sl["damping_dev"]]) or any(free[sl["shift_dev"]])
    identity = problem.n_groups == m and bool(
        (problem.group_of == torch.arange(m, device=problem.group_of.device)).all()
    )
    if problem.kernel_active:  # before t z overwrites zd
        za = real_weighted_sum(a[:, None, :], zd)  # sum_m a_m z_m, (B, 1, N)
        spec = fft(za, overwrite=True)[:, 0]
        n = za.shape[-1]
        reads = [spec[:, torch.remainder(problem.fft_index - j, n)] for j in problem.kernel_offsets]
        kcols = torch.stack([r - reads[0] for r in reads[1:]], dim=-1).to(work)
        put("kernel", kcols * phase[..., None].to(work), 1.0)

    def transform(u: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The phased window columns of ``u`` ``(B, X, N)`` (this function's own: its FFT
        is written over it), times real ``weights`` ``(B, X)`` (the amplitudes, applied to the
        ``(B, K, X)`` columns, not to ``u``)."""
        # the factor laid out as the window's transposed columns, so that the product is too
        factor = phase[:, None, :] if weights is None else phase[:, None, :] * weights[..., None]
        return _window(problem, u, kernel, overwrite=True).to(work) * factor.to(work).mT

    g = problem.n_groups
    t2 = (time**2).to(time_d.dtype)
    # the groups' sums sum_m in g a_m z_m: one real (G, M) x (M, 2N) product per spectrum;
    # with one metabolite per group none is formed: by linearity of the DFT the columns of z
    # (t z, t^2 z) are transformed and multiplied by a_m after (a (B, K, M), not (B, M, N), pass)
    grouped = grouped_edge = None
    if not identity and (problem.gaussian or not deviations):
        weights = a[:, None, :] * problem.group_matrix.T
        grouped = real_weighted_sum(weights, zd)  # (B, G, N)
        if problem.edge_rows.numel():
            grouped_edge = real_weighted_sum(weights, ed)
    t2g = None
    if deviations:
        if problem.gaussian:  # t^2 of the groups' sums, before t z overwrites zd
            if identity:
                u = times_real(zd, t2)
                _put_edge_rows(problem, u, ed, 2)
                t2g = transform(u, a)
            else:
                times_real(grouped, t2, out=grouped)
                _put_edge_rows(problem, grouped, grouped_edge, 2)
                t2g = transform(grouped)
        times_real(zd, time_d, out=zd)  # t z, in place
        _put_edge_rows(problem, zd, ed, 1)
        t1a = transform(zd, a)
        put("damping_dev", t1a, -1.0)
        put("shift_dev", t1a, 2 * math.pi, imaginary=True)
        # the groups' sums of the (B, K, M) columns stored column by column: one real product
        # over their memory, (G, M) x (B, M, 2K)
        t1g = real_weighted_sum(problem.group_matrix.T, t1a.mT.contiguous()).mT
    else:
        # t z (and t^2 z) of the groups written into one array, transformed together
        source = zd if identity else grouped  # this function's own: t z in place
        source_edge = ed if identity else grouped_edge
        if problem.gaussian:
            both = source.new_empty(b, 2 * g, source.shape[-1])
            times_real(source, time_d, out=both[:, :g])
            times_real(source, t2, out=both[:, g:])
            _put_edge_rows(problem, both[:, :g], source_edge, 1)
            _put_edge_rows(problem, both[:, g:], source_edge, 2)
        else:
            both = times_real(source, time_d, out=source)
            _put_edge_rows(problem, both, source_edge, 1)
        scale = None
        if identity:
            scale = torch.cat([a, a], dim=-1) if problem.gaussian else a
        both = transform(both, scale)
        t1g, t2g = both[..., :g], both[..., g:]
    put("damping", t1g, -1.0)
    put("shift", t1g, 2 * math.pi, imaginary=True)
    if problem.gaussian:
        put("gauss", t2g, -1.0)
    model = cols @ a[..., None].to(cols.dtype)
    put("phase0", model, 1.0, imaginary=True)
    put("phase1", (problem.ppm - problem.pivot_ppm)[:, None] * model, 1.0, imaginary=True)
    return out.view(b, 2 * k, -1)


def _window(
    problem: Problem, z: torch.Tensor, kernel: torch.Tensor, *, overwrite: bool = False
) -> torch.Tensor:
    """Window columns ``(B, K, X)`` of ``z`` ``(B, X, N)``, convolved with ``kernel``
    ``(B, J + 1)`` where ``problem`` fits one; ``overwrite``: ``z`` may be overwritten
    (:func:`scaloquant.physics.model.fft`)."""
    if problem.kernel_active:
        return kernel_window_columns(
            z, problem.fft_index, problem.kernel_offsets, kernel, overwrite=overwrite
        )
    return window_columns(z, problem.fft_index, overwrite=overwrite)


def kernel_weights(problem: Problem, theta: torch.Tensor) -> torch.Tensor:
    """The free-form kernel ``(B, J + 1)`` at ``theta``: centre ``1 - sum x`` first, then the
    off-centre weights ``x`` in the order of ``problem.kernel_offsets[1:]``."""
    x = theta[:, problem.slices()["kernel"]]
    return torch.cat([1.0 - x.sum(-1, keepdim=True), x], dim=-1)


def _unpack(problem: Problem, theta: torch.Tensor):
    sl = problem.slices()
    damping = (
        theta[:, sl["damping"]] if problem.lorentzian else torch.zeros_like(theta[:, sl["damping"]])
    )
    rates = lineshape_rates(
        damping,
        theta[:, sl["shift"]],
        problem.group_of,
        theta[:, sl["damping_dev"]],
        theta[:, sl["shift_dev"]],
    )
    gauss = theta[:, sl["gauss"]] if problem.gaussian else None
    return rates, gauss, theta[:, sl["phase0"]][:, 0], theta[:, sl["phase1"]][:, 0]


def columns(problem: Problem, theta: torch.Tensor, column_dtype: torch.dtype | None = None):
    """Model columns ``S`` ``(B, K, M)``, modulated FIDs ``z`` ``(B, M, N / D)`` on the model's
    grid, their full-rate samples at the edge rows' reads ``(B, M, S)`` (:class:`Problem`),
    phase ``(B, K)``, free-form kernel ``(B, J + 1)`` (:func:`kernel_weights`; ``S``
    convolved with it where ``problem.kernel_active``).

    ``column_dtype``: the complex dtype of ``z`` and its FFT (default: the basis'; e.g.
    :data:`TRIAL_DTYPE`); ``S`` is returned in the basis' dtype all the same."""
    rates, gauss, phi0, phi1 = _unpack(problem, theta)
    z = modulated_fids(
        problem.fids, problem.time_s, rates, gauss, problem.group_of, dtype=column_dtype
    )
    edge = z[..., :0]  # no edge rows without decimation
    if problem.edge_rows.numel():
        edge = modulated_fids(
            problem.edge_fids,
            problem.edge_time_s,
            rates,
            gauss,
            problem.group_of,
            dtype=z.dtype,
            uniform=False,
        )
        _put_edge_rows(problem, z, edge)
    phase = phase_factor(phi0, phi1, problem.ppm, problem.pivot_ppm)
    kernel = kernel_weights(problem, theta)
    # the phase product promotes single-precision columns (TRIAL_DTYPE) to the basis' dtype
    # in the same pass (no separate conversion)
    cols = (_window(problem, z, kernel) * phase[..., None]).to(problem.fids.dtype)
    return cols, z, edge, phase, kernel


def _put_edge_rows(
    problem: Problem, u: torch.Tensor, edge: torch.Tensor, time_power: int = 0
) -> None:
    """Write the edge rows of ``u`` ``(B, X, N / D)`` (a decimated ``t^p z``) from the full-rate
    samples ``edge`` ``(B, X, S)`` of the ``z`` it came from, times ``t^time_power``: ``sum_s
    w[s, n] t_s^p z[s]`` (:mod:`scaloquant.signal.decimate`). Nothing without decimation."""
    if not problem.edge_rows.numel():
        return
    if time_power:
        edge = times_real(edge, problem.edge_time_s**time_power)
    # the real weights on the real and imaginary parts (a quarter of the complex product's
    # arithmetic), written run by run as slices (index_put on the last axis is a slow gather)
    weights = problem.edge_weights.to(edge.real.dtype)
    rows = torch.complex(edge.real @ weights, edge.imag @ weights).to(u.dtype)
    done = 0
    for first, stop in problem.edge_runs:
        u[..., first:stop] = rows[..., done : done + stop - first]
        done += stop - first


def evaluate(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    passive: torch.Tensor | None = None,
    *,
    derivatives: bool = True,
    amplitude_prior: torch.Tensor | None = None,
    column_dtype: torch.dtype | None = None,
    fixed_amplitudes: torch.Tensor | None = None,
    derivative_dtype: torch.dtype | None = None,
) -> Evaluation:
    """The variable-projection objective at ``theta`` ``(B, P)`` for data windows ``y``
    ``(B, K)``, with its amplitudes and Jacobian terms. The whitened images ``C u`` of the
    columns, data, residual and derivatives are formed once and shared by every inner
    product. With ``derivatives=False`` (a trial step, most of which are rejected) the
    derivative columns are left empty and the modulated FIDs and phase kept in ``pending`` for
    :func:`_with_derivatives`. ``amplitude_prior`` ``(B, M, M)``: the quadratic ``a^T Q a``
    of amplitude-ratio priors (:func:`amplitude_prior`), added to the Gram matrix and the
    cost. ``column_dtype``: see :func:`columns`. ``fixed_amplitudes`` ``(B, M)`` (any sign):
    the amplitudes are held at these, not solved; the passive set is then empty, so that the
    Jacobian is ``-(dS/dtheta) a`` alone (no Kaufman term: ``a`` does not depend on ``theta``)
    and the residual's degrees of freedom count no amplitude. ``derivative_dtype``: the real
    dtype of the derivative columns (:func:`_with_derivatives`; default the columns')."""
    cols_c, z, edge, phase, kernel = columns(problem, theta, column_dtype)
    cols = stack(cols_c)
    ys = stack(y[..., None])
    w_cols, w_y = _whiten(problem, cols), _whiten(problem, ys)
    gram = _inner(cols, w_cols, cols, w_cols)
    h = _inner(cols, w_cols, ys, w_y)[..., 0]
    if amplitude_prior is not None:
        gram = gram + amplitude_prior
    if fixed_amplitudes is None:
        a, passive = nnls_gram(gram, h, passive)
    else:
        a = fixed_amplitudes.to(gram.dtype, copy=True)  # rows are written in place later
        passive = torch.zeros_like(a, dtype=torch.bool)
    residual = ys - cols @ a[..., None]
    w_residual = w_y - w_cols @ a[..., None]
    data_cost = _inner(residual, w_residual, residual, w_residual)[..., 0, 0]
    if amplitude_prior is not None:
        data_cost = data_cost + (a[:, None, :] @ amplitude_prior @ a[..., None])[..., 0, 0]
    prior = (problem.prior_precision * theta**2 * problem.free).sum(-1)
    if problem.penalty_active:
        prior = prior + _kernel_penalty(problem, theta)
    prior = prior * noise_var
    empty = cols.new_zeros(cols.shape[0], 0, 0)
    ev = Evaluation(
        data_cost + prior, a, passive, cols, empty, residual, gram, w_cols, empty, w_residual
    )
    ev.pending = (z, edge, phase, cols_c, kernel)
    return _with_derivatives(problem, ev, derivative_dtype) if derivatives else ev


def _kernel_penalty(problem: Problem, theta: torch.Tensor) -> torch.Tensor:
    """The quadratic priors ``x^T Q x + 2 q^T x + c`` ``(B,)`` (the kernel's and the group
    spread priors; in units of the noise variance)."""
    quad = ((theta @ problem.kernel_penalty) * theta).sum(-1)
    return quad + 2 * theta @ problem.kernel_linear + problem.kernel_constant


def _with_derivatives(
    problem: Problem, ev: Evaluation, dtype: torch.dtype | None = None
) -> Evaluation:
    """``ev`` with its derivative columns (real ``dtype``, default the columns'; e.g.
    :data:`NORMAL_EQUATIONS_DTYPE`), from the modulated FIDs kept in ``ev.pending``."""
    z, edge, phase, cols_c, kernel = ev.pending
    ev.derivs = _derivative_columns(problem, z, edge, phase, cols_c, ev.amplitudes, kernel, dtype)
    ev.w_derivs = _whiten(problem, ev.derivs)
    ev.pending = None
    return ev


def _normal_equations(
    problem: Problem, ev: Evaluation, theta: torch.Tensor, noise_var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Newton matrix ``(B, P_free, P_free)`` and gradient ``(B, P_free)`` over the free
    parameters (Kaufman, ``W`` metric)."""
    jtj, grad = _data_normal_equations(problem, ev)
    return _with_priors(problem, jtj, grad, theta, noise_var)


def _data_normal_equations(problem: Problem, ev: Evaluation) -> tuple[torch.Tensor, torch.Tensor]:
    """The data's part of :func:`_normal_equations` (no priors): ``J^T J`` ``(B, P_free,
    P_free)`` and gradient ``(B, P_free)``, from ``ev``'s columns alone. ``J^T J`` and ``E``
    are formed in the derivative columns' dtype (:data:`NORMAL_EQUATIONS_DTYPE` in the
    iterations), the gradient and the Schur complement in the Gram's (float64)."""
    d, wd = ev.derivs, ev.w_derivs
    wide = ev.gram.dtype

    def low(t: torch.Tensor) -> torch.Tensor:
        return t.to(d.dtype)

    jtj = _inner(d, wd, d, wd).to(wide)
    # the gradient in the Gram's precision: it sets where the iterations end (a noiseless fit
    # of a nearly collinear pair, Cr and PCr, stopped 4e-5 off with a single-precision one);
    # as row vectors: (1, 2K) x (2K, P) products, several times faster than (P, 2K) x (2K, 1)
    grad = -_inner(ev.residual, ev.w_residual, d.to(wide), wd.to(wide))[:, 0, :]
    e = _inner(low(ev.columns), low(ev.w_columns), d, wd).to(wide)  # (B, M, P_free)
    f = ev.passive
    both = f[:, :, None] & f[:, None, :]
    masked = torch.where(both, ev.gram, torch.zeros_like(ev.gram)) + torch.diag_embed(
        (~f).to(ev.gram.dtype)
    )
    e_f = e * f[..., None]
    jtj = jtj - e_f.mT @ spd_solve(masked, e_f)
    return jtj, grad


def _with_priors(
    problem: Problem,
    jtj: torch.Tensor,
    grad: torch.Tensor,
    theta: torch.Tensor,
    noise_var: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_data_normal_equations`' ``(jtj, grad)`` with the priors' terms at ``theta``
    ``(B, P)`` and the noise variance ``(B,)`` added (new tensors)."""
    prior = problem.prior_precision[problem.free_index] * noise_var[:, None]
    jtj = jtj + torch.diag_embed(prior)
    grad = grad + prior * theta[:, problem.free_index]
    if problem.penalty_active:
        fi = problem.free_index
        q_free = problem.kernel_penalty[fi][:, fi]
        jtj = jtj + noise_var[:, None, None] * q_free
        half_grad = theta @ problem.kernel_penalty + problem.kernel_linear
        grad = grad + noise_var[:, None] * half_grad[:, fi]
    return jtj, grad


def _step(
    problem: Problem, jtj: torch.Tensor, grad: torch.Tensor, lam: torch.Tensor, held: torch.Tensor
) -> torch.Tensor:
    """LM step ``-(J^T J + lam diag)^-1 g`` over the free parameters, ``(B, P_free)``, with
    those ``held`` ``(B, P_free)`` (on a bound) kept at 0."""
    scale = problem.scale[problem.free_index]
    diag = torch.diagonal(jtj, dim1=-2, dim2=-1)
    # the floor (SCALING_FLOOR_*): keeps unidentifiable parameters (a group with no amplitude)
    # still; at 1 it is the scaling itself, the same damping of every theta_j / s_j
    floor = problem.scaling_floor * (diag * scale**2).amax(-1, keepdim=True) / scale**2
    scaling = torch.maximum(diag, floor.clamp_min(1e-300))
    a = jtj + torch.diag_embed(lam[:, None] * scaling + 1e-12 * scaling)
    move = ~held
    both = move[:, :, None] & move[:, None, :]
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    a = torch.where(both, a, eye)
    g = torch.where(move, grad, torch.zeros_like(grad))
    return -spd_solve(a, g[..., None])[..., 0]


_STORED = tuple(f for f in Evaluation.__dataclass_fields__ if f != "pending")


@dataclass
class Solution:
    theta: torch.Tensor  # (B, P)
    evaluation: Evaluation
    iterations: torch.Tensor  # (B,)
    converged: torch.Tensor  # (B,)


def _take(ev: Evaluation, idx: torch.Tensor) -> Evaluation:
    out = Evaluation(*(getattr(ev, f)[idx] for f in _STORED))
    if ev.pending is not None:
        out.pending = tuple(t[idx] for t in ev.pending)
    return out


def _put(ev: Evaluation, idx: torch.Tensor, new: Evaluation) -> None:
    for name in _STORED:
        getattr(ev, name)[idx] = getattr(new, name)


def levenberg_marquardt(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    *,
    max_iterations: int,
    cost_rtol: float = COST_RTOL,
    amplitude_prior: torch.Tensor | None = None,
    column_dtype: torch.dtype | None = None,
    fixed_amplitudes: torch.Tensor | None = None,
    stop_var: torch.Tensor | None = None,
    give_up: torch.Tensor | None = None,
    final_derivatives: bool = True,
) -> Solution:
    """Minimise the objective for every spectrum from ``theta`` ``(B, P)`` within ``lower``,
    ``upper`` ``(B, P)``; spectra leave the batch as they converge. ``amplitude_prior``
    ``(B, M, M)``, ``fixed_amplitudes`` ``(B, M)``: see :func:`evaluate`. ``column_dtype``: the
    iterations' (:func:`columns`; e.g. :data:`TRIAL_DTYPE`), the returned evaluation formed
    again in the basis' dtype. ``stop_var`` ``(B,)``: a noise variance per real part of the
    data (a signal-free region's) for the noise-scaled stopping rule (:data:`COST_NOISE_TOL`);
    ``None``: the relative rule (``cost_rtol``). ``give_up`` ``(B,)``: a cost; a spectrum
    whose Gauss-Newton model predicts no minimum below it (the cost less the undamped step's
    predicted decrease is at least this) stops there, counted as converged (a global move that
    cannot beat the fit it would replace, :mod:`scaloquant.fit.search`).
    ``final_derivatives=False``: the evaluation formed again at the end (``column_dtype``) is
    left without its derivative columns, for callers that read only its cost and amplitudes."""
    theta = torch.minimum(torch.maximum(theta, lower), upper)
    # the returned evaluation is formed again at the end (other dtype): the iterations keep
    # only each spectrum's passive set, not its evaluation, and their normal equations are
    # formed in NORMAL_EQUATIONS_DTYPE
    again = column_dtype is not None and column_dtype != problem.fids.dtype
    normal_dtype = NORMAL_EQUATIONS_DTYPE if again else None
    ev = evaluate(
        problem,
        theta,
        y,
        noise_var,
        amplitude_prior=amplitude_prior,
        fixed_amplitudes=fixed_amplitudes,
        column_dtype=column_dtype,
        derivative_dtype=normal_dtype,
    )
    b = theta.shape[0]
    lam = torch.full((b,), LM_START, dtype=theta.dtype, device=theta.device)
    iterations = torch.zeros(b, dtype=torch.long, device=theta.device)
    converged = torch.zeros(b, dtype=torch.bool, device=theta.device)
    passive_all = ev.passive.clone()
    # the spectra still running, compacted, with what the next step needs of their current
    # evaluation: the data's normal equations (formed once per accepted step, not again after
    # a rejected one), cost and passive set. The evaluations' (B, 2K, .) arrays are never
    # compacted; an accepted one is written into ``ev`` (at its rows of the whole batch) only
    # where ``ev`` is returned
    active = torch.arange(b, device=theta.device)
    jtj_d, grad_d = _data_normal_equations(problem, ev)
    cost, passive = ev.cost.clone(), ev.passive.clone()
    th, yy, nv, lo, hi = theta.clone(), y, noise_var, lower, upper
    sv = stop_var
    prior, fixed, gu = amplitude_prior, fixed_amplitudes, give_up
    fi = problem.free_index

    def finish(done: torch.Tensor) -> None:
        """The spectra ``done`` (a mask over ``active``) leave the batch."""
        nonlocal active, th, jtj_d, grad_d, cost, passive, yy, nv, lo, hi, sv, prior, fixed, gu
        finished = active[done]
        converged[finished] = True
        theta[finished] = th[done]
        keep = ~done
        active, th, jtj_d, grad_d = active[keep], th[keep], jtj_d[keep], grad_d[keep]
        cost, passive = cost[keep], passive[keep]
        yy, nv, lo, hi = yy[keep], nv[keep], lo[keep], hi[keep]
        sv = None if sv is None else sv[keep]
        prior = None if prior is None else prior[keep]
        fixed = None if fixed is None else fixed[keep]
        gu = None if gu is None else gu[keep]

    for iteration in range(max_iterations):
        if active.numel() == 0:
            break
        jtj, grad = _with_priors(problem, jtj_d, grad_d, th, nv)
        # parameters on a bound that the gradient pushes outwards are held there (projected LM)
        current = th[:, fi]
        held = ((current <= lo[:, fi]) & (grad > 0)) | ((current >= hi[:, fi]) & (grad < 0))
        if problem.gauss_newton_stop or gu is not None:
            # the decrease the undamped (Gauss-Newton) step predicts, for the stopping rule
            undamped = _step(problem, jtj, grad, torch.zeros_like(lam[active]), held)
            predicted = -(grad * undamped).sum(-1)
            if gu is not None:
                hopeless = cost - predicted >= gu
                if bool(hopeless.any()):
                    finish(hopeless)
                    if active.numel() == 0:
                        break
                    keep = ~hopeless
                    jtj, grad, held, predicted = jtj[keep], grad[keep], held[keep], predicted[keep]
        trial = th.clone()
        trial[:, fi] += _step(problem, jtj, grad, lam[active], held)
        trial = torch.minimum(torch.maximum(trial, lo), hi)
        new = evaluate(
            problem,
            trial,
            yy,
            nv,
            passive,
            derivatives=False,
            amplitude_prior=prior,
            column_dtype=column_dtype,
            fixed_amplitudes=fixed,
        )
        better = new.cost < cost
        iterations[active] += 1
        lam[active] = torch.where(better, lam[active] * LM_DOWN, lam[active] * LM_UP)
        if sv is None:
            tolerance = cost_rtol * cost.abs()
        else:  # the smaller of two noise estimates: the region's and the residual's (2K reals)
            tolerance = COST_NOISE_TOL * torch.minimum(sv, cost.abs() / (2 * yy.shape[-1]))
        stalled = better & (cost - new.cost < tolerance)
        if problem.gauss_newton_stop:
            stalled &= predicted < tolerance
        done = stalled | (lam[active] > LM_MAX)
        if bool(better.any()):
            every = bool(better.all())
            rows = None if every else torch.nonzero(better)[:, 0]
            if every:
                th, cost, passive = trial, new.cost.clone(), new.passive.clone()
                passive_all[active] = new.passive
            else:
                th[rows], cost[rows], passive[rows] = trial[rows], new.cost[rows], new.passive[rows]
                passive_all[active[rows]] = new.passive[rows]
            # the derivatives (and normal equations) of an accepted step serve the next step,
            # and the returned evaluation where it is not formed again: where it is, a spectrum
            # that ends here (or at the last iteration) does not need them, unless the others'
            # are formed from the whole trial batch (no subset copied)
            need = better
            if again:
                need = better & ~done if iteration + 1 < max_iterations else better & False
            if every and bool(need.any()):
                need = better  # all of them: one copy of a subset would cost more
            if bool(need.any()):
                if not every:
                    rows = torch.nonzero(need)[:, 0]
                accepted = _with_derivatives(
                    problem, new if every else _take(new, rows), normal_dtype
                )
                jtj_new, grad_new = _data_normal_equations(problem, accepted)
                if every:
                    jtj_d, grad_d = jtj_new, grad_new
                else:
                    jtj_d[rows], grad_d[rows] = jtj_new, grad_new
                if not again:
                    where = active if every else active[rows]
                    if every and where.numel() == b:
                        ev = accepted
                    else:
                        _put(ev, where, accepted)
        if bool(done.any()):
            finish(done)
    if active.numel():
        theta[active] = th
    if again:
        ev = evaluate(
            problem,
            theta,
            y,
            noise_var,
            passive_all,
            derivatives=final_derivatives,
            amplitude_prior=amplitude_prior,
            fixed_amplitudes=fixed_amplitudes,
        )
        if not final_derivatives:
            ev.pending = None  # the modulated FIDs, kept for derivatives nobody asks for
    return Solution(theta, ev, iterations, converged)


#: Width (ppm) of the running mean removed from the magnitudes before the cross-correlation.
XCORR_HIGHPASS_PPM = 0.2


def _highpass(mag: torch.Tensor, half: int) -> torch.Tensor:
    """``mag`` ``(R, K)`` less its running mean over ``2 half + 1`` bins (shorter at the ends)."""
    smooth = torch.nn.functional.avg_pool1d(
        mag[:, None, :], 2 * half + 1, stride=1, padding=half, count_include_pad=False
    )[:, 0, :]
    return mag - smooth


def cross_correlation_shift_hz(
    problem: Problem, y: torch.Tensor, shift_range_hz: tuple[float, float], dwell_time_s: float
) -> torch.Tensor:
    """One shift per spectrum (Hz) from the cross-correlation of the window's magnitude with
    that of the basis' main singlets (:func:`_reference_magnitude`), over integer bins of ``shift_range_hz``, refined by
    a parabola: ``(B,)``."""
    n = problem.apodisation.shape[-1]
    bin_hz = 1.0 / (n * dwell_time_s)
    lo, hi = shift_range_hz
    lags = torch.arange(
        int(math.ceil(lo / bin_hz)), int(math.floor(hi / bin_hz)) + 1, device=y.device
    )
    ref = problem.reference_magnitude[(problem.data_fft_index[None, :] - lags[:, None]) % n]
    # only the lines count, not broad signal (residual water's tail, lipids, baseline), which
    # would pull the basis' mass towards it: each magnitude less its running mean over
    # XCORR_HIGHPASS_PPM
    ppm_step = float(abs(problem.ppm[1] - problem.ppm[0]))
    half = max(1, int(round(0.5 * XCORR_HIGHPASS_PPM / ppm_step)))
    ref = _highpass(ref, half)
    score = (_highpass(y.abs(), half) @ ref.T) / ref.norm(dim=1).clamp_min(1e-300)
    best = score.argmax(-1)
    inner = best.clamp(1, lags.numel() - 2)
    rows = torch.arange(y.shape[0], device=y.device)
    left, mid, right = (score[rows, inner + k] for k in (-1, 0, 1))
    curv = left - 2 * mid + right
    refine = (best == inner) & (curv < 0)
    offset = torch.where(refine, 0.5 * (left - right) / torch.where(refine, curv, -1.0), 0.0)
    return ((lags[best] + offset) * bin_hz).clamp(lo, hi)


def amplitude_prior(
    problem: Problem, amplitudes: torch.Tensor, noise_var: torch.Tensor
) -> torch.Tensor | None:
    """``Q`` ``(B, M, M)`` of ``problem``'s amplitude-ratio priors
    (:func:`scaloquant.physics.priors.prior_matrix`) for preliminary ``amplitudes`` ``(B, M)``
    and the noise variance ``(B,)``; ``None`` when no prior applies."""
    if not problem.ratio_labels:
        return None
    return prior_matrix(
        problem.ratio_coefficients,
        problem.ratio_scale_terms,
        problem.ratio_sd,
        amplitudes,
        noise_var,
    )


def phase0_start(problem: Problem, theta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``phi0`` from an unconstrained complex least-squares fit of the columns (at
    ``phi0 = 0``) with the baseline: the energy-weighted angle of the complex amplitudes."""
    sl = problem.slices()
    at_zero = theta.clone()
    at_zero[:, sl["phase0"]] = 0.0
    cols = columns(problem, at_zero)[0]
    c_mat = problem.baseline_whiten.to(cols.dtype)
    gram = cols.mH @ cols
    rhs = cols.mH @ y[..., None]
    if c_mat.shape[0]:
        gram = gram - (c_mat @ cols).mH @ (c_mat @ cols)
        rhs = rhs - (c_mat @ cols).mH @ (c_mat @ y[..., None])
    m = cols.shape[-1]
    ridge = 1e-10 * torch.diagonal(gram, dim1=-2, dim2=-1).real.amax(-1)
    coef = torch.linalg.solve(gram + ridge[:, None, None] * torch.eye(m, device=y.device), rhs)
    energy = torch.diagonal(gram, dim1=-2, dim2=-1).real
    return torch.angle((coef[..., 0] * energy).sum(-1))


def complex_residual(ev: Evaluation) -> torch.Tensor:
    """The real-stacked ``y - S a`` of ``ev`` as complex ``(B, K)``."""
    r = ev.residual[..., 0]
    k = r.shape[-1] // 2
    return torch.complex(r[:, :k], r[:, k:])


def baseline_coefficients(problem: Problem, residual: torch.Tensor) -> torch.Tensor:
    """Complex baseline coefficients ``(B, nb)`` for a complex residual ``y - S a`` ``(B, K)``."""
    return residual @ problem.baseline_solve.T.to(residual.dtype)


def crlb(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    amplitude_prior: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Covariance bound of ``(amplitudes, free theta)`` and the identifiable-parameter mask.

    Fisher information ``F / sigma^2`` with ``F = [[<S,S>_W, <S,D'>_W], [<D',S>_W,
    <D',D'>_W + sigma^2 diag(1/s^2)]]``, ``D'`` the derivative columns of the free,
    identifiable parameters; the baseline with its penalty is eliminated exactly through ``W``
    (a Schur complement), so its cost is included. Returns ``(cov (B, M + P_free, M +
    P_free), ident (B, P_free))`` in the dtype of the evaluation's Gram block (the derivative
    columns are taken to it); rows of parameters left out are those of an identity.

    The amplitudes' block is the evaluation's own Gram matrix ``ev.gram`` (with the amplitude
    prior the evaluation had, if any: a Gaussian prior is information). ``amplitude_prior``
    ``(B, M, M)`` (:func:`amplitude_prior`, in the same ``sigma^2`` units) replaces it: the
    block is then formed again from the columns plus this prior (the fit weighs its prior with
    the noise level it ends with, which its last evaluation's prior need not have).
    """
    m = problem.n_metabolites
    dtype = ev.gram.dtype
    d, wd = ev.derivs.to(dtype), ev.w_derivs.to(dtype)
    prior = problem.prior_precision[problem.free_index] * noise_var[:, None]
    n = m + d.shape[-1]
    # by blocks from the evaluation's Gram matrix, columns and whitened images: no (B, 2K, M +
    # P) copy, and the lower-left block is the transpose of the upper-right one
    fisher = ev.gram.new_empty(d.shape[0], n, n)
    if amplitude_prior is None:
        fisher[:, :m, :m] = ev.gram
    else:
        fisher[:, :m, :m] = _inner(ev.columns, ev.w_columns, ev.columns, ev.w_columns)
        fisher[:, :m, :m] += amplitude_prior
    fisher[:, :m, m:] = _inner(ev.columns, ev.w_columns, d, wd)
    fisher[:, m:, :m] = fisher[:, :m, m:].mT
    plain = d.mT @ d
    fisher[:, m:, m:] = plain - wd.mT @ wd
    # a derivative column that no data inform is all zeros (D = (dS/dtheta) a, a = 0) or, where
    # the baseline absorbs it, of a whitened norm 0 to rounding (its diagonal then as likely
    # negative as not: a NaN scale below): told apart by the whitened diagonal against the
    # plain one (the column's sum of squares), its rows and columns are replaced by the
    # identity's below (no masking of D needed); unless a prior informs it
    data = torch.diagonal(fisher[:, m:, m:], dim1=-2, dim2=-1)
    informed = data > BASELINE_ABSORBED_RTOL * torch.diagonal(plain, dim1=-2, dim2=-1)
    ident = informed | (prior > 0)
    del plain
    torch.diagonal(fisher, dim1=-2, dim2=-1)[:, m:] += prior * ident
    if problem.penalty_active:
        fi = problem.free_index
        fisher[:, m:, m:] += noise_var[:, None, None] * problem.kernel_penalty[fi][:, fi]
    _identity_rows(fisher, ~ident, m)
    scale = torch.sqrt(torch.diagonal(fisher, dim1=-2, dim2=-1)).clamp_min(1e-300)
    outer = scale[:, :, None] * scale[:, None, :]
    cov = _inverse(fisher.div_(outer))
    return cov.mul_(noise_var[:, None, None]).div_(outer), ident


#: Smallest whitened Fisher diagonal of a derivative column, relative to its sum of squares, that
#: :func:`crlb` takes as information: below it the baseline absorbs the column (its whitened
#: norm is rounding: 2e-15 of the plain one for a constant over the window under the ``invivo``
#: spline baseline, whose roughness penalty leaves constants free), and the parameter is left
#: out as one whose column is zero. The columns of parameters that the data inform keep 0.3-1
#: of their norm there (``invivo``, seven metabolites).
BASELINE_ABSORBED_RTOL = 1e-10


def _identity_rows(fisher: torch.Tensor, drop: torch.Tensor, m: int) -> None:
    """Rows and columns ``m + j`` of ``fisher`` ``(B, n, n)`` where ``drop`` ``(B, n - m)``,
    in place, made those of the identity."""
    full = torch.cat([drop.new_zeros(drop.shape[0], m), drop], dim=-1)
    fisher.masked_fill_(full[:, :, None] | full[:, None, :], 0.0)
    torch.diagonal(fisher, dim1=-2, dim2=-1).masked_fill_(full, 1.0)


#: Largest diagonal element of the inverse of a unit-diagonal Fisher matrix that :func:`crlb`
#: takes from a Cholesky factorisation. Below it the smallest eigenvalue exceeds ``1 / (n
#: 1e10)`` while the largest is at most ``n`` (the trace), so the matrix is far from the ``n
#: eps`` relative cut-off of :func:`torch.linalg.pinv` (which then is the plain inverse) and
#: both give the same bound; above it (or where the factorisation fails) the pseudo-inverse is
#: taken. The batched Cholesky is several times cheaper than the eigen-decomposition of the
#: pseudo-inverse, which took most of ``quantify``'s time at ``K = 0`` (65 x 65 matrices of the
#: per-metabolite model; benchmarks/bench_physics.py ``--quantify``).
CHOLESKY_INVERSE_MAX = 1e10


def _inverse(normed: torch.Tensor) -> torch.Tensor:
    """Inverse of symmetric positive semi-definite matrices ``(B, n, n)`` with a unit diagonal:
    by Cholesky where well conditioned (:data:`CHOLESKY_INVERSE_MAX`), else the pseudo-inverse
    (rank-deficient rows: unidentifiable parameters)."""
    eye = torch.eye(normed.shape[-1], dtype=normed.dtype, device=normed.device)
    factor, info = torch.linalg.cholesky_ex(normed)
    # a failed factorisation (info > 0) is replaced by the identity, its row redone below
    inv = torch.cholesky_inverse(torch.where((info == 0)[:, None, None], factor, eye))
    diag = torch.diagonal(inv, dim1=-2, dim2=-1)
    good = (info == 0) & torch.isfinite(diag).all(-1) & (diag.amax(-1) < CHOLESKY_INVERSE_MAX)
    if not bool(good.all()):
        bad = torch.nonzero(~good)[:, 0]
        inv[bad] = torch.linalg.pinv(normed[bad], hermitian=True)
    return inv


#: Spectra per tensor program on a CPU (working arrays of about 100 MB) and on a GPU. Spectra
#: leave the batch as they converge, so a chunk's last iterations run a few slow spectra at a
#: cost per iteration dominated by fixed overheads; a larger chunk shares that tail among more
#: spectra (64 SNR-30 spectra, ``invivo``, 1 thread: 12.0 spectra/s in one chunk of 64, 6.9 in
#: two of 32).
CPU_CHUNK = 128
GPU_CHUNK = 1024
#: Fewest spectra per chunk when a CPU batch is shared out among torch's threads
#: (:func:`chunk_ranges`): below it a chunk's tail of slow spectra costs more than a second
#: core gains.
SIDE_BY_SIDE_MIN = 32


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
class BatchedFit:
    """The batched fit of ``B`` spectra as numpy arrays (``M`` metabolites, ``G`` groups)."""

    amplitudes: np.ndarray  # (B, M)
    covariance: np.ndarray  # (B, M, M)
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


def _bounds(problem: Problem, centre_hz: torch.Tensor, config: FitConfig):
    lower = problem.lower.expand(centre_hz.shape[0], -1).clone()
    upper = problem.upper.expand(centre_hz.shape[0], -1).clone()
    sl = problem.slices()["shift"]
    lower[:, sl] = centre_hz[:, None] + config.shift_bounds_hz[0]
    upper[:, sl] = centre_hz[:, None] + config.shift_bounds_hz[1]
    return lower, upper


def parameter_bounds(problem: Problem, centre_hz: torch.Tensor, config: FitConfig):
    """``(lower, upper)`` ``(B, P)`` of the fit: ``problem``'s bounds with the group shifts
    within ``config.shift_bounds_hz`` of ``centre_hz`` ``(B,)`` (public name of
    :func:`_bounds`, for the physics-head models)."""
    return _bounds(problem, centre_hz, config)


def noise_var_from_residual(problem: Problem, ev: Evaluation) -> torch.Tensor:
    """Public name of :func:`_noise_var_from_residual` (for the physics-head models)."""
    return _noise_var_from_residual(problem, ev)


def _noise_var_from_residual(problem: Problem, ev: Evaluation) -> torch.Tensor:
    """``|r|^2 / (2K - n_free)`` with the baseline solved, ``(B,)``."""
    r = complex_residual(ev)
    r = r - baseline_coefficients(problem, r) @ problem.baseline_design.T.to(r.dtype)
    # the identifiable parameters, as in crlb: no (B, 2K, P) temporary of squares
    n_theta = (torch.linalg.vector_norm(ev.derivs, dim=1) > 0).sum(-1)
    n_free = ev.passive.sum(-1) + n_theta + 2 * problem.baseline_ed
    dof = (2 * r.shape[-1] - n_free).clamp_min(1)
    return r.abs().square().sum(-1) / dof


def _start_theta(
    problem: Problem, config: FitConfig, y: torch.Tensor, dwell_time_s: float, start
) -> torch.Tensor:
    sl = problem.slices()
    b = y.shape[0]
    theta = torch.zeros(b, problem.size, dtype=torch.float64, device=y.device)
    theta[:, sl["damping"]] = config.initial_damping_per_s if problem.lorentzian else 0.0
    theta[:, sl["gauss"]] = config.initial_gauss_per_s2 if problem.gaussian else 0.0
    if config.initial_shift == "xcorr":
        shift = cross_correlation_shift_hz(problem, y, config.global_shift_range_hz, dwell_time_s)
        theta[:, sl["shift"]] = shift[:, None]
    counts = problem.group_matrix.sum(0)

    def tensor(value) -> torch.Tensor:
        return torch.as_tensor(np.array(value, dtype=np.float64), device=y.device)

    for name, key in (("damping_per_s", "damping"), ("shift_hz", "shift")):
        if name in start:  # (B, M) per metabolite: averaged within each group
            theta[:, sl[key]] = tensor(start[name]) @ problem.group_matrix / counts
    for name, key in (("phase1_rad_per_ppm", "phase1"), ("gauss_per_s2", "gauss")):
        if name in start:  # (B,)
            theta[:, sl[key]] = tensor(start[name])[:, None]
    return theta


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
) -> BatchedFit:
    """One chunk of :func:`solve`; ``twin_pairs`` (not None: the per-metabolite model) turns on
    the re-centred shift bounds, resets and twin swaps of :mod:`scaloquant.fit.search`;
    ``exact``: the last pass's problem on all ``N`` samples where its own is decimated
    (:func:`finish_on_the_full_grid`)."""
    from . import search

    sl = final.slices()
    y = data_window(final, fids)
    theta = _start_theta(final, config, y, dwell_time_s, start)
    centre = theta[:, sl["shift"]].mean(-1)
    first = stages[0] if stages else final
    if config.fit_phase0:
        if "phase0_rad" in start:
            arr = np.array(start["phase0_rad"], dtype=np.float64)
            theta[:, sl["phase0"]] = torch.as_tensor(arr, device=y.device)[:, None]
        else:
            theta[:, sl["phase0"]] = phase0_start(first, theta, data_window(first, fids))[:, None]
    ones = torch.ones(y.shape[0], dtype=torch.float64, device=y.device)
    theta, centre = continuation(stages, config, fids, theta, centre, twin_pairs is not None)
    iterations = torch.zeros(y.shape[0], dtype=torch.long, device=y.device)
    preliminary = None
    # the noise-scaled stopping rule (COST_NOISE_TOL) for the per-metabolite model's passes
    stop_var = region_var if twin_pairs is not None else None
    if refine is None or region_var is None or twin_pairs is not None:
        # without deviations this is the fit; with them, it gives the noise level that weighs
        # their priors when no signal-free region does (and for the per-metabolite model the
        # search, before its spread priors, if any, are added in the last pass)
        lower, upper = _bounds(final, centre, config)
        sol = levenberg_marquardt(
            final,
            theta,
            y,
            ones,
            lower,
            upper,
            max_iterations=config.max_iterations,
            column_dtype=TRIAL_DTYPE,
            stop_var=stop_var,
        )
        if twin_pairs is not None:
            sol = search.global_moves(
                final, config, sol, y, ones, centre, twin_pairs, stop_var=stop_var
            )
            if region_var is not None:
                sol = search.second_search(
                    stages, final, config, fids, y, sol, centre, twin_pairs, region_var
                )
        iterations, theta = sol.iterations, sol.theta
        last_noise = ones
        # (the per-metabolite model's spread priors weigh with this residual's variance, not
        # the region's: it vanishes on noiseless spectra, whose region holds the lines' tails)
        noise_var = _noise_var_from_residual(final, sol.evaluation)
    else:
        noise_var = region_var
    lower, upper = _bounds(final, centre, config)
    prior_q = None
    if final.ratio_labels:
        # the ratio priors' widths scale with a preliminary fit's amplitudes (LCModel's)
        preliminary = evaluate(final, theta, y, ones, derivatives=False).amplitudes
        prior_q = amplitude_prior(final, preliminary, noise_var)
    # the last pass: with the deviations (refine), or again with the ratio priors
    last = refine if refine is not None else (final if prior_q is not None else None)
    if last is not None:
        lower, upper = _bounds(last, centre, config)
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
        )
        iterations = iterations + sol.iterations
        final = last
    if exact is not None:
        before = sol.iterations
        sol = finish_on_the_full_grid(
            exact, final, sol, y, last_noise, lower, upper,
            prior_q if last is not None else None, stop_var, config.max_iterations,
        )  # fmt: skip
        iterations = iterations + (sol.iterations - before)
    ev = sol.evaluation
    if config.noise_estimate == "residual":
        noise_var = _noise_var_from_residual(final, ev)
    if preliminary is not None:
        prior_q = amplitude_prior(final, preliminary, noise_var)
    cov, _ = crlb(final, ev, noise_var, prior_q)
    return _batched_fit(
        final, sol, noise_var, cov[:, : final.n_metabolites, : final.n_metabolites], iterations
    )


def full_grid_twin(
    problem: Problem,
    basis: BasisSet,
    config: FitConfig,
    *,
    deviations: bool,
    device: torch.device,
) -> Problem | None:
    """``problem`` (made of ``basis`` and ``config`` with ``deviations``) on all ``N`` samples,
    for :func:`finish_on_the_full_grid`, where it is decimated; ``None`` where it is not."""
    if problem.fids.shape[-1] == basis.n_points:
        return None
    full = replace(config, decimate_model=False)
    return make_problem(basis, full, deviations=deviations, device=device)


#: Spectra whose window's largest bin exceeds this many times the residual's noise SD are
#: fitted to their end on all ``N`` samples (:func:`finish_on_the_full_grid`): 1000, where the
#: decimated model's error (<= 1e-4 of a column's largest bin, ~3e-6 typical) reaches a few
#: percent of the noise; below it the decimated minimum is the full model's within ~1e-2 of a
#: CRLB SD (docs/fit.md "The model on the window's band").
FULL_GRID_SNR = 1000.0


def near_noiseless_rows(
    decimated: Problem, ev: Evaluation, y: torch.Tensor, residual_var: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices of the spectra of evaluation ``ev`` (of ``decimated``) over windows ``y``
    ``(B, K)`` whose window peak is above :data:`FULL_GRID_SNR` times their residual's noise
    SD (``residual_var``, :func:`noise_var_from_residual` of ``ev``, if the caller has it):
    those that :func:`finish_on_the_full_grid` and :func:`evaluate_on_the_full_grid` take to
    the full model."""
    if residual_var is None:
        residual_var = _noise_var_from_residual(decimated, ev)
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
    ``exact`` (the same problem on all ``N`` samples; ``column_dtype`` as :func:`evaluate`'s):
    a model evaluated at parameters without fitting (the physics-head network's), exact to
    rounding at the truth as the full model is. ``ev`` is updated in place and returned with
    its residual's noise variance (:func:`noise_var_from_residual`, formed once: the rows'
    choice needs it too)."""
    residual_var = _noise_var_from_residual(decimated, ev)
    rows = near_noiseless_rows(decimated, ev, y, residual_var)
    if rows.numel():
        more = evaluate(exact, theta[rows], y[rows], noise_var[rows], column_dtype=column_dtype)
        _put(ev, rows, more)
        residual_var[rows] = _noise_var_from_residual(decimated, more)
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
) -> Solution:
    """``sol`` of the decimated model (``decimated``), with the spectra whose window peak is
    above :data:`FULL_GRID_SNR` times their residual's noise SD (noiseless and near-noiseless
    ones, whose fit the decimated model's error would limit) fitted on from there with
    ``exact`` (the same problem on all ``N`` samples): Levenberg–Marquardt iterations (at most
    ``max_iterations``) that end on the full model's minimum, where its stopping rule ends them
    (a noiseless spectrum within ~1e-5, as without decimation). The others keep the decimated
    model's fit."""
    rows = near_noiseless_rows(decimated, sol.evaluation, y)
    if rows.numel() == 0:
        return sol

    def pick(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[rows]

    more = levenberg_marquardt(
        exact,
        sol.theta[rows],
        y[rows],
        noise_var[rows],
        lower[rows],
        upper[rows],
        max_iterations=max_iterations,
        amplitude_prior=pick(amplitude_prior),
        column_dtype=TRIAL_DTYPE,
        stop_var=pick(stop_var),
        fixed_amplitudes=pick(fixed_amplitudes),
    )
    out = Solution(sol.theta.clone(), sol.evaluation, sol.iterations.clone(), sol.converged.clone())
    out.theta[rows] = more.theta
    _put(out.evaluation, rows, more.evaluation)
    out.iterations[rows] += more.iterations
    out.converged[rows] = more.converged
    return out


def _batched_fit(
    final: Problem,
    sol: Solution,
    noise_var: torch.Tensor,
    covariance: torch.Tensor,
    iterations: torch.Tensor,
) -> BatchedFit:
    """The :class:`BatchedFit` of ``sol`` of ``final``, with the noise variance ``(B,)``, the
    amplitudes' covariance ``(B, M, M)`` and the iterations ``(B,)``."""
    sl = final.slices()
    ev = sol.evaluation
    theta = sol.theta
    rates_damping = theta[:, sl["damping"]][:, final.group_of] * final.lorentzian
    damping = rates_damping + theta[:, sl["damping_dev"]]
    shift = theta[:, sl["shift"]][:, final.group_of] + theta[:, sl["shift_dev"]]
    gauss = theta[:, sl["gauss"]][:, final.group_of] * final.gaussian
    residual = complex_residual(ev)
    coef = baseline_coefficients(final, residual)
    full_residual = residual - coef @ final.baseline_design.T.to(coef.dtype)

    def out(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    return BatchedFit(
        amplitudes=out(ev.amplitudes),
        covariance=out(covariance),
        damping_per_s=out(damping),
        shift_hz=out(shift),
        gauss_per_s2=out(gauss),
        phase0_rad=out(theta[:, sl["phase0"]][:, 0]),
        phase1_rad_per_ppm=out(theta[:, sl["phase1"]][:, 0]),
        baseline=out(coef),
        noise_sd=out(noise_var.sqrt()),
        residual_norm=out(full_residual.abs().square().sum(-1).sqrt()),
        iterations=out(iterations),
        converged=out(sol.converged),
        lineshape_kernel=out(kernel_weights(final, theta)),
    )


def continuation(
    stages: list[Problem],
    config: FitConfig,
    fids: torch.Tensor,
    theta: torch.Tensor,
    centre: torch.Tensor,
    recentre: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The continuation stages from ``theta`` ``(B, P)`` for FIDs ``fids`` ``(B, N)``, shift
    bounds about ``centre`` ``(B,)``: ``(theta, centre)`` after the last. ``recentre``: the
    bounds of each next stage are centred on the amplitude-weighted median shift of the groups
    found (:func:`scaloquant.fit.search.weighted_median_shift`)."""
    from . import search

    ones = torch.ones(fids.shape[0], dtype=torch.float64, device=fids.device)
    for stage in stages:
        lower, upper = _bounds(stage, centre, config)
        sol = levenberg_marquardt(
            stage,
            theta,
            data_window(stage, fids),
            ones,
            lower,
            upper,
            max_iterations=STAGE_ITERATIONS,
            cost_rtol=STAGE_COST_RTOL,
            column_dtype=TRIAL_DTYPE,
            final_derivatives=False,
        )
        theta = sol.theta
        if recentre:
            centre = search.weighted_median_shift(stage, theta, sol.evaluation.amplitudes, centre)
    return theta, centre


def stage_problem(
    basis: BasisSet, config: FitConfig, broadening_per_s: float, device: torch.device
) -> Problem:
    """The :class:`Problem` of a continuation stage, on :func:`stage_points` samples, or twice,
    four times... as many where the truncated window would hold too few points for the model."""
    keep = stage_points(basis.n_points, basis.dwell_time_s, broadening_per_s)
    half = kernel_bins(basis, config)
    while keep < basis.n_points:
        try:
            return make_problem(
                basis.truncated(keep),
                config,
                broadening_per_s=broadening_per_s,
                deviations=False,
                device=device,
                half_kernel_bins=half,
            )
        except ConfigError:
            keep *= 2
    return make_problem(
        basis, config, broadening_per_s=broadening_per_s, deviations=False, device=device
    )


def solve(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    *,
    region_noise_sd: np.ndarray | None = None,
    start: dict[str, np.ndarray] | None = None,
) -> BatchedFit:
    """Fit FIDs ``(B, N)`` on ``basis``' grid (already :func:`prepare_basis`-ed) in chunks of
    :data:`CPU_CHUNK` (:data:`GPU_CHUNK` on a GPU) spectra on ``config.device``.

    ``region_noise_sd`` ``(B,)``: noise SD per real part from a signal-free region (used for
    the priors' weight, and for the bounds when ``config.noise_estimate == "region"``);
    ``start``: starting values by name, ``damping_per_s``/``shift_hz`` ``(B, M)``,
    ``phase0_rad``/``phase1_rad_per_ppm``/``gauss_per_s2`` ``(B,)``."""
    device = torch.device(config.device)
    with_deviations = (
        config.shift_prior_sd_hz is not None
        or config.damping_prior_sd_per_s is not None
        or config.has_spread_priors
        or config.lineshape_kind == "freeform"
    )
    stages = [stage_problem(basis, config, L, device) for L in config.continuation_broadening_per_s]
    final = make_problem(basis, config, deviations=False, device=device)
    refine = make_problem(basis, config, device=device) if with_deviations else None
    last = refine if refine is not None else final
    exact = full_grid_twin(last, basis, config, deviations=with_deviations, device=device)
    from . import search

    twin_pairs = None
    if search.applies(config):
        twin_pairs = search.twins(basis, config, final.group_of.cpu().numpy())
    cpu = device.type == "cpu"
    # on a CPU with 2+ threads, a chunk per thread side by side (one core each) rather than
    # every small operation of one chunk split over the threads, which kept 2 cores ~1.3 busy;
    # each spectrum's fit does not depend on the others in its chunk (to single-precision
    # rounding of the trial columns' sums)
    workers = min(torch.get_num_threads(), available_cpus()) if cpu else 1
    ranges = chunk_ranges(fids.shape[0], CPU_CHUNK if cpu else GPU_CHUNK, workers)

    def part(lo: int, hi: int) -> BatchedFit:
        x = torch.as_tensor(np.array(fids[lo:hi]), dtype=torch.complex128, device=device)
        region = None
        if region_noise_sd is not None:
            region = torch.as_tensor(region_noise_sd[lo:hi] ** 2, device=device)
        part_start = {k: v[lo:hi] for k, v in (start or {}).items()}
        return _solve_chunk(
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
        )

    if workers > 1 and len(ranges) > 1:
        jobs = {f"{lo}": (lambda lo=lo, hi=hi: part(lo, hi)) for lo, hi in ranges}
        parts = [result for result, _ in run_side_by_side(jobs, workers).values()]
    else:
        parts = [part(lo, hi) for lo, hi in ranges]
    return BatchedFit(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in BatchedFit.__dataclass_fields__)
    )


def phase0_given_amplitudes(
    problem: Problem, theta: torch.Tensor, y: torch.Tensor, amplitudes: torch.Tensor
) -> torch.Tensor:
    """``phi0`` ``(B,)`` that aligns the model ``S a`` of the given ``amplitudes`` ``(B, M)``
    (at ``theta`` with ``phi0 = 0``) with the data windows ``y`` ``(B, K)``: the angle of
    ``<S a, y>_W``, the baseline's span removed: it minimises ``|y - exp(i phi0) S a|_W^2``
    over ``phi0`` exactly (only ``-2 Re(exp(-i phi0) <S a, y>_W)`` depends on it)."""
    at_zero = theta.clone()
    at_zero[:, problem.slices()["phase0"]] = 0.0
    model = (columns(problem, at_zero)[0] @ amplitudes.to(y.dtype)[..., None])[..., 0]
    inner = (model.conj() * y).sum(-1)
    c_mat = problem.baseline_whiten.to(y.dtype)
    if c_mat.shape[0]:
        inner = inner - ((model @ c_mat.T).conj() * (y @ c_mat.T)).sum(-1)
    return torch.angle(inner)


def solve_given_amplitudes(
    fids: np.ndarray, basis: BasisSet, config: FitConfig, amplitudes: np.ndarray
) -> BatchedFit:
    """Fit only the nonlinear parameters of FIDs ``(B, N)`` on ``basis``' grid (already
    :func:`prepare_basis`-ed) with the amplitudes held at ``amplitudes`` ``(B, M)`` (any sign),
    in chunks as :func:`solve`: one damping, shift (and Gaussian) for all metabolites with the
    phases, started from the cross-correlation shift, ``config.initial_damping_per_s`` and the
    ``phi0`` that aligns the model with the data (:func:`phase0_given_amplitudes`); then, with
    more than one group, a damping and shift per group started from those, with the resets
    and twin swaps of :mod:`scaloquant.fit.search` for the per-metabolite model. No
    per-metabolite deviations and
    no continuation stages. The covariance is NaN (bounds of amplitudes that were not
    estimated would mean nothing); the noise SD from the residual, counting the nonlinear and
    baseline parameters as fitted."""
    from . import search

    device = torch.device(config.device)
    global_config = replace(config, grouping="global")
    common = make_problem(basis, global_config, deviations=False, device=device)
    final = make_problem(basis, config, deviations=False, device=device)
    last, last_config = (final, config) if final.n_groups > 1 else (common, global_config)
    exact = full_grid_twin(last, basis, last_config, deviations=False, device=device)
    twin_pairs = None
    if search.applies(config) and final.n_groups > 1:
        twin_pairs = search.twins(basis, config, final.group_of.cpu().numpy())
    chunk = CPU_CHUNK if device.type == "cpu" else GPU_CHUNK
    parts = []
    for lo in range(0, fids.shape[0], chunk):
        x = torch.as_tensor(np.array(fids[lo : lo + chunk]), dtype=torch.complex128, device=device)
        a = torch.as_tensor(amplitudes[lo : lo + chunk], dtype=torch.float64, device=device)
        ones = torch.ones(x.shape[0], dtype=torch.float64, device=device)
        y = data_window(common, x)
        theta = _start_theta(common, config, y, basis.dwell_time_s, {})
        sl = common.slices()
        if config.fit_phase0:
            theta[:, sl["phase0"]] = phase0_given_amplitudes(common, theta, y, a)[:, None]
        centre = theta[:, sl["shift"]].mean(-1)
        lower, upper = _bounds(common, centre, config)
        sol = levenberg_marquardt(
            common, theta, y, ones, lower, upper,
            max_iterations=config.max_iterations, fixed_amplitudes=a,
        )  # fmt: skip
        problem, iterations = common, sol.iterations
        if final.n_groups > 1:
            fs = final.slices()
            theta = torch.zeros(x.shape[0], final.size, dtype=torch.float64, device=device)
            for key in ("damping", "shift", "gauss"):
                theta[:, fs[key]] = sol.theta[:, sl[key]]
            for key in ("phase0", "phase1"):
                theta[:, fs[key]] = sol.theta[:, sl[key]]
            lower, upper = _bounds(final, centre, config)
            sol = levenberg_marquardt(
                final, theta, y, ones, lower, upper,
                max_iterations=config.max_iterations, fixed_amplitudes=a,
            )  # fmt: skip
            if twin_pairs is not None:
                sol = search.global_moves(
                    final, config, sol, y, ones, centre, twin_pairs, fixed_amplitudes=a
                )
            problem, iterations = final, iterations + sol.iterations
        if exact is not None:
            before = sol.iterations
            sol = finish_on_the_full_grid(
                exact, problem, sol, y, ones, lower, upper, None, None, config.max_iterations,
                fixed_amplitudes=a,
            )  # fmt: skip
            iterations = iterations + (sol.iterations - before)
        noise_var = _noise_var_from_residual(problem, sol.evaluation)
        m = final.n_metabolites
        nan = torch.full((x.shape[0], m, m), float("nan"), dtype=torch.float64, device=device)
        parts.append(_batched_fit(problem, sol, noise_var, nan, iterations))
    return BatchedFit(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in BatchedFit.__dataclass_fields__)
    )


def first_members(group_of: np.ndarray) -> list[int]:
    """The first metabolite of each group ``0 .. G - 1`` (whose group values a per-metabolite
    result carries), from ``group_of`` ``(M,)``."""
    return [int(np.flatnonzero(group_of == g)[0]) for g in range(int(group_of.max()) + 1)]


def _theta_of(problem: Problem, fit: BatchedFit, rows: slice) -> torch.Tensor:
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


def _real_ssq(
    fids: np.ndarray, problem: Problem, fit: BatchedFit, reference: BatchedFit
) -> tuple[np.ndarray, np.ndarray]:
    """``(S (B,), active amplitudes (B,))``: the sum of squares of the real part of ``fit``'s
    residual over ``problem``'s window (amplitudes and baseline solved at ``fit``'s lineshape
    and ``problem``'s stiffness) with ``reference``'s phases removed."""
    device = problem.ppm.device
    chunk = CPU_CHUNK if device.type == "cpu" else GPU_CHUNK
    n = fids.shape[0]
    ssq, active = np.empty(n), np.empty(n)
    offset = problem.ppm - problem.pivot_ppm
    for lo in range(0, n, chunk):
        rows = slice(lo, min(n, lo + chunk))
        x = torch.as_tensor(np.array(fids[rows]), dtype=torch.complex128, device=device)
        zeros = torch.zeros(x.shape[0], dtype=torch.float64, device=device)
        phi0 = torch.as_tensor(reference.phase0_rad[rows], device=device)[:, None]
        phi1 = torch.as_tensor(reference.phase1_rad_per_ppm[rows], device=device)[:, None]
        unphase = torch.exp(-1j * (phi0 + phi1 * offset.to(phi1.dtype)))  # (b, K)
        ev = evaluate(
            problem, _theta_of(problem, fit, rows), data_window(problem, x), zeros,
            derivatives=False,
        )  # fmt: skip
        r = complex_residual(ev)
        r = r - baseline_coefficients(problem, r) @ problem.baseline_design.T.to(r.dtype)
        ssq[rows] = (r * unphase).real.square().sum(-1).cpu().numpy()
        active[rows] = ev.passive.sum(-1).cpu().numpy()
    return ssq, active


def baseline_ftest_bound(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    reference: BatchedFit,
    ed_per_ppm: float | None = None,
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
    the real part 1 and 4-6: ``benchmarks/diag_baseline_ftest.py``, docs/fit.md).

    With ``config.baseline_ftest_rule == "nested"`` the bound is that of the candidate
    ``ed_per_ppm`` (required then): the extra-sum-of-squares F-test of nested fits,
    ``S_ref (1 + dn / (K - n) F^-1(1 - p; dn, K - n))``, ``dn`` the effective dimensions the
    candidate's baseline has fewer than the reference's (0: no increase allowed)."""
    from scipy.special import fdtri

    flexible = replace(config, baseline_ed_per_ppm=config.baseline_ed_candidates_per_ppm[-1])
    device = torch.device(config.device)
    problem = make_problem(basis, flexible, device=device)
    ssq, active = _real_ssq(fids, problem, reference, reference)
    points = problem.ppm.numel()
    dof = np.clip(active + int(problem.free.sum()) + problem.baseline_ed, 1, points - 2)
    p = config.baseline_ftest_probability
    if config.baseline_ftest_rule == "region":
        return ssq * (1 + dof / (points - dof) * fdtri(dof, points - dof, p))
    if ed_per_ppm is None:
        raise ValueError("the nested F-test bound is per candidate: give ed_per_ppm")
    stiff = make_problem(basis, replace(config, baseline_ed_per_ppm=ed_per_ppm), device=device)
    dn = problem.baseline_ed - stiff.baseline_ed
    if dn <= 1e-9:
        return ssq
    return ssq * (1 + dn / (points - dof) * fdtri(dn, points - dof, 1 - p))


def baseline_ftest_ssq(
    fids: np.ndarray,
    basis: BasisSet,
    config: FitConfig,
    ed_per_ppm: float,
    fit: BatchedFit,
    reference: BatchedFit,
) -> np.ndarray:
    """The residual sum of squares ``(B,)`` compared with :func:`baseline_ftest_bound`: the
    real part of the residual at ``fit``'s lineshape with a baseline of ``ed_per_ppm``
    effective dimensions per ppm (amplitudes and baseline solved again), ``reference``'s
    phases removed. Scored at a fit with that stiffness, or (cheaply) at the reference's: a
    lineshape adapted to the flexible baseline favours it (on spant the first port of the
    rule, scoring every candidate there, picked 3-4 per ppm where refits give 1-2)."""
    problem = make_problem(
        basis, replace(config, baseline_ed_per_ppm=ed_per_ppm), device=torch.device(config.device)
    )
    return _real_ssq(fids, problem, fit, reference)[0]
