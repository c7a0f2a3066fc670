"""Damaged input files through the CLI: one real file of each input format (``../shared/data``)
damaged systematically in copies (truncated, header fields flipped or zeroed, NaN/Inf/all-zero
data, conjugated or wrong-dtype samples, duplicate keys, a second FID appended), each run through
``scaloquant convert``, then, where it read, ``fit`` and ``quantify --model ... --force`` (FID
formats), or ``basis info`` and ``fit --basis`` (basis formats). The later commands read the file
as the first does: where it refuses, so do they, and they are not run.

The guide's rule: a damaged file gives one clear line on stderr, a non-zero exit and no output,
or, where it exits 0, a result that is flagged or is the undamaged file's. Printed per run: the
exit code, stderr's line count, whether a traceback appeared, whether the output holds anything,
and for exit 0 how far the result is from the undamaged file's (the fit's and quantify's NAA,
Cr and PCho amplitudes against the undamaged run's, relative and in its SDs; convert's samples
and grid; basis info's lines) with its ``qc`` column. Each row ends in a verdict: ``ok`` (refused
as the rule says, or the same result), ``flagged`` (a different result whose ``qc`` or warnings
say so), ``as read`` (convert wrote the damaged data as they read: the fit's row judges them), or
a failure in capitals: ``TRACEBACK``, ``LINES`` (more than one line), ``PARTIAL`` (output after
a refusal), ``UNREADABLE`` (convert wrote a file its own reader refuses), ``UNFLAGGED`` (exit 0,
a different result, nothing said): a plausible wrong answer, the worst.

The damage is seeded (``--seed``: which samples become NaN, where the cuts fall inside a line).
Each run's outcome is saved under ``--work``; ``--reuse`` prints the table again from them.
Usage::

    PYTHONPATH=src python benchmarks/diag_damaged_inputs.py --model CKPT [--work /tmp/damaged]
        [--only KIND/NAME,...] [--jobs 2] [--seed 31] [--reuse]

``--model``: a checkpoint for ``quantify`` (``scaloquant train --preset tiny --model
spectrum_cnn --out DIR``, 20 s); without it quantify is not run. About 25 min on 2 shared cores.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CHALLENGE = SHARED / "ismrm2016-challenge"
BASES = {
    "nifti": SHARED / "invivo" / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz",
    "raw": CHALLENGE / "datasets_LCModel" / "dataset1.RAW",
    "jmrui": CHALLENGE / "datasets_JMRUI" / "dataset1_WS.txt",
    "text": CHALLENGE / "datasets_text" / "dataset1.txt",
    "basis": SHARED / "ismrm2016" / "basis" / "lcmodel" / "press3T_30ms.BASIS",
}
#: The ISMRM 2016 challenge's grid, which its .RAW and text files do not record.
ISMRM_GRID = ("--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.2")
FLAGS = {"nifti": (), "raw": ISMRM_GRID, "jmrui": (), "text": ISMRM_GRID}
#: Relative change of NAA, Cr or PCho above which a result differs from the undamaged one.
SAME_RTOL = 1e-4


@dataclass(frozen=True)
class Case:
    """One damaged copy: ``kind`` (``nifti``, ``raw``, ... ``npz``, ``fsl``), what was done."""

    kind: str
    name: str
    path: Path
    flags: tuple[str, ...] = ()


@dataclass
class Damager:
    """Writes the damaged copies of one base file into ``work``."""

    work: Path
    rng: np.random.Generator
    cases: list[Case] = field(default_factory=list)

    def add(self, kind: str, name: str, write: Callable[[Path], None], suffix: str) -> None:
        path = self.work / "in" / kind / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        self.cases.append(Case(kind, name, path, FLAGS.get(kind, ())))

    def text(self, kind: str, name: str, content: str | bytes, suffix: str) -> None:
        def write(p: Path) -> None:
            p.write_bytes(content if isinstance(content, bytes) else content.encode("latin-1"))

        self.add(kind, name, write, suffix)


def _split_header(text: str, first_data: re.Pattern[str]) -> tuple[str, str]:
    m = first_data.search(text)
    assert m is not None
    return text[: m.start()], text[m.start() :]


_NUMBER_LINE = re.compile(r"^\s*[-+]?\d", re.MULTILINE)


def _generic_text(d: Damager, kind: str, text: str, head: str, body: str, suffix: str) -> None:
    """The damages every text format shares: cuts, NaN/Inf, zeros, conjugate, a second FID."""
    d.text(kind, "base", text, suffix)
    d.text(kind, "empty", "", suffix)
    d.text(kind, "cut-10-bytes", text[:10], suffix)
    d.text(kind, "cut-mid-header", head[: len(head) // 2], suffix)
    d.text(kind, "header-only", head, suffix)
    mid = len(head) + len(body) // 2
    d.text(kind, "cut-mid-data-mid-line", text[: mid + int(d.rng.integers(1, 5))], suffix)
    lines = body.splitlines(keepends=True)
    for frac in (0.1, 0.5, 0.99):
        d.text(
            kind,
            f"cut-data-at-line-{int(frac * 100)}%",
            head + "".join(lines[: int(len(lines) * frac)]),
            suffix,
        )
    d.text(kind, "one-line-short", head + "".join(lines[:-1]), suffix)
    last = lines[-1].split()
    d.text(
        kind,
        "last-line-one-number-short",
        head + "".join(lines[:-1]) + " ".join(last[:-1]) + "\n",
        suffix,
    )
    for bad in ("NaN", "Inf"):
        at = int(d.rng.integers(0, len(lines)))
        broken = lines[at].split()
        broken[0] = bad
        d.text(
            kind,
            f"{bad.lower()}-sample",
            head + "".join(lines[:at]) + "  ".join(broken) + "\n" + "".join(lines[at + 1 :]),
            suffix,
        )
    d.text(kind, "all-zero-data", head + "".join(re.sub(r"\S+", "0.0", ln) for ln in lines), suffix)
    d.text(
        kind,
        "garbled-token",
        head
        + "".join(lines[:5])
        + lines[5].replace(lines[5].split()[0], "1.2.3", 1)
        + "".join(lines[6:]),
        suffix,
    )
    d.text(kind, "second-fid-appended", text + body, suffix)
    d.text(kind, "crlf-line-ends", text.replace("\n", "\r\n"), suffix)


def _negate_imag(body: str) -> str:
    """The data rows with every imaginary part negated (columns 2, 4, ... of ``re im`` pairs)."""
    out = []
    for line in body.splitlines(keepends=True):
        parts = line.split()
        if not parts:
            out.append(line)
            continue
        for i in range(1, len(parts), 2):
            v = parts[i]
            parts[i] = v[1:] if v.startswith("-") else "-" + v
        out.append("  ".join(parts) + "\n")
    return "".join(out)


def damage_raw(d: Damager) -> None:
    text = BASES["raw"].read_text()
    head, body = _split_header(text, _NUMBER_LINE)
    _generic_text(d, "raw", text, head, body, ".RAW")
    d.text("raw", "conjugated", head + _negate_imag(body), ".RAW")
    d.text("raw", "no-end", head.replace("$END", ""), ".RAW")
    d.text("raw", "fmtdat-garbled", text.replace("(8E13.5)", "(8E13.5"), ".RAW")
    d.text(
        "raw", "duplicate-id", text.replace("ID='dataset1'", "ID='dataset1', ID='other'"), ".RAW"
    )
    seqpar = " $SEQPAR\n HZPPPM={f}, DELTAT={d}, ECHOT={te}\n $END\n"
    good = {"f": "123.2", "d": "2.5e-4", "te": "30"}
    for name, change in (
        ("seqpar-good", {}),
        ("hzpppm-zero", {"f": "0"}),
        ("hzpppm-negative", {"f": "-123.2"}),
        ("hzpppm-string", {"f": "'abc'"}),
        ("hzpppm-in-hz", {"f": "1.232E8"}),
        ("hzpppm-nan", {"f": "NaN"}),
        ("deltat-zero", {"d": "0"}),
        ("deltat-negative", {"d": "-2.5e-4"}),
        ("deltat-in-ms", {"d": "0.25"}),
        ("deltat-inf", {"d": "Inf"}),
        ("deltat-string", {"d": "'x'"}),
        ("echot-string", {"te": "'thirty'"}),
        ("echot-negative", {"te": "-30"}),
        ("echot-in-s", {"te": "0.03"}),
    ):
        values = {**good, **change}
        d.text("raw-seqpar", name, seqpar.format(**values) + text, ".RAW")
    d.text(
        "raw-seqpar",
        "hzpppm-duplicate-differs",
        " $SEQPAR\n HZPPPM=123.2, HZPPPM=127.8, DELTAT=2.5e-4\n $END\n" + text,
        ".RAW",
    )
    d.text(
        "raw-seqpar",
        "hzpppm-two-groups-differ",
        " $SEQPAR\n HZPPPM=123.2, DELTAT=2.5e-4\n $END\n $SEQPAR\n HZPPPM=127.8\n $END\n" + text,
        ".RAW",
    )
    for name, nunfil in (
        ("nunfil-2047", "2047"),
        ("nunfil-4096", "4096"),
        ("nunfil-string", "'x'"),
        ("nunfil-zero", "0"),
    ):
        d.text("raw", name, text.replace("TRAMP=1", f"TRAMP=1, NUNFIL={nunfil}"), ".RAW")


def damage_jmrui(d: Damager) -> None:
    text = BASES["jmrui"].read_text()
    head, body = _split_header(text, re.compile(r"^\s*[-+]?\d", re.MULTILINE))
    _generic_text(d, "jmrui", text, head, body, ".txt")
    d.text("jmrui", "conjugated", head + _negate_imag(body), ".txt")
    for name, old, new in (
        ("interval-zero", "SamplingInterval: 2.5E-1", "SamplingInterval: 0"),
        ("interval-negative", "SamplingInterval: 2.5E-1", "SamplingInterval: -2.5E-1"),
        ("interval-in-s", "SamplingInterval: 2.5E-1", "SamplingInterval: 2.5E-4"),
        ("interval-in-us", "SamplingInterval: 2.5E-1", "SamplingInterval: 250"),
        ("interval-string", "SamplingInterval: 2.5E-1", "SamplingInterval: abc"),
        ("interval-nan", "SamplingInterval: 2.5E-1", "SamplingInterval: NaN"),
        ("interval-missing", "SamplingInterval: 2.5E-1", ""),
        ("freq-in-mhz", "TransmitterFrequency: 1.2322E8", "TransmitterFrequency: 123.22"),
        ("freq-zero", "TransmitterFrequency: 1.2322E8", "TransmitterFrequency: 0"),
        ("freq-in-khz-as-hz", "TransmitterFrequency: 1.2322E8", "TransmitterFrequency: 1.2322E11"),
        ("freq-inf", "TransmitterFrequency: 1.2322E8", "TransmitterFrequency: Inf"),
        ("freq-missing", "TransmitterFrequency: 1.2322E8", ""),
        ("points-2047", "PointsInDataset: 2048", "PointsInDataset: 2047"),
        ("points-4096", "PointsInDataset: 2048", "PointsInDataset: 4096"),
        ("points-zero", "PointsInDataset: 2048", "PointsInDataset: 0"),
        ("points-string", "PointsInDataset: 2048", "PointsInDataset: many"),
        ("datasets-2", "DatasetsInFile: 1", "DatasetsInFile: 2"),
        ("datasets-zero", "DatasetsInFile: 1", "DatasetsInFile: 0"),
        (
            "duplicate-interval-differs",
            "SamplingInterval: 2.5E-1",
            "SamplingInterval: 2.5E-1\nSamplingInterval: 5E-1",
        ),
        (
            "duplicate-freq-differs",
            "TransmitterFrequency: 1.2322E8",
            "TransmitterFrequency: 1.2322E8\nTransmitterFrequency: 2.9806E8",
        ),
        ("magic-missing", "jMRUI Data Textfile", ""),
    ):
        assert old in text, old
        d.text("jmrui", name, text.replace(old, new, 1), ".txt")


def damage_text(d: Damager) -> None:
    text = BASES["text"].read_text()
    _generic_text(d, "text", text, "", text, ".txt")
    lines = text.splitlines(keepends=True)
    d.text("text", "conjugated", _negate_imag(text), ".txt")
    d.text(
        "text", "three-columns", "".join(" ".join(ln.split()[:3]) + "\n" for ln in lines), ".txt"
    )
    d.text(
        "text",
        "one-row-three-columns",
        "".join(lines[:9]) + " ".join(lines[9].split()[:3]) + "\n" + "".join(lines[10:]),
        ".txt",
    )
    d.text("text", "comment-header", "# dwell 0.25 ms\n% freq 123.2 MHz\n" + text, ".txt")


def _nifti_bytes() -> bytes:
    return gzip.decompress(BASES["nifti"].read_bytes())


def _nifti_with(header_json: str | None = None, data=None, drop_ext: bool = False):
    """The base NIfTI-MRS image (a NIfTI-2 of spec2nii) with its extension's text, its data or
    no extension: nibabel rewrites the rest of the header consistently."""
    import nibabel as nib

    img = nib.load(str(BASES["nifti"]))
    out = nib.Nifti2Image(
        np.asarray(img.dataobj) if data is None else data, img.affine, header=img.header.copy()
    )
    out.header.extensions.clear()
    if not drop_ext:
        content = (
            header_json
            if header_json is not None
            else img.header.extensions[0].get_content().decode()
        )
        out.header.extensions.append(nib.nifti1.Nifti1Extension(44, content.encode()))
    return out


def damage_nifti(d: Damager) -> None:
    import nibabel as nib

    raw = _nifti_bytes()
    base = nib.load(str(BASES["nifti"]))
    ext = json.loads(base.header.extensions[0].get_content())
    offset = int(base.dataobj.offset)
    d.text("nifti", "base", raw, ".nii")
    d.text("nifti", "base-gz", BASES["nifti"].read_bytes(), ".nii.gz")
    d.text("nifti", "empty", b"", ".nii")
    d.text("nifti", "cut-10-bytes", raw[:10], ".nii")
    d.text("nifti", "cut-mid-header", raw[:270], ".nii")
    d.text("nifti", "cut-mid-extension", raw[: 540 + (offset - 540) // 2], ".nii")
    d.text("nifti", "cut-at-data-start", raw[:offset], ".nii")
    d.text("nifti", "cut-mid-data", raw[: offset + (len(raw) - offset) // 2], ".nii")
    d.text("nifti", "one-sample-short", raw[:-8], ".nii")
    d.text("nifti", "one-byte-short", raw[:-1], ".nii")
    d.text(
        "nifti",
        "gz-cut-mid",
        BASES["nifti"].read_bytes()[: len(BASES["nifti"].read_bytes()) // 2],
        ".nii.gz",
    )
    d.text("nifti", "second-fid-appended", raw + raw[offset:], ".nii")

    def patched(fmt: str, at: int, value) -> bytes:
        b = bytearray(raw)
        b[at : at + np.dtype(fmt).itemsize] = np.array(value, dtype=fmt).tobytes()
        return bytes(b)

    # NIfTI-2: dim int64[8] at 16, pixdim float64[8] at 104, datatype int16 at 12,
    # scl_slope float64 at 176, scl_inter at 184, vox_offset int64 at 168
    for name, fmt, at, value in (
        ("pixdim4-zero", "<f8", 104 + 8 * 4, 0.0),
        ("pixdim4-negative", "<f8", 104 + 8 * 4, -5e-4),
        ("pixdim4-nan", "<f8", 104 + 8 * 4, np.nan),
        ("pixdim4-in-ms", "<f8", 104 + 8 * 4, 0.5),
        ("pixdim4-tiny", "<f8", 104 + 8 * 4, 5e-9),
        ("dim4-512", "<i8", 16 + 8 * 4, 512),
        ("dim4-2048", "<i8", 16 + 8 * 4, 2048),
        ("dim4-zero", "<i8", 16 + 8 * 4, 0),
        ("dim0-3", "<i8", 16, 3),
        ("dim0-9", "<i8", 16, 9),
        ("dim1-2", "<i8", 16 + 8, 2),
        ("datatype-float32", "<i2", 12, 16),
        ("datatype-complex128", "<i2", 12, 1792),
        ("datatype-bogus", "<i2", 12, 999),
        ("scl-slope-2", "<f8", 176, 2.0),
        ("scl-slope-nan", "<f8", 176, np.nan),
        ("scl-inter-1", "<f8", 184, 1.0),
        ("vox-offset-beyond", "<i8", 168, len(raw) + 16),
        ("vox-offset-minus-8", "<i8", 168, offset - 8),
    ):
        d.text("nifti", name, patched(fmt, at, value), ".nii")

    def save(name: str, img) -> None:
        d.add("nifti", name, lambda p: nib.save(img, str(p)), ".nii")

    save(
        "ext-invalid-json",
        _nifti_with('{"SpectrometerFrequency": [127.786142], "ResonantNucleus": ["1H"'),
    )
    save("ext-not-an-object", _nifti_with("[1, 2, 3]"))
    save("ext-missing", _nifti_with(drop_ext=True))
    for name, change in (
        ("ext-no-frequency", {"SpectrometerFrequency": None}),
        ("ext-no-nucleus", {"ResonantNucleus": None}),
        ("ext-frequency-string", {"SpectrometerFrequency": ["127.786142"]}),
        ("ext-frequency-word", {"SpectrometerFrequency": ["abc"]}),
        ("ext-frequency-scalar", {"SpectrometerFrequency": 127.786142}),
        ("ext-frequency-in-hz", {"SpectrometerFrequency": [127786142.0]}),
        ("ext-frequency-zero", {"SpectrometerFrequency": [0.0]}),
        ("ext-frequency-negative", {"SpectrometerFrequency": [-127.786142]}),
        ("ext-frequency-empty-list", {"SpectrometerFrequency": []}),
        ("ext-nucleus-31p", {"ResonantNucleus": ["31P"]}),
        ("ext-nucleus-number", {"ResonantNucleus": [1]}),
        ("ext-echo-string", {"EchoTime": "30"}),
        ("ext-echo-in-ms", {"EchoTime": 30}),
        ("ext-echo-negative", {"EchoTime": -0.03}),
        ("ext-chemshift-string", {"SpecFreqChemShift": "4.65"}),
        ("ext-chemshift-far", {"SpecFreqChemShift": 46.5}),
        ("ext-dim5-tag-bogus", {"dim_5": "DIM_BOGUS"}),
    ):
        header = {k: v for k, v in {**ext, **change}.items() if v is not None}
        save(name, _nifti_with(json.dumps(header)))
    text = json.dumps(ext)
    save(
        "ext-duplicate-frequency-differs",
        _nifti_with(text[:-1] + ', "SpectrometerFrequency": [297.2]}'),
    )
    data = np.asarray(base.dataobj)
    save(
        "data-nan",
        _nifti_with(
            data=np.where(np.arange(data.shape[3]) == 100, np.nan, data).astype(data.dtype)
        ),
    )
    save(
        "data-inf",
        _nifti_with(
            data=np.where(np.arange(data.shape[3]) == 100, np.inf, data).astype(data.dtype)
        ),
    )
    save("data-all-zero", _nifti_with(data=np.zeros_like(data)))
    save("data-conjugated", _nifti_with(data=np.conj(data)))
    save("data-real-float32", _nifti_with(data=data.real.astype(np.float32)))
    save("data-complex128", _nifti_with(data=data.astype(np.complex128)))
    save("data-5d-two-fids", _nifti_with(data=np.stack([data, data], axis=-1)))
    # session 36 (audit36): parts of one measurement to combine first, fitted one by one (a
    # warning says so), and a tag outside the standard on data that have the dimension
    two = np.stack([data, data], axis=-1)
    for name, tag in (
        ("data-5d-dim-edit", "DIM_EDIT"),
        ("data-5d-dim-isis", "DIM_ISIS"),
        ("data-5d-dim-indirect", "DIM_INDIRECT_0"),
        ("data-5d-tag-bogus", "DIM_BOGUS"),
    ):
        save(name, _nifti_with(json.dumps({**ext, "dim_5": tag}), data=two))


def damage_basis(d: Damager) -> None:
    text = BASES["basis"].read_text()
    d.text("basis", "base", text, ".BASIS")
    d.text("basis", "empty", "", ".BASIS")
    d.text("basis", "cut-mid-header", text[:200], ".BASIS")
    blocks = [m.start() for m in re.finditer(r"\$NMUSED", text)]
    second = blocks[1]
    d.text(
        "basis",
        "cut-mid-block",
        text[: (blocks[0] + second) // 2 + int(d.rng.integers(0, 13))],
        ".BASIS",
    )
    d.text("basis", "cut-at-block-boundary", text[:second], ".BASIS")
    last_line = text.rstrip("\n").rfind("\n")
    d.text("basis", "last-line-short", text[:last_line], ".BASIS")
    for name, old, new in (
        ("ndatab-4095", "NDATAB = 4096", "NDATAB = 4095"),
        ("ndatab-8192", "NDATAB = 4096", "NDATAB = 8192"),
        ("ndatab-string", "NDATAB = 4096", "NDATAB = 'x'"),
        ("badelt-string", "BADELT = ", "BADELT = 'x', OLD = "),
        ("badelt-zero", "BADELT = ", "BADELT = 0, OLD = "),
        ("badelt-nan", "BADELT = ", "BADELT = NaN, OLD = "),
        ("badelt-in-ms", "BADELT = ", "BADELT = 0.25, OLD = "),
        ("hzpppm-zero", "HZPPPM = ", "HZPPPM = 0, OLD = "),
        ("hzpppm-in-hz", "HZPPPM = ", "HZPPPM = 1.2326E8, OLD = "),
        ("hzpppm-string", "HZPPPM = ", "HZPPPM = 'x', OLD = "),
        ("ishift-string", "ISHIFT = 0", "ISHIFT = 'x'"),
        ("ishift-huge", "ISHIFT = 0", "ISHIFT = 100000"),
        ("echot-string", "ECHOT = ", "ECHOT = 'x', OLD = "),
    ):
        if old not in text:
            print(f"basis: {old!r} not in the base file; {name} skipped", file=sys.stderr)
            continue
        d.text("basis", name, text.replace(old, new, 1), ".BASIS")
    names = re.findall(r"METABO\s*=\s*'([^']*)'", text)
    second_name = re.search(rf"METABO\s*=\s*'{names[1]}'", text)
    assert second_name is not None
    at, to = second_name.span()
    d.text("basis", "duplicate-metabo", f"{text[:at]}METABO = '{names[0]}'{text[to:]}", ".BASIS")
    d.text("basis", "empty-metabo", f"{text[:at]}METABO = ''{text[to:]}", ".BASIS")
    d.text("basis", "block-appended-again", text + text[blocks[0] : second], ".BASIS")
    # session 36 (audit36): one metabolite of another length, not the last (10 lines short)
    data_at = text.index("$END", text.index("$BASIS\n", second)) + 5
    cut_to = data_at
    for _ in range(10):
        cut_to = text.index("\n", cut_to) + 1
    d.text("basis", "second-block-ten-lines-short", text[:data_at] + text[cut_to:], ".BASIS")
    # the first block's data: after the $END of its $BASIS group
    start = text.index("$END", text.index("$BASIS\n", blocks[0])) + 4
    lines = text[start:].splitlines(keepends=True)
    broken = lines[3].split()
    broken[0] = "NaN"
    d.text(
        "basis",
        "nan-sample",
        text[:start] + "".join(lines[:3]) + "  ".join(broken) + "\n" + "".join(lines[4:]),
        ".BASIS",
    )


def damage_npz(d: Damager, ok_npz: Path) -> None:
    import io
    import zipfile

    raw = ok_npz.read_bytes()
    d.text("npz", "base", raw, ".npz")
    d.text("npz", "empty", b"", ".npz")
    d.text("npz", "cut-mid", raw[: len(raw) // 2], ".npz")
    d.text("npz", "cut-one-byte", raw[:-1], ".npz")
    with np.load(ok_npz) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(str(arrays["info"][()]))

    def npz_with(name: str, **changes) -> None:
        new = {**arrays, **changes}
        new = {k: v for k, v in new.items() if v is not None}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for k, v in new.items():
                b = io.BytesIO()
                np.lib.format.write_array(b, np.asarray(v), allow_pickle=False)
                zf.writestr(f"{k}.npy", b.getvalue())
        d.text("npz", name, buf.getvalue(), ".npz")

    def with_info(**changes) -> np.ndarray:
        return np.array(json.dumps({k: v for k, v in {**info, **changes}.items() if v != "DROP"}))

    npz_with("info-invalid-json", info=np.array("{not json"))
    npz_with("info-not-object", info=np.array("[1, 2]"))
    npz_with("info-no-dwell", info=with_info(dwell_time_s="DROP"))
    npz_with("info-dwell-string", info=with_info(dwell_time_s="abc"))
    npz_with("info-dwell-negative", info=with_info(dwell_time_s=-2.5e-4))
    npz_with("info-dwell-in-ms", info=with_info(dwell_time_s=0.25))
    npz_with("info-freq-list", info=with_info(spectrometer_freq_mhz=[123.2]))
    npz_with("info-freq-in-hz", info=with_info(spectrometer_freq_mhz=1.2326e8))
    npz_with("info-nucleus-number", info=with_info(nucleus=1))
    npz_with("info-metadata-list", info=with_info(metadata=[1]))
    npz_with("info-version-2", info=with_info(format_version=2))
    npz_with("no-names", names=None)
    npz_with("names-one-short", names=arrays["names"][:-1])
    npz_with("names-duplicate", names=np.array([arrays["names"][0], *arrays["names"][:-1]]))
    npz_with("names-numbers", names=np.arange(len(arrays["names"])))
    npz_with("fids-real", fids=arrays["fids"].real)
    npz_with("fids-one-d", fids=arrays["fids"][0])
    npz_with("fids-int", fids=np.zeros(arrays["fids"].shape, dtype=np.int32))
    fids = arrays["fids"].copy()
    fids[2, 5] = np.nan
    npz_with("fids-nan", fids=fids)
    npz_with("fids-conjugated", fids=np.conj(arrays["fids"]))


def damage_fsl(d: Damager, ok_folder: Path) -> None:
    files = sorted(ok_folder.glob("*.json"))

    def folder(name: str, change: Callable[[dict], dict | str | None], which: int = 1) -> None:
        def write(p: Path) -> None:
            p.mkdir()
            for i, f in enumerate(files):
                content = json.loads(f.read_text())
                if i == which:
                    content = change(content)
                if content is None:
                    continue
                (p / f.name).write_text(
                    content if isinstance(content, str) else json.dumps(content)
                )

        d.add("fsl", name, write, "")

    def basis_change(**kv):
        def change(c: dict) -> dict:
            c = json.loads(json.dumps(c))
            for k, v in kv.items():
                if v == "DROP":
                    c["basis"].pop(k)
                else:
                    c["basis"][k] = v
            return c

        return change

    folder("base", lambda c: c)
    folder("one-file-invalid-json", lambda c: json.dumps(c)[:-40])
    folder("one-file-empty", lambda c: "")
    folder("one-file-not-object", lambda c: "[1, 2]")
    folder("basis-not-object", lambda c: {"basis": [1, 2]})
    folder("dwell-string", basis_change(basis_dwell="abc"))
    folder("dwell-zero", basis_change(basis_dwell=0))
    folder("dwell-in-ms", basis_change(basis_dwell=0.25))
    folder("centre-zero", basis_change(basis_centre=0))
    folder("centre-list", basis_change(basis_centre=[123.2]), which=0)
    folder("re-short", lambda c: basis_change(basis_re=c["basis"]["basis_re"][:-1])(c))
    folder("im-missing", basis_change(basis_im="DROP"))
    folder(
        "re-nan", lambda c: basis_change(basis_re=[float("nan"), *c["basis"]["basis_re"][1:]])(c)
    )
    folder(
        "re-strings", lambda c: basis_change(basis_re=[str(v) for v in c["basis"]["basis_re"]])(c)
    )
    folder("width-string", basis_change(basis_width="wide"))
    folder(
        "name-duplicate",
        lambda c: basis_change(basis_name=json.loads(files[0].read_text())["basis"]["basis_name"])(
            c
        ),
    )
    folder("name-number", basis_change(basis_name=5))
    folder("one-file-missing", lambda c: None)


@dataclass(frozen=True)
class Run:
    case: Case
    command: str
    argv: tuple[str, ...]
    out: Path | None


def runs_of(case: Case, work: Path, model: Path | None, raw_for_basis: Path) -> list[Run]:
    scratch = work / "out" / case.kind / case.name
    if case.kind in ("basis", "npz", "fsl"):
        return [
            Run(case, "basis info", ("basis", "info", str(case.path)), None),
            Run(
                case,
                "fit --basis",
                (
                    "fit",
                    str(raw_for_basis),
                    "--basis",
                    str(case.path),
                    "--preset",
                    "simulated",
                    "--out",
                    str(scratch / "fit"),
                    *ISMRM_GRID,
                ),
                scratch / "fit",
            ),
        ]
    runs = [
        Run(
            case,
            "convert",
            ("convert", str(case.path), str(scratch / "converted.nii.gz"), *case.flags),
            scratch / "converted.nii.gz",
        ),
        Run(
            case,
            "fit",
            ("fit", str(case.path), "--out", str(scratch / "fit"), *case.flags),
            scratch / "fit",
        ),
    ]
    if model is not None:
        runs.append(
            Run(
                case,
                "quantify",
                (
                    "quantify",
                    "--model",
                    str(model),
                    str(case.path),
                    "--out",
                    str(scratch / "quantify"),
                    "--force",
                    *case.flags,
                ),
                scratch / "quantify",
            )
        )
    return runs


@dataclass(frozen=True)
class Outcome:
    rc: int
    lines: int
    traceback: bool
    output: bool
    stderr: str
    stdout: str


def _saved(run: Run, work: Path) -> Path:
    return work / "outcomes" / run.case.kind / run.case.name / f"{run.command}.json"


def execute(run: Run, work: Path, reuse: bool) -> Outcome:
    """Run ``run`` (or, with ``reuse``, take its saved outcome), saving what it gave."""
    saved = _saved(run, work)
    if reuse and saved.exists():
        return Outcome(**json.loads(saved.read_text()))
    got = _execute(run)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(got.__dict__))
    return got


def _execute(run: Run) -> Outcome:
    if run.out is not None:
        if run.out.is_dir():
            shutil.rmtree(run.out)
        run.out.parent.mkdir(parents=True, exist_ok=True)
        if run.out.exists():
            run.out.unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "scaloquant", *run.argv], capture_output=True, text=True, timeout=600
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    output = (
        run.out is not None and run.out.exists() and (run.out.is_file() or any(run.out.iterdir()))
    )
    return Outcome(
        proc.returncode,
        len(lines),
        "Traceback" in proc.stderr,
        bool(output),
        proc.stderr,
        proc.stdout,
    )


#: Compared with the undamaged run: the fit's and quantify's amplitudes of these.
_COMPARED = ("NAA", "Cr", "PCho")


def _nan_first(x: float) -> float:
    return float("inf") if x != x else x


def _results(folder: Path) -> list[dict[str, str]]:
    with (folder / "results.csv").open() as f:
        return list(csv.DictReader(f))


def _warnings(folder: Path) -> set[str]:
    """The warnings of a run's summary.md (its '- warning: ...' lines), without file names."""
    summary = folder / "summary.md"
    if not summary.exists():
        return set()
    lines = summary.read_text().splitlines()
    return {ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("- warning:")}


def compare(run: Run, got: Outcome, base: Outcome | None, base_run: Run | None) -> str:
    """How a run that exited 0 compares with the undamaged file's."""
    if base is None or base.rc != 0 or base_run is None:
        return "no baseline"
    if run.command in ("fit", "quantify", "fit --basis"):
        rows, ref = _results(run.out), _results(base_run.out)
        qc = ";".join(sorted({r.get("qc", "") for r in rows} - {""}))
        # a warning the undamaged run's summary lacks (e.g. uncombined subspectra) says so too
        extra = _warnings(run.out) - _warnings(base_run.out)
        warned = f"; warnings={len(extra)}" if extra else ""
        if len(rows) != len(ref):
            return f"{len(rows)} spectra, the undamaged {len(ref)}; qc={qc!r}{warned}"
        worst, in_sd = 0.0, 0.0
        for r, b in zip(rows, ref, strict=True):
            for t in _COMPARED:
                got, was = float(r[t]), float(b[t])
                sd = float(b.get(f"{t}_crlb_sd") or b.get(f"{t}_sd") or "nan")
                worst = max(worst, abs(got / was - 1) if was else abs(got), key=_nan_first)
                in_sd = max(in_sd, abs(got - was) / sd if sd else abs(got - was), key=_nan_first)
        return (
            f"max rel diff of {'/'.join(_COMPARED)} {worst:.3g} ({in_sd:.2g} of the undamaged "
            f"run's sd); qc={qc!r}{warned}"
        )
    if run.command == "convert":
        from scaloquant.errors import ScaloquantError
        from scaloquant.io import read_fid

        try:
            a = read_fid(run.out)
        except ScaloquantError as err:  # convert wrote what its own reader refuses
            return f"the written file is refused: {str(err)[:100]}"
        b = read_fid(base_run.out)
        if a.samples.shape != b.samples.shape:
            return f"shape {a.samples.shape}, the undamaged {b.samples.shape}"
        grid = [
            k
            for k in ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference")
            if not np.isclose(getattr(a, k), getattr(b, k))
        ]
        diff = float(np.abs(a.samples - b.samples).max() / np.abs(b.samples).max())
        return f"samples rel diff {diff:.3g}" + (
            f"; grid differs: {', '.join(grid)}" if grid else ""
        )
    if run.command == "basis info":
        changed = sum(
            1
            for x, y in zip(got.stdout.splitlines(), base.stdout.splitlines(), strict=False)
            if x != y
        )
        return f"{changed} of {len(base.stdout.splitlines())} lines differ"
    return ""


def verdict(command: str, got: Outcome, note: str) -> str:
    if note.startswith("the written file is refused"):
        return "UNREADABLE"
    if command == "convert" and got.rc == 0 and not got.traceback:
        # convert writes what it read: a damage that reads is judged by the fit's row
        return "ok" if note == "samples rel diff 0" else "as read"
    if got.traceback:
        return "TRACEBACK"
    if got.rc != 0:
        if got.lines != 1:
            return "LINES"
        return "PARTIAL" if got.output else "ok"
    same = re.search(r"diff[^0-9]* ([0-9.e+-]+)", note)
    if (
        note.startswith(("max rel", "samples"))
        and same
        and float(same.group(1)) <= SAME_RTOL
        and "grid differs" not in note
    ):
        return "ok"
    if note.endswith(" 0 of ") or re.match(r"0 of \d+ lines", note):
        return "ok"
    flagged = ("qc=''" not in note and "qc=" in note) or "warnings=" in note
    return "flagged" if flagged or "warning" in got.stderr.lower() else "UNFLAGGED"


def _first(runs: list[Run], run: Run) -> Run:
    return next(r for r in runs if r.case == run.case)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/damaged"))
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument(
        "--only",
        default="",
        help="run the cases whose kind/name holds one of these (comma-separated)",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="take each run's outcome saved in --work by an earlier run (the table again)",
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in BASES.values() if not p.exists()]
    if missing:
        print(f"the shared data are not there ({', '.join(missing)})", file=sys.stderr)
        return 2
    if args.work.exists() and not args.reuse:
        shutil.rmtree(args.work)
    if args.reuse:
        for sub in ("in", "good"):
            shutil.rmtree(args.work / sub, ignore_errors=True)
    d = Damager(args.work, np.random.default_rng(args.seed))
    damage_raw(d)
    damage_jmrui(d)
    damage_text(d)
    damage_nifti(d)
    damage_basis(d)
    from scaloquant.io import read_basis, write_basis_npz, write_fsl_basis

    basis = read_basis(BASES["basis"])
    good = args.work / "good"
    good.mkdir()
    write_basis_npz(good / "basis.npz", basis)
    write_fsl_basis(good / "fsl", basis)
    damage_npz(d, good / "basis.npz")
    damage_fsl(d, good / "fsl")
    raw_for_basis = BASES["raw"]
    only = args.only.split(",")
    cases = [
        c
        for c in d.cases
        if any(o in f"{c.kind}/{c.name}" for o in only) or c.name.startswith("base")
    ]
    runs = [r for c in cases for r in runs_of(c, args.work, args.model, raw_for_basis)]
    # the first command of each case (convert, basis info) reads the file as the others do: they
    # run only where it read (a refusal is the same read_fid / read_basis refusal in each)
    firsts = [r for r in runs if r.command in ("convert", "basis info")]
    with ThreadPoolExecutor(args.jobs) as pool:
        first_outcomes = dict(
            zip(firsts, pool.map(lambda r: execute(r, args.work, args.reuse), firsts), strict=True)
        )
        rest = [
            r for r in runs if r not in first_outcomes and first_outcomes[_first(runs, r)].rc == 0
        ]
        outcomes_of = {
            **first_outcomes,
            **dict(
                zip(rest, pool.map(lambda r: execute(r, args.work, args.reuse), rest), strict=True)
            ),
        }
    runs = [r for r in runs if r in outcomes_of]
    outcomes = [outcomes_of[r] for r in runs]
    by_key = dict(
        zip(
            ((r.case.kind, r.case.name, r.command) for r in runs),
            zip(runs, outcomes, strict=True),
            strict=True,
        )
    )
    print(
        "| file | damage | command | rc | stderr lines | traceback | output | against the undamaged | verdict | stderr (last line) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run, got in zip(runs, outcomes, strict=True):
        base_kind = "raw" if run.case.kind == "raw-seqpar" else run.case.kind
        base_run, base = by_key.get((base_kind, "base", run.command), (None, None))
        note = compare(run, got, base, base_run) if got.rc == 0 else ""
        last = (got.stderr.strip().splitlines() or [""])[-1][:160].replace("|", "/")
        print(
            f"| {run.case.kind} | {run.case.name} | {run.command} | {got.rc} | {got.lines} | "
            f"{'yes' if got.traceback else ''} | {'yes' if got.output else ''} | {note} | "
            f"{verdict(run.command, got, note)} | {last} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
