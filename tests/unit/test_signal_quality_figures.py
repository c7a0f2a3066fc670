"""Quality figures (SNR, FWHM, flags) of :mod:`scaloquant.signal.quality`: known answers on analytic lines and
noise, then the shared real spectra (the thresholds' measurements; skipped without them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _shared import DATA
from scaloquant.errors import IncompatibleDataError
from scaloquant.signal import axes, mirror, qc_spectra, quality, snr_fwhm, water_peak
from scaloquant.signal.match import compare_reference
from scaloquant.signal.noise import (
    CHANCE_EXCESS_SDS,
    misfit_beyond_noise,
    noise_sd,
    residual_over_noise,
    residual_sd,
)
from scaloquant.types import Acquisition

SHARED = DATA
CHALLENGE = SHARED / "ismrm2016-challenge" / "datasets_LCModel"
INVIVO = SHARED / "invivo"
CHALLENGE_GRID = {"dwell_time_s": 0.00025, "spectrometer_freq_mhz": 123.261703}

N, DWELL_S, FREQ_MHZ, REF_PPM = 2048, 0.00025, 123.2, 4.65
GRID = (DWELL_S, FREQ_MHZ, REF_PPM)


def _line(shift_ppm: float, width_hz: float, amplitude: float = 1.0, phase: float = 0.0):
    """A Lorentzian FID of FWHM ``width_hz`` at ``shift_ppm`` in the internal orientation
    (``ppm = ref + f / F``, :mod:`scaloquant.signal.axes`)."""
    t = np.arange(N) * DWELL_S
    f_hz = (shift_ppm - REF_PPM) * FREQ_MHZ
    return amplitude * np.exp(1j * phase + 2j * np.pi * f_hz * t - np.pi * width_hz * t)


def _noise(rng, sd: float, shape=()):
    return sd * (rng.standard_normal((*shape, N)) + 1j * rng.standard_normal((*shape, N)))


def test_fwhm_of_an_analytic_lorentzian():
    # Interpolated on the 4x zero-filled spectrum. The straight baseline through the flanks
    # (0.15-0.3 ppm away) sits on the line's own Lorentzian tails, (w/2)^2 / d^2 of its height:
    # 1.5 % for 6 Hz, 5 % for 12 Hz, which narrows it by about as much; hence 2 % and 6 %.
    for width_hz, phase, rel in ((6.0, 0.0, 0.02), (12.0, 1.0, 0.06), (3.0, -2.5, 0.02)):
        fid = _line(2.01, width_hz, phase=phase)
        assert snr_fwhm.fwhm_ppm(fid, *GRID) * FREQ_MHZ == pytest.approx(width_hz, rel=rel)


def test_snr_is_peak_height_over_noise_sd():
    rng = np.random.default_rng(1)
    fid = _line(2.01, 6.0, amplitude=1.0)
    height = np.abs(np.fft.fft(fid, 4 * N)).max()  # the noiseless peak
    sd_time = 0.05
    noisy = fid + _noise(rng, sd_time)
    # white noise of SD s per real part gives s sqrt(N) per real part of the unnormalised FFT
    assert noise_sd(noisy, *GRID) == pytest.approx(sd_time * np.sqrt(N), rel=0.1)
    assert snr_fwhm.snr(noisy, *GRID) == pytest.approx(height / (sd_time * np.sqrt(N)), rel=0.1)
    assert snr_fwhm.snr(fid, *GRID) > 1e4  # noiseless: only the line's far tails there
    assert snr_fwhm.snr(np.zeros(N, complex), *GRID) == 0


def test_residual_over_noise_of_a_known_residual_and_known_noise():
    """A fit residual of the spectrum's own noise over a 0.2-4.2 ppm window gives 1, and the
    same residual plus a component of known power ``A^2`` per point gives ``sqrt(1 + A^2 / (2
    s^2 N))`` (3 here) for white noise of SD ``s`` per real part in time (``s sqrt(N)`` per bin
    of the unnormalised FFT): each spectrum to 16 % (the noise SD from 189 bins and the
    residual's from 252 scatter by 3.7 and 3.1 %: the ratio by 4.9 %), their mean over 64
    spectra to 2 % (3 of its SDs)."""
    rng = np.random.default_rng(7)
    sd_time = 0.05
    noise = _noise(rng, sd_time, (64,))
    fids = _line(2.01, 6.0) + noise  # a line: the noise SD is measured off the signal
    ppm = axes.ppm_axis(N, *GRID)  # of the shifted spectrum
    window = np.flatnonzero((ppm >= 0.2) & (ppm <= 4.2))
    own = np.fft.fftshift(np.fft.fft(noise, axis=-1), axes=-1)[:, window]
    amplitude = 4 * sd_time * np.sqrt(N)  # A^2 / (2 s^2 N) = 8
    added = amplitude * np.exp(1j * rng.uniform(0, 2 * np.pi, window.size))
    for residual, expected in ((own, 1.0), (own + added, 3.0)):
        ratio = residual_over_noise(residual_sd(residual), fids, *GRID)
        assert ratio.shape == (64,)
        np.testing.assert_allclose(ratio, expected, rtol=0.16)
        assert ratio.mean() == pytest.approx(expected, rel=0.02)


def test_misfit_beyond_noise_of_a_known_misfit_and_of_noise_alone():
    """The share of the data's norm that a model misses beyond the noise: a residual of the
    spectrum's own noise gives 0 (its power within the chance excess allowed, 3 SDs of a
    252-point window's power: 1 + 3 / sqrt(252) = 1.19; 4 of 64 pass it by the noise SD's own
    scatter, each by less than 0.3 of the noise's own share),
    the same plus a misfit ``m`` gives ``|m| / |y|`` less the allowance's share, to 10 % each
    (the ratio's 4.9 % scatter, doubled by the square root's slope near the allowance's 1.19 /
    9), their mean to 2 %; NaN where either figure is."""
    rng = np.random.default_rng(7)
    sd_time = 0.05
    noise = _noise(rng, sd_time, (64,))
    fids = _line(2.01, 6.0) + noise
    ppm = axes.ppm_axis(N, *GRID)
    window = np.flatnonzero((ppm >= 0.2) & (ppm <= 4.2))
    spectra = np.fft.fftshift(np.fft.fft(fids, axis=-1), axes=-1)[:, window]
    own = np.fft.fftshift(np.fft.fft(noise, axis=-1), axes=-1)[:, window]
    added = 4 * sd_time * np.sqrt(N) * np.exp(1j * rng.uniform(0, 2 * np.pi, window.size))
    norm = np.linalg.norm(spectra, axis=-1)
    for residual, want in ((own, 0.0), (own + added, np.linalg.norm(added) / norm)):
        rel = np.linalg.norm(residual, axis=-1) / norm
        ratio = residual_over_noise(residual_sd(residual), fids, *GRID)
        share = misfit_beyond_noise(rel, ratio, window.size)
        assert share.shape == (64,)
        if np.isscalar(want):
            # mostly 0; where the noise SD's own scatter (3.7 %) lets a residual past the
            # allowance, a small share of the noise's own (0.23 of it at most here)
            assert (share == 0).mean() > 0.9 and (share < 0.3 * rel).all(), share / rel
            continue
        allowed = 1 + CHANCE_EXCESS_SDS / np.sqrt(window.size)
        expected = want * np.sqrt(1 - allowed / 9) / np.sqrt(8 / 9)
        np.testing.assert_allclose(share, expected, rtol=0.1)
        assert share.mean() == pytest.approx(expected.mean(), rel=0.02)
    np.testing.assert_array_equal(
        misfit_beyond_noise([0.1, np.nan, 0.1], [2.0, 2.0, np.nan], 100),
        [0.1 * np.sqrt(1 - 1.3 / 4), np.nan, np.nan],
    )


def test_other_nuclei_get_every_figure_nan_but_the_empty_flag():
    """Other nuclei (``proton=False``): the 1H ppm windows mean nothing, so every figure is NaN
    (none left unset, whatever QualityFigures holds), the empty flag is each FID's own, and the
    singlet profile has no points; a batch keeps its shape."""
    rng = np.random.default_rng(3)
    fids = np.stack([_line(2.01, 6.0) + _noise(rng, 0.05), np.zeros(N, complex)]).reshape(2, 1, N)
    figures = quality.quality_figures(fids, *GRID, proton=False)
    assert set(figures._fields) == set(quality.QualityFigures._fields)
    for name, value in figures._asdict().items():
        if name == "empty":
            assert value.tolist() == [[False], [True]]
        elif name == "singlet_profile":
            assert value.shape == (2, 1, 0)
        else:
            assert value.shape == (2, 1) and np.isnan(value).all(), name


def test_residual_over_noise_is_nan_where_there_is_no_noise_to_compare_with():
    """NaN without a noise region (a 1 kHz band at 123 MHz covers 0.6-8.7 ppm), for an empty
    FID (no noise in the region) and for other nuclei; points past a spectrum's own window (NaN) are
    left out of its residual SD."""
    rng = np.random.default_rng(8)
    noisy = _line(2.01, 6.0) + _noise(rng, 0.05)
    sd = np.array([1.0])
    narrow = (4 * DWELL_S, FREQ_MHZ, REF_PPM)
    assert np.isnan(residual_over_noise(sd, noisy[None], *narrow)).all()
    assert np.isnan(residual_over_noise(sd, np.zeros((1, N), complex), *GRID)).all()
    assert np.isnan(residual_over_noise(sd, noisy[None], *GRID, proton=False)).all()
    assert np.isfinite(residual_over_noise(sd, noisy[None], *GRID)).all()
    residual = np.array([[2.0, 2.0j, np.nan], [np.nan] * 3])
    np.testing.assert_array_equal(residual_sd(residual), [np.sqrt(2.0), np.nan])


def test_noise_alone_is_below_the_no_signal_threshold():
    rng = np.random.default_rng(2)
    snr = snr_fwhm.snr(_noise(rng, 1.0, (300,)), *GRID)
    assert snr.max() < quality.NO_SIGNAL_SNR and np.median(snr) > 2


def test_flags_of_synthetic_spectra():
    rng = np.random.default_rng(3)
    brain = _line(2.01, 6.0) + 0.8 * _line(3.03, 6.0) + 0.2 * _line(4.65, 10.0) + _noise(rng, 0.01)
    fids = np.stack(
        [
            brain,
            np.zeros(N, complex),
            _noise(rng, 1.0),
            _line(4.65, 6.0) * 1e3 + brain,  # a water reference (metabolites under it)
            np.conj(brain),  # mirrored about 4.65 ppm
            _line(2.01, 20.0) + _line(3.03, 20.0) + _noise(rng, 0.01),  # 0.16 ppm lines
        ]
    )
    figures = quality.quality_figures(fids, *GRID)
    flags = quality.qc_flags(figures)
    assert flags == [
        [],
        ["empty"],
        ["no_signal"],
        ["water"],
        ["no_signal", "mirrored"],
        ["too_broad"],
    ]
    # lipids: a 1.3 ppm line over the taller of NAA's and Cr's, each less its local baseline
    # (here NAA's, 1; the brain spectrum's own lines leave 1.2-1.45 ppm empty, its 4.65 ppm
    # line's tail aside)
    assert figures.lipid_ratio[0] < 0.05 and np.isnan(figures.lipid_ratio[1])
    lipid = [brain + _line(1.3, 6.0, amplitude=a) for a in (0.8, 1.6, 3.0)]
    lipid_figures = quality.quality_figures(np.stack(lipid), *GRID)
    assert lipid_figures.lipid_ratio == pytest.approx([0.8, 1.6, 3.0], rel=0.05)
    assert quality.qc_flags(lipid_figures) == [[], ["lipids"], ["lipids"]]
    # never beside water, no_signal or mirrored (the lines of those mean nothing; the mirrored
    # spectrum's NAA window is empty, so it is no_signal too, as the brain's above)
    others = [
        _line(4.65, 6.0) * 1e3 + lipid[2],
        np.conj(lipid[2]),
        1e-3 * lipid[2] + _noise(rng, 1),
    ]
    assert quality.qc_flags(quality.quality_figures(np.stack(others), *GRID)) == [
        ["water"],
        ["no_signal", "mirrored"],
        ["no_signal"],
    ]
    assert quality.unmeasurable(flags).tolist() == [False, True, True, True, True, False]
    with_fit = quality.fit_flags(flags, np.array([0.1, np.nan, 1.0, 0.2, 0.9, 0.7]))
    assert [f[-1:] for f in with_fit] == [
        [],
        ["empty"],
        ["residual_large"],
        ["water"],
        ["residual_large"],
        ["residual_large"],
    ]
    # the fitted lines' width flags what the spectrum's own NAA did not (a spectrum drowned in
    # an artefact); never twice, never for a spectrum with nothing to measure
    widths = np.array([0.21, 0.3, 0.3, 0.3, 0.3, 0.3])
    with_width = quality.fit_flags(flags, None, widths)
    assert with_width == [
        ["too_broad"],
        ["empty"],
        ["no_signal"],
        ["water"],
        ["no_signal", "mirrored"],
        ["too_broad"],
    ]
    assert quality.fit_flags(flags, None, np.full(6, 0.05)) == flags
    # fitted metabolites far larger than the data: a baseline cancels them
    over = quality.fit_flags(flags, None, None, np.array([7.95, 8.0, 8.0, 8.0, 1.18, 2.5]))
    assert [f[-1:] for f in over] == [
        ["baseline_cancels"],
        ["empty"],
        ["no_signal"],
        ["water"],
        ["mirrored"],
        ["baseline_cancels"],
    ]
    # fitted metabolites explaining almost none of a spectrum with signal: the baseline took it
    # (0.41 the lowest of the shared spectra; NaN adds nothing)
    under = quality.fit_flags(flags, None, None, np.array([0.0, 0.0, 0.0, 0.0, 0.41, np.nan]))
    assert under == [
        ["no_metabolites"],
        ["empty"],
        ["no_signal"],
        ["water"],
        ["no_signal", "mirrored"],
        ["too_broad"],
    ]
    # a residual more than 3 noise SDs tall: the model misfits (1.54 the highest of the scanner
    # spectra, 2.73 of the challenge's; NaN, no noise region, adds nothing), after
    # residual_large and as it, on all but an empty spectrum (a run blanks both figures of a
    # spectrum with nothing to measure before it flags)
    ratios = np.array([3.01, 20.0, 20.0, 20.0, 2.73, np.nan])
    misfit = quality.fit_flags(flags, np.full(6, 0.7), residual_over_noise=ratios)
    assert misfit == [
        ["residual_large", "misfit"],
        ["empty"],
        ["no_signal", "residual_large", "misfit"],
        ["water", "residual_large", "misfit"],
        ["no_signal", "mirrored", "residual_large"],
        ["too_broad", "residual_large"],
    ]
    # a physics-head model's polish kept where it may have stopped in a worse minimum: after
    # misfit, not on a spectrum with nothing to measure
    stopped = np.array([True, True, False, True, False, True])
    kept = quality.fit_flags(flags, np.full(6, 0.1), residual_over_noise=ratios,
                             polish_stopped=stopped)  # fmt: skip
    assert kept == [
        ["misfit", "polish_minimum"],
        ["empty"],
        ["no_signal", "misfit"],
        ["water", "misfit", "polish_minimum"],
        ["no_signal", "mirrored"],
        ["too_broad", "polish_minimum"],
    ]


def test_water_near_window_is_the_tallest_point_above_the_window_over_the_metabolites():
    # NAA (1 at 2.01 ppm) and a water line of 6 Hz at 4.3 ppm, 10 times its height: the ratio
    # reads the water's peak over NAA's; without the water only NAA's tail is there (1.1 %)
    naa, water = _line(2.01, 6.0), _line(4.3, 6.0, amplitude=10.0, phase=1.0)
    ratio = water_peak.water_near_window(np.stack([naa + water, naa]), *GRID, 4.2)
    assert ratio[0] == pytest.approx(10.0, rel=0.05)
    assert ratio[1] < 0.02
    # a window ending 0.3 ppm above the line sees only its wing (37 Hz from a 6 Hz line: 0.8)
    assert water_peak.water_near_window(naa + water, *GRID, 4.6) < 1.0
    assert np.isnan(water_peak.water_near_window(np.zeros(N, complex), *GRID, 4.2))
    flags = quality.fit_flags([[], ["water"], []], None, None, None, np.array([10.0, 10.0, 1.0]))
    assert flags == [["water_near_window"], ["water"], []]


def test_water_near_window_under_a_water_taller_than_the_metabolites_reads_the_singlets():
    """A water line off the window (4.75 ppm, 10 Hz, ~36 x NAA) whose tail is taller than NAA
    at 3.4 ppm: the ratio is the water's height at the near window's top (4.4 ppm) over NAA's,
    not over the tallest point of 1.8-3.4 ppm less its flanks' line, which is the water's tail
    there (until session 36: 134, 32 x the known answer; benchmarks/diag_water_near_ratio.py)."""
    naa, water = _line(2.01, 6.0), _line(4.75, 10.0, amplitude=60.0, phase=1.0)
    # the water's height at 4.4 ppm: the DFT of a sampled decaying exponential, a geometric
    # series; NAA's as the quality check measures it, on NAA alone
    z = np.exp((-np.pi * 10.0 + 2j * np.pi * (4.4 - 4.75) * FREQ_MHZ) * DWELL_S)
    known = 60.0 / abs(1.0 - z) / float(snr_fwhm.peak_height(naa, *GRID))
    ratio = water_peak.water_near_window(naa + water, *GRID, 4.2)
    # 16 % above: under the tail NAA's tallest point on the magnitude sits off its centre
    assert ratio == pytest.approx(known, rel=0.2)


def test_water_near_window_of_tissue_spectra_with_water_as_read_follows_the_water():
    """The first 256 spectra of ``scaloquant simulate --preset invivo --seed 9`` as read (the
    water in: ``--water-removal none``, and ``quantify --model``'s choice at ``K = 0`` of the
    spectra it removes the water from): the ratio follows the water's tallest point just above
    the window over the reference height H (the noiseless NAA peak) within a factor 2.5
    (measured 0.74-1.96 of it; until session 36 up to 17.9), and spectrum 180 (water 13 H at
    4.84 ppm and 7.5 H at 4.52: 1.7-1.8 H at the window's top) is not flagged (2.53; 4.63 until
    session 36, the metabolite height then Cr's point raised by the water's tail)."""
    from scaloquant.io import default_basis
    from scaloquant.simulate.invivo import simulate_invivo_dataset
    from scaloquant.simulate.prior import InvivoPrior

    basis = default_basis()
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    sig = next(iter(simulate_invivo_dataset(basis, InvivoPrior(), 256, 9, chunk_size=256)))
    ratio = water_peak.water_near_window(sig.fids, *grid, 4.2)
    # the tallest point just above the window on the plain grid (the check's, zero-filled 4x,
    # reaches closer to 4.4 ppm: spectrum 180's 1.81 H; the factor 2.5 holds either)
    ppm = axes.ppm_axis(sig.fids.shape[-1], *grid)
    near = (ppm > 4.2) & (ppm <= 4.2 + water_peak.NEAR_WINDOW_PPM)
    truth = np.abs(axes.spectrum(sig.fids)[:, near]).max(axis=1) / sig.reference_height
    assert np.all((ratio > truth / 2.5) & (ratio < truth * 2.5))
    assert truth[180] == pytest.approx(1.71, abs=0.01)
    assert ratio[180] < water_peak.WATER_NEAR_WINDOW_RATIO
    flags = quality.fit_flags([[]], None, None, None, ratio[[180]])
    assert flags == [[]]


def test_batch_equals_item_by_item():
    rng = np.random.default_rng(4)
    fids = np.stack([_line(2.01, w) + _noise(rng, 0.02) for w in (4.0, 8.0, 12.0)])
    batch = quality.quality_figures(fids.reshape(3, 1, N), *GRID)
    for i, fid in enumerate(fids):
        one = quality.quality_figures(fid, *GRID)
        for name in ("snr", "fwhm_ppm", "water_ratio", "mirror_ratio"):
            assert getattr(batch, name)[i, 0] == pytest.approx(float(getattr(one, name)))


def test_mirror_ratio_from_the_quality_figures_single_precision_spectra():
    """The quality figures' mirror ratios are formed from their own complex64 spectra (one FFT
    of the data for both): the complex128 route's to 1e-5 relative, and the same flags, on
    spectra stored right, conjugated, and of noise alone (ratios about 0.04, 10 and 0.9)."""
    rng = np.random.default_rng(6)
    brain = _line(2.01, 6.0) + 0.7 * _line(3.03, 6.0) + 0.5 * _line(3.2, 7.0)
    fids = np.stack(
        [brain + _noise(rng, 0.01), np.conj(brain) + _noise(rng, 0.01), _noise(rng, 0.01)]
        + [brain + _noise(rng, s) for s in (0.02, 0.05, 0.1, 0.2)]
    )
    figures = quality.quality_figures(fids, *GRID)
    exact = mirror.mirror_ratio(fids, *GRID)
    np.testing.assert_allclose(figures.mirror_ratio, exact, rtol=1e-5)
    assert np.array_equal(mirror.looks_mirrored(figures.mirror_ratio), mirror.looks_mirrored(exact))
    assert mirror.looks_mirrored(exact).tolist() == [
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_window_columns_are_those_of_the_shifted_spectrum():
    # runs inside the array, wrapping round its end, and scattered columns
    raw = np.arange(2 * 10, dtype=float).reshape(2, 10) + 1j
    shifted = np.fft.fftshift(raw, axes=-1)
    for index in (np.arange(6, 9), np.arange(2, 8), np.arange(0, 10), np.array([1, 4, 5])):
        assert np.array_equal(qc_spectra._columns(raw, index), shifted[:, index])


def test_reference_of_another_field_or_nucleus_is_refused():
    data = Acquisition(2048, 0.00025, 123.2)
    with pytest.raises(IncompatibleDataError, match="297.2 MHz"):
        compare_reference(Acquisition(2048, 0.00025, 297.2), data, what="the water reference w")
    with pytest.raises(IncompatibleDataError, match="31P"):
        compare_reference(
            Acquisition(2048, 0.00025, 49.9, nucleus="31P"), data, what="the water reference w"
        )
    assert compare_reference(Acquisition(2048, 0.00025, 123.21), data, what="w") == ()
    (note,) = compare_reference(Acquisition(4096, 0.0005, 123.2), data, what="w")
    assert "4096 points" in note and "|w(0)|" in note


def _read(path: Path, **overrides):
    from scaloquant.io import read_fid

    fid = read_fid(path, **overrides)
    samples = fid.samples.reshape(-1, fid.n_points).mean(axis=0)
    return samples, (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)


needs_shared = pytest.mark.skipif(
    not CHALLENGE.is_dir() or not INVIVO.is_dir(),
    reason=f"the shared real spectra are not at {SHARED}",
)


@needs_shared
def test_challenge_spectra_and_their_water_references():
    broad = {3, 25, 26, 28}  # the challenge's broadened spectra
    lipids = {25, 26, 27, 28}  # its tumour-like spectra with lipids
    for i in range(1, 29):
        data, grid = _read(CHALLENGE / f"dataset{i}.RAW", **CHALLENGE_GRID)
        water, _ = _read(CHALLENGE / f"dataset{i}.H2O", **CHALLENGE_GRID)
        figures = quality.quality_figures(np.stack([data, water]), *grid)
        flags = quality.qc_flags(figures)
        expected = ["too_broad"] * (i in broad) + ["lipids"] * (i in lipids)
        assert flags[0] == expected, i
        # measured 0.02-0.26 without lipids, 2.73-4.16 with (quality.LIPIDS_RATIO)
        assert (figures.lipid_ratio[0] > 2.5) if i in lipids else (figures.lipid_ratio[0] < 0.3), i
        assert flags[1] == ["water"], i
        # measured 11.5 (dataset27) to 140; water-suppressed ratio <= 6.3, references >= 213
        # (dataset 28's, whose 2.0 ppm lipid line is 1/213 of its water; the others >= 1126)
        assert 10 < figures.snr[0] < 200, i
        assert figures.water_ratio[0] < water_peak.WATER_RATIO / 10, i
        assert figures.water_ratio[1] > (1.7 if i == 28 else 9) * water_peak.WATER_RATIO, i
        # the mirror check of the same module: stored right, then conjugated (measured 0.08-0.51)
        assert not mirror.looks_mirrored(figures.mirror_ratio[0]), i
        assert mirror.looks_mirrored(mirror.mirror_ratio(np.conj(data), *grid)), i


@needs_shared
def test_invivo_spectra_in_plausible_ranges():
    spant = INVIVO / "philips-press30-spant" / "nifti_spec2nii"
    data, grid = _read(spant / "metab.nii.gz")
    figures = quality.quality_figures(data, *grid)
    # LCModel: S/N 21 (height over 2x the residual RMS), FWHM 0.084 ppm (of its lineshape
    # model); here 57 (height over the noise SD: about 2x LCModel's and more, its residual
    # holding misfit besides noise) and 0.051 ppm (the NAA peak measured directly)
    assert 40 < figures.snr < 80
    assert 0.04 < figures.fwhm_ppm < 0.07
    assert quality.qc_flags(figures) == [[]]
    water, wgrid = _read(spant / "wref.nii.gz")
    assert water_peak.looks_like_water(water_peak.water_ratio(water, *wgrid))
    others = [
        INVIVO / "siemens-press30-suspect" / "nifti" / "SVS_30_rda.nii.gz",
        *sorted((INVIVO / "philips-press-osprey" / "nifti").rglob("*act*.nii.gz")),
    ]
    for path in others:
        data, grid = _read(path)
        # brain spectra's 1.2-1.45 ppm lines (MM12, MM14) 0.06-0.24 of the singlets'; the
        # metabolite-nulled (inverted, TI 600 ms) 0.52-0.56: none flagged lipids
        lipid = quality.quality_figures(data, *grid).lipid_ratio
        assert lipid < (0.6 if "Inverted" in path.name else 0.3), path.name
        ratio = water_peak.water_ratio(data, *grid)
        assert ratio < water_peak.WATER_RATIO / 2, path.name  # the largest, Siemens: 51.0
        assert snr_fwhm.snr(data, *grid) > quality.NO_SIGNAL_SNR, path.name
    for path in sorted((INVIVO / "philips-press-osprey" / "nifti").rglob("*ref*.nii.gz")):
        water, grid = _read(path)
        # measured 1232-1535
        assert water_peak.water_ratio(water, *grid) > 8 * water_peak.WATER_RATIO, path.name


def test_every_flag_has_its_meaning_for_users():
    """The flags are decided in ``signal.quality`` (a pure layer, no wording for users); what
    they mean, with the flag names of the CLI, is written once in ``quantify.results``."""
    from scaloquant.quantify.results import QC_FLAGS

    assert tuple(QC_FLAGS) == quality.FLAG_NAMES


def test_water_scale_off_where_the_mM_sum_no_tissue_holds():
    """Known answers of ``water_scale_off`` (the limits' measurements are in its docstring;
    tests/integration/test_fit_challenge.py fits the shared spectra they were measured on): a
    brain-like row (NAA 10, Cr 8, Glu 10 mM, a macromolecule NaN: sum 28), the Cr_10mM
    phantom's 10.8, challenge dataset 28's 1690 are not flagged; the same brain row with its
    water scaled by 1e-6 (x1e6: the audit's 13 million mM NAA) or by 1e6 (x1e-6) is. No water
    reference (all NaN) and a fit without metabolites (``no_metabolites``, sum 0) add nothing."""
    brain = np.array([10.0, 8.0, 10.0, np.nan])
    rows = np.array(
        [
            brain,
            [0.0, 10.8, 0.0, np.nan],
            [228.0, 21.8, 540.0, 900.0],
            brain * 1e6,
            brain * 1e-6,
            [np.nan] * 4,
            [0.0, 0.0, 0.0, np.nan],
        ]
    )
    flags = [[], [], ["too_broad", "lipids"], [], ["misfit"], [], ["no_metabolites"]]
    out = quality.water_scale_flags(flags, rows)
    assert out == [
        [],
        [],
        ["too_broad", "lipids"],
        ["water_scale_off"],
        ["misfit", "water_scale_off"],
        [],
        ["no_metabolites"],
    ]
    assert out[0] is not flags[0]  # new lists: the caller's stay as they were
    # the limits sit an order of magnitude beyond the measured 10.8-1690 mM on both sides
    assert quality.WATER_SCALED_MM_MIN * 10 <= 10.8
    assert quality.WATER_SCALED_MM_MAX >= 10 * 1690


def test_figures_by_blocks_equal_one_pass_and_hold_one_block_at_a_time(monkeypatch):
    """:func:`~scaloquant.signal.quality.quality_figures` takes a batch
    :data:`~scaloquant.signal.qc_spectra.QUALITY_BLOCK` spectra at a time: the same numbers, bit
    for bit, as one pass over the whole batch (every figure is a spectrum's own), and the
    working memory of one block, not of the batch (its spectra zero-filled 4x alone are
    ``B x 4 N`` complex64)."""
    import tracemalloc

    rng = np.random.default_rng(9)
    widths = rng.uniform(3.0, 14.0, 40)
    fids = np.stack([_line(2.01, w) + 0.6 * _line(3.03, w) for w in widths])
    fids = (fids + _noise(rng, 0.02, (40,))).reshape(5, 8, N)
    fids[0, 0] = 0.0  # an empty one among them
    monkeypatch.setattr(qc_spectra, "QUALITY_BLOCK", 1000)
    whole = quality.quality_figures(fids, *GRID)
    monkeypatch.setattr(qc_spectra, "QUALITY_BLOCK", 6)
    tracemalloc.start()
    try:
        blocks = quality.quality_figures(fids, *GRID)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for name, a, b in zip(whole._fields, whole, blocks, strict=True):
        # the singlet search's profile has one more axis, its shifts
        assert a.shape[:2] == (5, 8) and a.ndim == 2 + (name == "singlet_profile"), name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert whole.empty[0, 0] and np.isnan(whole.fwhm_ppm[0, 0])
    one_pass_zero_filled = 40 * 4 * N * np.dtype(np.complex64).itemsize
    assert peak < one_pass_zero_filled, peak


def test_blocks_side_by_side_on_scipys_workers_give_the_same_figures(monkeypatch):
    """With ``scipy.fft.set_workers(T)`` the blocks are formed on ``T`` threads side by side:
    the same numbers, bit for bit, as one after another on the caller's thread."""
    import threading

    import scipy.fft

    rng = np.random.default_rng(11)
    widths = rng.uniform(3.0, 14.0, 40)
    fids = np.stack([_line(2.01, w) + 0.6 * _line(3.03, w) for w in widths])
    fids = (fids + _noise(rng, 0.02, (40,))).reshape(5, 8, N)
    fids[1, 2] = 0.0
    monkeypatch.setattr(qc_spectra, "QUALITY_BLOCK", 6)
    serial = quality.quality_figures(fids, *GRID)
    threads = set()
    block_figures = quality._block_figures

    def recorded(*args):
        threads.add(threading.get_ident())
        return block_figures(*args)

    monkeypatch.setattr(quality, "_block_figures", recorded)
    with scipy.fft.set_workers(3):
        side_by_side = quality.quality_figures(fids, *GRID)
    assert threads and threading.get_ident() not in threads and len(threads) <= 3
    for name, a, b in zip(serial._fields, serial, side_by_side, strict=True):
        assert a.tobytes() == b.tobytes(), name


def test_tissue_spectra_under_tall_residual_water_are_not_water_references():
    """The 14 of 2048 ``invivo`` prior spectra (seed 0) whose residual water (9.5-29x the NAA
    peak, the scanners' 2.2-28x) the quality check measured at 218-1267x its tallest metabolite
    peak, above the ``water`` flag's 200, and flagged water (not quantified): the metabolite
    height was the water's tail at 3.4 ppm less the line of its flanks. Now the tallest of the
    NAA, Cr and Cho singlets: 11.5-46 (session 35, benchmarks/diag_water_ratio.py)."""
    from scaloquant.io import default_basis
    from scaloquant.simulate.draws import draw_invivo
    from scaloquant.simulate.invivo import render_invivo
    from scaloquant.simulate.linewidths import basis_lines
    from scaloquant.simulate.prior import InvivoPrior

    basis, prior = default_basis(), InvivoPrior()
    rng = np.random.default_rng(0)
    params = draw_invivo(prior, basis.names, 2048, rng, basis_lines(basis, prior))
    rows = np.array([78, 185, 368, 475, 521, 770, 870, 1169, 1228, 1440, 1677, 1684, 1772, 1948])
    rendering = render_invivo(basis, params.take(rows), rng)
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    figures = quality.quality_figures(rendering.fids, *grid)
    assert np.all(figures.water_ratio > 9)  # the water is the tallest peak, many times NAA's
    assert np.all(figures.water_ratio < water_peak.WATER_RATIO / 2)
    assert not any("water" in f for f in quality.qc_flags(figures))
    np.testing.assert_array_equal(
        water_peak.water_ratio(rendering.fids, *grid), figures.water_ratio
    )
