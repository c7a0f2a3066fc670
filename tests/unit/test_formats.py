"""The table of file formats (:data:`scaloquant.formats.FORMATS`) and what is written from it
agree with the readers and the docs: every row has its reader, every reader of a ``FID`` or a
``BasisSet`` under ``io/`` has a row, ``read_fid`` / ``read_basis`` pick each row's reader, and
README, the io package's table and docs/architecture.md list every row (and no other)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

from scaloquant import formats
from scaloquant.formats import FORMATS, FileFormat

ROOT = Path(__file__).resolve().parents[2]
IO = ROOT / "src" / "scaloquant" / "io"
#: ``io``'s readers of a FID or basis that are not a format's: the dispatchers and the
#: embedded basis.
NOT_A_FORMAT = {"read_fid", "read_basis", "default_basis"}
ROW_IDS = [f.name for f in FORMATS]


def _readers_in_io() -> dict[str, str]:
    """``{function: module}`` for every public top-level ``read_*`` under ``io/`` whose return
    annotation is ``FID`` or ``BasisSet``."""
    found = {}
    for path in sorted(IO.glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.FunctionDef)
                and node.name.startswith("read_")
                and isinstance(node.returns, (ast.Name, ast.Constant))
                and (getattr(node.returns, "id", None) or node.returns.value) in ("FID", "BasisSet")
            ):
                found[node.name] = path.stem
    return found


def test_every_reader_has_a_row_and_every_row_a_reader():
    readers = {n: m for n, m in _readers_in_io().items() if n not in NOT_A_FORMAT}
    rows = {f.reader: f.module for f in FORMATS}
    assert readers == rows, "formats.FORMATS and the readers under io/ differ"


def test_the_reader_finder_sees_a_new_reader(tmp_path, monkeypatch):
    (tmp_path / "vendor.py").write_text("def read_vendor(path) -> FID:\n    pass\n")
    monkeypatch.setattr(sys.modules[__name__], "IO", tmp_path)
    assert _readers_in_io() == {"read_vendor": "vendor"}


@pytest.mark.parametrize("fmt", FORMATS, ids=ROW_IDS)
def test_each_row_reader_is_exported_and_takes_the_acquisition_values(fmt: FileFormat):
    import scaloquant.io as io

    reader = getattr(importlib.import_module(f"scaloquant.io.{fmt.module}"), fmt.reader)
    assert fmt.reader in io.__all__ and getattr(io, fmt.reader) is reader
    keywords = set(inspect.signature(reader).parameters)
    # read_fid and read_basis pass them to every reader but one of a file with the whole grid
    assert set(formats.ACQUISITION_VALUES) <= keywords or (fmt.whole_grid and keywords == {"path"})
    assert set(fmt.needs) <= set(formats.ACQUISITION_VALUES)
    source = (IO / f"{fmt.module}.py").read_text(encoding="utf-8")
    if '"format":' in source:  # the row's name is what its reader records
        assert f'"format": "{fmt.name}"' in source


def test_rows_agree_with_their_modules():
    from scaloquant.io.jmrui import MAGIC
    from scaloquant.io.nifti import NIFTI_SUFFIXES

    by_name = {f.name: f for f in FORMATS}
    assert len(by_name) == len(FORMATS)
    assert by_name["jmrui-text"].markers == (MAGIC,)
    assert by_name["nifti-mrs"].suffixes == NIFTI_SUFFIXES
    for fmt in FORMATS:
        assert fmt.fid or fmt.basis, f"{fmt.name} holds neither a FID nor a basis"
        assert fmt.basis != "fid-files" or (fmt.fid and fmt.folder_name)
        assert all(s.startswith(".") for s in fmt.suffixes)


def _fid_file(tmp_path: Path, fmt: FileFormat, suffix: str) -> Path:
    path = tmp_path / f"x{suffix}"
    path.write_text((fmt.markers[0] + "\n" if fmt.markers else "") + "1 2\n")
    return path


@pytest.mark.parametrize("fmt", formats.FID_FORMATS, ids=[f.name for f in formats.FID_FORMATS])
def test_read_fid_picks_each_rows_reader(fmt: FileFormat, tmp_path):
    from scaloquant.io.dispatch import _fid_reader, reader_of

    for suffix in fmt.suffixes:
        assert _fid_reader(_fid_file(tmp_path, fmt, suffix)) is reader_of(fmt)
    if fmt.markers:  # a file of unknown suffix, by its content
        assert _fid_reader(_fid_file(tmp_path, fmt, ".dat")) is reader_of(fmt)


@pytest.mark.parametrize("fmt", formats.BASIS_FORMATS, ids=[f.name for f in formats.BASIS_FORMATS])
def test_read_basis_picks_each_rows_reader(fmt: FileFormat, tmp_path, monkeypatch):
    """A basis file, or a folder of a row's files, goes to the row's reader (or, for a folder of
    FID files, is gathered under the row's ``folder_name``): recorded, not run."""
    from scaloquant.io import dispatch

    called = []

    def record(what, path):
        called.append((what, Path(path)))
        raise RuntimeError("read")

    monkeypatch.setattr(dispatch, "reader_of", lambda f: lambda path, **_: record(f.name, path))
    monkeypatch.setattr(
        dispatch, "_basis_from_fid_files", lambda files, src, kind, *_: record(kind, files[0])
    )
    folder = tmp_path / "basis"
    folder.mkdir()
    given = _fid_file(folder, fmt, fmt.suffixes[0])
    with pytest.raises(RuntimeError, match="read"):
        dispatch._read_basis(given if fmt.basis == "file" else folder, {}, False)
    expected = {
        "file": (fmt.name, given),
        "folder": (fmt.name, folder),
        "fid-files": (fmt.folder_name, given),
    }
    assert called == [expected[fmt.basis]]


def test_a_fid_format_that_is_no_basis_says_why(tmp_path):
    from scaloquant.errors import InputFileError
    from scaloquant.io import read_basis

    path = tmp_path / "x.nii.gz"
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match="no standard place for metabolite names"):
        read_basis(path)


def test_help_texts_name_every_fid_format():
    from scaloquant.cli import SUBCOMMANDS
    from scaloquant.cli._spectra import _FORMATS
    from scaloquant.io.dispatch import _BASIS_HELP, _FID_HELP

    for fmt in formats.FID_FORMATS:
        assert f"{fmt.title} ({fmt.shown}" in _FORMATS
        assert (fmt.short or fmt.title) in SUBCOMMANDS["quantify"]
        assert all(s in _FID_HELP for s in fmt.suffixes)
    for fmt in formats.BASIS_FORMATS:
        assert fmt.suffixes[0] in _BASIS_HELP
    assert (
        formats.fid_suffixes_text()
        == ".nii, .nii.gz, .RAW, .H2O or .txt (jMRUI or 2/4-column text)"
    )


def _between(text: str, start: str) -> str:
    """The text after ``start`` (which opens a parenthesis) up to the one that closes it."""
    i = text.index(start) + len(start)
    depth = 0
    for j, ch in enumerate(text[i:], i):
        if ch == ")" and depth == 0:
            return text[i:j]
        depth += {"(": 1, ")": -1}.get(ch, 0)
    raise AssertionError(f"no closing parenthesis after {start!r}")


def _backticked_suffixes(text: str) -> set[str]:
    return {s.lower() for s in re.findall(r"`(\.[\w.]+)`", text)}


def test_readme_lists_every_format_and_no_other():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    listed = _between(readme, "it reads and writes their files (")
    for fmt in FORMATS:
        assert fmt.title.split()[0] in listed, fmt.name
        assert all(f"`{s}`" in listed for s in fmt.suffixes), fmt.name
    assert _backticked_suffixes(listed) == {s.lower() for f in FORMATS for s in f.suffixes}
    quantify = _between(readme, "quantify your files (")
    for fmt in formats.FID_FORMATS:
        assert (fmt.short or fmt.title) in quantify, fmt.name


def test_the_io_docs_list_every_module_of_a_format():
    import scaloquant.io as io

    rows = [line for line in io.__doc__.splitlines() if line.startswith(":mod:")]
    for fmt in FORMATS:
        mine = [r for r in rows if r.startswith(f":mod:`.{fmt.module}`")]
        assert len(mine) == 1 and mine[0].rstrip().endswith(fmt.conversion), fmt.name
        assert all(f"``{s}``" in mine[0] for s in fmt.suffixes), fmt.name
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    room = architecture.split("* **The io room** (`io/`)")[1].split("\n* ")[0]
    assert all(f"`{fmt.module}.py`" in room for fmt in FORMATS)
