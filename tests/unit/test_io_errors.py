"""Bad input: each gets its typed, one-line error naming the file and what to do."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from scaloquant.errors import (
    ConfigError,
    IncompatibleDataError,
    InputFileError,
    InvalidDataError,
    MissingMetadataError,
    OutputExistsError,
)
from scaloquant.io import (
    read_basis,
    read_basis_npz,
    read_fid,
    read_text_fid,
    write_lcmodel_raw,
    write_nifti_mrs,
)
from scaloquant.types import FID

N = 16
GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.2}
RAW_HEADER = " $NMID ID='x', FMTDAT='(2E16.8)' $END\n"


def raw_text(values) -> str:
    return RAW_HEADER + "".join(f" {v}" + ("\n" if i % 2 else "") for i, v in enumerate(values))


def jmrui_text(points_header: int, rows: int, datasets: int = 1, freq: str = "1.232E8") -> str:
    head = [
        "jMRUI Data Textfile",
        f"PointsInDataset: {points_header}",
        f"DatasetsInFile: {datasets}",
        "SamplingInterval: 2.5E-1",
        f"TransmitterFrequency: {freq}",
        "Signal 1 out of 1 in file",
    ]
    return "\n".join(head + ["1.0 0.5"] * rows) + "\n"


def basis_text(n_values: int, ndatab: int = 8) -> str:
    return (
        " $SEQPAR\n HZPPPM = 123.2\n $END\n $BASIS1\n BADELT = 0.00025,\n"
        f" NDATAB = {ndatab}\n $END\n $BASIS\n METABO = 'A'\n $END\n"
        + " ".join(["1.0E+00"] * n_values)
        + "\n"
    )


# (file name, content, reader(path), error type, words the message must contain)
CASES = [
    ("x.RAW", raw_text(["1.0"] * 15), lambda p: read_fid(p, **GRID), InputFileError, "odd number"),
    (
        "x.RAW",
        raw_text(["1.0"] * 6 + ["1.0x"] + ["1.0"] * 9),
        lambda p: read_fid(p, **GRID),
        InputFileError,
        "'1.0x', which is not a number",
    ),
    (
        "x.RAW",
        raw_text(["1.0"] * 6 + ["nan"] + ["1.0"] * 9),
        lambda p: read_fid(p, **GRID),
        InvalidDataError,
        "NaN/Inf",
    ),
    (
        "x.RAW",
        raw_text(["1.0"] * 16),
        lambda p: read_fid(p, spectrometer_freq_mhz=123.2),
        MissingMetadataError,
        "--dwell-time-s",
    ),
    (
        "x.RAW",
        raw_text(["1.0"] * 16),
        lambda p: read_fid(p, dwell_time_s=2.5e-4),
        MissingMetadataError,
        "--spectrometer-freq-mhz",
    ),
    (
        "x.RAW",
        " $NMID ID='x' \n 1.0 2.0\n",
        lambda p: read_fid(p, **GRID),
        InputFileError,
        "no $END",
    ),
    ("x.RAW", " 1.0 2.0\n", lambda p: read_fid(p, **GRID), InputFileError, "no $NMID"),
    (
        "x.RAW",
        " $SEQPAR HZPPPM = abc $END\n" + raw_text(["1.0"] * 16),
        lambda p: read_fid(p, dwell_time_s=2.5e-4),
        InputFileError,
        "HZPPPM",
    ),
    (
        "x.H2O",
        raw_text(["inf"] + ["1.0"] * 15),
        lambda p: read_fid(p, **GRID),
        InvalidDataError,
        "NaN/Inf",
    ),
    ("x.BASIS", basis_text(2 * 8 - 4), read_basis, InputFileError, "truncated"),
    ("x.BASIS", basis_text(2 * 8 + 2), read_basis, InvalidDataError, "header says 8"),
    (
        "x.BASIS",
        basis_text(16).replace("NDATAB = 8", "NDATAB = x"),
        read_basis,
        InputFileError,
        "NDATAB",
    ),
    (
        "x.BASIS",
        basis_text(16).replace("BADELT = 0.00025", "BADELT = -1."),
        read_basis,
        InputFileError,
        "encrypted",
    ),
    ("x.BASIS", " $SEQPAR HZPPPM = 123.2 $END\n", read_basis, InputFileError, "no $BASIS"),
    (
        "x.txt",
        "1.0 2.0\n3.0 4.0\n",
        lambda p: read_fid(p, dwell_time_s=2.5e-4),
        MissingMetadataError,
        "--spectrometer-freq-mhz",
    ),
    ("x.txt", "1.0 2.0\n3.0 4.0 5.0\n", lambda p: read_fid(p, **GRID), InputFileError, "columns"),
    (
        "x.txt",
        "1.0 2.0 3.0\n1.0 2.0 3.0\n",
        lambda p: read_fid(p, **GRID),
        InputFileError,
        "columns",
    ),
    ("x.txt", "1.0 2.0\n3.0 four\n", lambda p: read_fid(p, **GRID), InputFileError, "'four'"),
    ("x.txt", "1.0 2.0\nNaN 4.0\n", lambda p: read_fid(p, **GRID), InvalidDataError, "NaN/Inf"),
    ("x.txt", "", lambda p: read_fid(p, **GRID), InputFileError, "is empty"),
    (
        "x.txt",
        "1.0 2.0\n3.0 4.0\n",
        lambda p: read_text_fid(p, **GRID, signal="water"),
        InputFileError,
        "no water",
    ),
    ("j.txt", jmrui_text(N, N - 3), read_fid, InputFileError, "truncated"),
    ("j.txt", jmrui_text(N, N + 1), read_fid, InvalidDataError, f"header says {N}"),
    ("j.txt", jmrui_text(N, N, datasets=2), read_fid, InputFileError, "signals"),
    (
        "j.txt",
        jmrui_text(N, N, freq="123.2"),
        read_fid,
        InvalidDataError,
        "--spectrometer-freq-mhz",
    ),
    (
        "j.txt",
        jmrui_text(N, N).replace("SamplingInterval: 2.5E-1\n", ""),
        read_fid,
        MissingMetadataError,
        "--dwell-time-s",
    ),
    ("j.txt", jmrui_text(N, 0), read_fid, InputFileError, "2 (re im) or 4"),
    ("x.xyz", "hello\n", read_fid, InputFileError, "unknown file format"),
    ("x", "hello\n", read_fid, InputFileError, "unknown file format"),
    ("x.txt", "\x00\x01binary", lambda p: read_fid(p, **GRID), InputFileError, "binary"),
    ("x.BASIS", basis_text(16), read_fid, InputFileError, "basis set, not a FID"),
    ("x.npz", "not a zip", read_basis_npz, InputFileError, "not a scaloquant basis"),
    ("x.nii", "not nifti at all" * 40, read_fid, InputFileError, "NIfTI"),
    ("x.nii.gz", "plain text, not gzip", read_fid, InputFileError, "NIfTI"),
    # session 23's sweep: what a file is, where it is not what its suffix says; too few points
    ("b.RAW", basis_text(16), lambda p: read_fid(p, **GRID), InputFileError, "give it as --basis"),
    ("x.RAW", raw_text(["1.0"] * 16), lambda p: read_fid(p, **GRID), InvalidDataError, "8 point"),
]


@pytest.mark.parametrize(
    ("name", "content", "reader", "error", "words"), CASES, ids=[f"{c[0]}:{c[4]}" for c in CASES]
)
def test_bad_file_gets_its_error(tmp_path, name, content, reader, error, words):
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(error) as info:
        reader(path)
    message = str(info.value)
    assert words in message
    assert "\n" not in message
    assert str(path) in message or path.name in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        read_fid(tmp_path / "missing.RAW", **GRID)
    with pytest.raises(InputFileError, match="is a folder"):
        read_fid(tmp_path)
    with pytest.raises(InputFileError, match="does not exist"):
        read_basis(tmp_path / "missing")
    with pytest.raises(InputFileError, match="holds no basis files"):
        read_basis(tmp_path)


def test_unknown_override_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown override"):
        read_fid(tmp_path / "x.RAW", dwell=1.0)


def _nifti(path, freq_mhz=123.2, data=None, intent=b"mrs_v0_2", **header):
    data = np.ones((1, 1, 1, N), np.complex64) if data is None else data
    img = nib.Nifti2Image(data, np.eye(4))
    img.header["pixdim"][4] = 2.5e-4
    img.header["intent_name"] = intent
    ext = {"SpectrometerFrequency": [freq_mhz], "ResonantNucleus": ["1H"], **header}
    img.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(ext).encode()))
    nib.save(img, path)
    return path


def test_nifti_mrsi_voxels_of_nan_samples_are_blanked_and_named(tmp_path):
    """A voxel of an MRSI file holding a NaN or Inf sample (in any of its coils) is read as an
    empty voxel (all zero; main refused the whole file), named in the provenance's warnings;
    the other voxels are read as they are. Every voxel bad: refused as a single voxel is."""
    data = np.ones((2, 2, 1, N, 2), np.complex64)  # 4 voxels, 2 coils
    data[1, 0, 0, 3, 1] = np.nan
    data[0, 1, 0, 7, 0] = np.inf
    fid = read_fid(_nifti(tmp_path / "mrsi.nii", data=data, dim_5="DIM_COIL"))
    blank = np.zeros((2, 2, 1), bool)
    blank[1, 0, 0] = blank[0, 1, 0] = True
    assert np.all(fid.samples[blank] == 0) and np.all(fid.samples[~blank] == 1)
    (warning,) = fid.provenance["warnings"]
    assert "2 of 4 voxels hold NaN/Inf samples (voxel 0,1,0, 1,0,0)" in warning
    data[...] = np.nan
    with pytest.raises(InvalidDataError, match="NaN/Inf"):
        read_fid(_nifti(tmp_path / "all.nii", data=data, dim_5="DIM_COIL"))


def test_nifti_bad_inputs(tmp_path):
    with pytest.raises(InvalidDataError, match="implausible"):
        read_fid(_nifti(tmp_path / "hz.nii", freq_mhz=123.2e6))
    assert read_fid(tmp_path / "hz.nii", spectrometer_freq_mhz=123.2).spectrometer_freq_mhz == 123.2
    with pytest.raises(InputFileError, match="not valid NIfTI-MRS"):
        read_fid(_nifti(tmp_path / "plain.nii", intent=b""))
    bad = np.ones((1, 1, 1, N), np.complex64)
    bad[0, 0, 0, 3] = np.nan
    with pytest.raises(InvalidDataError, match="NaN/Inf"):
        read_fid(_nifti(tmp_path / "nan.nii", data=bad))
    good = _nifti(tmp_path / "good.nii.gz")
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(InputFileError):
        read_fid(truncated)
    # a flipped byte in the compressed stream: zlib's check fails, and the line names zlib
    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.nii.gz").write_bytes(bytes(flipped))
    with pytest.raises(InputFileError, match=r"\(zlib error: Error -3 .*corrupt or not NIfTI"):
        read_fid(tmp_path / "flipped.nii.gz")
    # not compressed despite .gz, and a gzip whose content is not NIfTI
    (tmp_path / "junk.nii.gz").write_bytes(gzip.compress(b"junk" * 100))
    with pytest.raises(InputFileError):
        read_fid(tmp_path / "junk.nii.gz")


@pytest.mark.parametrize("n_points", [1, 2, 3])
def test_nifti_with_a_spectral_axis_of_a_few_points_names_the_axis(tmp_path, n_points):
    """A singleton (or 2-3 point) 4th dimension: the FID is along another axis, or cut short;
    2 and 3 points failed with a traceback deep in the quality figures, 1 with a line that
    named neither the file nor the axis."""
    path = _nifti(tmp_path / "few.nii.gz", data=np.ones((2, 1, 1, n_points), np.complex64))
    with pytest.raises(InvalidDataError, match=r"few.nii.gz holds \d point.*4th dimension"):
        read_fid(path)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"spectrometer_freq_mhz": 123.2e6}, "is it in Hz"),
        ({"spectrometer_freq_mhz": -123.2}, "not a positive number"),
        ({"dwell_time_s": 0.25}, "is it in ms"),
    ],
)
def test_acquisition_values_in_another_unit_are_refused(tmp_path, flags, words):
    """A frequency in Hz or a dwell time in ms put every peak on a wrong axis; the run failed
    30 s later with "the water reference does not look like water" (or ran on)."""
    path = tmp_path / "x.RAW"
    path.write_text(raw_text(["1.0"] * 64))
    with pytest.raises(ConfigError, match=words):
        read_fid(path, **{**GRID, **flags})


def test_basis_folder_holding_a_basis_file_names_it(tmp_path):
    (tmp_path / "press35.BASIS").write_text(basis_text(16))
    with pytest.raises(InputFileError, match=r"holding press35.BASIS; give that file"):
        read_basis(tmp_path)


def test_nifti_of_random_bytes_says_one_thing(tmp_path, capfd):
    """A .nii of random bytes (no NIfTI-1/-2 header size) is refused as nibabel.load refuses
    it, without nibabel's attempts to mend the header printed before the error."""
    path = tmp_path / "random.nii"
    path.write_bytes(np.random.default_rng(0).bytes(600))
    with pytest.raises(InputFileError, match="Cannot work out file type"):
        read_fid(path)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_basis_folder_with_mismatched_files(tmp_path):
    np.savetxt(tmp_path / "A.txt", np.ones((N, 2)))
    np.savetxt(tmp_path / "B.txt", np.ones((N + 2, 2)))
    with pytest.raises(IncompatibleDataError, match="does not match"):
        read_basis(tmp_path, **GRID)


def test_fsl_basis_bad_json(tmp_path):
    (tmp_path / "A.json").write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        read_basis(tmp_path)
    (tmp_path / "A.json").write_text(json.dumps({"basis": {"basis_re": [1.0]}}))
    with pytest.raises(InputFileError, match="basis_im"):
        read_basis(tmp_path)
    entry = {
        "basis_re": [1.0, 0.5],
        "basis_im": [0.0, 0.1],
        "basis_dwell": 2.5e-4,
        "basis_centre": 123.2,
    }
    (tmp_path / "A.json").write_text(json.dumps({"basis": entry}))
    (tmp_path / "B.json").write_text(json.dumps({"basis": {**entry, "basis_dwell": 5e-4}}))
    with pytest.raises(IncompatibleDataError, match="one grid"):
        read_basis(tmp_path)


def test_writers_refuse_bad_requests_and_keep_existing_files(tmp_path):
    fid = FID(np.ones(N, complex), **GRID)
    existing = tmp_path / "out.RAW"
    existing.write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_lcmodel_raw(existing, fid, name="x")
    assert existing.read_text() == "keep me"
    with pytest.raises(InvalidDataError, match="one FID"):
        write_lcmodel_raw(tmp_path / "two.RAW", FID(np.ones((2, N), complex), **GRID), name="x")
    with pytest.raises(ConfigError, match=r"\.nii"):
        write_nifti_mrs(tmp_path / "out.txt", fid)
    with pytest.raises(InvalidDataError, match="cannot store"):
        write_nifti_mrs(tmp_path / "out.nii", FID(np.ones((2, 2, N), complex), **GRID))
    with pytest.raises(ConfigError, match="unknown NIfTI-MRS dimension tag"):
        write_nifti_mrs(
            tmp_path / "out.nii", FID(np.ones((2, N), complex), **GRID), dim_tags=["DIM_NOPE"]
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.RAW"]  # no partial outputs


def test_a_folder_or_a_missing_file_given_as_a_checkpoint_says_what_to_give(tmp_path):
    """The checkpoint's own hint in both cases (the readers' path checks are one piece of code,
    ``scaloquant.paths``, with each caller's hint)."""
    from scaloquant.models.checkpoint import read_checkpoint
    from scaloquant.paths import CHECKPOINT_HINT

    for path, what in ((tmp_path, "is a folder"), (tmp_path / "gone.ckpt", "does not exist")):
        with pytest.raises(InputFileError) as raised:
            read_checkpoint(path)
        assert str(raised.value) == f"checkpoint {path} {what}; {CHECKPOINT_HINT}"


@pytest.mark.parametrize(
    ("given", "line"),
    [
        (
            {},
            "does not record the dwell time or the spectrometer frequency; pass --dwell-time-s "
            "and --spectrometer-freq-mhz (or dwell_time_s=... and spectrometer_freq_mhz=... in "
            "Python)",
        ),
        (
            {"spectrometer_freq_mhz": 123.2},
            "does not record the dwell time; pass --dwell-time-s (or dwell_time_s=... in Python)",
        ),
        (
            {"dwell_time_s": 2.5e-4},
            "does not record the spectrometer frequency; pass --spectrometer-freq-mhz (or "
            "spectrometer_freq_mhz=... in Python)",
        ),
    ],
)
def test_a_grid_value_not_recorded_nor_given_is_named_with_its_flag(tmp_path, given, line):
    """An LCModel .RAW without $SEQPAR records neither grid value: the refusal names each one
    missing, in the flags' order, with its flag and keyword; its words are those of
    formats.ACQUISITION_VALUES (session 36: require_grid spelled them out again)."""
    from scaloquant.formats import ACQUISITION_VALUES

    raw = tmp_path / "bare.RAW"
    raw.write_text(raw_text([1.0, 0.0] * N))
    with pytest.raises(MissingMetadataError) as err:
        read_fid(raw, **given)
    assert str(err.value) == f"{raw} {line}"
    assert err.value.missing == tuple(ACQUISITION_VALUES[k].words for k in err.value.keywords)
    assert set(err.value.keywords).isdisjoint(given)
