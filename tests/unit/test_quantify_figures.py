"""Which spectra a run draws fit figures of (:func:`~scaloquant.quantify.figures.figure_choice`):
the flagged first, the worst fit first, then the highest SNR."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from scaloquant.quantify.figures import figure_choice
from scaloquant.types import FID


def _prepared(snr, flags):
    """The parts of a :class:`~scaloquant.quantify.matching.Prepared` that the choice reads."""
    fid = FID(
        samples=np.ones((len(snr), 8), complex),
        dwell_time_s=1e-3,
        spectrometer_freq_mhz=123.2,
        ppm_reference=4.7,
    )
    usable = np.array(["empty" not in f for f in flags])
    return SimpleNamespace(
        fid=fid, quality=SimpleNamespace(snr=np.asarray(snr, float)), usable=usable
    )


def test_the_flagged_spectra_come_first_the_worst_fit_first():
    snr = [10, 20, 30, 40, 50, 60]
    flags = [["misfit"], ["mirrored"], [], ["misfit"], [], ["empty"]]
    over_noise = np.array([5.0, np.nan, 1.0, 8.0, 1.0, np.nan])
    prep = [_prepared(snr, flags)]
    # without the flags, the highest SNR of the usable ones (the empty one has none to draw)
    assert figure_choice(prep, 2) == [[3, 4]]
    chosen = [
        figure_choice(prep, k, flags=[flags], residual_over_noise=[over_noise])
        for k in (1, 2, 3, 4)
    ]
    # spectrum 3 (8 noise SDs) before 0 (5) before 1 (flagged, no residual), then SNR: 4
    assert chosen == [[[3]], [[0, 3]], [[0, 1, 3]], [[0, 1, 3, 4]]]
    # flags without a residual: the flagged ones by SNR
    assert figure_choice(prep, 2, flags=[flags]) == [[1, 3]]
    # an input skipped (MRSI, drawn by its residual ranks) gives none, flagged or not
    assert figure_choice(prep * 2, 2, [True, False], flags=[flags] * 2) == [[], [1, 3]]
