"""The file formats scaloquant reads: one table, :data:`FORMATS`, that ``io.dispatch`` picks a
reader from and the CLI's help texts and the docs' lists are written from.

Standard library only (as :mod:`scaloquant.defaults`): ``scaloquant quantify --help`` reads the
table without loading numpy. A new format is a row here plus its reader module under ``io/``
(``tests/unit/test_formats.py`` checks that every row has its reader and every reader a row).
Scanner files that spec2nii converts are not rows: ``io.dispatch`` refuses them with the command.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Literal, NamedTuple

#: How a format holds a basis set: ``"file"``, a file is a whole basis (``.BASIS``); ``"folder"``,
#: a folder of its files is one basis, read by the row's reader (FSL-MRS ``.json``);
#: ``"fid-files"``, a folder of its FID files of its first suffix is a basis, one metabolite a
#: file named after it (``.RAW``: not the water ``.H2O``), and one such file a basis of one;
#: ``""``, it holds no basis.
BasisKind = Literal["", "file", "folder", "fid-files"]


class AcquisitionValue(NamedTuple):
    """How messages and the command line name one acquisition value (a row of
    :data:`ACQUISITION_VALUES`)."""

    #: in messages: "{path} does not record the dwell time"
    words: str
    #: after a value in messages ("0.00025 s"); upper-cased, the flag's metavar (``S``)
    unit: str
    #: the command-line flag that gives it (:func:`flag` of its key)
    flag: str
    #: the flag's ``--help``, before ", for ..." (``cli._common.add_acquisition_flags``)
    help: str


def flag(value: str) -> str:
    """The command-line flag that gives an acquisition value: ``dwell_time_s`` ->
    ``--dwell-time-s``."""
    return "--" + value.replace("_", "-")


#: The acquisition values a reader takes from the caller (``read_fid(path, dwell_time_s=...)``),
#: each given on the command line by its flag (``--dwell-time-s``): the one table of their
#: words that the readers' errors (``io._common.require_grid``), ``io.dispatch`` and the CLI's
#: flags and help read. The first two are the grid (a ppm reference is a signed shift).
ACQUISITION_VALUES: dict[str, AcquisitionValue] = {
    key: AcquisitionValue(words, unit, flag(key), help_text)
    for key, words, unit, help_text in (
        ("dwell_time_s", "dwell time", "s", "dwell time in seconds"),
        ("spectrometer_freq_mhz", "spectrometer frequency", "MHz", "spectrometer frequency in MHz"),
        (
            "ppm_reference",
            "ppm reference",
            "ppm",
            "chemical shift of 0 Hz in ppm (default 4.65 for 1H)",
        ),
    )
}


class FileFormat(NamedTuple):
    """One file format that scaloquant reads (a ``NamedTuple``, not a frozen dataclass:
    ``dataclasses`` imports ``inspect``, 5 ms of every ``--help``).

    Attributes
    ----------
    name : its key; the ``provenance["format"]`` its reader records, where it records one.
    title : its name for people (``"NIfTI-MRS"``).
    suffixes : its file suffixes as users write them (``".RAW"``), matched in any case; a suffix
        that several rows share is told apart by ``markers``.
    module, reader : the module under ``scaloquant.io`` and its function that reads one file
        (``"folder"`` basis: one folder), taking ``path`` and the keyword acquisition values
        (but see ``whole_grid``).
    fid : whether a file of it is a FID (or a set of FIDs) that ``read_fid`` reads.
    basis : how it holds a basis set (:data:`BasisKind`).
    markers : text whose presence in a file's first 4000 characters (any case) marks it as this
        format, for a suffix that several rows share and for a file of unknown suffix; a row
        without markers is the one its suffix means when no other row's markers are there.
    needs : acquisition values (:data:`ACQUISITION_VALUES`) that its files never record, so the
        caller must give them.
    detail : what help texts add after the suffixes (``"SVS or MRSI"``).
    conversion : what its reader and writer do to reach the internal orientation of
        ``signal/axes.py`` (``"conjugate"``), with the source of the format's convention.
    folder_name : ``provenance["format"]`` of a basis read from a folder of its FID files.
    not_basis : why a FID format is not read as a basis (the message's reason), if it is not.
    short : its name in a one-line summary, where shorter than ``title``.
    whole_grid : its files record the whole grid, so its reader takes ``path`` alone and
        ``read_basis`` puts the caller's values over the file's (checked against them).
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    module: str
    reader: str
    fid: bool
    basis: BasisKind
    conversion: str
    markers: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    detail: str = ""
    folder_name: str = ""
    not_basis: str = ""
    short: str = ""
    whole_grid: bool = False

    @property
    def shown(self) -> str:
        """Its suffixes as help texts write them: ``".RAW/.H2O"``."""
        return "/".join(self.suffixes)

    def matches(self, suffix: str) -> bool:
        """Whether ``suffix`` (``".raw"``, ``".nii.gz"``; any case) is one of its suffixes."""
        return suffix.lower() in (s.lower() for s in self.suffixes)

    def marked(self, head: str) -> bool:
        """Whether ``head`` (a file's first characters) holds one of its markers."""
        upper = head.upper()
        return any(m.upper() in upper for m in self.markers)


_GRID = ("dwell_time_s", "spectrometer_freq_mhz")

#: The formats, in the order that help texts list them and that a file of unknown suffix is
#: tried by ``markers``.
FORMATS: tuple[FileFormat, ...] = (
    FileFormat(
        name="nifti-mrs",
        title="NIfTI-MRS",
        suffixes=(".nii", ".nii.gz"),
        module="nifti",
        reader="read_nifti_mrs",
        fid=True,
        basis="",
        conversion="conjugate (NIfTI-MRS Appendix A)",
        detail="SVS or MRSI",
        not_basis="NIfTI-MRS has no standard place for metabolite names",
    ),
    FileFormat(
        name="lcmodel-raw",
        title="LCModel",
        suffixes=(".RAW", ".H2O"),
        module="lcmodel",
        reader="read_lcmodel_raw",
        fid=True,
        basis="fid-files",
        conversion="conjugate",
        markers=("$NMID", "&NMID"),
        folder_name="lcmodel-raw-folder",
    ),
    FileFormat(
        name="jmrui-text",
        title="jMRUI",
        suffixes=(".txt",),
        module="jmrui",
        reader="read_jmrui_txt",
        fid=True,
        basis="fid-files",
        conversion="none",
        markers=("jMRUI Data Textfile",),
        folder_name="txt-folder",
    ),
    FileFormat(
        name="text",
        title="2/4-column text",
        suffixes=(".txt",),
        module="text",
        reader="read_text_fid",
        fid=True,
        basis="fid-files",
        conversion="conjugate (as the ISMRM 2016 files)",
        needs=_GRID,
        folder_name="txt-folder",
        short="text",
    ),
    FileFormat(
        name="lcmodel-basis",
        title="LCModel basis",
        suffixes=(".BASIS",),
        module="lcmodel",
        reader="read_lcmodel_basis",
        fid=False,
        basis="file",
        conversion="conjugate",
    ),
    FileFormat(
        name="scaloquant-npz",
        title="scaloquant basis",
        suffixes=(".npz",),
        module="npz",
        reader="read_basis_npz",
        fid=False,
        basis="file",
        conversion="none",
        whole_grid=True,
    ),
    FileFormat(
        name="fsl-mrs-basis",
        title="FSL-MRS",
        suffixes=(".json",),
        module="fsl",
        reader="read_fsl_basis",
        fid=False,
        basis="folder",
        conversion="conjugate (as FSL-MRS's own reader)",
    ),
)

FID_FORMATS = tuple(f for f in FORMATS if f.fid)
BASIS_FORMATS = tuple(f for f in FORMATS if f.basis)


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def fid_suffixes_text() -> str:
    """The suffixes of FID files, for one-line errors: ``.nii, .nii.gz, .RAW, .H2O or .txt
    (jMRUI or 2/4-column text)``."""
    parts = []
    for suffix in _unique([s for f in FID_FORMATS for s in f.suffixes]):
        sharing = [f.title for f in FID_FORMATS if f.matches(suffix)]
        parts.append(suffix + (f" ({_or(sharing)})" if len(sharing) > 1 else ""))
    return _or(parts)


def _needs_text(fmt: FileFormat) -> str:
    return f"needs {' and '.join(flag(v) for v in fmt.needs)}" if fmt.needs else ""


def fid_formats_text() -> str:
    """The FID formats with their suffixes, for help texts: ``NIfTI-MRS (.nii/.nii.gz, SVS or
    MRSI), LCModel (.RAW/.H2O), ...``."""
    return _or(
        [
            f"{f.title} ({', '.join(filter(None, [f.shown, f.detail, _needs_text(f)]))})"
            for f in FID_FORMATS
        ]
    )


def fid_titles_text() -> str:
    """The FID formats' names alone, for a one-line summary: ``NIfTI-MRS, LCModel, ...``."""
    return ", ".join(f.short or f.title for f in FID_FORMATS)


def basis_formats_text() -> str:
    """What a basis set may be, for help texts and errors: ``a .BASIS or .npz file, or a folder
    of FSL-MRS .json, LCModel .RAW or .txt files``."""
    files = [f.shown for f in FORMATS if f.basis == "file"]
    folders = [f"{f.title} {f.suffixes[0]}" for f in folder_formats()] + [
        f"{f.title} {f.suffixes[0]}"
        if len(candidates(f.suffixes[0])) == 1
        # a suffix that several formats share is named alone: .txt (jMRUI or text)
        else f.suffixes[0]
        for f in fid_files_formats()
    ]
    return f"a {_or(files)} file, or a folder of {_or(folders)} files"


def folder_formats() -> tuple[FileFormat, ...]:
    """The ``"folder"`` basis formats: a folder of their files is one basis (tried first)."""
    return tuple(f for f in FORMATS if f.basis == "folder")


def fid_files_formats() -> tuple[FileFormat, ...]:
    """The ``"fid-files"`` basis formats, one for each first suffix (jMRUI stands for the
    ``.txt`` of jMRUI and text: each file is read as its content says)."""
    firsts: dict[str, FileFormat] = {}
    for f in FORMATS:
        if f.basis == "fid-files":
            firsts.setdefault(f.suffixes[0].lower(), f)
    return tuple(firsts.values())


def candidates(suffix: str) -> tuple[FileFormat, ...]:
    """The formats whose files end in ``suffix`` (any case), in table order."""
    return tuple(f for f in FORMATS if f.matches(suffix))


def by_content(formats: tuple[FileFormat, ...], head: str) -> FileFormat | None:
    """The first of ``formats`` whose markers ``head`` holds, else the one without markers
    (the format its suffix means by default), else None."""
    for fmt in formats:
        if fmt.marked(head):
            return fmt
    plain = [f for f in formats if not f.markers]
    return plain[0] if plain else None


#: Suffixes of ``scaloquant simulate``'s HDF5 files (signals with their truth): not a row of
#: :data:`FORMATS` (no FID or basis reader takes them; :mod:`scaloquant.io.hdf5` reads them).
SIMULATION_SUFFIXES = (".h5", ".hdf5")


def is_simulation_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as an HDF5 simulation file (:data:`SIMULATION_SUFFIXES`)."""
    return PurePath(path).suffix.lower() in SIMULATION_SUFFIXES
