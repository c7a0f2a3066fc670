"""The torch physics model against the float64 numpy oracle (``tests/oracle.py``), and a batch
against item by item."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import oracle
from scaloquant.physics import model
from scaloquant.signal import axes

M, N, DWELL_S, B = 5, 512, 5e-4, 4
GROUP_OF = np.array([0, 0, 1, 1, 0])


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture
def setup():
    rng = np.random.default_rng(3)
    fids = rng.normal(size=(M, N)) + 1j * rng.normal(size=(M, N))
    fids *= np.exp(-np.arange(N) * DWELL_S * 5)
    params = dict(
        damping=rng.uniform(0, 20, (B, 2)),
        shift=rng.uniform(-5, 5, (B, 2)),
        gauss=rng.uniform(0, 300, (B, 2)),
        phi0=rng.uniform(-1, 1, B),
        phi1=rng.uniform(-0.1, 0.1, B),
        damping_dev=rng.uniform(-1, 1, (B, M)),
        shift_dev=rng.uniform(-1, 1, (B, M)),
    )
    ppm_all = axes.ppm_axis(N, DWELL_S, 123.2, 4.65)
    window = np.flatnonzero((ppm_all > 0.2) & (ppm_all < 4.2))
    fft_index = np.fft.fftshift(np.arange(N))[window]
    return fids, GROUP_OF, params, ppm_all[window], window, fft_index


def torch_columns(fids, group_of, p, ppm, fft_index, pivot=4.65, deviations=False):
    g = torch.as_tensor(group_of)
    dev = (
        (torch.as_tensor(p["damping_dev"]), torch.as_tensor(p["shift_dev"]))
        if deviations
        else (None, None)
    )
    rates = model.lineshape_rates(
        torch.as_tensor(p["damping"]), torch.as_tensor(p["shift"]), g, *dev
    )
    t = torch.as_tensor(np.arange(fids.shape[1]) * DWELL_S)
    gauss = None if p["gauss"] is None else torch.as_tensor(p["gauss"])
    z = model.modulated_fids(torch.as_tensor(fids), t, rates, gauss, g)
    phase = model.phase_factor(
        torch.as_tensor(p["phi0"]), torch.as_tensor(p["phi1"]), torch.as_tensor(ppm), pivot
    )
    return (model.window_columns(z, torch.as_tensor(fft_index)) * phase[..., None]).numpy()


LINESHAPES = {  # (Lorentzian damping on, Gaussian decay on)
    "lorentzian": (True, False),
    "gaussian": (False, True),
    "voigt": (True, True),
}


@pytest.mark.parametrize("deviations", [False, True])
@pytest.mark.parametrize("lineshape", list(LINESHAPES))
def test_torch_model_equals_the_numpy_oracle(setup, lineshape, deviations):
    """float64 throughout, grouped metabolites, phases: the split exponential and the FFT differ
    from the oracle's exp of every sample only by rounding (~1e-15 relative)."""
    fids, group_of, p, ppm, window, fft_index = setup
    lorentz, gauss = LINESHAPES[lineshape]
    p = {**p, "gauss": p["gauss"] if gauss else None}
    if not lorentz:
        p["damping"] = np.zeros_like(p["damping"])
    cols = torch_columns(fids, group_of, p, ppm, fft_index, deviations=deviations)
    for b in range(B):
        z = oracle.modulated_fids(
            fids,
            DWELL_S,
            p["damping"][b],
            p["shift"][b],
            None if p["gauss"] is None else p["gauss"][b],
            group_of,
            p["damping_dev"][b] if deviations else None,
            p["shift_dev"][b] if deviations else None,
        )
        ref = oracle.window_columns(z, window, ppm, p["phi0"][b], p["phi1"][b], 4.65)
        assert rel_err(cols[b], ref) < 1e-12


def test_synthesize_equals_the_oracle_fid(setup):
    fids, group_of, p, *_ = setup
    g = torch.as_tensor(group_of)
    rates = model.lineshape_rates(torch.as_tensor(p["damping"]), torch.as_tensor(p["shift"]), g)
    t = torch.as_tensor(np.arange(N) * DWELL_S)
    a = np.random.default_rng(5).uniform(0, 2, (B, M))
    out = model.synthesize(
        torch.as_tensor(fids), t, torch.as_tensor(a), rates, torch.as_tensor(p["gauss"]), g
    ).numpy()
    for b in range(B):
        ref = oracle.fid(
            fids, DWELL_S, a[b], p["damping"][b], p["shift"][b], p["gauss"][b], group_of
        )
        assert rel_err(out[b], ref) < 1e-12


def test_exp_ramp_equals_exp_of_every_sample():
    """The one ramp of the package (lineshapes, water lines, first-order phase), for a length
    with and without a divisor near its square root."""
    rate = torch.as_tensor(np.random.default_rng(1).uniform(-30, 0, (3, 2)) + 1j * 500.0)
    for n in (2048, 1021):
        t = torch.as_tensor(np.arange(n) * DWELL_S)
        got = model.exp_ramp(rate, t).numpy()
        want = np.exp(rate.numpy()[..., None] * t.numpy())
        assert got.shape == (3, 2, n)
        assert rel_err(got, want) < 1e-12


def test_batch_equals_item_by_item(setup):
    fids, group_of, p, ppm, window, fft_index = setup
    cols = torch_columns(fids, group_of, p, ppm, fft_index)
    for b in range(cols.shape[0]):
        one = {k: v[b : b + 1] for k, v in p.items()}
        np.testing.assert_allclose(
            torch_columns(fids, group_of, one, ppm, fft_index)[0], cols[b], rtol=1e-12
        )


def test_synthesize_is_the_amplitude_weighted_sum(setup):
    fids, group_of, p, *_ = setup
    g = torch.as_tensor(group_of)
    rates = model.lineshape_rates(torch.as_tensor(p["damping"]), torch.as_tensor(p["shift"]), g)
    t = torch.as_tensor(np.arange(fids.shape[1]) * DWELL_S)
    a = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    z = model.modulated_fids(torch.as_tensor(fids), t, rates, torch.as_tensor(p["gauss"]), g)
    out = model.synthesize(torch.as_tensor(fids), t, a, rates, torch.as_tensor(p["gauss"]), g)
    np.testing.assert_allclose(out.numpy(), np.einsum("bm,bmn->bn", a.numpy(), z.numpy()))


def test_times_real_equals_the_complex_product():
    """The interleaved real product (new array, into ``out``, in place, a column that is not
    contiguous, a factor broadcast along the rows or per row) is the complex product with the
    factor promoted, exactly."""
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(4, 3, 16, dtype=torch.complex128, generator=gen)
    for real in (
        torch.rand(16, dtype=torch.float64, generator=gen),
        torch.rand(4, 1, 16, dtype=torch.float64, generator=gen),
        torch.rand(4, 3, 1, dtype=torch.float64, generator=gen),
    ):
        want = z * real.to(z.dtype)
        assert torch.equal(model.times_real(z, real), want)
        out = torch.empty_like(z)
        assert model.times_real(z, real, out=out) is out and torch.equal(out, want)
        same = z.clone()
        assert model.times_real(same, real, out=same) is same and torch.equal(same, want)
    strided = z.mT  # (4, 16, 3): rows not contiguous
    real = torch.rand(3, dtype=torch.float64, generator=gen)
    assert torch.equal(model.times_real(strided, real), strided * real.to(z.dtype))
    copy = strided.clone().mT.contiguous().mT  # the same layout, its own memory
    model.times_real(copy, real, out=copy)
    assert torch.equal(copy, strided * real.to(z.dtype))


def test_times_real_in_place_keeps_the_gradient():
    leaf = torch.randn(2, 8, dtype=torch.complex128, requires_grad=True)
    real = torch.rand(8, dtype=torch.float64)
    z = leaf * 1.0
    model.times_real(z, real, out=z).abs().square().sum().backward()
    torch.testing.assert_close(leaf.grad, 2 * leaf.detach() * real**2)


def test_real_weighted_sum_equals_the_complex_product():
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(5, 6, 32, dtype=torch.complex64, generator=gen)
    w = torch.rand(5, 2, 6, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(
        model.real_weighted_sum(w, z), w.to(z.dtype) @ z, rtol=1e-6, atol=1e-6
    )
    assert model.real_weighted_sum(w[0], z).shape == (5, 2, 32)  # one (G, M) for the batch


def test_fft_over_its_input_equals_the_fft():
    z = torch.randn(3, 64, dtype=torch.complex64, generator=torch.Generator().manual_seed(5))
    want = model.fft(z.clone())
    assert torch.equal(model.fft(z, overwrite=True), want)


@pytest.mark.parametrize("max_runs", [2, 8])
def test_gaussian_of_group_runs_equals_per_metabolite_decay(setup, monkeypatch, max_runs):
    """Groups in runs of metabolites, applied run by run, and more than ``MAX_GAUSS_RUNS``
    runs, where the factor is gathered per metabolite: both the decay of each member."""
    monkeypatch.setattr(model, "MAX_GAUSS_RUNS", max_runs)
    fids, *_ = setup
    m = fids.shape[0]
    group_of = torch.arange(m) % 2  # alternating groups: m runs
    t = torch.as_tensor(np.arange(fids.shape[1]) * DWELL_S)
    gen = torch.Generator().manual_seed(6)
    rates = torch.complex(
        -10 * torch.rand(3, m, generator=gen, dtype=torch.float64),
        50 * torch.randn(3, m, generator=gen, dtype=torch.float64),
    )
    beta = 200 * torch.rand(3, 2, generator=gen, dtype=torch.float64)
    base = torch.as_tensor(fids)
    got = model.modulated_fids(base, t, rates, beta, group_of)
    want = base * torch.exp(rates[..., None] * t - beta[:, group_of, None] * t**2)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12 * want.abs().max().item())
