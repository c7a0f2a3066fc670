"""Physics-head quantifiers (``spectrum_physics``, ``scalogram_physics``): a CNN encoder predicts
the *nonlinear* parameters of the batched fit's model, the amplitudes follow by non-negative
least squares, and ``K`` Levenberg–Marquardt iterations of the fit polish the result.

Pipeline for complex FIDs ``x`` ``(B, N)`` on the model's acquisition grid::

    theta0 = parameters(encoder(x))             network: group damping, shift, Gaussian, phases
    a0     = NNLS(S(theta0), y)                 scaloquant.fit.evaluation.evaluate
    theta  = LM^K(theta0)                       scaloquant.fit.lm.levenberg_marquardt, or, with
                                                priors to weigh, scaloquant.fit.lm.reweighted_steps
                                                then, where the model fits by the fit's test but
                                                not to the signal-free region's noise, the fit's
                                                objective to the fit's own end (its stopping
                                                rule, at most its max_iterations;
                                                PhysicsQuantifier.fit_objective_from)
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
(:class:`~scaloquant.models.physics_config.PhysicsQuantifierConfig`) by a logistic function
(:mod:`scaloquant.models.physics_head`), so every prediction is a valid start. The encoder is the
paper's CNN (:class:`~scaloquant.models.quantifier.Quantifier`
with its transform and input standardisation; its output de-normalisation is the identity
here). Ideas after QNet (Chen et al.) and physics-informed networks (Rizzo et al., MRM 2023):
amplitudes by least squares generalise beyond the concentrations of the training prior.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .._config import whole_number
from ..errors import ConfigError, IncompatibleDataError
from ..fit import batched, search, stages
from ..fit.config import FitConfig
from ..fit.covariance import combined_columns, combined_parts, covariance_pairs
from ..fit.evaluation import Workspace, evaluate, noise_var_from_residual, stack, w_inner
from ..fit.lm import (
    Solution,
    evaluate_copied,
    first_rows,
    levenberg_marquardt,
    put_rows,
    reweighted_steps,
    take_rows,
    take_rows_with_copy,
)
from ..fit.model import MISFIT_RATIO
from ..fit.problem import Problem, data_window, group_layout, make_problem, parameter_bounds
from ..fit.spectra import region_noise_sd
from ..fit.start import cross_correlation_shift_hz
from ..signal.axes import spectrum
from ..threads import blas_threads
from ..types import Acquisition, BasisSet
from .physics_config import DEFAULT_PHYSICS_SCALOGRAM, PhysicsKind, PhysicsQuantifierConfig
from .physics_head import (
    crlb_sd,
    crlb_sd_and_covariance,
    fit_residual_checks,
    metabolite_fraction,
    n_outputs,
    output_ranges,
    problem_in,
    theta_from_outputs,
)
from .quantifier import Quantifier

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


class PhysicsEstimate(NamedTuple):
    """What :meth:`PhysicsQuantifier.estimate` returns for ``B`` spectra (float64 tensors).

    ``amplitudes`` ``(B, M)``; ``sd`` ``(B, M)`` CRLB standard deviations of the polished model;
    ``theta`` ``(B, P)`` the fit's parameter layout (:class:`scaloquant.fit.problem.Problem`);
    ``network_theta`` ``(B, P)`` the network's prediction before the polish; ``noise_sd``
    ``(B,)`` per real part (from the residual); ``network_sd`` ``(B, M)`` the network's own
    SD: the CRLB at ``network_theta`` (noise level from its residual) times the calibration
    factors of the model (:attr:`PhysicsQuantifierConfig.network_sd_factors`);
    ``fit_residual`` ``(B,)`` the final model's relative residual (:func:`fit_residual_checks`; quantify's
    ``fit_residual`` column, as the fit's); ``metabolite_fraction`` ``(B,)`` its
    :func:`metabolite_fraction` (the ``baseline_cancels`` / ``no_metabolites`` checks);
    ``residual_sd`` ``(B,)`` its residual's SD per real part over the window
    (:func:`fit_residual_checks`; over the data's noise SD, quantify's ``residual_over_noise``
    column); ``amplitude_covariance`` ``(B, M, M)`` the amplitudes' block of the polished
    model's covariance bound, whose diagonal is ``sd`` squared (to rounding), where asked for
    (``covariance=True``) and polished (``K`` > 0), else None.
    """

    amplitudes: torch.Tensor
    sd: torch.Tensor
    theta: torch.Tensor
    network_theta: torch.Tensor
    noise_sd: torch.Tensor
    network_sd: torch.Tensor
    fit_residual: torch.Tensor | None = None
    metabolite_fraction: torch.Tensor | None = None
    residual_sd: torch.Tensor | None = None
    amplitude_covariance: torch.Tensor | None = None


class PhysicsPrediction(NamedTuple):
    """What :meth:`PhysicsQuantifier.predict_estimates` returns for ``B`` spectra (float64
    numpy arrays): ``amplitudes``, ``sd`` (CRLB of the polished model) and ``network_sd`` (the
    network's own calibrated SD), each ``(B, M)``, and ``network_theta`` ``(B, P)``, the
    network's parameters in the fit's layout, ``fit_residual`` ``(B,)`` the final model's
    relative fit residual, ``metabolite_fraction`` ``(B,)``, ``theta`` ``(B, P)`` the final
    (polished) parameters and ``residual_sd`` ``(B,)`` the final residual's SD per real part
    (:class:`PhysicsEstimate`;
    :meth:`PhysicsQuantifier.asks_for_flexible_baseline`); ``flexible`` ``(B,)`` bool, with
    ``screen``: :meth:`PhysicsQuantifier.asks_for_flexible_baseline` of each spectrum at
    ``theta`` (None without); ``pair_correlations`` ``(B, P)``, with ``correlations`` and a
    polish: the correlation coefficients of the amplitudes' estimates, each pair of
    :attr:`PhysicsQuantifier.metabolites` in the order of
    :meth:`scaloquant.fit.result.FitResult.pair_correlations` (:func:`~scaloquant.fit.result.
    covariance_pairs` of :attr:`PhysicsEstimate.amplitude_covariance`; None without);
    ``combined_names``, ``combined_amplitudes`` ``(B, C)`` and ``combined_sd`` ``(B, C)``, with
    the pairs: LCModel's combined rows (tNAA, tCr, tCho, Glx) of the polished amplitudes, their
    SD from the same covariance, as ``fit``'s columns (:func:`~scaloquant.fit.result.
    combined_columns`; ``()`` and None without)."""

    amplitudes: np.ndarray
    sd: np.ndarray
    network_sd: np.ndarray
    network_theta: np.ndarray
    fit_residual: np.ndarray
    metabolite_fraction: np.ndarray
    theta: np.ndarray
    residual_sd: np.ndarray
    flexible: np.ndarray | None = None
    pair_correlations: np.ndarray | None = None
    combined_names: tuple[str, ...] = ()
    combined_amplitudes: np.ndarray | None = None
    combined_sd: np.ndarray | None = None


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
        low, high = output_ranges(config, self.n_groups)
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
        self, problem: Problem, y: torch.Tensor, theta: torch.Tensor, noise_var: torch.Tensor
    ) -> torch.Tensor:
        """The polish's start ``(B, P)``: ``theta`` (the network's), or, for the spectra where
        that gives a lower cost, ``theta`` with every group shift set to the fit's own start
        (``cross_correlation_shift_hz`` over the window ``y`` ``(B, K)``). Both costs are
        ``problem``'s, its priors weighed by ``noise_var`` ``(B,)`` (the residual's variance at
        the network's start, which weighs the continuation's): weighed by 1 the MM shift prior,
        which only ``theta`` pays (its group shifts differ), scaled with the data's units and
        the choice flipped with them (docs/history/physics-models-log.md "The polish's start
        in the data's units (session 29, `units29`)"). A real spectrum unlike the training
        signals can push the predicted shift far off (the spant Philips spectrum, 400 s `quick`
        model: -24 Hz against the fit's -1.8 Hz, tNAA/tCr 0 after the polish; 1.10 from the
        shift checked here; that model was trained with the unbroadened reconstruction term,
        which drove its shift output to the range edge; retrained with the supervised-only
        default: -1.14 Hz)."""
        sl = problem.slices()["shift"]
        shift = cross_correlation_shift_hz(
            problem,
            y,
            self.config.fit_config.global_shift_range_hz,
            self.config.acquisition.dwell_time_s,
        )
        other = theta.clone()
        other[:, sl] = shift[:, None].to(theta.dtype)
        cost = evaluate(problem, theta, y, noise_var, derivatives=False).cost
        better = evaluate(problem, other, y, noise_var, derivatives=False).cost < cost
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

        ``sol``'s evaluation is the single-precision trials' of
        :func:`~scaloquant.fit.lm.reweighted_steps` (``formed_again=False``) and
        ``residual_var`` theirs; the spectra not fitted on have theirs formed again in the
        basis' dtype (weighed with ``residual_var``) and their residual's noise variance taken
        again from it, the others' formed by the Levenberg-Marquardt that fits them, which
        starts from the trials' evaluation (``start``: the same fit to the bit as from its own
        first one, that evaluation not formed again).

        Returns the solution (its evaluation in the basis' dtype) and the variance that weighs
        each spectrum's priors (the residual's where nothing was fitted on)."""
        region_var = self.region_noise_var(fids)
        fitting = torch.zeros_like(residual_var, dtype=torch.bool)
        if region_var is not None:
            fitting = (residual_var > region_var) & (residual_var <= MISFIT_RATIO**2 * region_var)
        rows, rest = torch.nonzero(fitting)[:, 0], torch.nonzero(~fitting)[:, 0]
        theta, weight_var = sol.theta.clone(), residual_var.clone()
        count, converged = sol.iterations.clone(), sol.converged.clone()
        parts = []
        if rest.numel():
            passive = sol.evaluation.passive[rest]
            formed = evaluate_copied(problem, theta[rest], y[rest], residual_var[rest], passive)
            formed = first_rows(formed, rest.numel())
            weight_var[rest] = noise_var_from_residual(problem, formed)
            parts.append((rest, formed))
        if rows.numel():
            more = levenberg_marquardt(
                problem,
                theta[rows],
                y[rows],
                region_var[rows],
                lower[rows],
                upper[rows],
                max_iterations=iterations,
                column_dtype=stages.TRIAL_DTYPE,
                # the trials' evaluation at these parameters, not formed again
                start=take_rows_with_copy(sol.evaluation, rows),
            )
            theta[rows], weight_var[rows] = more.theta, region_var[rows]
            count[rows] += more.iterations
            converged[rows] = more.converged
            parts.append((rows, more.evaluation))
        # one evaluation of every row: the first part's first row everywhere, then each part's
        ev = take_rows(parts[0][1], torch.zeros_like(count))
        for where, part in parts:
            put_rows(ev, where, part)
        return Solution(theta, ev, count, converged), weight_var

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
        covariance: bool = False,
    ) -> PhysicsEstimate:
        """Amplitudes, CRLB SDs and parameters for FIDs ``(B, N)`` (eval-mode network).

        ``polish_iterations``: ``K`` (default the config's). ``network_theta`` ``(B, P)``:
        parameters to use instead of the network's (e.g. the truth, for a known-answer test).
        ``workspace``: the evaluation at the network's parameters and its CRLB take their
        largest arrays from it (:class:`~scaloquant.fit.evaluation.Workspace`; the caller's
        batches one after another, on one thread); nothing returned lives there.
        ``covariance``: also the polished model's amplitude covariance
        (:attr:`PhysicsEstimate.amplitude_covariance`; from the same inverse as the SDs, which
        are the same numbers; ``K = 0`` forms none: its SDs are the variances alone).
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
        sd0 = crlb_sd(problem, ev, noise_var, workspace)  # the CRLB at the network's parameters
        network_sd = sd0 * self.network_sd_factors
        theta = self.checked_start(problem, y, theta0, noise_var) if k else theta0
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
                # the stages' MM shift prior (if any) weighed by the residual's variance at the
                # start, as the fit's without a signal-free region (stages.prior_weight)
                noise_var,
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
            sol, noise_var = reweighted_steps(
                problem,
                theta,
                y,
                noise_var,
                lower,
                upper,
                steps=k,
                # single-precision trials, as the fit's, their evaluation formed again in
                # float64 only for the spectra fit_objective_from does not fit on (its LM forms
                # the others'): docs/history/physics-models-log.md "The polish's cost against
                # the fit's (session 27, `polish27`)"
                column_dtype=stages.TRIAL_DTYPE,
                formed_again=False,
            )
            # the fit's objective to the fit's own end (its stopping rule, at most its
            # max_iterations), not K: K = 5 stopped above its minimum on spant's 3t.basis
            # spectrum (tNAA/tCr 1.084 against the fit's 1.127 and LCModel's 1.306);
            # docs/history/physics-models-log.md "The polish's misfits and its iterations
            # (session 28, `polish28`)"
            sol, weight_var = self.fit_objective_from(
                sol, problem, fids, y, noise_var, lower, upper, fit_config.max_iterations
            )
            noise_var = noise_var_from_residual(problem, sol.evaluation)
            theta, ev = sol.theta, sol.evaluation
        if k and exact is not None:
            # near-noiseless spectra end on all N samples, with the priors weighed as above
            sol = batched.finish_on_the_full_grid(
                exact, problem, sol, y, weight_var, lower, upper, None, None, k
            )
            theta, ev = sol.theta, sol.evaluation
            noise_var = noise_var_from_residual(problem, ev)
        cov = None
        if theta is theta0:
            sd = sd0
        elif covariance:
            sd, cov = crlb_sd_and_covariance(problem, ev, noise_var)
        else:
            sd = crlb_sd(problem, ev, noise_var)
        residual, residual_sd = fit_residual_checks(problem, ev, y)
        fraction = metabolite_fraction(ev, y)
        return PhysicsEstimate(
            ev.amplitudes,
            sd,
            theta,
            theta0,
            noise_var.sqrt(),
            network_sd,
            residual,
            fraction,
            residual_sd,
            cov,
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
        """Amplitudes ``(B, M)`` of complex FIDs, in batches of at most ``batch_size`` (default on
        a CPU :data:`NETWORK_CPU_CHUNK` at ``K = 0``, else :data:`scaloquant.fit.batched.CPU_CHUNK`,
        run side by side on torch's threads, one each, as the fit's chunks
        (:func:`scaloquant.fit.batched.chunk_parts`); on a GPU
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
        ``(B,)`` (:func:`fit_residual_checks`, quantify's ``fit_residual`` column) and its
        :func:`metabolite_fraction` ``(B,)`` (quantify's metabolites-over-data checks)."""
        p = self.predict_estimates(fids, batch_size=batch_size, polish_iterations=polish_iterations)
        return p.amplitudes, p.sd, p.network_sd, p.fit_residual, p.metabolite_fraction

    def predict_estimates(
        self,
        fids: np.ndarray | torch.Tensor,
        *,
        batch_size: int | None = None,
        polish_iterations: int | None = None,
        screen: bool = False,
        correlations: bool = False,
    ) -> PhysicsPrediction:
        """:meth:`predict_with_sds`' arrays, the network's parameters ``(B, P)``
        (:attr:`PhysicsEstimate.network_theta`) and the relative fit residual ``(B,)``, in
        batches of ``batch_size`` (as :meth:`predict`), as numpy arrays. ``screen``: also
        :meth:`asks_for_flexible_baseline` of each batch at its final parameters, by the thread
        that polished it, right after (:attr:`PhysicsPrediction.flexible`; the same flags as
        one call on all of them afterwards, which ran on the caller's thread with torch's
        threads splitting each small operation: with 2 threads on a shared 2-core machine 0.3-3.2
        s of CPU per 256 invivo spectra against 0.2 s here, 3.5-11.7 s per 1024 against 0.8-1.1;
        docs/history/physics-models-log.md "Where quantify's time goes with the polish (session
        29, `qstage29`)"). ``correlations``: with a polish (``K`` > 0), also each batch's pair
        correlations (:attr:`PhysicsPrediction.pair_correlations`), taken from its covariance
        by the thread that polished it: ``(B, P)`` kept, half a covariance, not the ``(B, M,
        M)`` covariances; ``K = 0`` forms none (None); and from the same covariance, in the
        same thread, LCModel's combined rows and their SDs, as ``fit``'s
        (:attr:`PhysicsPrediction.combined_sd`)."""
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
        batch_size = whole_number("batch_size", batch_size, 1)
        was_training = self.training
        self.eval()
        # one workspace per thread, its batches one after another: their largest arrays
        # are the same memory from batch to batch (the allocator returned it to the system
        # between batches, and each batch touched it again page by page: at K = 0 ~0.3 of
        # the prediction's CPU time went to page faults, docs/history/physics-models-log.md
        # "Where quantify's time goes (session 16, `quant16`)")
        local = threading.local()
        pairs = correlations and k > 0
        names = tuple(self.metabolites)
        combos = tuple(combined_parts(names))

        def part(lo: int, hi: int) -> dict[str, torch.Tensor]:
            """The batch ``[lo, hi)``'s :class:`PhysicsPrediction` fields, by name."""
            if not hasattr(local, "workspace"):
                local.workspace = Workspace()
            est = self.estimate(
                arr[lo:hi], polish_iterations=k, workspace=local.workspace, covariance=pairs
            )
            out = {
                "amplitudes": est.amplitudes,
                "sd": est.sd,
                "network_sd": est.network_sd,
                "network_theta": est.network_theta.to(torch.float64),
                "fit_residual": est.fit_residual,
                "metabolite_fraction": est.metabolite_fraction,
                "theta": est.theta,
                "residual_sd": est.residual_sd,
            }
            if screen:
                flexible = self.asks_for_flexible_baseline(arr[lo:hi].numpy(), est.theta)
                out["flexible"] = torch.from_numpy(flexible)
            if pairs:
                cov = est.amplitude_covariance.cpu().numpy()
                _, total, sd = combined_columns(est.amplitudes.cpu().numpy(), cov, names)
                out["pair_correlations"] = torch.from_numpy(covariance_pairs(cov))
                out["combined_amplitudes"] = torch.from_numpy(total)
                out["combined_sd"] = torch.from_numpy(sd)
            return out

        # numpy's BLAS on one thread (threadpoolctl's limit; torch's are the batches' own):
        # the screen's spline matrices and the noise region's least squares of the stage to
        # the fit's end (region_noise_var: 128 invivo spectra at load 15, 0.034 s of CPU and
        # 0.23 s of wall on OpenBLAS's 2 threads, 0.004 and 0.05 s on one, the same numbers;
        # without the screen it ran on 2 until session 35); set here for the threads side by
        # side, so that no thread's own limit restores another's
        try:
            with blas_threads(1):
                # the cached problems and inference network built here, once, not by two
                # threads side by side at the same time
                self.cached_problems(k)
                self.encoder.inference_network()
                # the fit's batches (batched.chunk_parts): on a CPU with 2+ threads a batch per
                # thread side by side, each on one torch thread (one batch split in two when
                # there is only one), and a batch alone on one torch thread below
                # ONE_THREAD_BELOW spectra; not one batch's small operations split over the
                # threads, which gave other bits (the batched Cholesky
                # solves and triangular solves of 114 invivo spectra on 2 threads under
                # MKL_CBWR=AUTO: quantify's fit_residual moved by ~2e-14 between --threads 1
                # and 2; docs/history/physics-models-log.md "quantify's numbers the same on 1
                # and 2 threads (session 30, resid30)"). Each spectrum's numbers are its own,
                # the same in any batch.
                parts = batched.chunk_parts(part, len(arr), device, batch_size)
        finally:
            self.train(was_training)
        combined_names = combos if pairs else ()
        if not parts:
            m, p = len(names), self.problem().size
            return PhysicsPrediction(
                amplitudes=np.zeros((0, m)),
                sd=np.zeros((0, m)),
                network_sd=np.zeros((0, m)),
                network_theta=np.zeros((0, p)),
                fit_residual=np.zeros(0),
                metabolite_fraction=np.zeros(0),
                theta=np.zeros((0, p)),
                residual_sd=np.zeros(0),
                flexible=np.zeros(0, dtype=bool) if screen else None,
                pair_correlations=np.zeros((0, m * (m - 1) // 2)) if pairs else None,
                combined_names=combined_names,
                combined_amplitudes=np.zeros((0, len(combos))) if pairs else None,
                combined_sd=np.zeros((0, len(combos))) if pairs else None,
            )
        fields = {key: torch.cat([q[key] for q in parts]).cpu().numpy() for key in parts[0]}
        return PhysicsPrediction(**fields, combined_names=combined_names)

    def asks_for_flexible_baseline(self, fids: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``(B,)`` bool: the spectra ``fids`` ``(B, N)`` whose polish, ended at ``theta``
        ``(B, P)`` (:attr:`PhysicsPrediction.theta`), fails LCModel's F-test against the most
        flexible of the fit model's baseline candidates: the screen of the fit's
        ``baseline_stiffness="adaptive"``
        (:func:`scaloquant.fit.spectra.asks_for_flexible_baseline`, two linear solves a
        spectrum) at the polish's lineshapes and its fixed stiffness; all False without a spline
        baseline. ``fids``: the spectra the model saw (less the water removed before it)."""
        from ..fit.spectra import asks_for_flexible_baseline

        fit = replace(self.config.fit_config, device=self.basis_fids.device.type)
        if fit.baseline_kind != "spline" or not len(fids):
            return np.zeros(len(fids), dtype=bool)
        theta = torch.as_tensor(theta, dtype=torch.float64, device=self.basis_fids.device)
        shapes = batched.lineshapes(self.predicting_problem(), theta)
        return asks_for_flexible_baseline(np.asarray(fids), self.basis(), fit, shapes)

    @torch.no_grad()
    def fit_normalisation(self, fids: torch.Tensor) -> None:
        """Set the encoder's input standardisation from training FIDs ``(n, N)``; its output
        de-normalisation stays the identity (the head's outputs are mapped by
        :func:`theta_from_outputs`)."""
        n_out = n_outputs(self.n_groups)
        x = self.window_scaled(torch.as_tensor(fids))
        self.encoder.fit_normalisation(x, torch.zeros(len(fids), n_out))


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
