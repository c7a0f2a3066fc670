"""Where a spectrum's own singlets are (:func:`scaloquant.signal.singlets.singlet_shift`), and the
``reference_off`` flag it gives beside a fit (:func:`~scaloquant.signal.quality.reference_off`):
known answers on analytic singlets and on noise."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.signal import quality, singlets
from scaloquant.signal.lineshapes import singlet_fid

#: The spant Philips grid (1024 points, 2000 Hz, 127.79 MHz): 0.0153 ppm per bin.
GRID = (1024, 5e-4, 127.786142, 4.65)
BIN_PPM = 1 / (GRID[0] * GRID[1] * GRID[2])


def brain_like(shift_ppm: float, rng: np.random.Generator, snr: float = 40.0) -> np.ndarray:
    """NAA, Cr and Cho singlets (heights 1, 0.8, 0.6; 5 Hz lines) moved by ``shift_ppm``, and
    complex noise whose SD makes NAA stand ``snr`` noise SDs: ``(n_points,)``."""
    n, dwell, mhz, ref = GRID
    lines = ((2.008, 1.0), (3.028, 0.8), (3.21, 0.6))
    fid = sum(
        singlet_fid(n, dwell, mhz, ref, p + shift_ppm, amplitude=a, damping_per_s=np.pi * 5)
        for p, a in lines
    )
    # the spectrum's peak of a Lorentzian FID of amplitude 1: 1 / (dwell * damping)
    sd = 1.0 / (dwell * np.pi * 5) / snr / np.sqrt(n)
    return fid + sd * (rng.standard_normal(n) + 1j * rng.standard_normal(n))


@pytest.mark.parametrize("shift_ppm", [-0.5, -0.3, -0.1, 0.0, 0.2, 0.45])
def test_singlets_are_found_where_they_were_put(shift_ppm):
    fid = brain_like(shift_ppm, np.random.default_rng(3))
    found, strength, _ = singlets.singlet_shift(fid, *GRID[1:])
    # to the bin: the search steps by bins, and the singlets' places are rounded to them
    assert found == pytest.approx(shift_ppm, abs=BIN_PPM)
    # Cr, the second tallest, stands 0.8 x 40 noise SDs at its top; less the running median
    # (Cho within its 0.3 ppm) and between bins, 20-32
    assert strength > 2 * quality.REFERENCE_SINGLET_SNR


def test_noise_and_one_tall_line_are_not_clear_singlets():
    rng = np.random.default_rng(5)
    n, dwell, mhz, ref = GRID
    noise = rng.standard_normal((64, n)) + 1j * rng.standard_normal((64, n))
    _, strength, _ = singlets.singlet_shift(noise, dwell, mhz, ref)
    assert strength.max() < quality.REFERENCE_SINGLET_SNR / 2  # at most 3.3 in 16000 draws
    # a lipid line at 1.4 ppm, 20x NAA's height, over noise: NAA's place moved by -0.6 ppm
    # finds it, but no second singlet stands there
    lipid = singlet_fid(n, dwell, mhz, ref, 1.4, amplitude=20.0, damping_per_s=np.pi * 8)
    _, strength, _ = singlets.singlet_shift(lipid + noise[0] * 0.01, dwell, mhz, ref)
    assert strength < quality.REFERENCE_SINGLET_SNR


def test_quality_figures_carry_the_same_search():
    """The figures share the mirror check's running median: the same shift and strength as
    :func:`singlet_shift` on its own."""
    rng = np.random.default_rng(7)
    fids = np.stack([brain_like(s, rng) for s in (-0.4, 0.0, 0.25)])
    figures = quality.quality_figures(fids, *GRID[1:])
    found, strength, profile = singlets.singlet_shift(fids, *GRID[1:])
    np.testing.assert_allclose(figures.singlet_shift_ppm, found, atol=1e-12)
    np.testing.assert_allclose(figures.singlet_strength, strength, rtol=1e-5)
    np.testing.assert_allclose(figures.singlet_profile, profile, rtol=1e-5, atol=1e-6)
    assert profile.shape == (3, singlets.singlet_lags_ppm(*GRID[:3]).size)


def _profile(peak_ppm: float, lags: np.ndarray, second: tuple[float, float] | None = None):
    """A profile with its best (1) at ``peak_ppm`` and, optionally, another maximum ``(ppm,
    height)``: triangles 0.03 ppm wide."""
    out = np.clip(1 - np.abs(lags - peak_ppm) / 0.03, 0, None)
    if second is not None:
        out = np.maximum(out, second[1] * np.clip(1 - np.abs(lags - second[0]) / 0.03, 0, None))
    return out


def test_reference_off_rule():
    lags = singlets.singlet_lags_ppm(*GRID[:3])
    profiles = np.stack(
        [
            _profile(-0.30, lags),  # fitted there
            _profile(-0.30, lags),  # fitted 0.1 ppm off
            _profile(0.02, lags),  # not fitted, 0.02 from its place
            _profile(-0.30, lags),  # faint singlets
            _profile(0.02, lags),  # no creatine beside clear singlets
            _profile(0.15, lags, (0.0, 0.9)),  # another pattern nearly as good where fitted
            _profile(0.15, lags, (0.0, 0.3)),  # ... but only a third as good
        ]
    )
    strength = np.array([40.0, 40.0, 40.0, 3.0, 40.0, 40.0, 40.0])
    placed = np.array([-0.29, -0.20, np.nan, 0.0, 0.0, 0.0, 0.0])
    no_cr = np.array([False, False, False, False, True, False, False])
    got = quality.reference_off(profiles, lags, strength, placed, no_cr)
    assert got.tolist() == [False, True, False, False, True, False, True]
    # no fit at all: within REFERENCE_OFF_UNFITTED_PPM of the singlets' own places, and no
    # creatine is a network's own failure, not the reference's
    assert quality.reference_off(profiles, lags, strength, None, no_cr).tolist() == [
        True, True, False, False, False, False, True,
    ]  # fmt: skip
    # an axis that missed the search: nothing known, nothing flagged
    assert not quality.reference_off(np.zeros((2, 0)), lags, np.full(2, 40.0)).any()


def test_fit_flags_add_reference_off_but_not_to_water():
    flags = [[], ["no_signal"], ["water"], ["empty"]]
    lags = singlets.singlet_lags_ppm(*GRID[:3])
    profiles = np.stack([_profile(-0.4, lags)] * 4)
    out = quality.fit_flags(flags, None, singlets=(profiles, lags, np.full(4, 50.0)))
    assert out == [["reference_off"], ["no_signal", "reference_off"], ["water"], ["empty"]]


def test_referencing_corrects_clear_singlets_away_from_their_places_only():
    """:func:`~scaloquant.signal.quality.reference_correction_ppm`: minus the singlets' shift
    (to the bin) where they stand clearly more than REFERENCING_PPM (0.12) from their places;
    exactly 0 within it (the simulators' referencing range, and the search's slack), for
    noise, an empty FID, and a spectrum whose pattern is as good at its own places."""
    rng = np.random.default_rng(11)
    n = GRID[0]
    moves = (-0.5, -0.3, -0.15, -0.05, 0.0, 0.08, 0.2, 0.45)
    fids = np.stack(
        [brain_like(s, rng) for s in moves]
        + [rng.standard_normal(n) + 1j * rng.standard_normal(n), np.zeros(n, complex)]
    )
    figures = quality.quality_figures(fids, *GRID[1:])
    got = quality.reference_correction_ppm(figures, singlets.singlet_lags_ppm(*GRID[:3]))
    want = [0.5, 0.3, 0.15, 0.0, 0.0, 0.0, -0.2, -0.45, 0.0, 0.0]
    np.testing.assert_allclose(got, want, atol=BIN_PPM)
    assert (got[[3, 4, 5, 8, 9]] == 0).all()  # exactly: those are left as they are
    # another pattern nearly as good at the singlets' own places (Cho's lines at Cr's): no
    # correction, the fit decides
    lags = singlets.singlet_lags_ppm(*GRID[:3])
    ambiguous = figures._replace(
        singlet_profile=np.stack([_profile(0.15, lags, (0.0, 0.9))] * len(want)),
        singlet_shift_ppm=np.full(len(want), 0.15),
    )
    assert not quality.reference_correction_ppm(ambiguous, lags)[:8].any()
