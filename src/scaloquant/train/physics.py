"""Training the physics-head models (:mod:`scaloquant.models.physics`) on the ``invivo``
simulation or the paper's default simulator, for any basis and acquisition grid.

A plain torch loop (the model's training step is one loss over freshly simulated signals; no
epochs, no data files). Each step draws ``batch_size`` new signals on the basis resampled to
the acquisition grid as the batched fit resamples it, from the ``invivo`` prior
(:func:`scaloquant.simulate.invivo.simulate_invivo_batch`; the model is the fit's grouped
``FIT_PRESETS["invivo"]``) or, with ``simulation="default"``, from the paper's Eq. 1 simulator
(:func:`scaloquant.simulate.simulate_batch` with a :class:`~scaloquant.simulate
.SimulationConfig`, which draws a damping and a shift per metabolite; the model is then the
fit's per-metabolite ``FIT_PRESETS["simulated"]``), and minimises::

    loss = mean_j (u_j - u_j*)^2 + mean (1 - cos(phi0 - phi0*))
           + reconstruction_weight * |y - S(theta) a|_W^2 / |y|_W^2

(``reconstruction_weight`` 0 by default: :class:`PhysicsTrainConfig`; the term is then not
computed in the training steps), ``u`` the network's ranged parameters in ``[0, 1]``
(:func:`~scaloquant.models.physics_head.normalised_theta`), ``*`` the truth
(:func:`~scaloquant.models.physics_truth.invivo_truth`,
:func:`~scaloquant.models.physics_truth.default_truth`), and the last term the relative residual
of the data window through the differentiable model with clamped least-squares amplitudes
(:func:`~scaloquant.models.physics_head.least_squares_amplitudes`), data and model both broadened
by ``reconstruction_broadening_per_s`` (the fit's continuation stage). The weights with the
lowest loss on a fixed validation set are kept; on that set the network's own SD is then
calibrated (:func:`~scaloquant.models.physics_head.network_sd_factors`). Every random number comes
from generators spawned from ``seed`` (network initialisation, normalisation signals, training
stream, validation set).

The checkpoint is a ``.ckpt`` in the layout of :mod:`scaloquant.models.checkpoint` (``quantifier``
holds :meth:`PhysicsQuantifierConfig.to_dict`, weights under ``quantifier.``), read back by
:func:`scaloquant.models.checkpoint.load_model` without Lightning.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._config import dataclass_from_dict, positive_number, whole_number
from ..errors import ConfigError
from ..fit.problem import data_window
from ..models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEY, STATE_PREFIX
from ..models.physics import PhysicsQuantifier, build_physics_quantifier
from ..models.physics_config import PHYSICS_KINDS
from ..models.physics_head import (
    least_squares_amplitudes,
    network_sd_factors,
    normalised_theta,
    problem_in,
)
from ..models.physics_truth import default_truth, invivo_truth
from ..presets import SIMULATIONS, Simulation
from ..signal.scale import component_unit
from ..simulate import SimulationConfig, drawn_parameters, simulate_batch
from ..simulate.invivo import simulate_invivo_batch
from ..simulate.linewidths import basis_lines
from ..simulate.prior import InvivoPrior
from ..types import Acquisition, BasisSet
from .checkpoint import _json_safe, checkpoint_metadata

#: Default polish iterations ``K`` per simulation: ``invivo`` 5 (5 matched 20 at SNR 30:
#: docs/history/physics-models-log.md "Measured (2 shared CPU cores"); session 21, ``K`` the
#: trials of an LM that keeps its damping (``fit.lm.reweighted_steps``), 400 representable
#: ``invivo`` spectra at SNR 30: MAE 1.154 mM at 5, the fit's 1.157, at the CPU of the former
#: 5 steps; 10: 1.145 at 1.5 times the CPU; docs/history/physics-models-log.md "The polish as a
#: real Levenberg-Marquardt (session 21, `polish21`)"); ``default`` 20
#: (noiseless default spectra, 50, a ``quick`` network: amplitude MAE 0.0021 against 0.0050
#: with 5; at SNR 30 0.098 and 0.097).
DEFAULT_POLISH: dict[str, int] = {"invivo": 5, "default": 20}
#: Line broadening of the reconstruction term, 1/s (the fit's first continuation stage). The
#: unbroadened residual has a basin of about +-5 Hz in the metabolites' shift (16 noiseless
#: spectra of bench_adapt.py's prior, their shift moved by +5, +10, +20 Hz: mean relative residual
#: 0.64, 0.66, 0.54) and falls again towards the range edge, so a shift that leaves the basin
#: is driven into the sigmoid's saturation, where the supervised term's gradient vanishes;
#: broadening widens the basin (docs/physics-models.md, "The reconstruction term").
RECONSTRUCTION_BROADENING_PER_S: float | None = 40.0


@dataclass(frozen=True)
class PhysicsTrainConfig:
    """Settings of :func:`train_physics` (keyword-only by convention).

    Attributes
    ----------
    model : ``"spectrum_physics"`` or ``"scalogram_physics"``.
    max_steps : optimiser steps (one fresh batch each).
    max_time_s : wall-time cap of the loop, s (None: none).
    batch_size : signals per step.
    learning_rate : AdamW learning rate (weight decay 1e-4).
    reconstruction_weight : weight of the reconstruction term of the loss; default 0 (the
        supervised loss alone): every weight measured (1, 0.1, 0.02) gave worse in-distribution
        amplitudes than 0, and weight 1 drove the shift to its range edge
        (docs/physics-models.md, "The reconstruction term").
    reconstruction_broadening_per_s : the reconstruction term compares data and model both
        broadened by ``exp(-L t)`` (the fit's continuation stage ``L``,
        :func:`scaloquant.fit.stages.stage_problem`), which widens the residual's basin in the
        shift (:data:`RECONSTRUCTION_BROADENING_PER_S`); ``None``: the unbroadened model.
    reconstruction_signals : signals of each batch whose reconstruction term is computed
        (:func:`physics_loss`; the validation loss uses all).
    n_val : fixed validation signals, evaluated every ``validate_every`` steps and at the end.
    n_normalisation : signals for the encoder's input standardisation.
    polish_iterations : ``K`` stored in the model (quantify's default); ``None``: the
        simulation's (:data:`DEFAULT_POLISH`).
    simulation : the training signals: ``"invivo"`` (docs/invivo-prior.md; the model is the
        fit's ``invivo`` preset) or ``"default"`` (the paper's Eq. 1 simulator; the model is
        the fit's per-metabolite ``simulated`` preset (batched)).
    widths : encoder channel widths (:data:`scaloquant.models.cnn.DEFAULT_WIDTHS` by default).
    seed : the root of every generator.
    """

    model: str
    max_steps: int = 2000
    max_time_s: float | None = 300.0
    batch_size: int = 32
    learning_rate: float = 1e-3
    reconstruction_weight: float = 0.0
    reconstruction_broadening_per_s: float | None = RECONSTRUCTION_BROADENING_PER_S
    reconstruction_signals: int = 8
    n_val: int = 128
    validate_every: int = 100
    n_normalisation: int = 256
    polish_iterations: int | None = None
    widths: tuple[int, ...] = (16, 32, 64, 64, 128, 128)
    seed: int = 0
    simulation: Simulation = "invivo"

    def __post_init__(self) -> None:
        if self.model not in PHYSICS_KINDS:
            raise ConfigError(
                f"unknown physics model {self.model!r}; choose one of {', '.join(PHYSICS_KINDS)}"
            )
        if self.simulation not in SIMULATIONS:
            raise ConfigError(
                f"simulation must be one of {', '.join(SIMULATIONS)}, got {self.simulation!r}"
            )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        k = whole_number("polish_iterations", self.polish_iterations, 0, or_none=True)
        object.__setattr__(self, "polish_iterations", k)
        for name, least in (
            ("max_steps", 1),
            ("batch_size", 1),
            ("n_val", 1),
            ("validate_every", 1),
            ("n_normalisation", 1),
            ("reconstruction_signals", 1),
            # numpy's SeedSequence takes no negative seed: --seed -1 ended in its traceback
            ("seed", 0),
        ):
            object.__setattr__(self, name, whole_number(name, getattr(self, name), least))
        object.__setattr__(
            self, "learning_rate", positive_number("learning_rate", self.learning_rate)
        )
        if not self.reconstruction_weight >= 0:
            raise ConfigError(
                f"reconstruction_weight must be >= 0, got {self.reconstruction_weight!r}"
            )
        b = self.reconstruction_broadening_per_s
        b = positive_number("reconstruction_broadening_per_s", b, or_none=True)
        object.__setattr__(self, "reconstruction_broadening_per_s", b)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe dict; ``PhysicsTrainConfig.from_dict(c.to_dict()) == c``."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PhysicsTrainConfig:
        return dataclass_from_dict(cls, d, "physics training")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PhysicsTrainConfig:
        if name not in PHYSICS_PRESETS:
            raise ConfigError(
                f"unknown preset {name!r} for a physics model; choose one of "
                f"{', '.join(PHYSICS_PRESETS)}"
            )
        return cls.from_dict({**PHYSICS_PRESETS[name], **overrides})


#: Presets: ``tiny`` for tests (seconds), ``quick`` (5 minutes of a CPU core), ``cpu`` (30
#: minutes), ``paper`` (long; a GPU).
PHYSICS_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        max_steps=3,
        max_time_s=None,
        batch_size=4,
        n_val=4,
        validate_every=2,
        n_normalisation=8,
        widths=(4, 4, 8, 8, 8, 8),
    ),
    "quick": dict(max_steps=3000, max_time_s=300.0),
    "cpu": dict(max_steps=30000, max_time_s=1800.0),
    "paper": dict(max_steps=100000, max_time_s=None, batch_size=64),
}


@dataclass(frozen=True)
class PhysicsTrainResult:
    """What :func:`train_physics` did: the checkpoint, its validation loss, the steps and wall
    time, and how the basis was converted to the acquisition grid (sentences)."""

    checkpoint_path: Path
    best_val_loss: float
    steps: int
    wall_time_s: float
    conversions: tuple[str, ...] = ()


#: A batch of training signals: ``(fids (n, N) complex, true theta (n, P), true amplitudes
#: (n, M))`` in the model's layout.
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


def signal_source(
    model: PhysicsQuantifier,
    on_grid: BasisSet,
    simulation: str,
    prior: InvivoPrior,
    simulation_config: SimulationConfig,
) -> Callable[[int, np.random.Generator], Batch]:
    """``draw(n, rng)``: ``n`` fresh signals of ``simulation`` rendered on ``on_grid`` with
    their truth in ``model``'s parameter layout (:data:`Batch`)."""
    problem = model.problem()
    if simulation == "invivo":
        # the basis' signal per proton, the unit of the parametric components, and its lines'
        # widths on the grid (the draws' field and Gaussian part), measured once
        unit = component_unit(on_grid.names, on_grid.fids, on_grid.acquisition)
        lines = basis_lines(on_grid, prior)

        def draw(n: int, rng: np.random.Generator) -> Batch:
            signals = simulate_invivo_batch(
                on_grid, prior, n, rng, unit_per_proton=unit, lines=lines
            )
            return (signals.fids, *invivo_truth(problem, signals.parameters))

        return draw

    def draw_default(n: int, rng: np.random.Generator) -> Batch:
        signals = simulate_batch(on_grid, simulation_config, n, rng)
        truth = default_truth(
            problem,
            drawn_parameters(signals),
            on_grid.names,
            simulation_config.phase1_pivot_ppm,
        )
        return (signals.fids, *truth)

    return draw_default


def default_simulation_model(
    simulation_config: SimulationConfig,
) -> tuple[Any, dict[str, tuple[float, float]]]:
    """The fit's model and the physics model's options (network output ranges, polish stages)
    for the default simulator:
    ``FIT_PRESETS["simulated"]`` (a Lorentzian damping and a shift per metabolite, as
    the simulator draws them; no baseline, as the paper's Eq. 1 has none: with the true
    parameters it reproduces noiseless simulated amplitudes to 4e-11 relative; the invivo
    preset's spline baseline where the simulation adds baseline humps, a Voigt lineshape where
    it draws Gaussian damping), and ranges that cover the simulation's (its damping, shift,
    Gaussian and first-order phase ranges, overrides included, widened by a quarter of their
    width on each side within the fit's bounds): a narrower range than the fit's bounds puts
    the network's resolution where the parameters are. The polish runs the fit's continuation
    stages (``polish_broadening_per_s``, 40 and 10 1/s) from the network's start: noiseless
    default spectra, 50, a ``quick`` spectrum_physics network, 60 iterations: amplitude MAE
    0.035 without, 0.024 after one stage of 10 1/s, 0.012 after 40 and 10; then the fit's
    global moves (``polish_moves``: resets of lost metabolites, Cr/PCr and GPC/PCho swaps),
    0.0050 (``K = 5``) and 0.0021 (``K = 20``)."""
    from ..fit.config import FIT_PRESETS

    # the fit's per-metabolite model with its spread priors: the polish adds them in a last
    # pass weighed with the polished residual's variance, as the fit does
    fit = FIT_PRESETS["simulated"]
    changes: dict[str, Any] = {}
    if simulation_config.baseline is not None:
        changes["baseline"] = FIT_PRESETS["invivo"].baseline
    if simulation_config.uses_gaussian:
        changes["lineshape"] = "voigt" if simulation_config.uses_lorentzian else "gaussian"
    fit = replace(fit, **changes) if changes else fit

    def covering(attribute: str) -> tuple[float, float]:
        ranges = [getattr(simulation_config, attribute)]
        ranges += [getattr(o, attribute) for o in simulation_config.overrides.values()]
        lo = min(r[0] for r in ranges if r is not None)
        hi = max(r[1] for r in ranges if r is not None)
        margin = 0.25 * max(hi - lo, 1e-3)
        return lo - margin, hi + margin

    def within(pair: tuple[float, float], bounds: tuple[float, float]) -> tuple[float, float]:
        return max(pair[0], bounds[0]), min(pair[1], bounds[1])

    ranges = {
        "damping_range_per_s": within(covering("damping_range_per_s"), fit.damping_bounds_per_s),
        "shift_range_hz": within(covering("shift_range_hz"), fit.global_shift_range_hz),
    }
    if simulation_config.uses_gaussian:
        g_lo, g_hi = covering("gaussian_damping_range_per_s")
        ranges["gauss_range_per_s2"] = within(
            (max(g_lo, 0.0) ** 2, g_hi**2), fit.gauss_bounds_per_s2
        )
    ranges["polish_broadening_per_s"] = fit.continuation_broadening_per_s
    ranges["polish_moves"] = True
    if simulation_config.phase1_range_deg_per_ppm is not None:
        widest = max(abs(v) for v in simulation_config.phase1_range_deg_per_ppm)
        half = max(0.5, 1.25 * math.radians(widest))
        ranges["phase1_range_rad_per_ppm"] = (-half, half)
    return fit, ranges


def physics_loss(
    model: PhysicsQuantifier,
    fids: torch.Tensor,
    theta_true: np.ndarray | torch.Tensor,
    amplitudes: np.ndarray | torch.Tensor,
    reconstruction_weight: float,
    reconstruction_signals: int | None = None,
    broadening_per_s: float | None = None,
    *,
    always_reconstruct: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss (module docstring) of FIDs ``(B, N)`` with true parameters
    ``theta_true`` ``(B, P)`` and amplitudes ``(B, M)`` (:func:`signal_source`), the
    reconstruction term over the first ``reconstruction_signals`` (all: None), data and model
    broadened by ``broadening_per_s`` (the fit's continuation stage; None: unbroadened);
    returns it and its terms. ``always_reconstruct=False`` skips the term (reported as NaN)
    where its weight is 0 (most of a training step's cost)."""
    problem = model.problem(deviations=False)
    theta_true, amplitudes = torch.as_tensor(theta_true), torch.as_tensor(amplitudes)
    theta = model.network_theta(fids)
    u, phi0 = normalised_theta(problem, theta, model.range_low, model.range_high)
    u_true, phi0_true = normalised_theta(problem, theta_true, model.range_low, model.range_high)
    # a group without signal (no lipids in most spectra) has no lineshape to learn
    present = (amplitudes @ problem.group_matrix > 0).to(u.dtype)  # (B, G)
    weight = torch.cat([present, present, present, torch.ones_like(present[:, :1])], dim=1)
    squared = ((u - u_true).square() * weight).sum() / weight.sum()
    supervised = squared + (1 - torch.cos(phi0 - phi0_true)).mean()
    # the model's columns cost ten times the spectrum encoder's step (B x M x N complex
    # products; 0.45 of 0.55 s for 32 signals, 1 thread): the reconstruction term is taken on
    # the first reconstruction_signals of the batch only, in single precision
    if reconstruction_weight == 0 and not always_reconstruct:
        return supervised, {"supervised": float(supervised.detach()), "reconstruction": math.nan}
    n = reconstruction_signals
    if broadening_per_s is None:
        single = model.problem(deviations=False, dtype=torch.float32)
    else:
        single = problem_in(model.stage_problem(broadening_per_s), torch.float32)
    y = data_window(single, fids[:n].to(torch.complex128))
    _, relative = least_squares_amplitudes(single, theta[:n], y)
    reconstruction = relative.mean()
    loss = supervised + reconstruction_weight * reconstruction
    terms = {
        "supervised": float(supervised.detach()),
        "reconstruction": float(reconstruction.detach()),
    }
    return loss, terms


#: Held while a network is seeded and built: its initial weights are the only draw of torch's
#: global generator in training (the signals come from numpy generators of its own), so that
#: two models trained side by side in threads (``reproduce``) get the weights of their seeds.
_INITIALISING = threading.Lock()


def train_physics(
    config: PhysicsTrainConfig,
    basis: BasisSet,
    path: str | Path,
    *,
    acquisition: Acquisition | None = None,
    prior: InvivoPrior | None = None,
    simulation_config: SimulationConfig | None = None,
    log=print,
) -> PhysicsTrainResult:
    """Train a physics-head model for ``basis`` on ``acquisition`` (default the basis' grid)
    and write its checkpoint to ``path`` (module docstring). ``prior``: the ``invivo``
    simulation's (default :class:`InvivoPrior`); ``simulation_config``: the default
    simulation's (default ``SimulationConfig()``, the paper's noiseless Eq. 1; its ``snr``
    adds noise). ``log`` gets one line per validation."""
    if config.simulation == "invivo" and simulation_config is not None:
        raise ConfigError("simulation_config is for simulation='default'; give prior instead")
    if config.simulation == "default" and prior is not None:
        raise ConfigError("prior is for simulation='invivo'; give simulation_config instead")
    prior = InvivoPrior() if prior is None else prior
    simulation_config = SimulationConfig() if simulation_config is None else simulation_config
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    init, norm_rng, train_rng, val_rng = (np.random.default_rng(s) for s in seeds)
    options: dict[str, Any] = {}
    if config.simulation == "default":
        simulation_config.check_names(basis.names)
        fit_config, options = default_simulation_model(simulation_config)
        options["fit_config"] = fit_config
    with _INITIALISING:  # torch's global generator: one network at a time (threads)
        torch.manual_seed(int(init.integers(2**62)))  # the network's initial weights
        model, on_grid, conversions = build_physics_quantifier(
            config.model,
            basis,
            acquisition,
            polish_iterations=(
                DEFAULT_POLISH[config.simulation]
                if config.polish_iterations is None
                else config.polish_iterations
            ),
            widths=config.widths,
            **options,
        )
    # the fit models the macromolecules by LCModel's components where the basis has no
    # measured spectrum or the data come from another scanner type: simulate them so too
    prior = prior.for_fitted(model.metabolites)
    draw = signal_source(model, on_grid, config.simulation, prior, simulation_config)
    model.fit_normalisation(torch.as_tensor(draw(config.n_normalisation, norm_rng)[0]))
    val_fids, val_theta, val_amplitudes = draw(config.n_val, val_rng)
    val_fids = torch.as_tensor(val_fids)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    start = time.perf_counter()
    best, best_state, step = float("inf"), None, 0

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            loss, terms = physics_loss(
                model,
                val_fids,
                val_theta,
                val_amplitudes,
                config.reconstruction_weight,
                broadening_per_s=config.reconstruction_broadening_per_s,
            )
        model.train()
        log(
            f"step {step}: val loss {float(loss):.4g} (supervised {terms['supervised']:.4g}, "
            f"reconstruction {terms['reconstruction']:.4g}), {time.perf_counter() - start:.0f} s"
        )
        return float(loss)

    model.train()
    while step < config.max_steps:
        if config.max_time_s is not None and time.perf_counter() - start > config.max_time_s:
            break
        fids, theta_true, amplitudes = draw(config.batch_size, train_rng)
        loss, _ = physics_loss(
            model,
            torch.as_tensor(fids),
            theta_true,
            amplitudes,
            config.reconstruction_weight,
            config.reconstruction_signals,
            config.reconstruction_broadening_per_s,
            always_reconstruct=False,
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        step += 1
        if step % config.validate_every == 0 or step == config.max_steps:
            value = validate()
            if value < best:
                best = value
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:  # stopped by the time cap before the first validation
        best = validate()
        best_state = model.state_dict()
    model.load_state_dict(best_state)
    # the network's own SD: the CRLB at its parameters, scaled per amplitude so that its
    # z-scores on the validation set have unit RMS
    model.eval()
    est = model.estimate(val_fids, polish_iterations=0)
    factors = network_sd_factors(est.amplitudes.numpy(), est.sd.numpy(), val_amplitudes)
    model.config = replace(model.config, network_sd_factors=factors)
    wall = time.perf_counter() - start
    path = Path(path)
    simulation = (
        {"prior": prior.to_dict()}
        if config.simulation == "invivo"
        else {"simulation_config": simulation_config.to_dict()}
    )
    write_physics_checkpoint(
        model,
        basis,
        path,
        train_config=config.to_dict(),
        seeds={
            "seed": config.seed,
            "streams": "SeedSequence(seed).spawn(4): init, norm, train, val",
        },
        data={
            "train": "simulated",
            "simulation": config.simulation,
            **simulation,
            "conversions": list(conversions),
        },
        training={"best_val_loss": best, "steps": step, "wall_time_s": wall},
    )
    return PhysicsTrainResult(path, best, step, wall, tuple(conversions))


def write_physics_checkpoint(
    model: PhysicsQuantifier,
    basis: BasisSet,
    path: Path,
    *,
    train_config: Mapping[str, Any],
    seeds: Mapping[str, Any],
    data: Mapping[str, Any],
    training: Mapping[str, Any],
) -> None:
    """Write ``model`` (trained for ``basis``, the file as given by the user) to ``path``
    atomically (refusing to overwrite: the caller checks)."""
    from ..io.atomic import atomic_path

    meta = checkpoint_metadata(basis, seeds=seeds, data=data)
    acq = model.config.acquisition
    meta |= {
        "format": CHECKPOINT_FORMAT,
        "quantifier": model.config.to_dict(),
        "acquisition": {
            "n_points": acq.n_points,
            "dwell_time_s": acq.dwell_time_s,
            "spectrometer_freq_mhz": acq.spectrometer_freq_mhz,
            "ppm_reference": acq.ppm_reference,
            "nucleus": acq.nucleus,
        },
        "train_config": dict(train_config),
        "training": dict(training),
        "global_step": int(training.get("steps", 0)),
        "epoch": 0,
        "torch_version": str(torch.__version__),  # a str subclass that torch.load refuses
    }
    state = {STATE_PREFIX + k: v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        torch.save({CHECKPOINT_KEY: _json_safe(meta), "state_dict": state}, tmp)


__all__ = [
    "PHYSICS_PRESETS",
    "DEFAULT_POLISH",
    "RECONSTRUCTION_BROADENING_PER_S",
    "SIMULATIONS",
    "default_simulation_model",
    "signal_source",
    "PhysicsTrainConfig",
    "PhysicsTrainResult",
    "physics_loss",
    "train_physics",
    "write_physics_checkpoint",
]
