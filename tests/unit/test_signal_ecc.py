"""Eddy-current correction by the water reference's phase (Klose 1990,
:mod:`scaloquant.signal.ecc`): a known eddy phase ``A exp(-t / tau)`` is removed, on the same
grid only; FSL-MRS's ``eddy_correct`` gives the same arrays where it is installed."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.errors import IncompatibleDataError, NeedsOption
from scaloquant.signal import axes
from scaloquant.signal.ecc import RELIABLE_OVER_NOISE, eddy_current_corrected

N, DT, MHZ, REF = 2048, 2.5e-4, 123.2, 4.65
T = axes.time_axis_s(N, DT)


def _lines(ppms, amps, damping_hz=6.0):
    """A sum of Lorentzian lines ``(N,)`` at ``ppms`` on the grid above."""
    hz = axes.ppm_to_hz(np.asarray(ppms), MHZ, REF)
    return (np.asarray(amps)[:, None] * np.exp((2j * np.pi * hz[:, None] - damping_hz) * T)).sum(0)


def _eddy(amplitude_rad=0.8, tau_s=0.04):
    return np.exp(1j * amplitude_rad * np.exp(-T / tau_s))


def _grid(**more):
    return (
        dict(dwell_time_s=DT, water_dwell_time_s=DT, spectrometer_freq_mhz=MHZ, ppm_reference=REF)
        | more
    )


def test_known_eddy_phase_removed_to_rounding():
    """A metabolite FID and a water FID on resonance (at the ppm reference, zero phase), both
    under the same eddy phase: the metabolite FID comes back undistorted, every sample."""
    clean = _lines([2.01, 3.03, 3.21], [1.0, 0.8, 0.6])
    water = 3000.0 * np.exp(-8.0 * T)  # noiseless: above its noise everywhere
    got, reliable = eddy_current_corrected(clean * _eddy(), water * _eddy(), **_grid())
    assert int(reliable) == N
    np.testing.assert_allclose(got, clean, rtol=0, atol=1e-12 * np.abs(clean).max())
    # without the correction the distortion is large: the test can fail
    assert np.abs(clean * _eddy() - clean).max() > 0.5


def test_batch_and_per_voxel_water_equal_item_by_item():
    """``(..., N)`` data with one water per voxel (broadcast over a transients axis) equals the
    correction done one spectrum at a time."""
    clean = np.stack([_lines([2.01], [1.0]), _lines([3.03], [0.7])])  # 2 voxels
    eddies = np.stack([_eddy(0.8, 0.04), _eddy(-0.5, 0.02)])
    data = (clean * eddies)[:, None, :].repeat(3, axis=1)  # (2 voxels, 3 transients, N)
    water = (1e3 * np.exp(-8.0 * T) * eddies)[:, None, :]  # (2, 1, N)
    got, _ = eddy_current_corrected(data, water, **_grid())
    for v in range(2):
        one, _ = eddy_current_corrected(data[v, 0], water[v, 0], **_grid())
        np.testing.assert_array_equal(got[v, 1], one)
        np.testing.assert_allclose(one, clean[v], atol=1e-12)


def test_water_in_noise_phase_continued_not_noise():
    """Where the water falls below RELIABLE_OVER_NOISE x its noise, its phase is noise: the
    correction is the water's own phase before that (the data restored to the noise's phase
    error, at most ~1/RELIABLE_OVER_NOISE rad there) and continues at the water's frequency after
    it (the eddy phase has decayed: the residual is what it still changed, < 1e-3 rad here)."""
    rng = np.random.default_rng(0)
    clean = _lines([2.01], [1.0], damping_hz=3.0)
    sd = 1.0
    offset_hz = 7.0  # the water off the reference: its frequency is followed into the noise
    water_clean = 2000.0 * np.exp((2j * np.pi * offset_hz - 20.0) * T)
    noise = sd * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
    eddy = _eddy(0.8, 0.02)
    got, reliable = eddy_current_corrected(clean * eddy, (water_clean + noise) * eddy, **_grid())
    k = int(reliable)
    assert 100 < k < N  # the water decays into its noise within the FID
    # Klose moves the data by the water's offset: the target is the clean FID shifted by it
    target = clean * np.exp(-2j * np.pi * offset_hz * T)
    error = np.abs(np.angle(got / target))
    # before the cut: the phase error of noise on the water, |noise| / |w| (<= ~3 SD / 10 SD)
    assert error[:k].max() < 3.5 / RELIABLE_OVER_NOISE
    # after it, where the water is under its noise SD: its line, not the noise's random phase
    tail = np.abs(water_clean) < sd
    assert tail.sum() > N // 4
    assert np.median(error[tail]) < 0.1
    plain = np.abs(
        np.angle(clean * eddy * np.exp(-1j * np.angle((water_clean + noise) * eddy)) / target)
    )
    assert np.median(plain[tail]) > 1.0  # the tools' plain conj(w)/|w| multiplies noise in


def test_other_grid_refused():
    data = _lines([2.01], [1.0])
    with pytest.raises(IncompatibleDataError, match="same|grid"):
        eddy_current_corrected(data, data[: N // 2], **_grid())
    with pytest.raises(IncompatibleDataError, match="grid"):
        eddy_current_corrected(data, data, **_grid(water_dwell_time_s=2 * DT))
    # the library names its option by key (the CLI words it --ecc)
    with pytest.raises(NeedsOption, match=r"or leave out ecc=True$"):
        eddy_current_corrected(data, data[: N // 2], **_grid())


def test_same_as_fsl_mrs_eddy_correct():
    """FSL-MRS's ``eddy_correct`` (the water's angle subtracted) on the same arrays: equal to
    rounding where the water is above its noise (everywhere, noiseless)."""
    eddycorrect = pytest.importorskip(
        "fsl_mrs.utils.preproc.eddycorrect", reason="fsl_mrs is not installed (not a dependency)"
    )
    data = _lines([2.01, 3.03], [1.0, 0.5]) * _eddy()
    water = 2000.0 * np.exp((2j * np.pi * 4.0 - 8.0) * T) * _eddy()
    ours, _ = eddy_current_corrected(data, water, **_grid())
    np.testing.assert_allclose(ours, eddycorrect.eddy_correct(data, water), atol=1e-12)
