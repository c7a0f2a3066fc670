"""Training the physics-head models (:mod:`scaloquant.models.physics`) on the ``invivo``
simulation, for any basis and acquisition grid.

A plain torch loop (the model's training step is one loss over freshly simulated signals; no
epochs, no data files). Each step draws ``batch_size`` new signals from the ``invivo`` prior
(:func:`scaloquant.simulate.invivo.simulate_invivo_batch`) on the basis resampled to the
acquisition grid as the batched fit resamples it, and minimises::

    loss = mean_j (u_j - u_j*)^2 + mean (1 - cos(phi0 - phi0*))
           + reconstruction_weight * |y - S(theta) a|_W^2 / |y|_W^2

``u`` the network's ranged parameters in ``[0, 1]`` (:func:`~scaloquant.models.physics
.normalised_theta`), ``*`` the truth (:func:`~scaloquant.models.physics.invivo_truth`), and the
last term the relative residual of the data window through the differentiable model with
clamped least-squares amplitudes (:func:`~scaloquant.models.physics.least_squares_amplitudes`).
The weights with the lowest loss on a fixed validation set are kept. Every random number comes
from generators spawned from ``seed`` (network initialisation, normalisation signals, training
stream, validation set).

The checkpoint is a ``.ckpt`` in the layout of :mod:`scaloquant.models.checkpoint` (``quantifier``
holds :meth:`PhysicsQuantifierConfig.to_dict`, weights under ``quantifier.``), read back by
:func:`scaloquant.models.checkpoint.load_model` without Lightning.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .._config import dataclass_from_dict
from ..errors import ConfigError
from ..fit.config import FIT_PRESETS
from ..models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEY, STATE_PREFIX
from ..models.physics import (
    PHYSICS_KINDS,
    PhysicsQuantifier,
    build_physics_quantifier,
    default_truth,
    invivo_truth,
    least_squares_amplitudes,
    normalised_theta,
)
from ..simulate import SimulationConfig
from ..simulate.dataset import drawn_parameters, simulate_batch
from ..simulate.invivo import MM_COMPONENTS, InvivoPrior, simulate_invivo_batch
from ..types import Acquisition, BasisSet
from .checkpoint import _json_safe, checkpoint_metadata


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
    reconstruction_weight : weight of the reconstruction term of the loss.
    reconstruction_signals : signals of each batch whose reconstruction term is computed
        (:func:`physics_loss`; the validation loss uses all).
    n_val : fixed validation signals, evaluated every ``validate_every`` steps and at the end.
    n_normalisation : signals for the encoder's input standardisation.
    polish_iterations : ``K`` stored in the model (quantify's default).
    widths : encoder channel widths (:data:`scaloquant.models.cnn.DEFAULT_WIDTHS` by default).
    seed : the root of every generator.
    simulation : ``"invivo"`` (the tissue-like prior and the fit's grouped ``invivo`` model) or
        ``"default"`` (the paper's simulator, :func:`scaloquant.simulate.simulate_batch`, and the
        fit's per-metabolite batched model ``FIT_PRESETS["simulated-batched"]``).
    """

    model: str
    max_steps: int = 2000
    max_time_s: float | None = 300.0
    batch_size: int = 32
    learning_rate: float = 1e-3
    reconstruction_weight: float = 1.0
    reconstruction_signals: int = 8
    n_val: int = 128
    validate_every: int = 100
    n_normalisation: int = 256
    polish_iterations: int = 5
    widths: tuple[int, ...] = (16, 32, 64, 64, 128, 128)
    seed: int = 0
    simulation: Literal["invivo", "default"] = "invivo"

    def __post_init__(self) -> None:
        if self.model not in PHYSICS_KINDS:
            raise ConfigError(
                f"unknown physics model {self.model!r}; choose one of {', '.join(PHYSICS_KINDS)}"
            )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        for name in (
            "max_steps",
            "batch_size",
            "n_val",
            "validate_every",
            "n_normalisation",
            "reconstruction_signals",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.simulation not in ("invivo", "default"):
            raise ConfigError(f"unknown simulation {self.simulation!r}; choose invivo or default")
        if not (self.learning_rate > 0 and self.reconstruction_weight >= 0):
            raise ConfigError("learning_rate must be > 0 and reconstruction_weight >= 0")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PhysicsTrainConfig:
        if name not in PHYSICS_PRESETS:
            raise ConfigError(
                f"unknown preset {name!r} for a physics model; choose one of "
                f"{', '.join(PHYSICS_PRESETS)}"
            )
        return dataclass_from_dict(cls, {**PHYSICS_PRESETS[name], **overrides}, "physics training")


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


def _signals(basis: BasisSet, prior: InvivoPrior, n: int, rng: np.random.Generator):
    return simulate_invivo_batch(basis, prior, n, rng)


def physics_loss(
    model: PhysicsQuantifier,
    fids: torch.Tensor,
    params,
    reconstruction_weight: float,
    reconstruction_signals: int | None = None,
    *,
    truth: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss (module docstring) of FIDs ``(B, N)`` with ``invivo`` parameters
    ``params`` (or the true ``(theta (B, P), amplitudes (B, M))`` given as ``truth``), the
    reconstruction term over the first ``reconstruction_signals`` (all: None); returns it and
    its terms."""
    problem = model.problem(deviations=False)
    truth = invivo_truth(problem, params) if truth is None else truth
    theta_true, amplitudes = (torch.as_tensor(a) for a in truth)
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
    n = reconstruction_signals
    y = model.data_window(fids[:n])
    single = model.problem(deviations=False, dtype=torch.float32)
    _, relative = least_squares_amplitudes(single, theta[:n], y)
    reconstruction = relative.mean()
    loss = supervised + reconstruction_weight * reconstruction
    terms = {
        "supervised": float(supervised.detach()),
        "reconstruction": float(reconstruction.detach()),
    }
    return loss, terms


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
    and write its checkpoint to ``path`` (module docstring). ``log`` gets one line per
    validation. With ``config.simulation == "default"`` the signals come from the default
    simulator with ``simulation_config`` (default :class:`SimulationConfig`) and the model is the
    fit's per-metabolite batched one; ``prior`` is for ``"invivo"``."""
    prior = InvivoPrior() if prior is None else prior
    default = config.simulation == "default"
    simulation_config = SimulationConfig() if simulation_config is None else simulation_config
    seeds = np.random.SeedSequence(config.seed).spawn(4)
    init, norm_rng, train_rng, val_rng = (np.random.default_rng(s) for s in seeds)
    torch.manual_seed(int(init.integers(2**62)))  # the network's initial weights
    model, on_grid, conversions = build_physics_quantifier(
        config.model,
        basis,
        acquisition,
        polish_iterations=config.polish_iterations,
        widths=config.widths,
        fit_config=FIT_PRESETS["simulated-batched"] if default else None,
    )
    if default:
        problem = model.problem(deviations=False)

        def draw(n: int, rng: np.random.Generator):
            signals = simulate_batch(on_grid, simulation_config, n, rng)
            truth = default_truth(
                problem,
                drawn_parameters(signals),
                signals.metabolites,
                simulation_config.phase1_pivot_ppm,
            )
            return signals, truth
    elif set(MM_COMPONENTS) <= set(model.metabolites) and prior.macromolecules == "measured":
        # the fit models the macromolecules by LCModel's components here (a basis without a
        # measured spectrum, or data from another scanner type): simulate them so too
        prior = replace(prior, macromolecules="parametric")
    if not default:

        def draw(n: int, rng: np.random.Generator):
            return _signals(on_grid, prior, n, rng), None

    norm, _ = draw(config.n_normalisation, norm_rng)
    model.fit_normalisation(torch.as_tensor(norm.fids))
    val, val_truth = draw(config.n_val, val_rng)
    val_fids = torch.as_tensor(val.fids)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    start = time.perf_counter()
    best, best_state, step = float("inf"), None, 0

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            loss, terms = physics_loss(
                model, val_fids, val.parameters, config.reconstruction_weight, truth=val_truth
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
        batch, batch_truth = draw(config.batch_size, train_rng)
        loss, _ = physics_loss(
            model,
            torch.as_tensor(batch.fids),
            batch.parameters,
            config.reconstruction_weight,
            config.reconstruction_signals,
            truth=batch_truth,
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
    wall = time.perf_counter() - start
    path = Path(path)
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
            "prior": None if default else prior.to_dict(),
            "simulation_config": simulation_config.to_dict() if default else None,
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
    "PhysicsTrainConfig",
    "PhysicsTrainResult",
    "physics_loss",
    "train_physics",
    "write_physics_checkpoint",
]
