"""Test-time adaptation of a physics-head model (``quantify --adapt``): fine-tune its encoder on
the user's own unlabeled spectra by the reconstruction loss alone.

A physics-head model (:mod:`scaloquant.models.physics`) predicts the nonlinear parameters of the
fit's model; with the amplitudes solved by least squares, how well those parameters explain a
spectrum needs no truth: the relative residual ``|y - S(theta) a|_W^2 / |y|_W^2`` of the fit's
data window (the reconstruction term of the training loss,
:func:`~scaloquant.models.physics_head.least_squares_amplitudes`). Spectra unlike the training
distribution (broader lines, shifts or phases the prior drew rarely) give the encoder a worse
start; a few gradient steps on this residual over the spectra to be quantified move its weights
towards parameters that explain *these* spectra (after Merkofer et al. 2025, physics-consistent
networks with test-time adaptation). Only the user's data are used, and nothing but the
residual: no labels, no simulation.

Choices:

* the model is deep-copied: the loaded checkpoint is never changed;
* the copy stays in eval mode: batch normalisation keeps the running statistics of training
  (the same normalisation at adaptation and at inference; a mini-batch of a few spectra would
  give noisy statistics), only the encoder's weights move (Adam);
* mini-batches are drawn without replacement from ``torch.randperm`` of an explicit generator,
  a new permutation per pass over the spectra;
* the loss is computed in single precision, as in training; the errors reported before and
  after in float64 over every spectrum;
* the weights of the step with the lowest loss over all spectra are kept (checked every
  ``check_every`` steps and at the end), so the result never explains the user's spectra worse
  than the model it started from.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._config import positive_number, whole_number
from ..errors import ConfigError
from .physics import PhysicsQuantifier
from .physics_head import least_squares_amplitudes


@dataclass(frozen=True)
class AdaptConfig:
    """Settings of :func:`adapt_encoder`.

    Attributes
    ----------
    steps : optimiser steps (Adam), one mini-batch each.
    learning_rate : Adam's learning rate.
    batch_size : spectra per step (all when there are fewer).
    check_every : steps between evaluations of the loss over all spectra (the best weights are
        kept).
    seed : seed of the mini-batch generator.
    """

    steps: int = 100
    learning_rate: float = 1e-4
    batch_size: int = 32
    check_every: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        for name, least in (("steps", 0), ("batch_size", 1), ("check_every", 1), ("seed", 0)):
            object.__setattr__(self, name, whole_number(name, getattr(self, name), least))
        object.__setattr__(
            self, "learning_rate", positive_number("learning_rate", self.learning_rate)
        )


@dataclass(frozen=True)
class AdaptResult:
    """What :func:`adapt_encoder` did.

    ``model``: the adapted copy (eval mode); ``reconstruction_before`` / ``_after``: the mean
    over the spectra of the relative residual of the data window at the network's parameters
    (:func:`reconstruction_error`), of the model given and of the adapted one;
    ``best_step``: the step whose weights were kept (0: the model given); ``steps``: the
    steps taken; ``n_spectra``; ``wall_time_s``.
    """

    model: PhysicsQuantifier
    reconstruction_before: float
    reconstruction_after: float
    best_step: int
    steps: int
    n_spectra: int
    wall_time_s: float
    config: AdaptConfig

    def facts(self) -> dict:
        """JSON-able summary (for provenance and results.json)."""
        return {
            "steps": self.steps,
            "best_step": self.best_step,
            "learning_rate": self.config.learning_rate,
            "batch_size": self.config.batch_size,
            "seed": self.config.seed,
            "n_spectra": self.n_spectra,
            "reconstruction_before": self.reconstruction_before,
            "reconstruction_after": self.reconstruction_after,
            "wall_time_s": self.wall_time_s,
        }


def _as_fids(model: PhysicsQuantifier, fids: np.ndarray | torch.Tensor) -> torch.Tensor:
    return model.check_fids(fids).to(model.basis_fids.device)


def _relative(
    model: PhysicsQuantifier, fids: torch.Tensor, dtype: torch.dtype, chunk: int = 256
) -> torch.Tensor:
    """``(B,)`` relative residual at the network's parameters (eval mode, no gradients)."""
    problem = model.problem(deviations=False, dtype=dtype)
    out = []
    with torch.no_grad():
        for i in range(0, len(fids), chunk):
            part = fids[i : i + chunk]
            theta = model.network_theta(part)
            out.append(least_squares_amplitudes(problem, theta, model.data_window(part))[1])
    return torch.cat(out).to(torch.float64) if out else torch.zeros(0, dtype=torch.float64)


def reconstruction_error(model: PhysicsQuantifier, fids: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per spectrum ``(B,)``: ``|y - S(theta) a|_W^2 / |y|_W^2`` of FIDs ``(B, N)`` on the
    model's grid, ``theta`` the network's parameters (``K = 0``), ``a`` the clamped
    least-squares amplitudes (:func:`~scaloquant.models.physics_head.least_squares_amplitudes`),
    float64, eval mode (restored afterwards). What :func:`adapt_encoder` minimises."""
    x = _as_fids(model, fids)
    was_training = model.training
    model.eval()
    try:
        return _relative(model, x, torch.float64).cpu().numpy()
    finally:
        model.train(was_training)


def adapt_encoder(
    model: PhysicsQuantifier,
    fids: np.ndarray | torch.Tensor,
    config: AdaptConfig | None = None,
    *,
    log=None,
) -> AdaptResult:
    """Fine-tune a copy of ``model``'s encoder on FIDs ``(B, N)`` (the spectra to quantify, on
    the model's grid) by the mean relative residual of their data windows (module docstring).

    ``model`` is not changed. ``log``: a callable given one line per check (None: silent).
    Returns the adapted copy with the mean reconstruction error before and after.
    """
    config = AdaptConfig() if config is None else config
    start = time.perf_counter()
    x = _as_fids(model, fids)
    n = len(x)
    if n == 0:
        raise ConfigError("no spectra to adapt the model to")
    adapted = copy.deepcopy(model)
    adapted.eval()
    adapted.requires_grad_(False)
    weights = [p for p in adapted.encoder.network.parameters()]
    for p in weights:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(weights, lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    single = adapted.problem(deviations=False, dtype=torch.float32)
    y = adapted.data_window(x)

    def full_loss() -> float:
        return float(_relative(adapted, x, torch.float64).mean())

    before = full_loss()
    best, best_step = before, 0
    best_state = {k: v.detach().clone() for k, v in adapted.state_dict().items()}
    order = torch.zeros(0, dtype=torch.long)
    batch = min(config.batch_size, n)
    for step in range(1, config.steps + 1):
        if len(order) < batch:  # a new pass over the spectra
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        index, order = order[:batch], order[batch:]
        index = index.to(x.device)
        theta = adapted.network_theta(x[index])
        _, relative = least_squares_amplitudes(single, theta, y[index])
        loss = relative.mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        optimiser.step()
        if step % config.check_every == 0 or step == config.steps:
            value = full_loss()
            if log is not None:
                log(f"adapt step {step}: reconstruction error {value:.5g} (start {before:.5g})")
            if value < best:
                best, best_step = value, step
                best_state = {k: v.detach().clone() for k, v in adapted.state_dict().items()}
    adapted.load_state_dict(best_state)
    adapted.requires_grad_(False)
    return AdaptResult(
        model=adapted,
        reconstruction_before=before,
        reconstruction_after=best,
        best_step=best_step,
        steps=config.steps,
        n_spectra=n,
        wall_time_s=time.perf_counter() - start,
        config=config,
    )


def write_adapted_checkpoint(
    metadata: Mapping[str, Any],
    result: AdaptResult,
    path: str | os.PathLike,
    *,
    source: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Write the adapted model of ``result`` as a checkpoint (atomically): the metadata of the
    checkpoint it came from (``metadata``: :meth:`CheckpointMetadata.to_dict`) with an
    ``adaptation`` entry (:meth:`AdaptResult.facts` and ``source``, e.g. the original file's
    path and SHA-256), and the adapted weights. :func:`scaloquant.models.load_model` reads it
    as any other."""
    from ..io.atomic import atomic_path
    from .checkpoint import CHECKPOINT_KEY, STATE_PREFIX

    meta = dict(metadata)
    meta["adaptation"] = {**result.facts(), "source": dict(source or {})}
    state = {STATE_PREFIX + k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save({CHECKPOINT_KEY: meta, "state_dict": state}, tmp)


__all__ = [
    "AdaptConfig",
    "AdaptResult",
    "adapt_encoder",
    "reconstruction_error",
    "write_adapted_checkpoint",
]
