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
