"""Test-time adaptation of a physics-head model (:mod:`scaloquant.models.adapt`).

Known answer: a small ``spectrum_physics`` model trained for a few seconds on one ``invivo``
distribution (clean, noiseless: narrow lines, shifts within +-0.02 ppm, phases within +-20
deg) quantifies spectra of a shifted one (shifts 0.05-0.08 ppm, broader lines, phases 20-60
deg) with its true amplitudes known. Adapting the encoder to those spectra by the
reconstruction loss alone must lower the reconstruction error and the network's (``K = 0``)
amplitude error against the truth; the model given must stay as it was.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from scaloquant.errors import ConfigError
from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.models.adapt import AdaptConfig, adapt_encoder, reconstruction_error
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.simulate import BaselineConfig
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.train.physics import PhysicsTrainConfig, train_physics

#: What the model is trained on: everything the fit's model represents, noiseless, narrow.
TRAIN_PRIOR = InvivoPrior(
    water_fraction=0.0,
    eddy_fraction=0.0,
    baseline=BaselineConfig(height_range=(0.0, 0.0)),
    snr_range=(1e9, 1e9 + 1),
    shift_range_ppm=(-0.02, 0.02),
    singlet_fwhm_range_ppm=(0.03, 0.06),
    phase0_range_deg=(-20.0, 20.0),
)
#: Outside what it saw: shifted, broader, more phase.
SHIFTED_PRIOR = replace(
    TRAIN_PRIOR,
    shift_range_ppm=(0.05, 0.08),
    singlet_fwhm_range_ppm=(0.06, 0.10),
    phase0_range_deg=(20.0, 60.0),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("adapt") / "m.ckpt"
    config = PhysicsTrainConfig(
        model="spectrum_physics",
        max_steps=60,
        max_time_s=None,
        batch_size=16,
        n_val=16,
        validate_every=30,
        n_normalisation=32,
        widths=(8, 8, 16, 16, 32, 32),
        polish_iterations=0,
        seed=0,
    )
    train_physics(config, default_basis(), path, prior=TRAIN_PRIOR, log=lambda _: None)
    return load_model(path).quantifier


def _shifted(model, n: int, seed: int):
    basis = default_basis()
    params = draw_invivo(SHIFTED_PRIOR, basis.names, n, np.random.default_rng(seed))
    _, truth = invivo_truth(model.problem(), params)
    return render_invivo(basis, params).fids, truth


def _mae(model, fids, truth) -> float:
    estimate = model.predict(fids, polish_iterations=0)
    metabolites = [
        i for i, m in enumerate(model.metabolites) if m not in model.config.macromolecules
    ]
    return float(np.abs(estimate - truth)[:, metabolites].mean())


def test_adaptation_lowers_the_reconstruction_error_and_the_amplitude_error(trained):
    fids, truth = _shifted(trained, 24, seed=5)
    weights = {k: v.clone() for k, v in trained.state_dict().items()}
    before_error = reconstruction_error(trained, fids)
    result = adapt_encoder(
        trained, fids, AdaptConfig(steps=40, learning_rate=1e-3, batch_size=8, check_every=20)
    )
    # the model given is untouched
    for k, v in trained.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert result.reconstruction_before == pytest.approx(before_error.mean(), rel=1e-9)
    after_error = reconstruction_error(result.model, fids)
    assert result.reconstruction_after == pytest.approx(after_error.mean(), rel=1e-9)
    # measured (seed 0, 60 training steps): 0.78 -> 0.017
    assert result.reconstruction_after < 0.5 * result.reconstruction_before
    assert result.best_step > 0
    # the amplitudes against the truth, network only (K = 0); measured 4.20 -> 1.45 mM
    mae_before, mae_after = _mae(trained, fids, truth), _mae(result.model, fids, truth)
    assert mae_after < 0.8 * mae_before, (mae_before, mae_after)


def test_same_seed_same_result_and_zero_steps_is_the_model(trained):
    fids, _ = _shifted(trained, 8, seed=6)
    config = AdaptConfig(steps=4, learning_rate=1e-3, batch_size=3, check_every=2, seed=1)
    a, b = (adapt_encoder(trained, fids, config) for _ in range(2))
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    none = adapt_encoder(trained, fids, replace(config, steps=0))
    assert none.best_step == 0
    assert none.reconstruction_after == none.reconstruction_before
    np.testing.assert_array_equal(
        none.model.predict(fids, polish_iterations=0), trained.predict(fids, polish_iterations=0)
    )


@pytest.mark.parametrize(
    "bad", [dict(steps=-1), dict(learning_rate=0.0), dict(batch_size=0), dict(steps=1.5)]
)
def test_config_errors(bad):
    with pytest.raises(ConfigError):
        AdaptConfig(**bad)
