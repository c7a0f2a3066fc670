"""Damaged files that were read as plausible data, or that raised a traceback, found by
``benchmarks/diag_damaged_inputs.py`` (session 31): each is now one typed error naming the
file. Built from small synthetic files, and from the shared ones where the damage is to a real
file's own layout (skipped, saying which, where ``../shared`` is absent)."""

from __future__ import annotations

import gzip
import json
import logging
import struct
import sys

import nibabel as nib
import numpy as np
import pytest

from _shared import CHALLENGE, INVIVO, ISMRM2016_BASIS, one_error_line
from scaloquant.cli import main
from scaloquant.errors import ConfigError, InputFileError, InvalidDataError
from scaloquant.io import (
    read_basis,
    read_fid,
    write_basis_npz,
    write_fsl_basis,
    write_nifti_mrs,
)
from scaloquant.quantify import read_inputs
from scaloquant.types import FID, BasisSet

GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.2}
N = 64


def _fid_values() -> np.ndarray:
    t = np.arange(N) * GRID["dwell_time_s"]
    return np.exp((2j * np.pi * 100 - 20) * t)


def _raw(seqpar: str) -> str:
    rows = "".join(f" {z.real:16.8E}{z.imag:16.8E}\n" for z in np.conj(_fid_values()))
    return f" $SEQPAR\n {seqpar}\n $END\n $NMID ID='x', FMTDAT='(2E16.8)' $END\n{rows}"


def _jmrui(header: dict[str, str]) -> str:
    fields = {
        "PointsInDataset": str(N),
        "DatasetsInFile": "1",
        "SamplingInterval": "2.5E-1",
        "TransmitterFrequency": "1.232E8",
        **header,
    }
    rows = "".join(f"{z.real:.7e} {z.imag:.7e}\n" for z in _fid_values())
    head = "".join(f"{k}: {v}\n" for k, v in fields.items())
    return f"jMRUI Data Textfile\n{head}Signal 1 out of 1 in file\n{rows}"


def _basis_file(header: str) -> str:
    spec = np.fft.fft(np.r_[np.conj(_fid_values()), np.zeros(N)], norm="ortho")
    numbers = "".join(f"{z.real:13.5E}{z.imag:13.5E}\n" for z in spec)
    return (
        f" $SEQPAR\n HZPPPM = 123.2\n $END\n $BASIS1\n {header},\n FMTBAS = '(2E13.5)',\n"
        f" NDATAB = {2 * N}\n $END\n $BASIS\n METABO = 'A'\n $END\n{numbers}"
    )


def _basis(**grid: float) -> BasisSet:
    return BasisSet(names=("A",), fids=_fid_values()[None], **{**GRID, **grid})


# (case, file name, content or writer, words of the message)
RECORDED_IN_ANOTHER_UNIT = [
    ("RAW DELTAT in ms", "x.RAW", _raw("HZPPPM = 123.2, DELTAT = 0.25"), "0.25 s, a 4 Hz"),
    ("RAW HZPPPM in Hz", "x.RAW", _raw("HZPPPM = 1.232E8, DELTAT = 2.5E-4"), "is it in Hz"),
    ("RAW DELTAT zero", "x.RAW", _raw("HZPPPM = 123.2, DELTAT = 0"), "not a positive number"),
    ("jMRUI interval in us", "x.txt", _jmrui({"SamplingInterval": "250"}), "is it in ms"),
    ("jMRUI interval in s", "x.txt", _jmrui({"SamplingInterval": "2.5E-4"}), "another unit"),
    ("jMRUI frequency in mHz", "x.txt", _jmrui({"TransmitterFrequency": "1.232E11"}), "in Hz"),
    ("jMRUI interval zero", "x.txt", _jmrui({"SamplingInterval": "0"}), "not a positive"),
    ("BASIS BADELT in ms", "x.BASIS", _basis_file("BADELT = 0.25"), "is it in ms"),
    (
        "npz dwell time in ms",
        "x.npz",
        lambda p: write_basis_npz(p, _basis(dwell_time_s=0.25)),
        "ms",
    ),
    (
        "npz frequency in Hz",
        "x.npz",
        lambda p: write_basis_npz(p, _basis(spectrometer_freq_mhz=1.232e8)),
        "is it in Hz",
    ),
    (
        "FSL-MRS dwell time in ms",
        "fsl",
        lambda p: write_fsl_basis(p, _basis(dwell_time_s=0.25)),
        "ms",
    ),
]


def _write(tmp_path, name, content):
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_text(content)
    return path


def _read(path, **given):
    is_basis = path.suffix in (".BASIS", ".npz") or path.is_dir()
    return (read_basis if is_basis else read_fid)(path, **given)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [c[1:] for c in RECORDED_IN_ANOTHER_UNIT],
    ids=[c[0] for c in RECORDED_IN_ANOTHER_UNIT],
)
def test_a_recorded_grid_value_in_another_unit_is_refused_naming_the_file(
    tmp_path, name, content, words
):
    """A header's dwell time in ms (or µs, or s where ms are meant) or frequency in Hz was read
    as it stood: a spectrum on a 4 Hz or 4 MHz axis, or at 1.2e8 MHz, whose basis the fit then
    rescaled to it (a plausible wrong answer), or a message without the file's name (a zero)."""
    path = _write(tmp_path, name, content)
    with pytest.raises(InvalidDataError, match=words) as err:
        _read(path)
    assert str(path) in str(err.value) or path.name in str(err.value)
    assert "--override-header" in str(err.value)


def test_the_flag_with_override_header_reads_such_a_file(tmp_path):
    """The message's remedy works: the right value given, the file's replaced."""
    path = _write(tmp_path, "x.RAW", _raw("HZPPPM = 123.2, DELTAT = 0.25"))
    with pytest.raises(ConfigError, match="--override-header"):
        read_fid(path, dwell_time_s=2.5e-4)
    fid = read_fid(path, dwell_time_s=2.5e-4, override_header=True)
    assert fid.dwell_time_s == 2.5e-4
    assert fid.provenance["header_overrides"]["dwell_time_s"]["recorded"] == 0.25


@pytest.mark.parametrize(
    ("flags", "words"),
    [({"dwell_time_s": 2.5e-9}, "another unit"), ({"dwell_time_s": -2.5e-4}, "not a positive")],
)
def test_a_given_dwell_time_follows_the_same_rule(tmp_path, flags, words):
    path = _write(tmp_path, "x.RAW", _raw("HZPPPM = 123.2"))
    with pytest.raises(ConfigError, match=f"--dwell-time-s .* is .*{words}"):
        read_fid(path, **flags)


TWICE = [
    ("RAW HZPPPM", "x.RAW", _raw("HZPPPM = 123.2, HZPPPM = 127.8, DELTAT = 2.5E-4"), "HZPPPM"),
    (
        "RAW HZPPPM in two $SEQPAR groups",
        "x.RAW",
        _raw("HZPPPM = 123.2, DELTAT = 2.5E-4\n $END\n $SEQPAR\n HZPPPM = 127.8"),
        "give HZPPPM",
    ),
    (
        "jMRUI frequency",
        "x.txt",
        _jmrui({"TransmitterFrequency": "1.232E8\nTransmitterFrequency: 2.9806E8"}),
        "TransmitterFrequency",
    ),
    (
        "jMRUI interval",
        "x.txt",
        _jmrui({"SamplingInterval": "2.5E-1\nSamplingInterval: 5E-1"}),
        "SamplingInterval",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "key"), [c[1:] for c in TWICE], ids=[c[0] for c in TWICE]
)
def test_a_header_key_given_twice_with_two_values_is_refused(tmp_path, name, content, key):
    """The last was taken: a spectrum on another field's axis, or at twice the dwell time."""
    path = _write(tmp_path, name, content)
    with pytest.raises(InputFileError, match=f"{key} (is given )?twice|{key} as"):
        read_fid(path)


def test_a_header_key_given_twice_alike_is_read(tmp_path):
    path = _write(tmp_path, "x.RAW", _raw("HZPPPM = 123.2, HZPPPM = 123.2, DELTAT = 2.5E-4"))
    assert read_fid(path).spectrometer_freq_mhz == 123.2


def _nifti(tmp_path, name="d.nii"):
    fid = FID(_fid_values(), **GRID)
    return write_nifti_mrs(tmp_path / name, fid)


def _patch_header_ext(path, text: str) -> None:
    img = nib.load(path)
    out = nib.Nifti2Image(np.asarray(img.dataobj), img.affine, header=img.header.copy())
    out.header.extensions.clear()
    out.header.extensions.append(nib.nifti1.Nifti1Extension(44, text.encode()))
    nib.save(out, path)


def test_a_nifti_header_key_given_twice_with_two_values_is_refused(tmp_path):
    path = _nifti(tmp_path)
    header = nib.load(path).header.extensions[0].get_content().decode()
    _patch_header_ext(path, header[:-1] + ', "SpectrometerFrequency": [297.2]}')
    with pytest.raises(InputFileError, match="SpectrometerFrequency twice"):
        read_fid(path)


@pytest.mark.parametrize("tag", ["DIM_FOO", "dim_dyn", ["DIM_DYN"]])
def test_a_nifti_dimension_tag_outside_the_standard_is_refused_as_such(tmp_path, capsys, tag):
    """Was 'cannot read ... as NIfTI-MRS (ValueError: tag must be one of the defined dimension
    tags or None.); the file is truncated, corrupt or not NIfTI': a cause it is not (session
    36, audit36)."""
    samples = np.stack([_fid_values()] * 2).reshape(1, 1, 1, 2, -1)
    path = write_nifti_mrs(tmp_path / "d.nii", FID(samples, **GRID), dim_tags=["DIM_DYN"])
    header = json.loads(nib.load(path).header.extensions[0].get_content())
    _patch_header_ext(path, json.dumps({**header, "dim_5": tag}))
    assert main(["convert", str(path), str(tmp_path / "out.nii.gz")]) == 2
    line = one_error_line(capsys, "convert")
    assert f"is not valid NIfTI-MRS: its header extension's dim_5 is {tag!r}, not a" in line
    assert "DIM_EDIT" in line and "truncated" not in line
    assert not (tmp_path / "out.nii.gz").exists()


def _dim_offset(raw: bytes) -> tuple[str, int, int]:
    """(struct format, offset of dim[4], offset of pixdim[4]) of a NIfTI-1 or -2 header."""
    if struct.unpack("<i", raw[:4])[0] == 540:
        return "<q", 16 + 8 * 4, 104 + 8 * 4
    return "<h", 40 + 2 * 4, 76 + 4 * 4


@pytest.mark.parametrize("damage", ["dim4 halved", "a second FID appended"])
def test_a_nifti_holding_data_after_its_image_is_refused(tmp_path, damage):
    """A damaged dim[4] (half the points) read the first half of the FID as the whole; a second
    FID appended was dropped unsaid: both a plausible spectrum."""
    path = _nifti(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "dim4 halved":
        fmt, at, _ = _dim_offset(raw)
        raw[at : at + struct.calcsize(fmt)] = struct.pack(fmt, N // 2)
    else:
        offset = int(nib.load(path).dataobj.offset)
        raw += raw[offset:]
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidDataError, match="bytes after the image its header describes"):
        read_fid(path)


def test_a_nifti_without_spectral_width_and_pixdim_in_ms_is_refused(tmp_path):
    """Without ``SpectralWidth`` nothing checked pixdim[4]: 0.5 (ms written as s) was read as a
    2 Hz spectral width."""
    path = _nifti(tmp_path)
    header = json.loads(nib.load(path).header.extensions[0].get_content())
    header.pop("SpectralWidth", None)
    _patch_header_ext(path, json.dumps(header))
    raw = bytearray(path.read_bytes())
    fmt, _, at = _dim_offset(raw)
    pix = "<d" if fmt == "<q" else "<f"
    raw[at : at + struct.calcsize(pix)] = struct.pack(pix, 0.5)
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidDataError, match="records a dwell time of 0.5 s"):
        read_fid(path)


@pytest.mark.parametrize("n_bytes", [10, 270])
def test_a_nifti_cut_inside_its_header_is_one_line(tmp_path, capsys, n_bytes):
    """nibabel's WrapStructError ("Binary block is wrong size") was a traceback."""
    path = _nifti(tmp_path)
    path.write_bytes(path.read_bytes()[:n_bytes])
    assert main(["convert", str(path), str(tmp_path / "out.nii.gz")]) == 2
    line = one_error_line(capsys, "convert")
    assert f"ends at byte {n_bytes}, inside its" in line
    assert not (tmp_path / "out.nii.gz").exists()


def _npz_with(tmp_path, **changes):
    """A basis .npz as write_basis_npz writes it, with parts replaced (``info`` as a dict of
    key changes, or a string for the whole JSON text)."""
    import io
    import zipfile

    good = write_basis_npz(tmp_path / "good.npz", _basis())
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    info = changes.pop("info", {})
    if isinstance(info, str):
        arrays["info"] = np.array(info)
    else:
        arrays["info"] = np.array(json.dumps({**json.loads(str(arrays["info"][()])), **info}))
    arrays.update(changes)
    path = tmp_path / "damaged.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(f"{key}.npy", buf.getvalue())
    return path


NPZ_PARTS = [
    ("dwell time a string", {"info": {"dwell_time_s": "abc"}}, "dwell_time_s is 'abc'"),
    ("frequency a list", {"info": {"spectrometer_freq_mhz": [123.2]}}, "not a number"),
    ("metadata a list", {"info": {"metadata": [1]}}, "metadata is a JSON list"),
    ("info a list", {"info": "[1, 2]"}, "info is a JSON list"),
    ("nucleus a number", {"info": {"nucleus": 1}}, "nucleus is 1"),
    ("real fids", {"fids": _fid_values()[None].real}, "not complex"),
    ("names numbers", {"names": np.arange(1)}, "names are int"),
]


@pytest.mark.parametrize(
    ("changes", "words"), [c[1:] for c in NPZ_PARTS], ids=[c[0] for c in NPZ_PARTS]
)
def test_a_basis_npz_part_of_another_type_is_refused(tmp_path, changes, words):
    """The first four were tracebacks (ValueError, TypeError, AttributeError); real fids were
    a basis whose spectra are their own mirror images; numbers as names, a nucleus 1."""
    path = _npz_with(tmp_path, **changes)
    with pytest.raises(InputFileError, match=f"damaged.npz is not a scaloquant basis .*{words}"):
        read_basis(path)


def test_an_empty_basis_npz_is_one_line(tmp_path, capsys):
    """numpy's EOFError was a traceback."""
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    assert main(["basis", "info", str(path)]) == 2
    assert "empty.npz is not a scaloquant basis .npz" in one_error_line(capsys, "basis info")


# The shared files, damaged as the diagnostic damages them.
METAB = INVIVO / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz"
JMRUI = CHALLENGE / "datasets_JMRUI" / "dataset1_WS.txt"
BASIS = ISMRM2016_BASIS / "lcmodel" / "press3T_30ms.BASIS"


def _shared(path):
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data)")
    return path


def test_the_shared_spec2nii_nifti_with_dim4_halved_is_refused(tmp_path):
    raw = bytearray(gzip.decompress(_shared(METAB).read_bytes()))
    fmt, at, _ = _dim_offset(raw)
    raw[at : at + struct.calcsize(fmt)] = struct.pack(fmt, 512)
    path = tmp_path / "metab.nii"
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidDataError, match="4096 bytes after the image"):
        read_fid(path)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("SamplingInterval: 2.5E-1", "SamplingInterval: 250", "0.25 s, a 4 Hz"),
        (
            "TransmitterFrequency: 1.2322E8",
            "TransmitterFrequency: 1.2322E8\nTransmitterFrequency: 2.9806E8",
            "TransmitterFrequency is given twice",
        ),
    ],
)
def test_the_shared_jmrui_file_damaged_is_refused(tmp_path, old, new, words):
    text = _shared(JMRUI).read_text()
    assert old in text
    path = tmp_path / "dataset1_WS.txt"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises((InvalidDataError, InputFileError), match=words):
        read_fid(path)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("BADELT =  0.000250000012", "BADELT = 0.25", "is it in ms"),
        ("HZPPPM =  123.261703", "HZPPPM = 1.23261703E8", "is it in Hz"),
    ],
)
def test_the_shared_lcmodel_basis_damaged_is_refused(tmp_path, old, new, words):
    text = _shared(BASIS).read_text()
    assert old in text
    path = tmp_path / "press3T_30ms.BASIS"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(InvalidDataError, match=words):
        read_basis(path)


def _patch(raw: bytearray, field: str, value) -> None:
    """Set a NIfTI-1 or -2 header field: ``datatype`` or ``dim0``."""
    nifti2 = struct.unpack("<i", raw[:4])[0] == 540
    fmt, at = {
        ("datatype", True): ("<h", 12),
        ("datatype", False): ("<h", 70),
        ("dim0", True): ("<q", 16),
        ("dim0", False): ("<h", 40),
    }[field, nifti2]
    raw[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)


@pytest.mark.parametrize(("field", "value"), [("datatype", 999), ("dim0", 9)])
def test_a_nifti_header_nibabel_cannot_mend_is_one_line(
    tmp_path, capsys, monkeypatch, field, value
):
    """nibabel logged each field it could not mend ("data code 999 not recognized; not
    attempting fix") to stderr above the refusal: two or three lines. (Its log handler holds
    the stderr of nibabel's import, pytest's while it collected: pointed at this test's.)"""
    for handler in logging.getLogger("nibabel.global").handlers:
        monkeypatch.setattr(handler, "stream", sys.stderr)
    path = _nifti(tmp_path)
    raw = bytearray(path.read_bytes())
    _patch(raw, field, value)
    path.write_bytes(bytes(raw))
    assert main(["convert", str(path), str(tmp_path / "out.nii.gz")]) == 2
    assert "cannot read" in one_error_line(capsys, "convert")


def test_fit_with_a_shared_basis_cut_after_its_first_block_is_not_a_traceback(tmp_path, capsys):
    """A .BASIS cut exactly at a block boundary reads as the blocks before it (the format
    records no count): here Mac alone, none of the combined rows' parts, and the fit's table of
    tNAA, tCr, tCho and Glx stacked none ('need at least one array to stack', a traceback)."""
    text = _shared(BASIS).read_text()
    blocks = [i for i in range(len(text)) if text.startswith("$NMUSED", i)]
    path = tmp_path / "cut.BASIS"
    path.write_text(text[: blocks[1]])
    data = _shared(CHALLENGE / "datasets_LCModel" / "dataset1.RAW")
    argv = ["fit", str(data), "--basis", str(path), "--preset", "simulated"]
    argv += ["--out", str(tmp_path / "out"), "--dwell-time-s", "0.00025"]
    assert main([*argv, "--spectrometer-freq-mhz", "123.2"]) == 0
    header = (tmp_path / "out" / "results.csv").read_text().splitlines()[0].split(",")
    assert header[2:4] == ["Mac", "Mac_crlb_sd"]
    assert not {"tNAA", "tCr"} & set(header)


@pytest.mark.parametrize("part", ["imag", "real"])
def test_a_fid_with_one_part_all_zero_is_refused(tmp_path, part):
    """A real array stored as complex (the spec2nii NIfTI with its imaginary parts zeroed):
    each peak and its mirror image at half height, fitted with NAA 47 % low and no flag."""
    values = _fid_values()
    values = values.real + 0j if part == "imag" else 1j * values.imag
    path = write_nifti_mrs(tmp_path / "d.nii", FID(values, **GRID))
    with pytest.raises(
        InvalidDataError, match=f"every {'imaginary' if part == 'imag' else 'real'} part"
    ):
        read_inputs([path])
    assert read_fid(path).n_points == values.shape[-1]  # convert and basis still read it


def test_a_real_water_reference_is_taken(tmp_path):
    """An on-resonance, phased water FID is real-valued in time: only the metabolite data are
    checked."""
    t = np.arange(_fid_values().shape[-1]) * GRID["dwell_time_s"]
    water = write_nifti_mrs(tmp_path / "w.nii", FID(np.exp(-t / 0.05) + 0j, **GRID))
    data = write_nifti_mrs(tmp_path / "d.nii", FID(_fid_values(), **GRID))
    (inp,) = read_inputs([data], water=[water])
    assert inp.water is not None


def test_the_shared_spec2nii_nifti_stored_as_real_is_refused(tmp_path):
    img = nib.load(_shared(METAB))
    data = np.asarray(img.dataobj)
    out = nib.Nifti2Image(data.real.astype(data.dtype), img.affine, header=img.header.copy())
    nib.save(out, tmp_path / "metab.nii")
    with pytest.raises(InvalidDataError, match="real numbers stored as complex"):
        read_inputs([tmp_path / "metab.nii"])
