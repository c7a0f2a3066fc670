"""Eq. 1 of the paper: numpy and torch synthesis against a direct float64 loop evaluation."""

import numpy as np
import pytest
import torch

from scaloquant.simulate import SimulationConfig, draw_parameters, synthesize, synthesize_torch
from scaloquant.simulate.parameters import SimulationParameters

DWELL_S = 2.5e-4


def random_basis(n_met: int, n_points: int, seed: int = 0) -> np.ndarray:
    """Decaying complex noise: every sample differs, so any index slip shows."""
    rng = np.random.default_rng(seed)
    decay = np.exp(-np.arange(n_points) / (n_points / 4))
    return (
        rng.standard_normal((n_met, n_points)) + 1j * rng.standard_normal((n_met, n_points))
    ) * decay


def direct_eq1(basis, params, dwell_time_s):
    """Eq. 1 term by term in float64, with the Gaussian factor when present."""
    n_points = basis.shape[1]
    t = np.arange(n_points, dtype=np.float64) * dwell_time_s
    out = np.zeros((params.n_signals, n_points), dtype=np.complex128)
    for b in range(params.n_signals):
        for m in range(basis.shape[0]):
            rate = -params.damping_per_s[b, m] + 2j * np.pi * params.shift_hz[b, m]
            term = params.amplitudes[b, m] * basis[m] * np.exp(rate * t)
            if params.gaussian_damping_per_s is not None:
                term = term * np.exp(-((params.gaussian_damping_per_s[b, m] * t) ** 2))
            out[b] += term
    return out


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def draw(n, n_met, lineshape="lorentzian", seed=1):
    config = SimulationConfig.from_dict({"lineshape": lineshape})
    names = [f"m{i}" for i in range(n_met)]
    return draw_parameters(config, n, np.random.default_rng(seed), names=names)


# 1000 points is not a multiple of the inner block (64): checks the zero padding of the split.
@pytest.mark.parametrize("n_points", [2048, 1000])
@pytest.mark.parametrize("lineshape", ["lorentzian", "gaussian", "voigt"])
def test_matches_direct_float64_evaluation(n_points, lineshape):
    basis = random_basis(5, n_points)
    params = draw(70, 5, lineshape)  # 70 > one 64-signal pass: checks the pass boundaries
    got = synthesize(basis, params, DWELL_S)
    assert got.shape == (70, n_points) and got.dtype == np.complex128
    # float64 throughout: the issue asks for < 1e-5; rounding alone gives ~1e-15
    assert rel_err(got, direct_eq1(basis, params, DWELL_S)) < 1e-12


def test_each_signal_matches_its_own_direct_evaluation():
    basis = random_basis(3, 512)
    params = draw(9, 3, "voigt")
    got = synthesize(basis, params, DWELL_S)
    want = direct_eq1(basis, params, DWELL_S)
    per_signal = np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)
    assert per_signal.max() < 1e-5


def test_linear_in_the_amplitudes():
    basis = random_basis(4, 512)
    p = draw(6, 4)
    other = np.random.default_rng(9).uniform(0, 1, p.amplitudes.shape)

    def with_amplitudes(a):
        return synthesize(basis, SimulationParameters(a, p.damping_per_s, p.shift_hz), DWELL_S)

    s1, s2 = with_amplitudes(p.amplitudes), with_amplitudes(other)
    assert rel_err(with_amplitudes(p.amplitudes + other), s1 + s2) < 1e-12
    assert rel_err(with_amplitudes(3.5 * p.amplitudes), 3.5 * s1) < 1e-12
    assert np.all(with_amplitudes(np.zeros_like(other)) == 0)


def test_zero_damping_and_shift_return_the_weighted_basis_sum():
    basis = random_basis(3, 256)
    amplitudes = np.array([[0.2, 0.0, 1.5]])
    zeros = np.zeros_like(amplitudes)
    got = synthesize(basis, SimulationParameters(amplitudes, zeros, zeros), DWELL_S)
    assert rel_err(got[0], amplitudes[0] @ basis) < 1e-14


def test_batch_equals_item_by_item():
    basis = random_basis(4, 512)
    params = draw(5, 4, "voigt")
    batch = synthesize(basis, params, DWELL_S)
    for i in range(5):
        one = synthesize(basis, params.take(slice(i, i + 1)), DWELL_S)
        np.testing.assert_allclose(one[0], batch[i], rtol=0, atol=1e-13)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="metabolites"):
        synthesize(random_basis(3, 64), draw(2, 4), DWELL_S)


def torch_devices():
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("lineshape", ["lorentzian", "voigt"])
def test_torch_matches_numpy(device, lineshape):
    basis = random_basis(5, 1000)
    params = draw(70, 5, lineshape)
    want = direct_eq1(basis, params, DWELL_S)
    t128 = synthesize_torch(torch.as_tensor(basis, device=device), params, DWELL_S)
    assert t128.dtype == torch.complex128 and t128.device.type == device
    assert rel_err(t128.cpu().numpy(), want) < 1e-12
    t64 = synthesize_torch(
        torch.as_tensor(basis, dtype=torch.complex64, device=device), params, DWELL_S
    )
    assert t64.dtype == torch.complex64
    # float32 products of exponentials of phases up to ~10 rad: ~1e-6, within the 1e-5
    assert rel_err(t64.cpu().numpy().astype(np.complex128), want) < 1e-5


def test_torch_pass_size_does_not_change_the_result():
    basis = torch.as_tensor(random_basis(3, 256))
    params = draw(10, 3)
    a = synthesize_torch(basis, params, DWELL_S, signals_per_pass=3)
    b = synthesize_torch(basis, params, DWELL_S, signals_per_pass=100)
    assert torch.allclose(a, b, rtol=0, atol=1e-13)


def test_torch_refuses_a_real_basis():
    with pytest.raises(TypeError, match="complex"):
        synthesize_torch(torch.zeros(3, 64), draw(2, 3), DWELL_S)
