"""Reading the inputs of ``quantify``/``fit`` (water pairing, labels) and finding the model's
basis."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from _shared import INVIVO
from scaloquant.errors import ConfigError, IncompatibleDataError
from scaloquant.io import default_basis, read_fid, write_lcmodel_raw, write_nifti_mrs
from scaloquant.quantify import model_basis, read_inputs
from scaloquant.signal.quality import quality_figures
from scaloquant.types import FID


def _fid(samples) -> FID:
    return FID(samples=samples, dwell_time_s=2.5e-4, spectrometer_freq_mhz=123.2)


def _decay(n=64, first=1.0):
    """A FID of one line 50 Hz off resonance (both parts: real-valued data are refused)."""
    return first * np.exp((-1 / 0.05 + 2j * np.pi * 50) * np.arange(n) * 2.5e-4)


def test_labels_and_water_of_each_format(tmp_path):
    mrsi = write_nifti_mrs(
        tmp_path / "m.nii.gz", _fid(np.full((2, 1, 1, 3, 64), 1 + 1j)), dim_tags=["DIM_DYN"]
    )
    raw = write_lcmodel_raw(tmp_path / "r.RAW", _fid(_decay()), name="r")
    write_lcmodel_raw(tmp_path / "r.h2o", _fid(_decay(first=7.0)), name="w")
    lone = write_lcmodel_raw(tmp_path / "lone.RAW", _fid(_decay()), name="x")
    m, r, lone_in = read_inputs([mrsi, raw, lone])
    assert m.is_image and m.dim_tags == ("DIM_DYN",) and m.water is None
    assert m.labels() == ["0,0,0,0", "0,0,0,1", "0,0,0,2", "1,0,0,0", "1,0,0,1", "1,0,0,2"]
    assert not r.is_image and r.labels() == ["0"] and r.water_path.name == "r.h2o"
    assert abs(r.water.samples[0]) == pytest.approx(7.0, rel=1e-6)
    assert lone_in.water is None


def test_mrsi_water_is_averaged_over_its_transients_and_broadcast(tmp_path):
    data = write_nifti_mrs(tmp_path / "d.nii.gz", _fid(np.full((2, 2, 1, 3, 64), 1 + 1j)))
    transients = np.stack([_decay(first=f) for f in (1.0, 3.0)], axis=0)  # mean first point 2
    water = write_nifti_mrs(
        tmp_path / "w.nii.gz",
        _fid(np.broadcast_to(transients, (2, 2, 1, 2, 64))),
        dim_tags=["DIM_DYN"],
    )
    (inp,) = read_inputs([data], water=[water])
    assert inp.water.samples.shape == (2, 2, 1, 64)
    src = inp.water_areas_source()
    assert src.shape == (2, 2, 1, 1, 64)
    assert np.abs(src[..., 0]).ravel() == pytest.approx([2.0] * 4)


def _coils(first_points):
    """One voxel's FID as 4 receive coils of their own phase and sensitivity, DIM_COIL."""
    return _fid(np.stack([_decay(first=f) for f in first_points], axis=0).reshape(1, 1, 1, -1, 64))


def test_water_with_uncombined_coils_is_refused(tmp_path):
    """Their mean is not the water signal: 4 coils 1.5 rad apart gave the spant spectrum 33.1 mM
    NAA where its combined water gives 12.7 (session 23's sweep), in an unflagged table."""
    data = write_nifti_mrs(tmp_path / "d.nii.gz", _fid(_decay()))
    phases = np.exp(1.5j * np.arange(4))
    water = write_nifti_mrs(tmp_path / "w.nii.gz", _coils(phases), dim_tags=["DIM_COIL"])
    with pytest.raises(IncompatibleDataError, match="4 receive coils not combined"):
        read_inputs([data], water=[water])
    raw = write_lcmodel_raw(tmp_path / "r.RAW", _fid(_decay()), name="r")  # any data format
    with pytest.raises(IncompatibleDataError, match="coilcombine"):
        read_inputs([raw], water=[water])
    one = write_nifti_mrs(tmp_path / "w1.nii.gz", _coils([1.0]), dim_tags=["DIM_COIL"])
    assert read_inputs([data], water=[one])[0].water.samples.shape == (1, 1, 1, 64)


def test_data_with_uncombined_coils_is_quantified_per_coil_with_a_warning(tmp_path):
    coils = write_nifti_mrs(tmp_path / "c.nii.gz", _coils([1.0, 2.0]), dim_tags=["DIM_COIL"])
    dyns = write_nifti_mrs(tmp_path / "t.nii.gz", _coils([1.0, 2.0]), dim_tags=["DIM_DYN"])
    c, t = read_inputs([coils, dyns])
    assert c.n_spectra == 2 and any("2 receive coils not combined" in w for w in c.checks())
    assert not any("coils" in w for w in t.checks())


SPANT = INVIVO / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz"


@pytest.mark.skipif(not SPANT.is_file(), reason=f"needs the shared spant spectrum {SPANT}")
def test_unaveraged_transients_too_weak_one_by_one_are_named_with_their_averages_snr(tmp_path):
    """A scanner spectrum (spant's Philips PRESS, SNR 57) as 16 transients along DIM_DYN, each
    with noise that buries it: each is flagged no_signal, and the reader says why and what to
    do; the same transients with little noise (a dynamic series, e.g. functional MRS) are
    quantified one by one without a word."""
    fid = read_fid(SPANT)
    clean = fid.samples.reshape(-1)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(16, clean.size)) + 1j * rng.normal(size=(16, clean.size))
    sd = np.std(clean[-200:])  # the FID's tail: noise
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    found = {}
    for name, scale in (("weak", 10.0), ("series", 0.5)):
        samples = (clean + scale * sd * noise).reshape(1, 1, 1, 16, -1)
        path = write_nifti_mrs(
            tmp_path / f"{name}.nii.gz", replace(fid, samples=samples), dim_tags=["DIM_DYN"]
        )
        (inp,) = read_inputs([path])
        quality = quality_figures(inp.fid.samples.reshape(16, -1), *grid, proton=True)
        found[name] = inp.checks(quality.mirror_ratio, quality.snr)
    (warning,) = found["weak"]
    assert warning.startswith("16 transients not averaged (DIM_DYN): 16 of 16 spectra")
    averaged = float(re.search(r"plain average has SNR (\d+)", warning).group(1))
    assert 15 <= averaged <= 57  # sqrt(16) x a single one's, below the clean spectrum's
    assert "fsl_mrs_proc align, then average" in warning
    assert found["series"] == ()


def test_no_inputs_is_a_config_error():
    with pytest.raises(ConfigError, match="at least one input"):
        read_inputs([])


def test_model_basis_is_the_embedded_one_only_when_its_hash_matches():
    basis = default_basis()
    found, note = model_basis({"content_hash": basis.content_hash()}, None, None)
    assert found is basis and "hash checked" in note
    found, note = model_basis({"content_hash": "0" * 64}, None, None)
    assert found is None and "no fit figures" in note
    other = basis.subset(["NAA", "Cr"])
    with pytest.raises(IncompatibleDataError, match="not the basis the model was trained on"):
        model_basis({"content_hash": basis.content_hash()}, other, "other.npz")
    found, _ = model_basis({"content_hash": other.content_hash()}, other, "other.npz")
    assert found is other
