"""``scaloquant.readahead``: files read, hashed and gunzipped on a thread give what reading them
on the spot gives; a file changed since, or read outside the block, is read again."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import numpy as np
import pytest

from scaloquant import readahead
from scaloquant.io.nifti import read_nifti_mrs, write_nifti_mrs
from scaloquant.types import FID


def test_content_and_digest_are_the_files(tmp_path):
    raw = os.urandom(300_000)
    gz = tmp_path / "a.nii.gz"
    gz.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))  # two members
    plain = tmp_path / "b.nii"
    plain.write_bytes(raw)
    with readahead.read_ahead([gz, plain, gz]):
        assert readahead.sha256(gz) == hashlib.sha256(gz.read_bytes()).hexdigest()
        assert readahead.content(gz) == raw
        assert readahead.content(gz) is None  # given once
        assert readahead.content(plain) == raw
    assert readahead.content(plain) is None and readahead.sha256(gz) is None


def test_a_changed_or_unreadable_file_is_read_again(tmp_path):
    path = tmp_path / "c.nii.gz"
    path.write_bytes(gzip.compress(b"first"))
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not gzip")
    with readahead.read_ahead([path, bad, tmp_path / "missing.nii"]):
        assert readahead.sha256(path) is not None
        path.write_bytes(gzip.compress(b"second, longer"))
        assert readahead.content(path) is None and readahead.sha256(path) is None
        assert readahead.content(bad) is None  # the reader raises its own error
        assert readahead.content(tmp_path / "missing.nii") is None


def test_nifti_read_ahead_equals_the_file_read_on_the_spot(tmp_path):
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((3, 2, 1, 2, 64)) + 1j * rng.standard_normal((3, 2, 1, 2, 64))
    fid = FID(samples, 2.5e-4, 123.2, 4.65)
    for name in ("m.nii.gz", "m.nii"):
        path = write_nifti_mrs(tmp_path / name, fid, dim_tags=["DIM_DYN"])
        spot = read_nifti_mrs(path)
        with readahead.read_ahead([path]):
            ahead = read_nifti_mrs(path)
        np.testing.assert_array_equal(ahead.samples, spot.samples)
        np.testing.assert_array_equal(spot.samples, fid.samples)
        assert ahead.samples.flags.c_contiguous and ahead.samples.dtype == spot.samples.dtype
        assert ahead.provenance == spot.provenance


def test_files_beyond_the_byte_bound_are_not_held(tmp_path, monkeypatch):
    monkeypatch.setattr(readahead, "READ_AHEAD_MAX_BYTES", 1500)
    paths = []
    for name in ("a.nii", "b.nii", "c.nii"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(os.urandom(700))
    with readahead.read_ahead(paths):
        # the first two (1400 bytes) are read ahead, the third is left to its reader
        assert readahead.content(paths[0]) == paths[0].read_bytes()
        assert readahead.content(paths[1]) == paths[1].read_bytes()
        assert readahead.content(paths[2]) is None and readahead.sha256(paths[2]) is None


def test_the_first_file_is_read_ahead_whatever_its_size(tmp_path, monkeypatch):
    # its reader takes it first: read the ordinary way it would be read, then read and hashed
    # again for the provenance, on the main thread
    monkeypatch.setattr(readahead, "READ_AHEAD_MAX_BYTES", 500)
    paths = [tmp_path / "a.nii", tmp_path / "b.nii"]
    for path in paths:
        path.write_bytes(os.urandom(700))
    with readahead.read_ahead(paths):
        assert readahead.sha256(paths[0]) == hashlib.sha256(paths[0].read_bytes()).hexdigest()
        assert readahead.content(paths[0]) == paths[0].read_bytes()
        assert readahead.content(paths[1]) is None and readahead.sha256(paths[1]) is None


@pytest.fixture(params=["isal", "zlib"])
def inflater(request, monkeypatch):
    """:func:`readahead.gunzip` with ISA-L's inflate (the optional ``isal``; skipped where it is
    not installed) and with zlib's alone."""
    if request.param == "isal":
        if readahead._isal_zlib is None:
            pytest.skip("isal is not installed (optional: scaloquant[fast-read])")
    else:
        monkeypatch.setattr(readahead, "_isal_zlib", None)
    return request.param


def test_gunzip_is_gzip_decompress(inflater):
    raw = os.urandom(50_000) + bytes(50_000)
    one = gzip.compress(raw)
    # several members with zero padding between them, as gzip.decompress reads them
    several = gzip.compress(raw[:10]) + bytes(5) + gzip.compress(raw[10:]) + bytes(3)
    for data in (one, several, gzip.compress(b""), b""):
        assert readahead.gunzip(data) == gzip.decompress(data)
    corrupt = bytearray(one)
    corrupt[-6] ^= 1  # the CRC
    for bad in (bytes(corrupt), b"not gzip", one + b"trailing"):
        with pytest.raises(zlib.error):
            readahead.gunzip(bad)
    for truncated in (one[:-3], one[:100]):
        with pytest.raises(EOFError):
            readahead.gunzip(truncated)
