"""Options beyond the paper do what the docs say: SNR, phase, global shift/damping, lineshapes,
baseline. Known answers on analytic singlets (2048 points, 0.25 ms, 123.26 MHz, like the basis).
"""

import numpy as np
import pytest

import oracle
from scaloquant.errors import IncompatibleDataError
from scaloquant.signal import axes, lineshapes
from scaloquant.simulate import SimulationConfig, drawn_parameters, simulate_batch, synthesize
from scaloquant.simulate.effects import baseline_fids
from scaloquant.types import BasisSet

N, DWELL_S, MHZ, REF = 2048, 2.5e-4, 123.26, 4.65
ZERO_FILL = 16 * N


def singlet_basis(damping_per_s=10.0, peaks=(("Cr", 3.03), ("NAA", 2.01), ("Lac", 1.31))):
    fids = [
        lineshapes.singlet_fid(N, DWELL_S, MHZ, REF, ppm, damping_per_s=damping_per_s)
        for _, ppm in peaks
    ]
    return BasisSet([name for name, _ in peaks], np.array(fids), DWELL_S, MHZ, REF)


def simulate(basis, mapping, n=32, seed=0):
    return simulate_batch(
        basis, SimulationConfig.from_dict(mapping), n, np.random.default_rng(seed)
    )


def clean_copy(basis, out):
    """The same signals without baseline, phase and noise (Eq. 1 only)."""
    return synthesize(basis.fids, drawn_parameters(out), basis.dwell_time_s)


def freq_axis_zf():
    # zero-filling keeps the spectral width: bins of 1 / (ZERO_FILL * dwell) Hz
    return np.fft.fftshift(np.fft.fftfreq(ZERO_FILL, DWELL_S))


def peak_hz(fid, near_hz, half_width_hz=15.0):
    """Peak of |spectrum| near ``near_hz``, refined by a parabola through three bins."""
    f = freq_axis_zf()
    mag = np.abs(axes.spectrum(fid, ZERO_FILL))
    idx = np.flatnonzero(np.abs(f - near_hz) < half_width_hz)
    k = idx[np.argmax(mag[idx])]
    a, b, c = mag[k - 1], mag[k], mag[k + 1]
    return f[k] + 0.5 * (a - c) / (a - 2 * b + c) * (f[1] - f[0])


def line_spectrum(fid):
    """Zero-filled spectrum with the first point halved.

    The DFT of a FID sampled from t = 0 puts half the first point as a constant offset under the
    line (0.4-0.6 % of the peak here), which would widen it; halving it removes the offset.
    """
    fid = fid.copy()
    fid[0] /= 2
    return axes.spectrum(fid, ZERO_FILL)


def fwhm_hz(fid):
    """Full width at half maximum of the real line spectrum (linear interpolation)."""
    re = line_spectrum(fid).real
    return oracle.half_max_width(freq_axis_zf(), re, int(np.argmax(re)))


def test_snr_definition_holds():
    basis = singlet_basis()
    out = simulate(basis, {"snr": 25}, n=64)
    clean = clean_copy(basis, out)
    ppm = basis.ppm_axis()
    window = (ppm >= 1.9) & (ppm <= 2.1)
    height = axes.spectrum(clean).real[:, window].max(axis=1)  # the reference peak, by hand
    np.testing.assert_allclose(out.parameters["reference_height"], height, rtol=1e-12)
    noise_spectrum = axes.spectrum(out.fids - clean)
    # in units of (peak height / SNR) the real and imaginary noise have sd 1; 64 x 2048 values
    # estimate an sd to ~0.3 %, so 2 % is a safe and still sharp bound
    for part in (noise_spectrum.real, noise_spectrum.imag):
        scaled = part / (height / 25.0)[:, None]
        assert abs(scaled.std() - 1.0) < 0.02
    np.testing.assert_allclose(out.parameters["noise_sd"], height / (25 * np.sqrt(N)), rtol=1e-12)


def test_snr_range_is_drawn_per_signal():
    out = simulate(singlet_basis(), {"snr": [5, 50]}, n=16)
    assert out.parameters["snr"].min() >= 5 and out.parameters["snr"].max() <= 50
    assert np.unique(out.parameters["noise_sd"]).size == 16


def test_noiseless_by_default():
    basis = singlet_basis()
    out = simulate(basis, {}, n=4)
    assert "noise_sd" not in out.parameters and "reference_height" not in out.parameters
    np.testing.assert_array_equal(out.fids, clean_copy(basis, out))


def test_zero_order_phase_of_90_degrees_turns_absorption_into_dispersion():
    # NAA exactly on a frequency bin (-166 bins of 4000/2048 Hz), no shift: the unphased real
    # spectrum is the absorption line, peaking at that bin with a zero imaginary part there
    on_bin_ppm = REF - 166 * (1 / (N * DWELL_S)) / MHZ
    basis = singlet_basis(peaks=(("NAA", on_bin_ppm),))
    fixed = {"shift_range_hz": [0, 0], "amplitude_range": [1, 1], "phase0_range_deg": [90, 90]}
    out = simulate(basis, fixed, n=1)
    before = axes.spectrum(clean_copy(basis, out))[0]
    after = axes.spectrum(out.fids)[0]
    np.testing.assert_allclose(after, 1j * before, atol=1e-9 * np.abs(before).max())
    k = int(np.argmax(before.real))
    assert k == N // 2 - 166
    # the real part is now the dispersion line: zero at the peak, odd around it
    assert abs(after.real[k]) < 1e-9 * before.real[k]
    for j in (1, 3, 10):
        assert after.real[k + j] == pytest.approx(-after.real[k - j], rel=1e-9)
        assert abs(after.real[k + j]) > 1e-3 * before.real[k]
    assert after.imag[k] == pytest.approx(before.real[k])


def test_first_order_phase_is_linear_in_ppm_around_the_pivot():
    basis = singlet_basis()
    mapping = {
        "phase0_range_deg": [10, 10],
        "phase1_range_deg_per_ppm": [30, 30],
        "phase1_pivot_ppm": 2.0,
    }
    out = simulate(basis, mapping, n=2)
    before = axes.spectrum(clean_copy(basis, out))
    after = axes.spectrum(out.fids)
    expected = np.exp(1j * np.deg2rad(10 + 30 * (basis.ppm_axis() - 2.0)))
    strong = np.abs(before) > 1e-3 * np.abs(before).max()
    np.testing.assert_allclose(
        (after / before)[strong], np.broadcast_to(expected, after.shape)[strong], rtol=1e-9
    )


def test_global_shift_moves_every_peak_by_that_many_hz():
    basis = singlet_basis()
    mapping = {
        "per_metabolite": False,
        "shift_range_hz": [7, 7],
        "damping_range_per_s": [0, 0],
        "amplitude_range": [1, 1],
    }
    out = simulate(basis, mapping, n=1)
    reference = basis.fids.sum(axis=0)
    for ppm in (3.03, 2.01, 1.31):
        f0 = axes.ppm_to_hz(ppm, MHZ, REF)
        # parabolic refinement on a 0.12 Hz grid: the peak is found to ~0.01 Hz
        assert peak_hz(out.fids[0], f0 + 7) - peak_hz(reference, f0) == pytest.approx(7, abs=0.02)


def test_global_damping_multiplies_by_one_exponential():
    basis = singlet_basis()
    mapping = {
        "per_metabolite": False,
        "damping_range_per_s": [8, 8],
        "shift_range_hz": [0, 0],
        "amplitude_range": [1, 1],
    }
    out = simulate(basis, mapping, n=1)
    want = basis.fids.sum(axis=0) * np.exp(-8 * basis.time_axis_s())
    np.testing.assert_allclose(out.fids[0], want, rtol=0, atol=1e-12)


def one_line(mapping):
    """A single undamped singlet given the lineshape of ``mapping`` (shift 0, amplitude 1)."""
    basis = singlet_basis(damping_per_s=0.0, peaks=(("NAA", 2.01),))
    fixed = {"shift_range_hz": [0, 0], "amplitude_range": [1, 1], **mapping}
    return simulate(basis, fixed, n=1).fids[0]


def test_lorentzian_width():
    # FWHM = alpha / pi; 16x zero-filling and linear interpolation resolve it to ~0.02 Hz
    assert fwhm_hz(one_line({"damping_range_per_s": [30, 30]})) == pytest.approx(
        30 / np.pi, abs=0.05
    )


def test_gaussian_width():
    line = one_line({"lineshape": "gaussian", "gaussian_damping_range_per_s": [40, 40]})
    assert fwhm_hz(line) == pytest.approx(lineshapes.gaussian_fwhm_hz(40.0), abs=0.05)
    # a Gaussian line, not a Lorentzian one: the tails at 3 FWHM are ~1e-11 of the peak
    re = line_spectrum(line).real
    f = freq_axis_zf() - axes.ppm_to_hz(2.01, MHZ, REF)
    assert np.abs(re[np.abs(f - 3 * 21.2) < 0.1]).max() < 1e-6 * re.max()


def test_voigt_width():
    fl, fg = 20 / np.pi, lineshapes.gaussian_fwhm_hz(20.0)
    line = one_line(
        {
            "lineshape": "voigt",
            "damping_range_per_s": [20, 20],
            "gaussian_damping_range_per_s": [20, 20],
        }
    )
    # Olivero & Longbothum (1977) approximation of the Voigt FWHM, accurate to 0.02 %
    voigt = 0.5346 * fl + np.sqrt(0.2166 * fl**2 + fg**2)
    assert fwhm_hz(line) == pytest.approx(voigt, rel=0.005)


def test_baseline_hump_height_position_and_width():
    acq = singlet_basis().acquisition
    fid = baseline_fids(
        acq, np.array([[3.0]]), np.array([[0.5]]), np.array([[0.2]]), np.array([1000.0])
    )[0]
    re = axes.spectrum(fid).real
    ppm = acq.ppm_axis()
    k = int(np.argmax(re))
    assert re[k] == pytest.approx(200.0, rel=0.01)  # height * reference height
    assert ppm[k] == pytest.approx(3.0, abs=0.01)
    assert fwhm_hz(fid) / MHZ == pytest.approx(0.5, rel=0.02)


def test_baseline_is_reproduced_from_its_recorded_parameters():
    basis = singlet_basis()
    out = simulate(basis, {"baseline": {"n_humps": 2}}, n=8)
    p = out.parameters
    recorded = baseline_fids(
        basis.acquisition,
        p["baseline_centre_ppm"],
        p["baseline_fwhm_ppm"],
        p["baseline_height"],
        out.parameters["reference_height"],
    )
    np.testing.assert_allclose(out.fids - clean_copy(basis, out), recorded, atol=1e-9)
    assert np.abs(recorded).max() > 0


def test_reference_window_outside_the_spectrum_is_refused():
    with pytest.raises(IncompatibleDataError, match="widen reference_window_ppm"):
        simulate(singlet_basis(), {"snr": 10, "reference_window_ppm": [40, 41]}, n=1)
