"""The mirror check on real spectra written by other tools, their mirror images, and noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import median_filter

from scaloquant.io import default_basis, read_fid
from scaloquant.signal.quality import (
    MIRRORED_RATIO,
    _running_median_rows,
    looks_mirrored,
    mirror_ratio,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
INVIVO = SHARED / "invivo"
CHALLENGE = SHARED / "ismrm2016-challenge" / "datasets_LCModel"
needs_shared = pytest.mark.skipif(
    not INVIVO.is_dir() or not CHALLENGE.is_dir(),
    reason="../shared/data/invivo or ../shared/data/ismrm2016-challenge is absent",
)


def _ratio(fid) -> float:
    mean = fid.samples.reshape(-1, fid.n_points).mean(axis=0)
    return float(mirror_ratio(mean, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference))


def _metabolite_spectra():
    """Every real water-suppressed spectrum in ../shared (spec2nii NIfTI-MRS of Philips and
    Siemens scanners) and the 28 ISMRM 2016 challenge spectra (LCModel .RAW)."""
    for path in sorted(INVIVO.rglob("*.nii.gz")):
        name = path.name
        if "ref" in name or name == "wref.nii.gz":
            continue
        yield name, read_fid(path)
    for n in range(1, 29):
        yield (
            f"dataset{n}",
            read_fid(
                CHALLENGE / f"dataset{n}.RAW",
                dwell_time_s=0.00025,
                spectrometer_freq_mhz=123.261703,
            ),
        )


@needs_shared
def test_real_spectra_pass_and_their_mirror_images_are_flagged():
    """Measured: correct 0.04-0.54 (metabolite-nulled MM spectra the highest), mirrored >= 1.85."""
    seen = 0
    for name, fid in _metabolite_spectra():
        ratio = _ratio(fid)
        mirrored = _ratio(fid.with_samples(np.conj(fid.samples)))
        assert ratio < 0.6, f"{name}: {ratio:.2f}"
        assert mirrored > 1.8 > MIRRORED_RATIO, f"{name} mirrored: {mirrored:.2f}"
        assert not looks_mirrored(ratio) and looks_mirrored(mirrored)
        seen += 1
    assert seen >= 28 + 8


def test_noise_is_not_flagged_and_batches_match_items():
    rng = np.random.default_rng(4)
    noise = rng.normal(size=(64, 2048)) + 1j * rng.normal(size=(64, 2048))
    ratios = mirror_ratio(noise, 0.00025, 123.26, 4.65)
    assert ratios.shape == (64,)
    assert 0.6 < ratios.min() and ratios.max() < 1.4 < MIRRORED_RATIO
    np.testing.assert_allclose(mirror_ratio(noise[3], 0.00025, 123.26, 4.65), ratios[3])


@pytest.mark.parametrize(("width", "length"), [(3, 40), (19, 541), (19, 7), (1, 12)])
def test_running_median_of_rows_is_scipys_row_by_row(width, length):
    # the rows laid end to end and filtered in one call: bit for bit scipy's 1-D median of each
    # row alone with mode="nearest", at the rows' edges (spikes there), on ties, on a constant
    # row, and on rows shorter than the window
    rng = np.random.default_rng(5)
    rows = np.abs(rng.normal(size=(6, length)) + 3 * rng.normal(size=(6, length)) ** 2)
    rows[1, :3] = rows[1, -3:] = 50.0
    rows[2] = np.round(rows[2])
    rows[3] = 2.5
    expected = np.stack([median_filter(r, size=width, mode="nearest") for r in rows])
    assert _running_median_rows(rows, width).tobytes() == expected.tobytes()


def test_simulated_brain_spectrum_passes_and_its_mirror_is_flagged():
    basis = default_basis()
    t = basis.time_axis_s()
    fid = basis.fids.sum(axis=0) * np.exp(-8.0 * t)
    args = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    assert mirror_ratio(fid, *args) < 0.3
    assert mirror_ratio(np.conj(fid), *args) > 3.0


def test_empty_or_too_narrow_spectra_give_nan():
    assert np.isnan(mirror_ratio(np.zeros(2048, complex), 0.00025, 123.26, 4.65))
    # 1200 Hz at 300 MHz spans 4 ppm: the mirror window (5.1-8.8 ppm) is not covered
    fid = np.exp(2j * np.pi * 50 * np.arange(1024) / 1200.0)
    assert np.isnan(mirror_ratio(fid, 1 / 1200.0, 300.0, 4.65))
    assert not looks_mirrored(np.nan)
