"""Residual water removed by HLSVD: the water line goes, the metabolite lines stay; the
decomposition (Gram matrix + subset eigensolver) is the full-SVD HLSVD's (``oracle``) to
rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import oracle
from scaloquant.io import read_fid
from scaloquant.signal import axes
from scaloquant.signal.water import (
    GRAM_MIN_SINGULAR_RATIO,
    WATER_BAND_PPM,
    hlsvd_components,
    remove_water,
)

INVIVO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "invivo"


def _line(t, ref, mhz, ppm, amp, fwhm_hz, phase=0.0):
    return amp * np.exp(1j * phase + (2j * np.pi * (ppm - ref) * mhz - np.pi * fwhm_hz) * t)


def test_hlsvd_removes_the_water_line_and_keeps_naa():
    n, dwell, mhz, ref = 2048, 5e-4, 127.75, 4.65
    t = np.arange(n) * dwell
    rng = np.random.default_rng(0)

    def line(ppm, amp, fwhm_hz):
        return _line(t, ref, mhz, ppm, amp, fwhm_hz)

    metabolites = line(2.008, 1.0, 5.0) + line(3.027, 0.8, 5.0) + line(4.05, 0.2, 8.0)
    noise = 1e-3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    water = line(4.68, 100.0, 10.0) + line(4.62, 20.0, 25.0)
    out = remove_water((metabolites + water + noise)[None], dwell, mhz, ref)[0]
    ppm = axes.ppm_axis(n, dwell, mhz, ref)
    before = axes.spectrum(metabolites + water + noise)
    after, truth = axes.spectrum(out), axes.spectrum(metabolites + noise)
    band = (ppm > 4.5) & (ppm < 4.9)
    assert np.abs(after[band]).max() < 0.01 * np.abs(before[band]).max()
    window = (ppm > 0.2) & (ppm < 4.2)
    # what is left in the window is the metabolites to within 2% of the NAA peak
    err = np.abs(after[window] - truth[window]).max() / np.abs(truth[window]).max()
    assert err < 0.02, err


def _takes_the_gram_path(x: np.ndarray) -> bool:
    """Whether ``hlsvd_components`` decomposes ``x`` by the Gram matrix (not its SVD
    fallback): the Hankel matrix' ``s_25 / s_1`` of its first 512 samples."""
    n = min(x.shape[-1], 512)
    s = np.linalg.svd(
        np.lib.stride_tricks.sliding_window_view(x[:n], n - n // 2 + 1)[: n // 2],
        compute_uv=False,
    )
    return s[24] >= GRAM_MIN_SINGULAR_RATIO * s[0]


def test_hlsvd_poles_and_amplitudes_are_the_full_svds():
    # five lines (two of water) + noise: all 25 components, the 20 noise ones included,
    # are the full-SVD HLSVD's to rounding (measured: poles 2e-10, amplitudes 6e-9 relative)
    n, dwell, mhz, ref = 1024, 5e-4, 123.2, 4.65
    t = np.arange(n) * dwell
    rng = np.random.default_rng(3)
    lines = [(2.008, 1.0, 5.0, 0.0), (3.027, 0.8, 5.0, 0.3), (3.2, 0.5, 6.0, 0.0)]
    lines += [(4.68, 30.0, 10.0, 1.0), (4.62, 8.0, 25.0, 2.0)]
    x = sum(_line(t, ref, mhz, *spec) for spec in lines)
    x = x + 0.05 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    assert _takes_the_gram_path(x)
    freq_ref, amps_ref, poles_ref = oracle.hlsvd_full_svd(x, dwell)
    freq, (amps, poles) = hlsvd_components(x, dwell)
    first, second = np.argsort(freq_ref), np.argsort(freq)
    np.testing.assert_allclose(freq[second], freq_ref[first], atol=1e-6)  # Hz
    np.testing.assert_allclose(poles[second], poles_ref[first], rtol=0, atol=1e-8)
    np.testing.assert_allclose(amps[second], amps_ref[first], rtol=1e-6, atol=1e-9)
    # and they are the lines: the two water lines' frequencies (amplitudes 30 and 8)
    strong = np.abs(amps_ref[first]) > 5.0
    hz = axes.ppm_to_hz(np.array([4.62, 4.68]), mhz, ref)
    np.testing.assert_allclose(freq[second][strong], hz, atol=0.5)


@pytest.mark.skipif(not INVIVO.is_dir(), reason="../shared/data/invivo is absent")
@pytest.mark.parametrize(
    "path",
    [
        "siemens-press30-suspect/nifti/SVS_30_rda.nii.gz",  # water 25 times NAA
        "philips-press30-spant/nifti_spec2nii/metab.nii.gz",
        "philips-press-osprey/nifti/UnEdited/sub-01_PRESS_35_act.nii.gz",
    ],
)
def test_water_removed_from_a_scanner_spectrum_as_by_the_full_svd(path):
    fid = read_fid(INVIVO / path)
    x = fid.samples.reshape(-1, fid.n_points)
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    assert _takes_the_gram_path(x[0])
    water = oracle.hlsvd_band_fid(x[0], *grid, WATER_BAND_PPM)
    assert np.abs(water).max() > 0
    out = remove_water(x, *grid)
    err = np.abs(out[0] - (x[0] - water)).max() / np.abs(water).max()
    assert err < 1e-8, err


def test_remove_water_gives_the_same_fids_on_any_number_of_threads():
    n, dwell, mhz, ref = 1024, 5e-4, 123.2, 4.65
    t = np.arange(n) * dwell
    rng = np.random.default_rng(4)
    water = _line(t, ref, mhz, 4.68, 20.0, 10.0) + _line(t, ref, mhz, 2.0, 1.0, 5.0)
    noise = 0.05 * (rng.standard_normal((5, n)) + 1j * rng.standard_normal((5, n)))
    fids = water * rng.uniform(0.5, 2.0, (5, 1)) + noise
    fids[2] = 0  # an all-zero FID stays zero
    one = remove_water(fids, dwell, mhz, ref)
    assert not np.any(one[2])
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(remove_water(fids, dwell, mhz, ref, threads=threads), one)
    with pytest.raises(ValueError, match="threads"):
        remove_water(fids, dwell, mhz, ref, threads=0)


def test_scipy_wrapper_gives_the_same_subspace_where_the_capsule_is_missing(monkeypatch):
    """Where scipy exposes no ``zheevr`` capsule, :func:`_leading_eigh` falls back to
    ``scipy.linalg.eigh``: the same eigenpairs to rounding."""
    from scaloquant.signal import water

    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 40)) + 1j * rng.standard_normal((40, 40))
    lower = np.tril(a @ a.conj().T)
    direct = water._leading_eigh(lower.copy(), 5)
    monkeypatch.setattr(water, "_zheevr", lambda: None)
    fallback = water._leading_eigh(lower.copy(), 5)
    np.testing.assert_allclose(fallback[0], direct[0], rtol=1e-10)
    overlap = np.abs(fallback[1].conj().T @ direct[1])
    np.testing.assert_allclose(overlap, np.eye(5), atol=1e-8)
