"""Physics-head quantifiers (``spectrum_physics``, ``scalogram_physics``): a CNN encoder predicts
the *nonlinear* parameters of the batched fit's model, the amplitudes follow by non-negative
least squares, and ``K`` Levenberg–Marquardt iterations of the fit polish the result.

Pipeline for complex FIDs ``x`` ``(B, N)`` on the model's acquisition grid::

    theta0 = parameters(encoder(x))             network: group damping, shift, Gaussian, phases
    a0     = NNLS(S(theta0), y)                 scaloquant.fit.evaluation.evaluate
    theta  = LM^K(theta0)                       scaloquant.fit.lm.levenberg_marquardt, or, with
                                                priors to weigh, scaloquant.fit.lm.reweighted_steps
                                                then, where the residual exceeds the signal-free
                                                region's noise, up to K iterations more of the
                                                fit's objective (PhysicsQuantifier.fit_objective_from)
    a, sd  = NNLS(S(theta), y), CRLB(theta)     scaloquant.fit.crlb.crlb
    sd_net = c * CRLB(theta0)                   the network's own SD, c calibrated per amplitude

``y`` is the data window of the fit (:func:`scaloquant.fit.problem.data_window`) and ``S`` its
model columns (:mod:`scaloquant.physics.model`); the basis (on the acquisition grid, with the
fit's macromolecules, :func:`scaloquant.fit.problem.prepare_basis`) is a buffer of the module, so
a checkpoint needs no basis file. ``K = 0`` is the network with NNLS only. Amplitudes are on the
basis scale, as the fit's; the per-metabolite deviations of the fit's ``invivo`` model are not
predicted (they start at 0 and only the polish moves them). The model is the fit's ``invivo``
preset (three lineshape groups) for the ``invivo`` simulation, or its per-metabolite
``simulated`` preset (spread priors added in the polish's last pass, weighed with the polished
residual's variance, as the fit adds them) for the paper's default simulator (one group per
metabolite; models saved before keep ``simulated-plain``, which their checkpoint names); with
the latter the polish first runs the fit's continuation stages from the network's start
(``polish_broadening_per_s``).

Network outputs (``3 G + 3`` for ``G`` lineshape groups), each mapped into a documented range
(:class:`PhysicsQuantifierConfig`) by a logistic function, so every prediction is a valid
start: ``u = sigmoid(z)`` for damping ``(G)``, shift ``(G)``, Gaussian ``(G)`` and ``phi1``,
``value = low + (high - low) u``; ``phi0 = atan2(z_sin, z_cos)`` (the full circle, no
wrap-around). The encoder is the paper's CNN (:class:`~scaloquant.models.quantifier.Quantifier`
with its transform and input standardisation; its output de-normalisation is the identity
here). Ideas after QNet (Chen et al.) and physics-informed networks (Rizzo et al., MRM 2023):
amplitudes by least squares generalise beyond the concentrations of the training prior.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from .._config import dataclass_from_dict
from ..errors import ConfigError, IncompatibleDataError
from ..fit import batched, search, stages
from ..fit.config import FitConfig
from ..fit.crlb import crlb_variances
from ..fit.evaluation import (
    Evaluation,
    Workspace,
    baseline_coefficients,
    columns,
    complex_residual,
    evaluate,
    noise_var_from_residual,
    stack,
    w_inner,
)
from ..fit.lm import Solution, levenberg_marquardt, put_rows, reweighted_steps, take_rows
from ..fit.model import MISFIT_RATIO
from ..fit.problem import Problem, data_window, group_layout, make_problem, parameter_bounds
from ..fit.spectra import region_noise_sd
from ..fit.start import cross_correlation_shift_hz
from ..signal.axes import spectrum
from ..threads import run_side_by_side
from ..types import Acquisition, BasisSet
from .cnn import DEFAULT_KERNEL_SIZE, DEFAULT_WIDTHS, Norm, kernel_tuple
from .quantifier import Quantifier, QuantifierConfig

PhysicsKind = Literal["spectrum_physics", "scalogram_physics"]
PHYSICS_KINDS: tuple[str, ...] = ("spectrum_physics", "scalogram_physics")
#: The regression CNN each physics model uses as its encoder.
ENCODER_OF = {"spectrum_physics": "spectrum_cnn", "scalogram_physics": "scalogram_cnn"}
#: The scalogram encoder's default (:meth:`ScalogramConfig.preset` arguments): the ``cpu``
#: preset's span with ``complex`` channels (the paper's ``abs_re_im`` cannot see a conjugation,
#: ``pos_neg`` not the zero-order phase; issue 13), 64 scales and every 8th column: 4 times
#: fewer outputs than ``cpu``, whose encoder took 3.5 s per training step of 32 signals on one
#: CPU thread (the spectrum encoder 0.06 s).
DEFAULT_PHYSICS_SCALOGRAM = {"name": "cpu", "channels": "complex", "n_scales": 64, "decimation": 8}
#: Default polish iterations (``K``): on spectra the fit's model describes, 5 matched 20 (SNR 30)
#: and the full fit, at a quarter of the cost of 20
#: (docs/history/physics-models-log.md "Measured (2 shared CPU cores"; again with the damping
#: kept from one trial to the next: "The polish as a real Levenberg-Marquardt (session 21,
#: `polish21`)").
DEFAULT_POLISH_ITERATIONS = 5
#: Relative residual ``|y - S a|_W^2 / |y|_W^2`` below which a polished spectrum counts as
#: fitted exactly and is spared the global moves (:meth:`PhysicsQuantifier.moves_where_inexact`).
#: Noise keeps it far above this at any SNR the simulator draws (SNR 1000: ~1e-6); noiseless
#: spectra the polish has solved end at 1e-15 or below (64 noiseless default spectra, the
#: ``quick`` network, ``K = 20``: 44 there, the other 20 at 5e-4 to 4e-3, local minima).
EXACT_RELATIVE_COST = 1e-12
#: :data:`EXACT_RELATIVE_COST` of the model on the fit's decimated band
#: (:data:`NETWORK_MODEL_DECIMATED`), whose error keeps a noiseless spectrum's relative residual
#: at ~1e-10 (64 noiseless default spectra, the ``quick`` network, ``K = 20``: 1.2e-10 to 2.1e-10
#: at the 70th percentile; SNR 1000: 6.7e-7 and above).
EXACT_RELATIVE_COST_DECIMATED = 1e-8


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def fit_config_from_dict(d: Mapping[str, Any]) -> FitConfig:
    """A :class:`FitConfig` from :meth:`FitConfig.to_dict` (lists back to tuples; the settings
    of the retired scipy solver that older checkpoints hold, as :meth:`FitConfig.from_dict`)."""
    return FitConfig.from_dict({k: _tuples(v) for k, v in d.items()})


@dataclass(frozen=True)
class PhysicsQuantifierConfig:
    """Everything needed to rebuild a :class:`PhysicsQuantifier` (buffers aside).

    Attributes
    ----------
    model : ``"spectrum_physics"`` or ``"scalogram_physics"``.
    metabolites : names of the prepared basis (the fit's, macromolecules and lipids included),
        in amplitude order.
    macromolecules : which of them are macromolecules or lipids (basis metadata of the fit).
    n_points, dwell_time_s, spectrometer_freq_mhz, ppm_reference, nucleus : acquisition grid.
    fit : :meth:`FitConfig.to_dict` of the model (default: ``FIT_PRESETS["invivo"]``; the
        default simulation's models use ``FIT_PRESETS["simulated"]``).
    damping_range_per_s, shift_range_hz, gauss_range_per_s2 : ranges of the network's group
        damping ``alpha`` (1/s), shift (Hz) and Gaussian ``beta`` (1/s^2); default the fit's
        bounds (0-60 1/s, +-25 Hz = its global shift search, 0-3000 1/s^2) so that every
        prediction is a start the fit accepts.
    phase1_range_rad_per_ppm : first-order phase range about the fit's pivot, rad/ppm (default
        +-0.5: about 3 times the ``invivo`` simulation's +-10 deg/ppm).
    polish_iterations : ``K``, Levenberg–Marquardt iterations after the network (0: none).
    polish_moves : after the polish, the batched fit's global moves
        (:func:`scaloquant.fit.search.global_moves`): resets of groups lost on a bound and twin
        swaps (Cr/PCr, GPC/PCho), each kept where the cost drops, then the fit's second search
        where the residual still misfits (:meth:`PhysicsQuantifier.second_search_where_misfit`)
        (only without priors, i.e. the per-metabolite model of the default simulation).
    polish_broadening_per_s : continuation stages of the polish, 1/s, decreasing (the fit's
        ``continuation_broadening_per_s``, :func:`scaloquant.fit.stages.continuation`): before the ``K``
        iterations, Levenberg–Marquardt from the network's start on data and basis broadened
        by ``exp(-L t)`` for each ``L`` (on the FID's first samples, as the fit's stages), which
        widens the basin of the narrow lines' shifts; ``()`` for none (``K = 0``: never).
    network_sd_factors : per amplitude ``(M,)``: the factors that calibrate the network's own
        SD (the CRLB at the network's parameters, :attr:`PhysicsEstimate.network_sd`), measured
        on the validation set at training time so that its z-scores have unit RMS
        (:func:`network_sd_factors`); ``None``: uncalibrated (factors 1).
    widths, kernel_sizes, norm, scalogram, spectrum_ppm_range : the encoder
        (:class:`~scaloquant.models.quantifier.QuantifierConfig`). The scalogram encoder's
        default channels are ``complex`` (the paper's ``abs_re_im`` cannot see a conjugation and
        ``pos_neg`` not the zero-order phase; issue 13).
    """

    model: PhysicsKind
    metabolites: tuple[str, ...]
    macromolecules: tuple[str, ...]
    n_points: int
    dwell_time_s: float
    spectrometer_freq_mhz: float
    ppm_reference: float
    nucleus: str = "1H"
    fit: Mapping[str, Any] | None = None
    damping_range_per_s: tuple[float, float] | None = None
    shift_range_hz: tuple[float, float] | None = None
    gauss_range_per_s2: tuple[float, float] | None = None
    phase1_range_rad_per_ppm: tuple[float, float] = (-0.5, 0.5)
    polish_iterations: int = DEFAULT_POLISH_ITERATIONS
    polish_broadening_per_s: tuple[float, ...] = ()
    polish_moves: bool = False
    network_sd_factors: tuple[float, ...] | None = None
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    kernel_sizes: tuple[int, ...] = (DEFAULT_KERNEL_SIZE,) * len(DEFAULT_WIDTHS)
    norm: Norm = "batch"
    scalogram: Mapping[str, Any] | None = None
    spectrum_ppm_range: tuple[float, float] | None = (0.2, 4.2)

    def __post_init__(self) -> None:
        if self.model not in PHYSICS_KINDS:
            raise ConfigError(
                f"unknown physics model {self.model!r}; choose one of {', '.join(PHYSICS_KINDS)}"
            )
        if self.model == "scalogram_physics" and self.scalogram is None:
            raise ConfigError("a scalogram_physics model needs a scalogram configuration")
        fit = self.fit_config
        defaults = {
            "damping_range_per_s": fit.damping_bounds_per_s,
            "shift_range_hz": fit.global_shift_range_hz,
            "gauss_range_per_s2": fit.gauss_bounds_per_s2,
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            object.__setattr__(self, name, _pair(name, default if value is None else value))
        object.__setattr__(
            self, "phase1_range_rad_per_ppm", _pair("phase1", self.phase1_range_rad_per_ppm)
        )
        object.__setattr__(self, "fit", fit.to_dict())
        for name in ("metabolites", "macromolecules"):
            object.__setattr__(self, name, tuple(str(m) for m in getattr(self, name)))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "kernel_sizes", kernel_tuple(self.kernel_sizes, len(self.widths)))
        if self.spectrum_ppm_range is not None:
            object.__setattr__(self, "spectrum_ppm_range", _pair("ppm", self.spectrum_ppm_range))
        stages = tuple(float(v) for v in self.polish_broadening_per_s)
        if not all(math.isfinite(v) and v > 0 for v in stages) or any(
            a <= b for a, b in zip(stages, stages[1:], strict=False)
        ):
            raise ConfigError(
                f"polish_broadening_per_s must hold positive, decreasing values, got {stages}"
            )
        object.__setattr__(self, "polish_broadening_per_s", stages)
        if self.network_sd_factors is not None:
            factors = tuple(float(f) for f in self.network_sd_factors)
            if len(factors) != len(self.metabolites) or not all(
                math.isfinite(f) and f > 0 for f in factors
            ):
                raise ConfigError(
                    f"network_sd_factors must be {len(self.metabolites)} positive numbers, one "
                    f"per amplitude, got {self.network_sd_factors!r}"
                )
            object.__setattr__(self, "network_sd_factors", factors)
        if not (isinstance(self.polish_iterations, int) and self.polish_iterations >= 0):
            raise ConfigError(
                f"polish_iterations must be an integer >= 0, got {self.polish_iterations!r}"
            )

    @property
    def fit_config(self) -> FitConfig:
        """The model of the fit (``FIT_PRESETS["invivo"]`` when none is given)."""
        if self.fit is None:
            from ..fit.config import FIT_PRESETS

            return FIT_PRESETS["invivo"]
        return fit_config_from_dict(self.fit)

    @property
    def acquisition(self) -> Acquisition:
        return Acquisition.of(self)

    def encoder_config(self, n_outputs: int) -> QuantifierConfig:
        """The regression CNN used as encoder, with ``n_outputs`` outputs."""
        return QuantifierConfig(
            model=ENCODER_OF[self.model],
            metabolites=tuple(f"theta{i}" for i in range(n_outputs)),
            n_points=self.n_points,
            dwell_time_s=self.dwell_time_s,
            spectrometer_freq_mhz=self.spectrometer_freq_mhz,
            ppm_reference=self.ppm_reference,
            nucleus=self.nucleus,
            widths=self.widths,
            kernel_sizes=self.kernel_sizes,
            norm=self.norm,
            scalogram=None if self.scalogram is None else dict(self.scalogram),
            spectrum_ppm_range=self.spectrum_ppm_range,
            # the input is scaled by PhysicsQuantifier.window_scaled already
            input_scale="fixed",
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        d["scalogram"] = None if self.scalogram is None else dict(self.scalogram)
        d["fit"] = dict(self.fit)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PhysicsQuantifierConfig:
        return dataclass_from_dict(
            cls, {k: v if k in ("fit", "scalogram") else _tuples(v) for k, v in d.items()}, "model"
        )


def _pair(name: str, value) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"{name} range must be finite with low < high, got {value!r}")
    return lo, hi


class PhysicsEstimate(NamedTuple):
    """What :meth:`PhysicsQuantifier.estimate` returns for ``B`` spectra (float64 tensors).

    ``amplitudes`` ``(B, M)``; ``sd`` ``(B, M)`` CRLB standard deviations of the polished model;
    ``theta`` ``(B, P)`` the fit's parameter layout (:class:`scaloquant.fit.problem.Problem`);
    ``network_theta`` ``(B, P)`` the network's prediction before the polish; ``noise_sd``
    ``(B,)`` per real part (from the residual); ``network_sd`` ``(B, M)`` the network's own
    SD: the CRLB at ``network_theta`` (noise level from its residual) times the calibration
    factors of the model (:attr:`PhysicsQuantifierConfig.network_sd_factors`);
    ``fit_residual`` ``(B,)`` the final model's :func:`relative_fit_residual` (quantify's
    ``fit_residual`` column, as the fit's); ``metabolite_fraction`` ``(B,)`` its
    :func:`metabolite_fraction` (the ``baseline_cancels`` / ``no_metabolites`` checks).
    """

    amplitudes: torch.Tensor
    sd: torch.Tensor
    theta: torch.Tensor
    network_theta: torch.Tensor
    noise_sd: torch.Tensor
    network_sd: torch.Tensor
    fit_residual: torch.Tensor | None = None
    metabolite_fraction: torch.Tensor | None = None


class PhysicsPrediction(NamedTuple):
    """What :meth:`PhysicsQuantifier.predict_estimates` returns for ``B`` spectra (float64
    numpy arrays): ``amplitudes``, ``sd`` (CRLB of the polished model) and ``network_sd`` (the
    network's own calibrated SD), each ``(B, M)``, and ``network_theta`` ``(B, P)``, the
    network's parameters in the fit's layout, ``fit_residual`` ``(B,)`` the final model's
    relative fit residual and ``metabolite_fraction`` ``(B,)`` (:class:`PhysicsEstimate`)."""

    amplitudes: np.ndarray
    sd: np.ndarray
    network_sd: np.ndarray
    network_theta: np.ndarray
    fit_residual: np.ndarray
    metabolite_fraction: np.ndarray


def n_outputs(n_groups: int) -> int:
    """Network outputs for ``n_groups`` lineshape groups: damping, shift and Gaussian per group,
    ``phi1``, and ``cos``/``sin`` of ``phi0``."""
    return 3 * n_groups + 3


def _ranges(config: PhysicsQuantifierConfig, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high ``(3 G + 1,)`` of damping, shift, Gaussian (per group) and ``phi1``."""
    g = n_groups
    pairs = (
        [config.damping_range_per_s] * g
        + [config.shift_range_hz] * g
        + [config.gauss_range_per_s2] * g
        + [config.phase1_range_rad_per_ppm]
    )
    lo, hi = zip(*pairs, strict=True)
    return torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)


def theta_from_outputs(
    problem: Problem, outputs: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """The fit's ``theta`` ``(B, P)`` (float64; deviations 0) from network outputs ``(B, 3 G +
    3)`` (module docstring); ``low``, ``high`` ``(3 G + 1,)``."""
    z = outputs.to(torch.float64)
    g = problem.n_groups
    ranged = low + (high - low) * torch.sigmoid(z[:, : 3 * g + 1])
    phi0 = torch.atan2(z[:, 3 * g + 2], z[:, 3 * g + 1])
    deviations = z.new_zeros(z.shape[0], 2 * problem.n_metabolites, dtype=torch.float64)
    theta = torch.cat([ranged[:, : 3 * g], phi0[:, None], ranged[:, 3 * g :], deviations], dim=1)
    if not problem.lorentzian:
        theta = theta.index_fill(1, torch.arange(g, device=theta.device), 0.0)
    if not problem.gaussian:
        theta = theta.index_fill(1, torch.arange(2 * g, 3 * g, device=theta.device), 0.0)
    return theta


def normalised_theta(
    problem: Problem, theta: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``theta`` ``(B, P)`` in the network's units: ``(u (B, 3 G + 1)`` in ``[0, 1]`` for the
    ranged parameters, ``phi0 (B,)`` in rad)`` (the inverse of :func:`theta_from_outputs` before
    its logistic function)."""
    g = problem.n_groups
    ranged = torch.cat([theta[:, : 3 * g], theta[:, 3 * g + 1 : 3 * g + 2]], dim=1)
    return (ranged - low) / (high - low), theta[:, 3 * g]


def least_squares_amplitudes(
    problem: Problem, theta: torch.Tensor, y: torch.Tensor, *, ridge: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable amplitudes for training: the unconstrained least-squares solution in the
    fit's baseline-eliminating metric ``W`` (:mod:`scaloquant.fit.evaluation`), clamped at 0, and
    the relative residual ``|y - S a|_W^2 / |y|_W^2`` ``(B,)`` with those clamped amplitudes.

    ``theta`` ``(B, P)``, ``y`` ``(B, K)`` -> ``(a (B, M), relative residual (B,))``, computed
    in ``problem``'s precision (:func:`problem_in`: single precision halves the cost of the
    training loss). ``ridge`` is relative to the Gram matrix' largest diagonal (keeps
    unidentifiable columns solvable, and the single-precision solve stable).
    """
    dtype = problem.time_s.dtype
    theta = theta.to(dtype)
    cols = stack(columns(problem, theta)[0])
    ys = stack(y.to(problem.fids.dtype)[..., None])
    gram = w_inner(problem, cols, cols)
    h = w_inner(problem, cols, ys)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    scale = torch.diagonal(gram, dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
    a = torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, h)[..., 0].clamp_min(0.0)
    r = ys - cols @ a[..., None]
    cost = w_inner(problem, r, r)[:, 0, 0]
    norm = w_inner(problem, ys, ys)[:, 0, 0].clamp_min(1e-300)
    return a, cost / norm


def problem_in(problem: Problem, dtype: torch.dtype) -> Problem:
    """``problem`` with its real tensors in ``dtype`` and its complex ones in the matching
    complex type (integer and boolean tensors as they are)."""
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    changes = {}
    for name in problem.__dataclass_fields__:
        value = getattr(problem, name)
        if isinstance(value, torch.Tensor) and value.is_complex():
            changes[name] = value.to(cdtype)
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            changes[name] = value.to(dtype)
    return replace(problem, **changes)


#: Complex dtype of the modulated FIDs and their FFTs in the evaluation at the network's
#: parameters (its NNLS amplitudes, residual and CRLB: the ``K = 0`` outputs, and the polish's
#: start); every product with the columns stays float64, as in the fit's trial evaluations
#: (:data:`scaloquant.fit.stages.TRIAL_DTYPE`). Against complex128 on 512 default-simulator
#: spectra at SNR 30 (a ``train --preset tiny`` network): amplitudes moved by at most 4e-7 of
#: their CRLB SD (1.5e-7 of the spectrum's largest amplitude), SDs by at most 3e-7 relative
#: (``tests/unit/test_models_physics_speed.py`` bounds both at 1e-4); 2.5x faster at ``K = 0``
#: with the CRLB's Cholesky route (:data:`scaloquant.fit.crlb.CHOLESKY_INVERSE_MAX`).
NETWORK_COLUMN_DTYPE = stages.TRIAL_DTYPE
#: The network's model where it predicts (:meth:`PhysicsQuantifier.estimate`: the evaluation
#: at the network's parameters, its CRLB, the polish) is formed on the fit's decimated band
#: (:attr:`~scaloquant.fit.config.FitConfig.decimate_model`, docs/history/fit-log.md "The model
#: on the window's band"), and, as in the fit, near-noiseless spectra end on all ``N`` samples
#: (:func:`scaloquant.fit.batched.evaluate_on_the_full_grid` at ``K = 0``,
#: :func:`~scaloquant.fit.batched.finish_on_the_full_grid` after a polish), so that the known
#: answers at the true parameters stay exact to rounding. Training (its loss, ``--adapt``)
#: stays on all ``N`` samples: the trained weights do not depend on it.
NETWORK_MODEL_DECIMATED = True
#: Spectra per batch of :meth:`PhysicsQuantifier.predict_estimates` at ``K = 0`` on a CPU
#: (the polish keeps :data:`scaloquant.fit.batched.CPU_CHUNK`, whose larger chunks share the
#: tail of slow spectra: 1 thread, ``K = 5``, 256 default spectra, 12.3-12.7 ms per spectrum in
#: chunks of 128, 14.0-14.4 in 64, 15.4-17.4 in 32, the same numbers): a ``(64, M, N)``
#: complex64 array of modulated FIDs is ~11 MB for the default basis, against ~44 MB at 128
#: (512 default spectra, 1 thread, loaded machine: 1.79 ms per spectrum at 64, 1.86 at 128,
#: 1.87 at 32, 2.13 at 16).
NETWORK_CPU_CHUNK = 64


def _crlb_sd(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    workspace: Workspace | None = None,
):
    """CRLB standard deviations ``(B, M)`` of the amplitudes of evaluation ``ev``: the fit's
    bound (:func:`scaloquant.fit.crlb.crlb`, priors included), its diagonal alone
    (:func:`scaloquant.fit.crlb.crlb_variances`; ``workspace`` its)."""
    var, _ = crlb_variances(problem, ev, noise_var, workspace=workspace)
    return var[:, : problem.n_metabolites].clamp_min(0).sqrt()


def relative_fit_residual(problem: Problem, ev: Evaluation, y: torch.Tensor) -> torch.Tensor:
    """``|y - S a - B c| / |y|`` ``(B,)`` over the fit window ``y`` ``(B, K)`` of evaluation
    ``ev``, the baseline ``B c`` solved from the residual as the fit solves it: the definition
    of the fit's ``fit_residual`` quality column (``scaloquant.quantify.run._fit_checks``, the
    Euclidean norms of the data and the residual over the window); NaN for an empty window."""
    r = complex_residual(ev)
    r = r - baseline_coefficients(problem, r) @ problem.baseline_design.T.to(r.dtype)
    return _over_data(r, y)


def metabolite_fraction(ev: Evaluation, y: torch.Tensor) -> torch.Tensor:
    """``|S a| / |y|`` ``(B,)`` over the fit window ``y`` ``(B, K)`` of evaluation ``ev``: the
    fitted metabolites (macromolecules and lipids included, the baseline not) against the data,
    as the fit's :attr:`scaloquant.fit.FitResult.metabolite_fraction` (the quality checks
    ``baseline_cancels`` and ``no_metabolites``); NaN for an empty window."""
    return _over_data(y - complex_residual(ev), y)


def _over_data(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``|x| / |y|`` ``(B,)`` of windows ``(B, K)``; NaN where ``y`` is all zeros."""
    data = torch.linalg.vector_norm(y, dim=-1)
    ratio = torch.linalg.vector_norm(x, dim=-1) / data.clamp_min(1e-300)
    return torch.where(data > 0, ratio, torch.full_like(ratio, math.nan))


def network_sd_factors(
    amplitudes: np.ndarray, sd: np.ndarray, truth: np.ndarray, *, floor: float = 1e-3
) -> tuple[float, ...]:
    """Per-amplitude calibration factors ``(M,)`` of the network's SD: the RMS over spectra of
    the z-scores ``(a - a_true) / sd`` (bias included), so that the scaled z-scores have unit
    RMS on the spectra given (``(n, M)`` each: the validation set at training time). Amplitudes
    whose SD is 0 (no signal in the window) get factor 1; factors are at least ``floor``."""
    sd = np.asarray(sd, dtype=np.float64)
    ok = sd > 0
    z = np.where(ok, (np.asarray(amplitudes) - np.asarray(truth)) / np.where(ok, sd, 1.0), 0.0)
    count = ok.sum(0)
    rms = np.sqrt((z**2).sum(0) / np.maximum(count, 1))
    rms = np.where((count > 0) & np.isfinite(rms), rms, 1.0)
    return tuple(float(f) for f in np.maximum(rms, floor))


def basis_from_config(config: PhysicsQuantifierConfig, fids: np.ndarray) -> BasisSet:
    """The prepared basis of ``config`` with basis FIDs ``fids`` ``(M, N)``."""
    return BasisSet(
        names=config.metabolites,
        fids=fids,
        dwell_time_s=config.dwell_time_s,
        spectrometer_freq_mhz=config.spectrometer_freq_mhz,
        ppm_reference=config.ppm_reference,
        nucleus=config.nucleus,
        metadata={"macromolecules": list(config.macromolecules)},
    )


def _shared_tensor(arr: np.ndarray) -> torch.Tensor:
    """``arr`` as a tensor on its own memory (:func:`torch.from_numpy`), without torch's
    warning for a read-only array: the caller promises not to write to it."""
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


class PhysicsQuantifier(nn.Module):
    """Encoder CNN + the fit's model: FIDs ``(B, N)`` -> amplitudes, CRLB SDs, parameters.

    ``basis_fids`` ``(M, N)`` complex: the prepared basis on the acquisition grid (kept as a
    buffer). :meth:`network_theta` is differentiable (training); :meth:`estimate` and
    :meth:`predict` run the NNLS and the polish without gradients.
    """

    def __init__(self, config: PhysicsQuantifierConfig, basis_fids: np.ndarray | None = None):
        super().__init__()
        self.config = config
        m, n = len(config.metabolites), config.n_points
        fids = np.zeros((m, n), np.complex128) if basis_fids is None else np.asarray(basis_fids)
        if fids.shape != (m, n):
            raise IncompatibleDataError(
                f"basis FIDs have shape {fids.shape}; the model needs {(m, n)}"
            )
        self.register_buffer("basis_fids", torch.tensor(np.array(fids), dtype=torch.complex128))
        groups, _ = group_layout(basis_from_config(config, fids), config.fit_config)
        self.n_groups = int(groups.max()) + 1
        self.encoder = Quantifier(config.encoder_config(n_outputs(self.n_groups)))
        low, high = _ranges(config, self.n_groups)
        self.register_buffer("range_low", low)
        self.register_buffer("range_high", high)
        # Problems by (deviations, dtype), for the basis buffer in the state recorded beside
        self._problems: dict[tuple, Problem] = {}
        self._problem_state: tuple | None = None

    @property
    def metabolites(self) -> tuple[str, ...]:
        return self.config.metabolites

    @property
    def has_uncertainty(self) -> bool:
        """CRLB standard deviations come with every estimate."""
        return True

    @property
    def network_sd_factors(self) -> torch.Tensor:
        """``(M,)`` calibration factors of the network's own SD (ones when uncalibrated)."""
        factors = self.config.network_sd_factors or (1.0,) * len(self.metabolites)
        return torch.tensor(factors, dtype=torch.float64, device=self.basis_fids.device)

    def basis(self) -> BasisSet:
        return basis_from_config(self.config, self.basis_fids.detach().cpu().numpy())

    def _grid_config(self, decimated: bool) -> FitConfig:
        """The fit model, decimated where ``decimated`` and the model allows it."""
        fit = self.config.fit_config
        return replace(fit, decimate_model=decimated and fit.decimate_model)

    def problem(
        self,
        *,
        deviations: bool = True,
        dtype: torch.dtype = torch.float64,
        decimated: bool = False,
    ) -> Problem:
        """The fit's :class:`~scaloquant.fit.problem.Problem` on the module's device (cached;
        rebuilt when the basis buffer changes, e.g. after loading weights). ``dtype``
        ``float32`` gives a single-precision copy (:func:`problem_in`), for the training loss.
        ``decimated``: on the fit's decimated band (:data:`NETWORK_MODEL_DECIMATED`), else on
        all ``N`` samples."""
        basis = self.basis_fids
        state = (basis.device, basis._version, basis.data_ptr())
        if self._problem_state != state:
            self._problems, self._problem_state = {}, state
        key = (deviations, dtype, decimated)
        if key not in self._problems:
            problem = make_problem(
                self.basis(),
                self._grid_config(decimated),
                deviations=deviations,
                device=self.basis_fids.device,
            )
            self._problems[key] = problem_in(problem, dtype)
        return self._problems[key]

    def predicting_problem(self, *, deviations: bool = True) -> Problem:
        """The problem :meth:`estimate` predicts with (:data:`NETWORK_MODEL_DECIMATED`)."""
        return self.problem(deviations=deviations, decimated=NETWORK_MODEL_DECIMATED)

    def _decimated(self, problem: Problem) -> bool:
        """Whether ``problem`` (one of :meth:`problem`'s) is formed on fewer than ``N`` samples."""
        return problem.fids.shape[-1] != self.config.n_points

    def exact_twin(self, problem: Problem, *, deviations: bool) -> Problem | None:
        """``problem`` (one of :meth:`problem`'s, with ``deviations``) on all ``N`` samples, for
        the near-noiseless spectra, where it is decimated; ``None`` where it is not."""
        return self.problem(deviations=deviations) if self._decimated(problem) else None

    def twin_pairs(self) -> tuple[tuple[int, int, float], ...]:
        """The fit's twin pairs ``(g, h, f_h - f_g)`` (Cr/PCr, GPC/PCho) in the groups of
        :meth:`problem` (:func:`scaloquant.fit.search.twins`, cached with the problems)."""
        problem = self.problem()
        key = ("twins",)
        if key not in self._problems:
            self._problems[key] = search.twins(
                self.basis(), self.config.fit_config, problem.group_of.cpu().numpy()
            )
        return self._problems[key]

    def stage_problem(self, broadening_per_s: float, *, decimated: bool = False) -> Problem:
        """The fit's continuation stage ``broadening_per_s`` (no deviations; cached with
        :meth:`problem`'s; ``decimated`` as there)."""
        self.problem()  # drops the cache when the basis buffer has changed
        key = ("stage", float(broadening_per_s), decimated)
        if key not in self._problems:
            self._problems[key] = stages.stage_problem(
                self.basis(),
                self._grid_config(decimated),
                broadening_per_s,
                self.basis_fids.device,
            )
        return self._problems[key]

    def cached_problems(self, polish_iterations: int) -> None:
        """Build (and cache) every problem :meth:`estimate` uses with ``polish_iterations``,
        before batches run side by side: each built once, not by two threads at a time."""
        self.problem()  # the data window's
        problem = self.predicting_problem()
        self.exact_twin(problem, deviations=True)
        if polish_iterations:
            self.predicting_problem(deviations=False)
            for b in self.config.polish_broadening_per_s:
                self.stage_problem(b, decimated=NETWORK_MODEL_DECIMATED)
            if self.config.polish_moves:
                self.twin_pairs()

    def data_window(self, fids: torch.Tensor) -> torch.Tensor:
        """The fit's data window ``(B, K)`` of FIDs ``(B, N)``."""
        return data_window(self.problem(), fids.to(torch.complex128))  # fit.problem.data_window

    def window_scaled(self, fids: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
        """FIDs ``(B, N)`` divided by the RMS of their spectrum over the fit's window
        (complex64): the encoder's input. The parameters do not depend on the signal's scale,
        and taking it from the window keeps residual water outside it (up to 20 times the NAA
        peak in the ``invivo`` prior) from shrinking the metabolites the network sees, as the
        RMS of the whole FID would. ``window``: :meth:`data_window` of ``fids`` if the caller
        has it already."""
        y = self.data_window(fids) if window is None else window
        rms = y.abs().square().mean(-1).sqrt().clamp_min(1e-30)
        return (fids.to(torch.complex128) / rms[:, None]).to(torch.complex64)

    def network_theta(
        self, fids: torch.Tensor, *, inference: bool = False, window: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's parameters ``theta`` ``(B, P)`` (float64) for FIDs ``(B, N)``
        (``window``: their :meth:`data_window`, if the caller has it)."""
        network = self.encoder.inference_network() if inference else None
        x = self.window_scaled(fids, window)
        out = self.encoder.normalised_outputs(x, network=network)
        return theta_from_outputs(self.problem(), out.z, self.range_low, self.range_high)

    def checked_start(
        self, problem: Problem, y: torch.Tensor, theta: torch.Tensor, cost: torch.Tensor
    ) -> torch.Tensor:
        """The polish's start ``(B, P)``: ``theta`` (the network's), or, for the spectra where
        that gives a lower cost, ``theta`` with every group shift set to the fit's own start
        (``cross_correlation_shift_hz`` over the window ``y`` ``(B, K)``; ``cost``
        ``(B,)`` is ``theta``'s). A real spectrum unlike the training signals can push the
        predicted shift far off (the spant Philips spectrum, 400 s `quick` model: -24 Hz against
        the fit's -1.8 Hz, tNAA/tCr 0 after the polish; 1.10 from the shift checked here; that
        model was trained with the unbroadened reconstruction term, which drove its shift output
        to the range edge; retrained with the supervised-only default: -1.14 Hz)."""
        sl = problem.slices()["shift"]
        shift = cross_correlation_shift_hz(
            problem,
            y,
            self.config.fit_config.global_shift_range_hz,
            self.config.acquisition.dwell_time_s,
        )
        other = theta.clone()
        other[:, sl] = shift[:, None].to(theta.dtype)
        ones = torch.ones(y.shape[0], dtype=torch.float64, device=y.device)
        better = evaluate(problem, other, y, ones, derivatives=False).cost < cost
        return torch.where(better[:, None], other, theta)

    def moves_where_inexact(
        self,
        problem: Problem,
        sol: Solution,
        y: torch.Tensor,
        noise_var: torch.Tensor,
        centre: torch.Tensor,
    ) -> Solution:
        """The fit's global moves (:func:`scaloquant.fit.search.global_moves`) from ``sol`` for
        the spectra of ``y`` ``(B, K)`` whose model is not already exact: relative residual
        ``|y - S a|_W^2 / |y|_W^2`` above :data:`EXACT_RELATIVE_COST` (a noiseless spectrum the
        polish has fitted; no move can lower its cost by anything that matters, and probing
        them took most of the polish's time on noiseless spectra). ``centre`` ``(B,)``: the
        shift bounds' centre; on a decimated ``problem`` the threshold is
        :data:`EXACT_RELATIVE_COST_DECIMATED`. Returns the solution of every spectrum."""
        ys = stack(y[..., None])
        norm = w_inner(problem, ys, ys)[:, 0, 0].clamp_min(1e-300)
        exact = EXACT_RELATIVE_COST_DECIMATED if self._decimated(problem) else EXACT_RELATIVE_COST
        rows = torch.nonzero(sol.evaluation.cost / norm > exact)[:, 0]
        if rows.numel() == 0:
            return sol
        # the LM's own evaluation of those rows (what the moves got before the selection; no
        # second evaluation)
        sub = Solution(
            sol.theta[rows],
            take_rows(sol.evaluation, rows),
            sol.iterations[rows],
            sol.converged[rows],
        )
        moved = search.global_moves(
            problem,
            self.config.fit_config,
            sub,
            y[rows],
            noise_var[rows],
            centre[rows],
            self.twin_pairs(),
        )
        if rows.numel() == y.shape[0]:
            return moved
        # every spectrum's own evaluation: the moved ones' from the moves
        everyone = torch.arange(y.shape[0], device=rows.device)
        out = Solution(
            sol.theta.clone(),
            take_rows(sol.evaluation, everyone),
            sol.iterations.clone(),
            sol.converged.clone(),
        )
        out.theta[rows], out.iterations[rows], out.converged[rows] = (
            moved.theta,
            moved.iterations,
            moved.converged,
        )
        put_rows(out.evaluation, rows, moved.evaluation)
        return out

    def region_noise_var(self, fids: torch.Tensor) -> torch.Tensor | None:
        """``(B,)`` noise variance per real part of each spectrum of ``fids`` ``(B, N)`` in the
        fit's signal-free region (:func:`scaloquant.fit.spectra.region_noise_sd` over its
        ``noise_ppm_range``), on ``fids``' device; ``None`` on a grid without that region."""
        acquisition = self.config.acquisition
        try:
            region_sd = region_noise_sd(
                spectrum(fids.cpu().numpy()),
                acquisition.ppm_axis(),
                self.config.fit_config.noise_ppm_range,
            )
        except ConfigError:
            return None
        return torch.as_tensor(region_sd**2, dtype=torch.float64, device=fids.device)

    def fit_objective_from(
        self,
        sol: Solution,
        problem: Problem,
        fids: torch.Tensor,
        y: torch.Tensor,
        residual_var: torch.Tensor,
        lower: torch.Tensor,
        upper: torch.Tensor,
        iterations: int,
    ) -> tuple[Solution, torch.Tensor]:
        """``sol`` (of ``problem``, data windows ``y`` ``(B, K)`` of ``fids`` ``(B, N)``, its
        residual's noise variance ``residual_var`` ``(B,)``) fitted on for at most
        ``iterations`` Levenberg-Marquardt iterations of the fit's own objective, the
        deviations' priors weighed, as in the fit's last pass, with the noise variance of the
        spectrum's signal-free region (:meth:`region_noise_var`), for the spectra the model fits
        by the fit's own test but not to the noise: residual variance above the region's and at
        most :data:`~scaloquant.fit.model.MISFIT_RATIO` squared times it.

        Weighed with the residual's variance, which also holds what the model cannot
        represent, the priors are stronger than the fit's, and the polish ended in another
        minimum than the fit's from any start, the fit's own included (the spant Philips
        spectrum, residual variance 2.2 times the region's: tNAA/tCr 1.076 after K = 5 or 60
        trials, 1.121 on the fit's objective, the fit's). Where the residual is far above the
        noise, the fit's objective without the fit's search freed the deviations to absorb the
        misfit (full ``invivo`` prior, noiseless: MAE 3.52 -> 8.02 mM); from the network's start,
        without the trials first, the groups were still far off (Osprey TE 35 sub-02, K = 5:
        residual 0.236 against 0.103). docs/history/physics-models-log.md "The invivo polish
        ends on the fit's objective where the model fits (session 22, `escape22`)".

        Returns the solution and the variance that weighs each spectrum's priors
        (``residual_var`` where nothing was fitted on); ``sol`` unchanged on a grid without
        that region."""
        region_var = self.region_noise_var(fids)
        if region_var is None:
            return sol, residual_var
        fitting = (residual_var > region_var) & (residual_var <= MISFIT_RATIO**2 * region_var)
        rows = torch.nonzero(fitting)[:, 0]
        if rows.numel() == 0:
            return sol, residual_var
        sol = batched.fit_rows_on(problem, sol, rows, y, region_var, lower, upper, iterations)
        return sol, torch.where(fitting, region_var, residual_var)

    def second_search_where_misfit(
        self,
        stage_problems: list[Problem],
        problem: Problem,
        sol: Solution,
        fids: torch.Tensor,
        y: torch.Tensor,
        centre: torch.Tensor,
    ) -> tuple[Solution, torch.Tensor]:
        """The fit's second search (:func:`scaloquant.fit.search.second_search`: the
        continuation, the LM and the moves again from every group at the shift ``centre``
        ``(B,)``, kept where the cost drops) for the spectra whose polished ``sol`` (of
        ``problem``, data windows ``y`` ``(B, K)`` of ``fids`` ``(B, N)``) still misfits: by
        the fit's own test, a residual variance above ``MISFIT_RATIO**2`` times the noise
        variance of the spectrum's signal-free region
        (:func:`scaloquant.fit.spectra.region_noise_sd` over the fit's ``noise_ppm_range``).
        A polish that ends in a local minimum (a metabolite on a neighbour's line) is such a
        misfit; noiseless, any residual is (docs/history/physics-models-log.md "scalogram_physics'
        noiseless outliers (session 17, `polish17`)"). Returns the solution of every spectrum
        and the shift bounds' centre (the search's where it won)."""
        region_var = self.region_noise_var(fids)
        if region_var is None:
            return sol, centre  # a grid without that region: no second search, as in the fit
        return search.second_search(
            stage_problems,
            problem,
            self.config.fit_config,
            fids.to(torch.complex128),
            y,
            sol,
            centre,
            self.twin_pairs(),
            region_var,
        )

    @torch.no_grad()
    def estimate(
        self,
        fids: torch.Tensor,
        *,
        polish_iterations: int | None = None,
        network_theta: torch.Tensor | None = None,
        workspace: Workspace | None = None,
    ) -> PhysicsEstimate:
        """Amplitudes, CRLB SDs and parameters for FIDs ``(B, N)`` (eval-mode network).

        ``polish_iterations``: ``K`` (default the config's). ``network_theta`` ``(B, P)``:
        parameters to use instead of the network's (e.g. the truth, for a known-answer test).
        ``workspace``: the evaluation at the network's parameters and its CRLB take their
        largest arrays from it (:class:`~scaloquant.fit.evaluation.Workspace`; the caller's
        batches one after another, on one thread); nothing returned lives there.
        """
        k = self.config.polish_iterations if polish_iterations is None else polish_iterations
        problem = self.predicting_problem()
        exact = self.exact_twin(problem, deviations=True)
        fids = fids.to(self.basis_fids.device)
        y = self.data_window(fids)
        theta0 = (
            self.network_theta(fids, inference=True, window=y)
            if network_theta is None
            else network_theta
        )
        theta0 = theta0.to(torch.float64)
        ones = torch.ones(y.shape[0], dtype=torch.float64, device=y.device)
        ev = evaluate(
            problem, theta0, y, ones, column_dtype=NETWORK_COLUMN_DTYPE, workspace=workspace
        )
        if exact is None:
            noise_var = noise_var_from_residual(problem, ev)
        else:
            ev, noise_var = batched.evaluate_on_the_full_grid(
                exact, problem, theta0, ev, y, ones, NETWORK_COLUMN_DTYPE
            )
        sd0 = _crlb_sd(problem, ev, noise_var, workspace)  # the CRLB at the network's parameters
        network_sd = sd0 * self.network_sd_factors
        theta = self.checked_start(problem, y, theta0, ev.cost) if k else theta0
        centre = theta[:, problem.slices()["shift"]].mean(-1)
        fit_config = self.config.fit_config
        stage_problems: list[Problem] = []
        if k and self.config.polish_broadening_per_s:
            stage_problems = [
                self.stage_problem(b, decimated=NETWORK_MODEL_DECIMATED)
                for b in self.config.polish_broadening_per_s
            ]
            theta, centre = stages.continuation(
                stage_problems,
                fit_config,
                fids.to(torch.complex128),
                theta,
                centre,
                # the per-metabolite model's shift bounds re-centred after each stage on the
                # groups' weighted median shift, as the fit's: about the start's mean (the
                # network's, or the cross-correlation shift, which follows the largest peaks)
                # they missed metabolites up to 3 Hz from it (quick scalogram network, 500
                # noiseless spectra: 47 with a true shift outside them, 94 % of the MAE)
                recentre=search.applies(fit_config),
            )
        lower, upper = parameter_bounds(problem, centre, fit_config)
        # the per-metabolite model's spread priors (fit_config.has_spread_priors) are added,
        # as in the fit, in a last pass weighed with the polished residual's variance: weighed
        # at the network's start they held a noiseless polish off the truth (MAE 0.036)
        spread = fit_config.has_spread_priors
        if k and not bool((problem.prior_precision > 0).any()):
            # no priors to weigh (e.g. the per-metabolite model of the default simulation): the
            # noise level plays no part in the steps, and one LM call keeps its damping factor
            # from one iteration to the next (restarted at each call it stalls: noiseless
            # default spectra from a start 2/s, 1 Hz off, 64 spectra, amplitude MAE 0.12 after
            # 40 one-iteration calls against 0.063 after one call of 60)
            searched = self.predicting_problem(deviations=False) if spread else problem
            sol = levenberg_marquardt(
                searched,
                theta,
                y,
                noise_var,
                lower,
                upper,
                max_iterations=k,
                # single-precision columns, as the fit's iterations (the evaluation it returns
                # is formed again in float64): 64 noiseless spectra, K = 20 without moves,
                # 55.1 -> 34.6 s, same MAE
                column_dtype=stages.TRIAL_DTYPE,
            )
            if self.config.polish_moves:
                sol = self.moves_where_inexact(searched, sol, y, noise_var, centre)
                sol, centre = self.second_search_where_misfit(
                    stage_problems, searched, sol, fids, y, centre
                )
                lower, upper = parameter_bounds(problem, centre, fit_config)
            if not spread and exact is not None:
                sol = batched.finish_on_the_full_grid(
                    exact, problem, sol, y, noise_var, lower, upper, None, None, k
                )
            noise_var = noise_var_from_residual(searched, sol.evaluation)
            if spread:
                sol = levenberg_marquardt(
                    problem,
                    sol.theta,
                    y,
                    noise_var,
                    lower,
                    upper,
                    max_iterations=k,
                    column_dtype=stages.TRIAL_DTYPE,
                )
                if exact is not None:
                    sol = batched.finish_on_the_full_grid(
                        exact, problem, sol, y, noise_var, lower, upper, None, None, k
                    )
                noise_var = noise_var_from_residual(problem, sol.evaluation)
            theta, ev = sol.theta, sol.evaluation
            k = 0
        if k:
            # K Levenberg-Marquardt trials, the noise level (which weighs the deviations'
            # priors) taken again from each accepted step's residual: from the network's start
            # it is far too high and would hold the deviations at 0 (noiseless invivo spectra,
            # 10 iterations from a start 2/s, 1.5 Hz, 0.1 rad off: amplitude MAE 0.005 against
            # 0.22 with the start's noise level kept; the fit's no-deviation stage first: 0.06);
            # each spectrum keeps its damping, raised after a rejected trial (session 21)
            sol, noise_var = reweighted_steps(problem, theta, y, noise_var, lower, upper, steps=k)
            sol, weight_var = self.fit_objective_from(
                sol, problem, fids, y, noise_var, lower, upper, k
            )
            if weight_var is not noise_var:
                noise_var = noise_var_from_residual(problem, sol.evaluation)
            theta, ev = sol.theta, sol.evaluation
        if k and exact is not None:
            # near-noiseless spectra end on all N samples, with the priors weighed as above
            sol = batched.finish_on_the_full_grid(
                exact, problem, sol, y, weight_var, lower, upper, None, None, k
            )
            theta, ev = sol.theta, sol.evaluation
            noise_var = noise_var_from_residual(problem, ev)
        sd = sd0 if theta is theta0 else _crlb_sd(problem, ev, noise_var)
        residual = relative_fit_residual(problem, ev, y)
        fraction = metabolite_fraction(ev, y)
        return PhysicsEstimate(
            ev.amplitudes, sd, theta, theta0, noise_var.sqrt(), network_sd, residual, fraction
        )

    def polish_with(self, fit: FitConfig) -> None:
        """Polish with ``fit`` instead of the checkpoint's fit model, where both have the same
        parameters (grouping, lineshape, baseline, macromolecules, window): e.g. a
        per-metabolite model saved with ``simulated-plain`` polished with the ``simulated``
        preset's spread priors (priors only weigh the parameters; the network is unchanged).

        Raises
        ------
        ConfigError
            ``fit`` has other parameters than the network predicts."""
        own = self.config.fit_config
        same = ("grouping", "lineshape_kind", "baseline_kind", "macromolecules", "ppm_range")
        differ = [name for name in same if getattr(fit, name) != getattr(own, name)]
        if differ:
            raise ConfigError(
                f"this model cannot be polished with that fit model: its {', '.join(differ)} "
                "differ from the checkpoint's (the network predicts the checkpoint's parameters)"
            )
        self.config = replace(self.config, fit=fit.to_dict())
        self._problem_state = None  # the problems are built again from the new model

    def check_fids(self, fids: np.ndarray | torch.Tensor, *, copy: bool = True) -> torch.Tensor:
        """User FIDs as a validated complex128 tensor ``(B, n_points)``. ``copy=False``: a
        complex128 array's memory is shared, not copied, read-only ones (a frozen FID's samples)
        included, for callers that only read the tensor (:meth:`predict_estimates`)."""
        if isinstance(fids, torch.Tensor):
            raw = fids
        elif copy:
            # one copy of an array (read-only arrays would make torch warn)
            raw = torch.from_numpy(np.array(fids))
        else:
            raw = _shared_tensor(np.asarray(fids))
        # shape, grid, dtype and finiteness, one-line errors; the fit keeps the data's
        # precision (no complex64 copy to check and discard: 4096 x 2048 samples, ~0.1 s)
        return self.encoder.check_fids(raw, torch.complex128)

    def predict(
        self,
        fids: np.ndarray | torch.Tensor,
        *,
        batch_size: int | None = None,
        polish_iterations: int | None = None,
    ) -> np.ndarray:
        """Amplitudes ``(B, M)`` of complex FIDs, in batches of ``batch_size`` (default on a CPU
        :data:`NETWORK_CPU_CHUNK` at ``K = 0``, else :data:`scaloquant.fit.batched.CPU_CHUNK`,
        run side by side on torch's threads; on a GPU
        :func:`scaloquant.fit.batched.chunk_size`'s, halved where it runs out of memory), eval
        mode (restored afterwards); the interface of
        :meth:`scaloquant.models.Quantifier.predict`."""
        return self.predict_with_sd(
            fids, batch_size=batch_size, polish_iterations=polish_iterations
        )[0]

    def predict_with_sd(
        self,
        fids: np.ndarray | torch.Tensor,
        *,
        batch_size: int | None = None,
        polish_iterations: int | None = None,
        network_sd: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict`'s amplitudes ``(B, M)`` and their CRLB SDs ``(B, M)``, or with
        ``network_sd`` the network's own calibrated SDs (:attr:`PhysicsEstimate.network_sd`)."""
        a, crlb_sd, net_sd = self.predict_with_sds(
            fids, batch_size=batch_size, polish_iterations=polish_iterations
        )
        return a, (net_sd if network_sd else crlb_sd)

    def predict_with_sds(
        self,
        fids: np.ndarray | torch.Tensor,
        *,
        batch_size: int | None = None,
        polish_iterations: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Amplitudes ``(B, M)``, their CRLB SDs from the polished model and the network's own
        calibrated SDs (each ``(B, M)``), in batches of ``batch_size`` (as :meth:`predict`)."""
        p = self.predict_estimates(fids, batch_size=batch_size, polish_iterations=polish_iterations)
        return p.amplitudes, p.sd, p.network_sd

    def predict_with_checks(
        self,
        fids: np.ndarray | torch.Tensor,
        *,
        batch_size: int | None = None,
        polish_iterations: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`predict_with_sds`' three arrays, the final model's relative fit residual
        ``(B,)`` (:func:`relative_fit_residual`, quantify's ``fit_residual`` column) and its
        :func:`metabolite_fraction` ``(B,)`` (quantify's metabolites-over-data checks)."""
        p = self.predict_estimates(fids, batch_size=batch_size, polish_iterations=polish_iterations)
        return p.amplitudes, p.sd, p.network_sd, p.fit_residual, p.metabolite_fraction

    def predict_estimates(
        self,
        fids: np.ndarray | torch.Tensor,
        *,
        batch_size: int | None = None,
        polish_iterations: int | None = None,
    ) -> PhysicsPrediction:
        """:meth:`predict_with_sds`' arrays, the network's parameters ``(B, P)``
        (:attr:`PhysicsEstimate.network_theta`) and the relative fit residual ``(B,)``, in
        batches of ``batch_size`` (as :meth:`predict`), as numpy arrays."""
        # the batches below only read the samples: no copy of them all (16384 spectra: 0.5 GB
        # of new memory, touched page by page)
        arr = self.check_fids(fids, copy=False)
        device = self.basis_fids.device
        k = self.config.polish_iterations if polish_iterations is None else polish_iterations
        cpu = device.type == "cpu"
        if batch_size is None:
            batch_size = (
                (NETWORK_CPU_CHUNK if k == 0 else batched.CPU_CHUNK)
                if cpu
                else batched.chunk_size(device, [self.problem()])
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size}")
        was_training = self.training
        self.eval()
        # one workspace per thread, its batches one after another: their largest arrays
        # are the same memory from batch to batch (the allocator returned it to the system
        # between batches, and each batch touched it again page by page: at K = 0 ~0.3 of
        # the prediction's CPU time went to page faults, docs/history/physics-models-log.md
        # "Where quantify's time goes (session 16, `quant16`)")
        local = threading.local()

        def part(lo: int, hi: int) -> tuple[torch.Tensor, ...]:
            if not hasattr(local, "workspace"):
                local.workspace = Workspace()
            est = self.estimate(arr[lo:hi], polish_iterations=k, workspace=local.workspace)
            theta = est.network_theta.to(torch.float64)
            fraction = est.metabolite_fraction
            return est.amplitudes, est.sd, est.network_sd, theta, est.fit_residual, fraction

        ranges = [(lo, min(len(arr), lo + batch_size)) for lo in range(0, len(arr), batch_size)]
        try:
            if cpu and torch.get_num_threads() > 1 and len(ranges) > 1:
                # a batch per thread, each on one core, rather than every small operation of
                # one batch split over the threads (the same numbers: each batch's result does
                # not depend on the others); the cached problems and inference network built
                # here, once, not by two threads at the same time
                self.cached_problems(k)
                self.encoder.inference_network()
                jobs = {str(lo): (lambda lo=lo, hi=hi: part(lo, hi)) for lo, hi in ranges}
                parts = [result for result, _ in run_side_by_side(jobs).values()]
            else:
                parts = [p for lo, hi in ranges for p in batched.halving_on_oom(part, lo, hi)]
        finally:
            self.train(was_training)
        if not parts:
            m, p = len(self.metabolites), self.problem().size
            empty = (np.zeros((0, n)) for n in (m, m, m, p))
            return PhysicsPrediction(*empty, np.zeros(0), np.zeros(0))
        return PhysicsPrediction(
            *(torch.cat(column).cpu().numpy() for column in zip(*parts, strict=True))
        )

    @torch.no_grad()
    def fit_normalisation(self, fids: torch.Tensor) -> None:
        """Set the encoder's input standardisation from training FIDs ``(n, N)``; its output
        de-normalisation stays the identity (the head's outputs are mapped by
        :func:`theta_from_outputs`)."""
        n_out = n_outputs(self.n_groups)
        x = self.window_scaled(torch.as_tensor(fids))
        self.encoder.fit_normalisation(x, torch.zeros(len(fids), n_out))


#: The ``invivo`` simulation's lineshape group of each of the fit's group names
#: (:func:`scaloquant.fit.model.metabolite_and_mm_groups`).
_INVIVO_GROUP = {"metabolites": 0, "macromolecules": 1, "lipids": 2}


def invivo_truth(problem: Problem, params) -> tuple[np.ndarray, np.ndarray]:
    """The true ``theta`` ``(B, P)`` and amplitudes ``(B, M)`` of ``invivo`` parameters
    (:class:`scaloquant.simulate.invivo.InvivoParameters`) in ``problem``'s layout.

    Groups map by name (metabolites, macromolecules, lipids: the same three in both; the fit's
    ``metabolites_and_mm`` grouping); deviations and amplitudes by basis or component name
    (names the draw lacks get 0). Phases: degrees to radians, the first-order phase moved from
    the simulation's pivot to ``problem.pivot_ppm``. Not representable by the fit's model, and
    so absent from this truth: residual water, the eddy-current phase and the baseline humps
    (the fit's baseline absorbs the smooth part).
    """
    from ..simulate.invivo import GROUPS

    g_sim = [_INVIVO_GROUP.get(name, 0) for name in problem.group_names]
    if any(GROUPS[i] != name for i, name in zip(g_sim, problem.group_names, strict=True)):
        raise ConfigError(
            f"the fit's groups {problem.group_names} do not map onto the invivo simulation's "
            f"{GROUPS}; use grouping='metabolites_and_mm'"
        )
    n, m = params.n_signals, problem.n_metabolites
    sl = problem.slices()
    theta = np.zeros((n, problem.size))
    theta[:, sl["damping"]] = params.damping_per_s[:, g_sim] * problem.lorentzian
    theta[:, sl["shift"]] = params.shift_hz[:, g_sim]
    theta[:, sl["gauss"]] = params.gauss_per_s2[:, g_sim] * problem.gaussian
    phase1 = np.deg2rad(params.phase1_deg_per_ppm)
    theta[:, sl["phase0"]] = (
        np.deg2rad(params.phase0_deg) + phase1 * (problem.pivot_ppm - params.phase1_pivot_ppm)
    )[:, None]
    theta[:, sl["phase1"]] = phase1[:, None]
    amplitudes = np.zeros((n, m))
    basis_col = {name: i for i, name in enumerate(params.basis_names)}
    comp_col = {name: i for i, name in enumerate(params.component_names)}
    dev_d, dev_s = sl["damping_dev"].start, sl["shift_dev"].start
    for j, name in enumerate(problem.names):
        if name in basis_col:
            amplitudes[:, j] = params.concentrations_mm[:, basis_col[name]]
            theta[:, dev_d + j] = params.damping_dev_per_s[:, basis_col[name]]
            theta[:, dev_s + j] = params.shift_dev_hz[:, basis_col[name]]
        elif name in comp_col:
            amplitudes[:, j] = params.component_amplitudes_mm[:, comp_col[name]]
    return theta, amplitudes


def default_truth(
    problem: Problem,
    params,
    names: tuple[str, ...],
    phase1_pivot_ppm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The true ``theta`` ``(B, P)`` and amplitudes ``(B, M)`` of the default simulator's
    parameters (:class:`scaloquant.simulate.SimulationParameters` over the basis ``names``,
    the paper's Eq. 1) in ``problem``'s layout.

    Per metabolite: the damping and shift of a group are the means of its members', the
    members' differences from them go to the deviations (exact with the per-metabolite model
    of ``FIT_PRESETS["simulated"]``, whose groups have one member each); the Gaussian
    ``exp(-(g t)^2)`` is the fit's ``beta = g^2`` (mean per group; the fit has no Gaussian
    deviations). Phases (0 where the simulation draws none): degrees to radians, the
    first-order phase moved from the simulation's pivot ``phase1_pivot_ppm`` to
    ``problem.pivot_ppm``. Amplitudes by name (names the draw lacks get 0). Not representable
    and so absent: the simulator's baseline humps (the fit's baseline, where it has one,
    absorbs them).
    """
    n, m = params.n_signals, problem.n_metabolites
    col = {name: i for i, name in enumerate(names)}
    index = np.array([col.get(name, -1) for name in problem.names])
    have = index >= 0

    def per_metabolite(values: np.ndarray | None) -> np.ndarray:
        out = np.zeros((n, m))
        if values is not None:
            out[:, have] = np.asarray(values)[:, index[have]]
        return out

    group = problem.group_matrix.cpu().numpy()  # (M, G)
    members = np.maximum((group * have[:, None]).sum(0), 1)
    group_of = problem.group_of.cpu().numpy()

    def group_mean(values: np.ndarray) -> np.ndarray:
        return (values * have) @ group / members

    sl = problem.slices()
    theta = np.zeros((n, problem.size))
    damping = per_metabolite(params.damping_per_s) * problem.lorentzian
    shift = per_metabolite(params.shift_hz)
    theta[:, sl["damping"]] = group_mean(damping)
    theta[:, sl["shift"]] = group_mean(shift)
    theta[:, sl["damping_dev"]] = (damping - theta[:, sl["damping"]][:, group_of]) * have
    theta[:, sl["shift_dev"]] = (shift - theta[:, sl["shift"]][:, group_of]) * have
    if params.gaussian_damping_per_s is not None and problem.gaussian:
        theta[:, sl["gauss"]] = group_mean(per_metabolite(params.gaussian_damping_per_s) ** 2)
    phase0 = np.zeros(n) if params.phase0_deg is None else np.deg2rad(params.phase0_deg)
    phase1 = (
        np.zeros(n) if params.phase1_deg_per_ppm is None else np.deg2rad(params.phase1_deg_per_ppm)
    )
    theta[:, sl["phase0"]] = (phase0 + phase1 * (problem.pivot_ppm - phase1_pivot_ppm))[:, None]
    theta[:, sl["phase1"]] = phase1[:, None]
    return theta, per_metabolite(params.amplitudes)


def build_physics_quantifier(
    model: PhysicsKind,
    basis: BasisSet,
    acquisition: Acquisition | None = None,
    *,
    fit_config: FitConfig | None = None,
    scalogram: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[PhysicsQuantifier, BasisSet, tuple[str, ...]]:
    """A new (untrained) physics-head model for ``basis`` on ``acquisition`` (default the
    basis' own grid), prepared as the batched fit prepares it
    (:func:`scaloquant.fit.spectra.prepared_on_grid`).

    ``fit_config``: the model (default ``FIT_PRESETS["invivo"]``); ``scalogram``: the
    scalogram encoder's settings (default :data:`DEFAULT_PHYSICS_SCALOGRAM`);
    ``options``: other :class:`PhysicsQuantifierConfig` fields. Returns ``(model, the basis
    on the grid before macromolecules are added (what a simulation renders), conversions)``.
    """
    from ..fit.config import FIT_PRESETS, macromolecule_names
    from ..fit.spectra import prepared_on_grid
    from ..scalogram import ScalogramConfig

    fit_config = FIT_PRESETS["invivo"] if fit_config is None else fit_config
    acquisition = basis.acquisition if acquisition is None else acquisition
    on_grid, prepared, conversions = prepared_on_grid(basis, acquisition, fit_config)
    if model == "scalogram_physics" and scalogram is None:
        scalogram = ScalogramConfig.preset(**DEFAULT_PHYSICS_SCALOGRAM).to_dict()
    config = PhysicsQuantifierConfig(
        model=model,
        metabolites=prepared.names,
        macromolecules=macromolecule_names(prepared.names, prepared.metadata),
        n_points=prepared.n_points,
        dwell_time_s=prepared.dwell_time_s,
        spectrometer_freq_mhz=prepared.spectrometer_freq_mhz,
        ppm_reference=prepared.ppm_reference,
        nucleus=prepared.nucleus,
        fit=fit_config.to_dict(),
        scalogram=None if scalogram is None else dict(scalogram),
        **options,
    )
    return PhysicsQuantifier(config, prepared.fids), on_grid, conversions
