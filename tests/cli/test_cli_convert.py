"""``scaloquant convert``, and NIfTI-MRS files written by scaloquant < 0.2 (the other orientation)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from _shared import one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, read_fid, read_lcmodel_raw
from scaloquant.signal.mirror import looks_mirrored, mirror_ratio
from scaloquant.signal.peaks import main_peak_ppm

NAA_PPM = 2.008


def _naa_fid():
    basis = default_basis()
    naa = basis.fids[basis.names.index("NAA")] * np.exp(-5.0 * basis.time_axis_s())
    return basis, naa


def _legacy_nifti(path, samples, basis, version="0.1.0"):
    """A NIfTI-MRS file as scaloquant 0.1 wrote it: internal samples stored unconjugated."""
    img = nib.Nifti2Image(samples.astype(np.complex64).reshape(1, 1, 1, -1), affine=np.eye(4))
    img.header["pixdim"][4] = basis.dwell_time_s
    img.header.set_xyzt_units(xyz="mm", t="sec")
    img.header["intent_name"] = b"mrs_v0_2"
    ext = {
        "SpectrometerFrequency": [basis.spectrometer_freq_mhz],
        "ResonantNucleus": ["1H"],
        "ConversionMethod": f"scaloquant {version}",
    }
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    nib.save(img, path)
    return path


def _naa_ppm(fid):
    samples = fid.samples.reshape(-1, fid.n_points)[0]
    return float(
        main_peak_ppm(
            samples,
            fid.dwell_time_s,
            fid.spectrometer_freq_mhz,
            fid.ppm_reference,
            ppm_range=(1.9, 2.1),
        )
    )


def test_legacy_file_warns_and_convert_conjugate_repairs_it(tmp_path, capsys):
    basis, naa = _naa_fid()
    old = _legacy_nifti(tmp_path / "old.nii.gz", naa, basis)
    as_read = read_fid(old)
    warning = as_read.provenance["warnings"][0]
    assert "scaloquant 0.1.0" in warning and "--conjugate" in warning
    args = (as_read.dwell_time_s, as_read.spectrometer_freq_mhz, as_read.ppm_reference)
    assert looks_mirrored(mirror_ratio(as_read.samples, *args))

    new = tmp_path / "new.nii.gz"
    assert main(["convert", str(old), str(new), "--conjugate"]) == 0
    assert "conjugated" in capsys.readouterr().out
    repaired = read_fid(new)
    assert "warnings" not in repaired.provenance
    assert repaired.provenance["header"]["ConversionMethod"].startswith("scaloquant 0.2")
    assert _naa_ppm(repaired) == pytest.approx(NAA_PPM, abs=0.01)
    assert not looks_mirrored(mirror_ratio(repaired.samples, *args))


def test_files_of_this_version_and_other_tools_get_no_legacy_warning(tmp_path):
    basis, naa = _naa_fid()
    for version in ("0.2.0", "1.3.1"):
        path = _legacy_nifti(tmp_path / f"v{version}.nii.gz", naa, basis, version=version)
        assert "warnings" not in read_fid(path).provenance


def test_convert_to_raw_equals_the_nifti_on_disk(tmp_path):
    """Both formats store Levitt's orientation: the .RAW's samples are the NIfTI-MRS file's."""
    basis, naa = _naa_fid()
    src = tmp_path / "naa.nii.gz"
    assert (
        main(
            ["convert", str(_legacy_nifti(tmp_path / "o.nii", naa, basis)), str(src), "--conjugate"]
        )
        == 0
    )
    raw = tmp_path / "naa.RAW"
    assert main(["convert", str(src), str(raw)]) == 0
    on_disk = np.asanyarray(nib.load(src).dataobj).reshape(-1)
    back = read_lcmodel_raw(raw)
    np.testing.assert_allclose(
        np.conj(back.samples), on_disk, rtol=1e-6, atol=1e-6 * abs(on_disk).max()
    )
    assert _naa_ppm(back) == pytest.approx(NAA_PPM, abs=0.01)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("x.csv", "must end in"), ("exists.nii.gz", "pass --overwrite")],
)
def test_convert_refuses_bad_outputs_in_one_line(tmp_path, capsys, name, expected):
    basis, naa = _naa_fid()
    src = _legacy_nifti(tmp_path / "in.nii.gz", naa, basis, version="0.2.0")
    (tmp_path / "exists.nii.gz").write_bytes(b"keep")
    assert main(["convert", str(src), str(tmp_path / name)]) == 2
    assert expected in one_error_line(capsys, "convert")
    assert (tmp_path / "exists.nii.gz").read_bytes() == b"keep"
