"""Readers against the ISMRM 2016 challenge files in ../shared (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from _shared import ISMRM2016_BASIS
from scaloquant.io import default_basis, read_basis, read_fid, read_lcmodel_basis, read_lcmodel_raw
from scaloquant.signal.peaks import main_peak_ppm

SHARED = ISMRM2016_BASIS
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/ismrm2016 is absent")

GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}


@pytest.fixture(scope="module")
def basis():
    return read_lcmodel_basis(SHARED / "lcmodel" / "press3T_30ms.BASIS")


def test_basis_header(basis):
    assert basis.names == default_basis().names  # whose order test_default_basis pins
    assert basis.n_points == 2048
    assert basis.spectrometer_freq_mhz == 123.261703
    assert basis.dwell_time_s == pytest.approx(2.5e-4, rel=1e-7)  # float32 0.000250000012


def test_basis_and_raw_readers_agree(basis):
    """Relative error < 1e-4: both print 6 significant digits (observed <= 1.7e-5)."""
    for name, fid in zip(basis.names, basis.fids, strict=True):
        raw = read_lcmodel_raw(SHARED / "lcmodel" / f"{name}.RAW", **GRID).samples
        rel = np.linalg.norm(fid - raw) / np.linalg.norm(raw)
        assert rel < 1e-4, name


def test_jmrui_is_conjugate_of_text_and_both_put_naa_at_2006():
    jmrui = read_fid(SHARED / "jmrui" / "NAA.txt")
    text = read_fid(SHARED / "text" / "NAA.txt", **GRID)
    raw_file = np.loadtxt(SHARED / "text" / "NAA.txt")
    np.testing.assert_allclose(jmrui.samples, raw_file[:, 0] - 1j * raw_file[:, 1], atol=1e-6)
    np.testing.assert_allclose(jmrui.samples, text.samples, atol=1e-6)
    assert jmrui.spectrometer_freq_mhz == pytest.approx(123.22)
    assert jmrui.dwell_time_s == pytest.approx(2.5e-4)
    for fid in (jmrui, text):
        ppm = main_peak_ppm(fid.samples, fid.dwell_time_s, fid.spectrometer_freq_mhz, 4.65)
        assert ppm == pytest.approx(2.006, abs=0.005)


def test_folders_read_as_bases():
    jmrui = read_basis(SHARED / "jmrui")
    raw = read_basis(SHARED / "lcmodel", **GRID)
    assert jmrui.names == raw.names and len(raw.names) == 22  # + Ace
    np.testing.assert_allclose(jmrui.fids, raw.fids, atol=1e-4)
