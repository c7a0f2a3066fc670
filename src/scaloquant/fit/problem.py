"""The problem of the batched fit: everything about the model that does not depend on the
spectrum (:class:`Problem`, made by :func:`make_problem`), the basis it is made of
(:func:`prepare_basis`), its group layout, the free-form kernel's and the spread priors, the
amplitude-ratio priors' matrix, the parameters' bounds, and the data window a problem sees
(:func:`data_window`, :func:`stage_points`).

Model (:mod:`scaloquant.physics.model`) of spectrum ``b`` over the window's ``K`` bins::

    y_b(f) ~ sum_m a_bm S_bm(f; theta_b) + sum_k c_bk B_k(f),   a_bm >= 0, c_bk complex

with ``theta`` the nonlinear parameters: per group a damping ``alpha`` (1/s), a shift ``df``
(Hz) and a Gaussian ``beta`` (1/s^2), the global ``phi0``, ``phi1``, and optional per-metabolite
deviations ``da``, ``dd`` held by soft Gaussian priors of SD ``damping_prior_sd_per_s`` and
``shift_prior_sd_hz`` (LCModel's approach). The objective is::

    Phi(theta) = min_{a >= 0, c} |y - S a - B c|^2 + lambda |D2 c|^2 + sigma^2 sum_j (u_j / s_j)^2

over the real and imaginary parts (``u`` the deviations, ``sigma`` the noise SD per real part);
it is evaluated in :mod:`scaloquant.fit.evaluation` and minimised in :mod:`scaloquant.fit.lm`.
The measured choices (the model on the window's band, the scaling floors, the cross-correlation
reference) are documented at their constants and in ``docs/fit.md``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import ConfigError
from ..metabolites import canonical
from ..physics import baseline as baseline_designs
from ..physics.macromolecules import (
    LCMODEL_COMPONENTS,
    LIPID_COMPONENTS,
    parametric_components,
)
from ..physics.model import fft
from ..physics.priors import RATIO_PRIOR_SETS, prior_matrix, ratio_rows
from ..signal import axes
from ..signal.decimate import MARGIN_PPM, band_decimation
from ..signal.match import FREQUENCY_RTOL, basis_sequence
from ..signal.scale import component_unit
from ..types import BasisSet
from .config import MEASURED_KEY, MM_APART_GROUPINGS, FitConfig, macromolecule_names
from .model import metabolite_and_each_mm_groups, metabolite_and_mm_groups, named_groups

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


def macromolecule_choice(basis: BasisSet, config: FitConfig, *, same_scanner: bool) -> str:
    """The macromolecules :func:`prepare_basis` gives the fit: ``config.macromolecules``, but
    ``"auto"`` for data from another scanner type than the basis' (``same_scanner`` False) is
    ``"parametric"``, unless the basis holds a macromolecule spectrum measured with the data's
    own protocol (``fit --mm-spectrum``: listed under
    :data:`~scaloquant.fit.config.MEASURED_KEY`), which belongs to the data's scanner whatever
    the basis' frequency."""
    if (
        config.macromolecules == "auto"
        and not same_scanner
        and not basis.metadata.get(MEASURED_KEY)
    ):
        return "parametric"
    return config.macromolecules


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
    unless given a macromolecule spectrum measured with the data's own protocol (a basis whose
    metadata list one under :data:`~scaloquant.fit.config.MEASURED_KEY`, which ``"auto"``
    keeps: :func:`~scaloquant.fit.measured_mm.with_measured_mm`)."""
    mm = macromolecule_names(basis.names, basis.metadata)
    choice = macromolecule_choice(basis, config, same_scanner=same_scanner)
    if choice == "basis":
        return basis
    if choice == "auto" and mm:
        kept, names = basis, LIPID_COMPONENTS
        names = tuple(n for n in names if n not in basis.names)
    else:
        kept = basis.subset([n for n in basis.names if n not in mm])
        names = () if choice == "none" else tuple(LCMODEL_COMPONENTS)
    if not names:
        return kept
    return with_components(kept, names, unit_of=basis)


def with_components(
    kept: BasisSet,
    names: tuple[str, ...],
    *,
    unit_of: BasisSet,
    table: Mapping[str, tuple[tuple[float, float, float], ...]] | None = None,
) -> BasisSet:
    """``kept`` with the parametric components ``names`` (LCModel's,
    :data:`~scaloquant.physics.macromolecules.LCMODEL_COMPONENTS`, or ``table``'s, as
    :func:`~scaloquant.physics.macromolecules.parametric_components` takes them) appended on its
    grid, in protons of ``unit_of``'s scale (:func:`~scaloquant.signal.scale.component_unit`)
    and listed with ``kept``'s macromolecules in its metadata: the basis of
    :func:`prepare_basis` and of a measured MM spectrum's cleaning fit
    (:func:`~scaloquant.fit.measured_mm.clean_mm_spectrum`)."""
    fids = parametric_components(
        names,
        kept.n_points,
        kept.dwell_time_s,
        kept.spectrometer_freq_mhz,
        kept.ppm_reference,
        table=table,
    )
    # LCModel states a component's amplitude in protons of the basis' scale, so that its
    # amplitudes read like the metabolites' (MM09/tCr as in LCModel's table); the invivo
    # simulation renders its components with the same unit
    fids = fids * component_unit(unit_of.names, unit_of.fids, unit_of.acquisition)
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
    if config.grouping == "metabolites_and_each_mm":
        return metabolite_and_each_mm_groups(names, basis.metadata)
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
    #: its tolerance (the per-metabolite model; see the note at
    #: :data:`scaloquant.fit.lm.LM_MAX`)
    gauss_newton_stop: bool = False
    #: ``edge_rows`` as runs of consecutive samples ``(first, stop)`` (the FID's first and last
    #: decimated samples), written as slices, not gathered
    #: (:func:`~scaloquant.fit.evaluation._put_edge_rows`)
    edge_runs: tuple[tuple[int, int], ...] = ()
    #: the spline baseline at several stiffnesses, for a solve whose spectra each have their own
    #: (``make_problem(stiffnesses_ed_per_ppm=...)``; None: every spectrum at
    #: ``baseline_ed_per_ppm``, the fields above)
    stiffnesses: BaselineStiffnesses | None = None

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


@dataclass(frozen=True)
class BaselineStiffnesses:
    """The spline baseline's matrices at ``C`` stiffnesses (one design, ``C`` smoothing
    parameters): a spectrum's ``stiffness`` index ``c`` (an evaluation's
    ``stiffness`` ``(B,)``, :func:`scaloquant.fit.evaluation.evaluate`) picks its rows
    ``whiten[c]``, ``solve[c]``, ``ed[c]``, the :class:`Problem` fields ``baseline_whiten``,
    ``baseline_solve`` and ``baseline_ed`` of ``baseline_ed_per_ppm = ed_per_ppm[c]``."""

    ed_per_ppm: tuple[float, ...]  # (C,) the stiffnesses, effective dimensions per ppm
    whiten: torch.Tensor  # (C, nb, K)
    solve: torch.Tensor  # (C, nb, K)
    ed: tuple[float, ...]  # (C,) effective dimension per real part


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


def mm_shift_prior(group_names: tuple[str, ...], sd: float) -> np.ndarray:
    """``Q`` ``(G, G)`` of the prior ``x^T Q x = sum_k (x_k - x_metabolites)^2 / sd^2`` on the
    group shifts ``x``, ``k`` the groups other than ``"metabolites"``
    (``FitConfig.mm_shift_prior_sd_hz``); zero without a metabolite group."""
    q = np.zeros((len(group_names), len(group_names)))
    if "metabolites" not in group_names:
        return q
    i = group_names.index("metabolites")
    for k in range(len(group_names)):
        if k != i:
            q[[i, k], [i, k]] += sd**-2
            q[[i, k], [k, i]] -= sd**-2
    return q


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
    stiffnesses_ed_per_ppm: tuple[float, ...] | None = None,
) -> Problem:
    """The :class:`Problem` of ``basis`` (on the data's grid, after :func:`prepare_basis`).

    ``deviations``: fit the per-metabolite deviations that have priors, and the free-form
    kernel; ``half_kernel_bins``: the kernel's ``J`` (default :func:`kernel_bins` of ``basis``;
    a continuation stage on fewer points keeps the full grid's layout);
    ``stiffnesses_ed_per_ppm``: a spline baseline's stiffnesses that the spectra of one solve
    may each take (:class:`BaselineStiffnesses`, ``Problem.stiffnesses``), besides
    ``config.baseline_ed_per_ppm``."""
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
    design, whiten, solve, ed = _baseline_matrices(ppm, config, config.baseline_ed_per_ppm)
    stiffnesses = None
    if stiffnesses_ed_per_ppm is not None:
        if config.baseline_kind != "spline":
            raise ConfigError(
                "a stiffness per spectrum needs the spline baseline; use --baseline spline"
            )
        each = [_baseline_matrices(ppm, config, v)[1:] for v in stiffnesses_ed_per_ppm]
        stiffnesses = BaselineStiffnesses(
            ed_per_ppm=tuple(float(v) for v in stiffnesses_ed_per_ppm),
            whiten=torch.as_tensor(np.stack([w for w, _, _ in each]), **f64),
            solve=torch.as_tensor(np.stack([s for _, s, _ in each]), **f64),
            ed=tuple(e for _, _, e in each),
        )
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
    if config.mm_shift_prior_sd_hz is not None and config.grouping in MM_APART_GROUPINGS:
        penalty[g : 2 * g, g : 2 * g] += mm_shift_prior(group_names, config.mm_shift_prior_sd_hz)
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
        stiffnesses=stiffnesses,
    )


def _baseline_matrices(
    ppm: np.ndarray, config: FitConfig, ed_per_ppm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(design (K, nb), whiten C = R^-1 B^T (nb, K), solve (B^T B + lambda P)^-1 B^T (nb,
    K), effective dimension per real part)`` of ``config``'s baseline over the window's ``ppm``
    ``(K,)``, a spline's at ``ed_per_ppm`` effective dimensions per ppm of
    ``config.ppm_range``."""
    if config.baseline_kind == "spline":
        lo, hi = config.ppm_range
        design, penalty, smoothing = _spline_baseline(
            ppm.tobytes(), config.baseline_knot_spacing_ppm, ed_per_ppm * (hi - lo)
        )
        design, penalty = np.array(design), np.array(penalty)  # out of the cache
    elif config.baseline_kind == "poly":
        design = baseline_designs.legendre_baseline(ppm, config.baseline_order)
        penalty, smoothing = np.zeros((design.shape[1],) * 2), 0.0
    else:
        design, penalty, smoothing = np.zeros((ppm.size, 0)), np.zeros((0, 0)), 0.0
    if not design.shape[1]:
        none = np.zeros((0, ppm.size))
        return design, none, none, 0.0
    gram = design.T @ design + smoothing * penalty
    chol = np.linalg.cholesky(gram)
    whiten = np.linalg.solve(chol, design.T)
    solve = np.linalg.solve(gram, design.T)
    return design, whiten, solve, float(np.trace(design @ solve))


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


def parameter_bounds(problem: Problem, centre_hz: torch.Tensor, config: FitConfig):
    """``(lower, upper)`` ``(B, P)`` of the fit: ``problem``'s bounds with the group shifts
    within ``config.shift_bounds_hz`` of ``centre_hz`` ``(B,)``."""
    lower = problem.lower.expand(centre_hz.shape[0], -1).clone()
    upper = problem.upper.expand(centre_hz.shape[0], -1).clone()
    sl = problem.slices()["shift"]
    lower[:, sl] = centre_hz[:, None] + config.shift_bounds_hz[0]
    upper[:, sl] = centre_hz[:, None] + config.shift_bounds_hz[1]
    return lower, upper
