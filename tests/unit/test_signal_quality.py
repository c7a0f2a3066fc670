"""The mirror check on real spectra written by other tools, their mirror images, and noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import median_filter

from _shared import DATA
from scaloquant.io import default_basis, read_fid
from scaloquant.signal.median import (
    NETWORK_MAX_WIDTH,
    NETWORK_ROWS,
    _median_network,
    _running_median_rows,
)
from scaloquant.signal.mirror import MIRRORED_RATIO, looks_mirrored, mirror_ratio
from scaloquant.signal.snr_fwhm import _medians

SHARED = DATA
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


@pytest.mark.parametrize(
    ("width", "length", "dtype"),
    [
        (3, 40, np.float64),
        (19, 541, np.float64),
        (19, 541, np.float32),
        (19, 7, np.float64),
        (1, 12, np.float64),
        (NETWORK_MAX_WIDTH, 300, np.float32),
        (NETWORK_MAX_WIDTH + 2, 300, np.float64),  # scipy's filter
        (39, 1100, np.float32),
    ],
)
def test_running_median_of_rows_is_scipys_row_by_row(width, length, dtype):
    # the rows laid end to end and filtered in one call (a comparator network up to
    # NETWORK_MAX_WIDTH, scipy's filter above): bit for bit scipy's 1-D median of each row alone
    # with mode="nearest", at the rows' edges (spikes there), on ties, on a constant row, on
    # zeros, and on rows shorter than the window; in the rows' dtype
    rng = np.random.default_rng(5)
    rows = np.abs(rng.normal(size=(7, length)) + 3 * rng.normal(size=(7, length)) ** 2)
    rows[1, :3] = rows[1, -3:] = 50.0
    rows[2] = np.round(rows[2])
    rows[3] = 2.5
    rows[4, ::2] = 0.0
    rows = rows.astype(dtype)
    expected = np.stack([median_filter(r, size=width, mode="nearest") for r in rows])
    got = _running_median_rows(rows, width)
    assert got.dtype == dtype and got.tobytes() == expected.tobytes()
    assert _running_median_rows(rows[:0], width).shape == (0, length)


def test_running_median_of_many_rows_by_parts_is_scipys():
    # more rows than NETWORK_ROWS: the network takes them a part at a time, the same numbers
    rng = np.random.default_rng(6)
    rows = np.abs(rng.normal(size=(NETWORK_ROWS * 2 + 5, 60)))
    expected = np.stack([median_filter(r, size=19, mode="nearest") for r in rows])
    assert _running_median_rows(rows, 19).tobytes() == expected.tobytes()


def test_running_median_is_nan_where_its_window_holds_a_nan():
    rows = np.arange(60, dtype=np.float32).reshape(2, 30)
    rows[0, 10] = np.nan
    got = _running_median_rows(rows, 5)
    assert np.isnan(got[0, 8:13]).all() and not np.isnan(got[0, :8]).any()
    assert not np.isnan(got[0, 13:]).any() and not np.isnan(got[1]).any()


@pytest.mark.parametrize("width", range(1, NETWORK_MAX_WIDTH + 1, 2))
def test_median_network_selects_the_median_of_every_0_1_input(width):
    # the 0-1 principle (Knuth, TAOCP vol. 3, 5.3.4): a network of minima and maxima that
    # leaves the k-th smallest of every 0-1 input on a wire does so for every input
    codes = np.arange(2**width, dtype=np.uint32)
    wires = [((codes >> k) & 1).astype(np.uint8) for k in range(width)]
    for i, j, low, high in _median_network(width):
        a, b = wires[i], wires[j]
        if low:
            wires[i] = np.minimum(a, b)
        if high:
            wires[j] = np.maximum(a, b)
    expected = sum(w.astype(np.int32) for w in [((codes >> k) & 1) for k in range(width)])
    np.testing.assert_array_equal(wires[width // 2], expected > width // 2)


@pytest.mark.parametrize("n", [2, 7, 8, 39, 40])
def test_flank_medians_are_numpys_median(n):
    rng = np.random.default_rng(n)
    values = rng.normal(size=(4, 9, n))
    values[0, 1, : n // 2] = values[0, 1, -1]  # ties
    values[1, 2, 0] = np.nan
    values[2, 3] = -0.0
    values[3, 4, :] = np.nan
    expected = np.median(values, axis=-1)
    assert _medians(values).tobytes() == expected.tobytes()


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


@needs_shared
def test_mirror_ratios_by_the_network_are_those_by_scipys_filter(monkeypatch):
    # every FID of the real spectra (the challenge's grid: width 19; spant's: 21), stored right
    # and mirrored, in the quality figures' single precision and in double: bit for bit the
    # ratios of scipy's running median (the network switched off)
    from scaloquant.signal import median

    rows = []
    for _, fid in _metabolite_spectra():
        grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        if median._running_median_width(fid.n_points, *grid[:2]) <= NETWORK_MAX_WIDTH:
            samples = fid.samples.reshape(-1, fid.n_points)
            rows.append((samples, grid))
    assert len(rows) >= 28 + 1
    for samples, grid in rows:
        for fids in (samples, np.conj(samples)):
            single = np.fft.fft(fids, axis=-1).astype(np.complex64)
            network = [mirror_ratio(fids, *grid), mirror_ratio(fids, *grid, spectrum=single)]
            with monkeypatch.context() as m:
                m.setattr(median, "NETWORK_MAX_WIDTH", 0)
                scipys = [mirror_ratio(fids, *grid), mirror_ratio(fids, *grid, spectrum=single)]
            for a, b in zip(network, scipys, strict=True):
                assert a.tobytes() == b.tobytes()


def test_residual_over_noise_runs_numpys_blas_on_one_thread(monkeypatch):
    """Its blocks' least squares with numpy's BLAS on one thread whatever the caller's limit
    (quantify --model called it with OpenBLAS on 2 threads, which spin on a busy machine: 8x
    the CPU, the same numbers)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from scaloquant.signal import noise

    seen = []
    real = noise.noise_sd

    def spy(*args, **kwargs):
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        seen.append(max(blas))
        return real(*args, **kwargs)

    monkeypatch.setattr(noise, "noise_sd", spy)
    rng = np.random.default_rng(0)
    fids = rng.normal(size=(3, 512)) + 1j * rng.normal(size=(3, 512))
    with threadpool_limits(limits=2, user_api="blas"):
        ratio = noise.residual_over_noise(np.ones(3), fids, 2.5e-4, 123.2, 4.65)
    assert seen == [1]
    assert np.all(np.isfinite(ratio))


def test_a_spectrums_noise_sd_alone_is_its_sd_in_any_batch():
    """The signal-free regions' noise SD (``signal.noise.noise_sd``, quadratic per region) and
    the fit's region noise SD (``fit.spectra.region_noise_sd``, a line) of a spectrum alone
    equal its SD in batches of 2, 3 and 7 at any place, to the bit: on the code before session
    36 one column alone took BLAS's matrix-vector product and numpy's pairwise sum, 1 ulp off
    (276 and 288 of these 768 places of 64 random spectra), which gave a spectrum fitted alone
    other ``invivo`` amplitudes (docs/history/fit-log.md "A spectrum's fit and its batch (session
    36, batchinv36)")."""
    from scaloquant.fit.spectra import region_noise_sd
    from scaloquant.signal import axes
    from scaloquant.signal.noise import noise_sd

    rng = np.random.default_rng(5)
    fids = rng.normal(size=(64, 1024)) + 1j * rng.normal(size=(64, 1024))
    grid = (2.5e-4, 123.2, 4.65)
    ppm = axes.ppm_axis(1024, *grid)
    spectra = axes.spectrum(fids)

    def both(rows: list[int]) -> np.ndarray:
        return np.stack(
            [noise_sd(fids[rows], *grid), region_noise_sd(spectra[rows], ppm, (-2.0, 0.0))]
        )

    alone = np.concatenate([both([i]) for i in range(64)], axis=1)
    differ = np.zeros(2, dtype=int)
    for size in (2, 3, 7):
        for place in range(size):
            for i in range(64):
                rows = [(i + 1 + k) % 64 for k in range(size)]
                rows[place] = i
                differ += both(rows)[:, place] != alone[:, i]
    assert differ.tolist() == [0, 0]
