"""The uncertainty head, its calibration, and the fused inference path of ``Quantifier.predict``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _quantifiers import small_config

from scaloquant.errors import ConfigError, InvalidDataError
from scaloquant.io import default_basis
from scaloquant.models import (
    Quantifier,
    QuantifierConfig,
    calibration_factors,
    gaussian_nll,
    inference_copy,
    normal_quantile,
)
from scaloquant.models.cnn import MaxPool1dBy2, MaxPool2dBy2, MaxPool2x2ChannelsLast
from scaloquant.simulate import SimulationConfig
from scaloquant.train.data import draw_signals

MODELS = ("scalogram_cnn", "spectrum_cnn")


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def signals(basis):
    config = SimulationConfig.from_dict({"snr": [10, 100]})
    return draw_signals(basis, config, 64, np.random.default_rng(1))


def _quantifier(basis, signals, model, **kw):
    config = small_config(basis, model, **kw)
    torch.manual_seed(0)
    q = Quantifier(config)
    fids = torch.from_numpy(signals.fids)
    q.fit_normalisation(fids, torch.from_numpy(signals.amplitudes))
    # running BatchNorm statistics away from (0, 1), so that folding them is not trivial
    q.train()
    with torch.no_grad():
        for _ in range(3):
            q(fids)
    return q.eval()


def _scramble_head(q):
    # the head starts at zero (unit variance everywhere); give it signal-dependent outputs
    with torch.no_grad():
        gen = torch.Generator().manual_seed(5)
        weight = q.log_var_head.weight
        weight.copy_(0.05 * torch.randn(weight.shape, generator=gen))


def test_config_uncertainty_defaults_to_none_and_is_checked(basis, signals):
    q = _quantifier(basis, signals, "spectrum_cnn")
    assert q.config.uncertainty == "none" and not q.has_uncertainty
    d = q.config.to_dict()
    assert d["uncertainty"] == "none"
    del d["uncertainty"]  # a checkpoint written before the setting existed
    assert QuantifierConfig.from_dict(d).uncertainty == "none"
    with pytest.raises(ConfigError, match="uncertainty must be one of none, gaussian"):
        QuantifierConfig.from_dict({**d, "uncertainty": "ensemble"})


@pytest.mark.parametrize("model", MODELS)
def test_uncertainty_head_leaves_the_network_and_amplitudes_unchanged(basis, signals, model):
    plain = _quantifier(basis, signals, model)
    with_sd = _quantifier(basis, signals, model, uncertainty="gaussian")
    # same seed, same network weights: the head is created without drawing random numbers
    for (name, a), b in zip(
        plain.network.state_dict().items(), with_sd.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(plain.predict(signals.fids), with_sd.predict(signals.fids))
    assert set(with_sd.state_dict()) - set(plain.state_dict()) == {
        "log_var_head.weight",
        "log_var_head.bias",
        "sd_calibration",
    }


@pytest.mark.parametrize("model", MODELS)
def test_predict_sd_shapes_scale_and_nan_without_uncertainty(basis, signals, model):
    q = _quantifier(basis, signals, model, uncertainty="gaussian")
    _scramble_head(q)
    fids = signals.fids[:6].astype(np.complex128)
    mean, sd = q.predict_with_sd(fids, batch_size=4)
    assert mean.shape == sd.shape == (6, 21) and sd.dtype == np.float64
    assert np.all(np.isfinite(sd)) and np.all(sd > 0)
    np.testing.assert_array_equal(mean, q.predict(fids, batch_size=4))
    # item by item equals the batch (float32 sums in another order: 1e-5)
    single = np.stack([q.predict_with_sd(f)[1][0] for f in fids])
    np.testing.assert_allclose(single, sd, rtol=1e-5)
    # the SD follows the data's scale like the amplitudes do (issue 5)
    for k in (1e-3, 250.0):
        m_k, sd_k = q.predict_with_sd(k * fids)
        np.testing.assert_allclose(sd_k, k * sd, rtol=1e-5)
        np.testing.assert_allclose(m_k, k * mean, rtol=1e-5)
    # the calibration factor multiplies the SD of its metabolite only (same batches: float32
    # sums in another batch order differ in the last bit)
    q.sd_calibration[3] = 2.0
    _, sd2 = q.predict_with_sd(fids, batch_size=4)
    np.testing.assert_allclose(sd2[:, 3], 2 * sd[:, 3], rtol=1e-6)
    np.testing.assert_array_equal(np.delete(sd2, 3, axis=1), np.delete(sd, 3, axis=1))
    plain = _quantifier(basis, signals, model)
    m_plain, sd_plain = plain.predict_with_sd(fids)
    assert m_plain.shape == sd_plain.shape and np.all(np.isnan(sd_plain))


@pytest.mark.parametrize("model", MODELS)
def test_fused_inference_copy_equals_the_network(basis, signals, model):
    q = _quantifier(basis, signals, model)
    feats, _ = q.features(torch.from_numpy(signals.fids[:16]))
    fused = inference_copy(q.network)
    assert not any(
        isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for m in fused.modules()
    )
    assert not any(p.requires_grad for p in fused.parameters())
    with torch.no_grad():
        ref = q.network(feats)
        out = fused(
            feats.contiguous(memory_format=torch.channels_last) if feats.ndim == 4 else feats
        )
    # float32 rounding of the folded weights: 1e-4 relative to the output range
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4 * float(ref.abs().max()))
    with torch.no_grad():
        direct = q(torch.from_numpy(signals.fids)).double().numpy()
    pred = q.predict(signals.fids)
    np.testing.assert_allclose(pred, direct, rtol=0, atol=1e-4 * np.abs(direct).max())


def test_inference_copy_is_rebuilt_when_the_weights_change(basis, signals):
    q = _quantifier(basis, signals, "scalogram_cnn")
    fids = signals.fids[:8]
    first = q.predict(fids)
    cached = q.inference_network()
    assert q.inference_network() is cached  # unchanged weights: reused
    # an optimiser step (in-place update) must invalidate the cache
    optimiser = torch.optim.SGD(q.parameters(), lr=0.1)
    q.train()
    q(torch.from_numpy(fids)).square().mean().backward()
    optimiser.step()
    q.eval()
    with torch.no_grad():
        direct = q(torch.from_numpy(fids)).double().numpy()
    after = q.predict(fids)
    assert not np.allclose(after, first)
    np.testing.assert_allclose(after, direct, rtol=0, atol=1e-4 * np.abs(direct).max())
    assert q.inference_network() is not cached
    # so must loading other weights
    other = _quantifier(basis, signals, "scalogram_cnn")
    q.load_state_dict(other.state_dict())
    np.testing.assert_allclose(q.predict(fids), first, rtol=0, atol=1e-6 * np.abs(first).max())
    # and the cache is no part of the state dict
    assert not any("inference" in k for k in q.state_dict())


def test_predict_restores_training_mode_and_uses_no_autograd(basis, signals):
    q = _quantifier(basis, signals, "spectrum_cnn", uncertainty="gaussian")
    q.train()
    mean, sd = q.predict_with_sd(signals.fids[:3])
    assert q.training and np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))


def test_calibrate_makes_the_95_percent_interval_exact_on_its_signals(basis, signals):
    q = _quantifier(basis, signals, "spectrum_cnn", uncertainty="gaussian")
    _scramble_head(q)
    factors = q.calibrate(signals.fids, signals.amplitudes, level=0.95)
    assert factors.shape == (21,) and np.all(factors > 0)
    torch.testing.assert_close(q.sd_calibration, torch.from_numpy(factors).float())
    mean, sd = q.predict_with_sd(signals.fids)
    inside = np.abs(signals.amplitudes - mean) <= normal_quantile(0.95) * sd * (1 + 1e-6)
    # the factor is the 95 % quantile of |error| / sd: with 64 signals, the 95 % interval holds
    # between floor and ceil of 0.95 * 64 (linear interpolation between order statistics)
    counts = inside.sum(axis=0)
    assert np.all((counts >= 60) & (counts <= 62)), counts
    with pytest.raises(ConfigError, match="no uncertainty head"):
        _quantifier(basis, signals, "spectrum_cnn").calibrate(signals.fids, signals.amplitudes)


def test_calibration_factors_recover_a_known_scale():
    rng = np.random.default_rng(0)
    n, m = 40_000, 3
    sd_pred = rng.uniform(0.5, 2.0, (n, m))
    true_factor = np.array([0.5, 1.0, 3.0])
    truth = rng.normal(0.0, sd_pred * true_factor)
    factors = calibration_factors(truth, np.zeros((n, m)), sd_pred, level=0.95)
    # the sample 95 % quantile of |N(0,1)| has relative sd ~ sqrt(p(1-p)/n)/(q phi(q)) = 0.5 %
    np.testing.assert_allclose(factors, true_factor, rtol=0.02)
    with pytest.raises(InvalidDataError, match="finite and positive"):
        calibration_factors(truth, truth, np.zeros((n, m)))
    with pytest.raises(InvalidDataError, match="one shape"):
        calibration_factors(truth, truth[:, :2], sd_pred)


def test_gaussian_nll_trains_only_the_variance():
    z = torch.zeros(4, 2, requires_grad=True)
    log_var = torch.zeros(4, 2, requires_grad=True)
    z_true = torch.full((4, 2), 2.0)
    loss = gaussian_nll(z, z_true, log_var)
    # 0.5 * (0 + 4 * exp(0)) = 2
    assert float(loss.detach()) == pytest.approx(2.0)
    loss.backward()
    assert z.grad is None
    # d/dv 0.5 (v + r^2 e^-v) / 8 entries at v = 0, r = 2: 0.5 (1 - 4) / 8
    torch.testing.assert_close(log_var.grad, torch.full((4, 2), -1.5 / 8))
    # minimised at v = log r^2
    v = torch.full((4, 2), float(np.log(4.0)), requires_grad=True)
    gaussian_nll(z, z_true, v).backward()
    torch.testing.assert_close(v.grad, torch.zeros(4, 2))


def test_normal_quantile_known_values():
    assert normal_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.68) == pytest.approx(0.994458, abs=1e-6)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        normal_quantile(1.0)


def test_replace_keeps_uncertainty(basis, signals):
    q = _quantifier(basis, signals, "spectrum_cnn", uncertainty="gaussian")
    config = dataclasses.replace(q.config, uncertainty="none")
    assert QuantifierConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("shape", [(3, 5, 8, 12), (2, 4, 7, 9)])
def test_channels_last_max_pool_equals_max_pool_2d(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    out = MaxPool2x2ChannelsLast()(x)
    torch.testing.assert_close(out, torch.nn.MaxPool2d(2)(x), rtol=0, atol=0)
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(
    ("shape", "ours", "torchs"),
    [
        ((3, 5, 8, 12), MaxPool2dBy2, torch.nn.MaxPool2d),
        ((2, 4, 7, 9), MaxPool2dBy2, torch.nn.MaxPool2d),
        ((3, 5, 12), MaxPool1dBy2, torch.nn.MaxPool1d),
        ((2, 4, 11), MaxPool1dBy2, torch.nn.MaxPool1d),
    ],
)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_by_2_has_pytorchs_values_and_gradients(shape, ours, torchs, ties):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen)
    if ties:  # after a ReLU: many equal zeros, and equal positive values in one window
        x = torch.randint(-2, 3, shape, generator=gen).float().relu()
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = ours()(a), torchs(2)(b)
    grad = torch.randn(out_b.shape, generator=gen)
    grad[0] = -0.0  # PyTorch adds the gradient to zeros: -0 arrives as +0
    out_a.backward(grad)
    out_b.backward(grad)
    assert torch.equal(out_a, out_b) and out_a.is_contiguous()
    # the gradient goes to the first maximal element of each window, as PyTorch's
    assert torch.equal(a.grad, b.grad)
    assert torch.equal(a.grad.signbit(), b.grad.signbit())
    # other layouts are PyTorch's own
    cl = x.transpose(-1, -2)
    torch.testing.assert_close(ours()(cl), torchs(2)(cl), rtol=0, atol=0)


def test_default_batch_size_keeps_the_largest_activation_in_the_budget(basis, signals):
    from scaloquant.models.quantifier import CPU_ACTIVATION_BUDGET_BYTES, MAX_BATCH_SIZE
    from scaloquant.train import TrainConfig

    cpu = Quantifier(TrainConfig.preset("cpu").quantifier_config(basis))
    # first block: 8 channels x 128 scales x 384 times, float32 = 1.5 MiB per spectrum
    assert cpu.network.largest_activation == 8 * 128 * 384
    assert cpu.default_batch_size() == CPU_ACTIVATION_BUDGET_BYTES // (8 * 128 * 384 * 4) == 16
    spectrum = Quantifier(TrainConfig.preset("cpu", model="spectrum_cnn").quantifier_config(basis))
    assert spectrum.default_batch_size() == MAX_BATCH_SIZE
    paper = Quantifier(TrainConfig.preset("paper").quantifier_config(basis))
    assert paper.default_batch_size() == 1
    q = _quantifier(basis, signals, "spectrum_cnn")
    with pytest.raises(ConfigError, match="batch_size must be a whole number >= 1"):
        q.predict(signals.fids, batch_size=0)
