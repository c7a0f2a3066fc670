"""Residual water removed by HLSVD: the water line goes, the metabolite lines stay."""

from __future__ import annotations

import numpy as np

from scaloquant.signal import axes
from scaloquant.signal.water import remove_water


def test_hlsvd_removes_the_water_line_and_keeps_naa():
    n, dwell, mhz, ref = 2048, 5e-4, 127.75, 4.65
    t = np.arange(n) * dwell
    rng = np.random.default_rng(0)

    def line(ppm, amp, fwhm_hz):
        return amp * np.exp((2j * np.pi * (ppm - ref) * mhz - np.pi * fwhm_hz) * t)

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
