"""The physics models' default training keeps the network's shift near the truth.

Known answer: on bench_adapt.py's narrow ``invivo`` distribution (metabolite shift within
+-0.02 ppm, +-2.5 Hz at 123 MHz) a ``spectrum_physics`` model (default widths) trained 50 steps
of 32 signals with the default :class:`PhysicsTrainConfig` predicts the metabolites' shift of
fresh spectra near the truth (measured: mean error 1.15 Hz, largest 3.1 Hz). The loss of
before (the unbroadened reconstruction term at weight 1) drove it to the edge of the network's
range, where the sigmoid saturates: mean error 23.0 Hz, largest 26.3 Hz, in the same run
(docs/physics-models.md, "The reconstruction term").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_models_adapt import TRAIN_PRIOR

from scaloquant.errors import ConfigError
from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.train.physics import PhysicsTrainConfig, train_physics

#: bench_adapt.py's training distribution: the adaptation test's, at the prior's SNR 5-150.
PRIOR = replace(TRAIN_PRIOR, snr_range=InvivoPrior().snr_range)


def _shift_errors(tmp_path, **changes) -> np.ndarray:
    config = PhysicsTrainConfig(
        model="spectrum_physics",
        max_steps=STEPS,
        max_time_s=None,
        n_val=16,
        validate_every=STEPS,
        n_normalisation=64,
        polish_iterations=0,
        seed=0,
        **changes,
    )
    basis = default_basis()
    train_physics(config, basis, tmp_path / "m.ckpt", prior=PRIOR, log=lambda _: None)
    model = load_model(tmp_path / "m.ckpt").quantifier
    params = draw_invivo(PRIOR, basis.names, 32, np.random.default_rng(3))
    theta_true, _ = invivo_truth(model.problem(), params)
    fids = render_invivo(basis, params, np.random.default_rng(4)).fids
    with torch.no_grad():
        theta = model.network_theta(torch.as_tensor(fids), inference=True).numpy()
    g = model.problem().n_groups
    return theta[:, g] - theta_true[:, g]


STEPS = 50


def test_default_training_keeps_the_shift_off_the_range_edge(tmp_path):
    errors = _shift_errors(tmp_path)
    assert np.abs(errors).mean() < 5.0, errors
    assert np.abs(errors).max() < 15.0, errors


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), "40"])
def test_invalid_broadening_is_a_config_error(value):
    with pytest.raises(ConfigError, match="reconstruction_broadening_per_s"):
        PhysicsTrainConfig(model="spectrum_physics", reconstruction_broadening_per_s=value)
