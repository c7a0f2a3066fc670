"""LCModel as a benchmark peer: its control file, its ``.RAW`` input, its runs and its table.

LCModel (S. Provencher, Magn Reson Med 1993;30:672-679; Fortran 77 source, BSD-3) is built by
``../shared/peers/lcmodel/build.sh``, which prints the executable's path. It is a peer in
``benchmarks/``, never a dependency of the package or of its tests: nothing under ``src/``
imports this module.

One run is ``lcmodel < control`` in a folder of its own. The control file is LCModel's
defaults plus the keys that describe the data and where the files are (:func:`control_text`);
LCModel reads its settings only from there, and the data's dwell time and frequency are not in
a ``.RAW`` header it reads. It writes its results as a text table (``FILTAB``, ``LTABLE=7``),
which :func:`parse_table` reads: the concentration table (``$$CONC``: concentration, %SD and
ratio to the ``NAMREL`` metabolite, Cr+PCr by default) and the misc table (``$$MISC``: FWHM,
S/N, data shift, phases). ``FILPS`` is required: without it LCModel stops with
``FATAL ERROR MYCONT 3``.

Combined rows: LCModel prints the sum of metabolites named in ``CHCOMB`` (its default list,
:data:`LCMODEL_COMBINATIONS`, spells phosphocholine ``PCh``), with the %SD of the sum from its
own covariance of the parts (``LCModel.f``: ``BMAT Cov BMAT^T`` over the parts' columns). A
basis that spells a part otherwise (the ISMRM 2016 basis' ``PCho``) gets no row for it by
default, so :func:`run_one` reads the basis' names and asks for each of scaloquant's combined
rows (tNAA, tCr, tCho, Glx) in that spelling that the defaults lack (:func:`combination_lines`).

A basis that scaloquant holds (any format it reads, or one it made, such as the fit's basis with
its cleaned measured macromolecules ``MM_measured``) reaches LCModel through scaloquant's
``.BASIS`` writer (:func:`write_basis`), which LCModel reads as it reads the original
(``tests/integration/test_lcmodel_basis_writer.py``).

Orientation: LCModel's ``.RAW`` holds ``conj`` of scaloquant's internal FID
(:mod:`scaloquant.io.lcmodel`); it equals the samples of a NIfTI-MRS file on disk
(``../shared/data/invivo/README.md``). :func:`write_raw` takes the samples in LCModel's
orientation and writes them through scaloquant's writer, then checks what it wrote.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from scaloquant.errors import InputFileError, ScaloquantError
from scaloquant.io import read_lcmodel_basis, write_lcmodel_basis, write_lcmodel_raw
from scaloquant.io.lcmodel_output import lcmodel_table
from scaloquant.metabolites import COMBINATIONS, canonical
from scaloquant.types import FID, BasisSet

#: The builder in the shared folder (relative to the repository root: ``../shared/...``).
BUILD_SCRIPT = Path(__file__).resolve().parents[1].parent / "shared/peers/lcmodel/build.sh"

#: The KEY of LCModel's own test control file (``test_lcm/control.file``); the open-source
#: build accepts it.
LCMODEL_KEY = 210387309

#: Longest file name LCModel keeps (``MCHFIL = 255`` in its ``lcmodel.inc``); longer input
#: paths are linked into the run folder under short names.
_MAX_PATH = 255

#: LCModel's default combined rows, in order (``CHCOMB``'s DATA statement in ``LCModel.f``,
#: ``NCOMBI`` = 16): it prints each whose every part the basis holds under exactly that name.
LCMODEL_COMBINATIONS = (
    "GPC+PCh",
    "GPC+Cho",
    "PCh+Cho",
    "Cho+GPC+PCh",
    "NAA+NAAG",
    "Ins+Glyc",
    "mI+Glyc",
    "Ins+Gly",
    "mI+Gly",
    "Cr+PCr",
    "Cre+PCr",
    "Glu+Gln",
    "Lip13a+Lip13b",
    "MM14+Lip13a+Lip13b+MM12",
    "MM09+Lip09",
    "MM20+Lip20",
)

_FWHM = re.compile(r"FWHM\s*=\s*([-+0-9.Ee]+)\s*ppm\s+S/N\s*=\s*([-+0-9.Ee]+)")
_SHIFT = re.compile(r"Data shift\s*=\s*([-+0-9.Ee]+)\s*ppm")
_PHASE = re.compile(r"Ph:\s*([-+0-9.Ee]+)\s*deg\s+([-+0-9.Ee]+)\s*deg/ppm")
_ALPHAS = re.compile(r"alphaB,S\s*=\s*([-+0-9.Ee]+)\s*,\s*([-+0-9.Ee]+)")
_KNOTS = re.compile(r"(\d+)\s+spline knots")


class LCModelError(RuntimeError):
    """LCModel could not be built, or a run gave no table (its message is included)."""


@dataclass(frozen=True)
class Spectrum:
    """One spectrum for LCModel: its files and the grid its control file must state.

    Attributes
    ----------
    name : a label (also the stem of the run's output files).
    raw : the ``.RAW`` file (LCModel orientation).
    basis : the ``.BASIS`` file.
    n_points : complex points of the FID (``NUNFIL``).
    dwell_time_s : ``DELTAT``, s.
    spectrometer_freq_mhz : ``HZPPPM``, MHz.
    water : the unsuppressed water ``.RAW`` (``FILH2O``; ``DOWS=T`` scales to it), or None.
    echo_time_ms : ``ECHOT``, ms (LCModel drops a ratio prior above 49 ms), or None.
    """

    name: str
    raw: Path
    basis: Path
    n_points: int
    dwell_time_s: float
    spectrometer_freq_mhz: float
    water: Path | None = None
    echo_time_ms: float | None = None


@dataclass(frozen=True)
class Settings:
    """What a run changes from LCModel's defaults beyond the grid and the files.

    Attributes
    ----------
    ppm_start, ppm_end : ``PPMST`` / ``PPMEND``, the fitted range in ppm (None: LCModel's
        default, 4.0 to 0.2 ppm).
    water_conc_mM : ``WCONC`` (None: LCModel's 35880 mM); only used with a water file.
    water_attenuation : ``ATTH2O`` (None: LCModel's 0.7); only used with a water file.
    extra : further ``key=value`` lines, verbatim (e.g. ``("shifmn=-0.05,-0.05",)``).
    """

    ppm_start: float | None = None
    ppm_end: float | None = None
    water_conc_mM: float | None = None
    water_attenuation: float | None = None
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """LCModel's estimates for one spectrum (from its ``.table``).

    Attributes
    ----------
    concentrations : metabolite or combination (``NAA+NAAG``) -> concentration (basis units,
        or mM when scaled to water), in table order.
    percent_sd : the same keys -> %SD (LCModel's Cramér-Rao bound in %; 999 = not determined).
    ratios : the same keys -> ratio to ``denominator`` as LCModel prints it (3 digits).
    denominator : ``NAMREL`` as the table names it (``Cr+PCr`` by default).
    fwhm_ppm, snr : LCModel's linewidth estimate and S/N.
    shift_ppm, phase0_deg, phase1_deg_per_ppm : referencing shift and phases.
    flags : names that LCModel printed with a flag character before them -> that character.
    diagnostics : the lines of its diagnostic table (warnings and infos).
    seconds : wall time of the run.
    alpha_b, alpha_s : the baseline and lineshape regularisers LCModel chose (``alphaB,S``),
        NaN when the table does not state them.
    n_knots : the baseline's number of spline functions (``NBACKG``; 0 when not stated).
    """

    concentrations: Mapping[str, float]
    percent_sd: Mapping[str, float]
    ratios: Mapping[str, float]
    denominator: str
    fwhm_ppm: float
    snr: float
    shift_ppm: float
    phase0_deg: float
    phase1_deg_per_ppm: float
    flags: Mapping[str, str] = field(default_factory=dict)
    diagnostics: tuple[str, ...] = ()
    seconds: float = float("nan")
    alpha_b: float = float("nan")
    alpha_s: float = float("nan")
    n_knots: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "concentrations": dict(self.concentrations),
            "percent_sd": dict(self.percent_sd),
            f"ratio_to_{self.denominator}": dict(self.ratios),
            "fwhm_ppm": self.fwhm_ppm,
            "snr": self.snr,
            "shift_ppm": self.shift_ppm,
            "phase0_deg": self.phase0_deg,
            "phase1_deg_per_ppm": self.phase1_deg_per_ppm,
            "flags": dict(self.flags),
            "diagnostics": list(self.diagnostics),
            "seconds": self.seconds,
            "alpha_b": self.alpha_b,
            "alpha_s": self.alpha_s,
            "n_knots": self.n_knots,
        }


@dataclass(frozen=True)
class Outcome:
    """One spectrum's run: its result, or the reason it has none."""

    spectrum: Spectrum
    result: Result | None
    error: str | None = None
    seconds: float = float("nan")
    files: Mapping[str, Path] = field(default_factory=dict)


def build(script: Path = BUILD_SCRIPT) -> Path:
    """Build LCModel once (cached by the script) and return the executable's path."""
    if not script.is_file():
        raise LCModelError(f"{script} not found; give the executable with --lcmodel")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    exe = Path(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    if proc.returncode != 0 or exe is None or not exe.is_file():
        raise LCModelError(f"building LCModel failed: {proc.stderr.strip()[-500:]}")
    return exe


def _quoted(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def combinations(basis_names: Sequence[str]) -> dict[str, str]:
    """scaloquant's combined rows (:data:`scaloquant.metabolites.COMBINATIONS`: tNAA, tCr,
    tCho, Glx) whose every part the basis holds -> LCModel's name of the same sum in the
    basis' own spelling (``GPC+PCho`` for the ISMRM 2016 basis, ``GPC+PCh`` for LCModel's),
    parts in ``COMBINATIONS`` order."""
    out = {}
    for name, parts in COMBINATIONS.items():
        spelled = [next((n for n in basis_names if canonical(n) == p), None) for p in parts]
        if all(spelled):
            out[name] = "+".join(spelled)
    return out


def combination_lines(basis_names: Sequence[str]) -> tuple[str, ...]:
    """Control-file lines that make LCModel print every row of :func:`combinations` beside its
    own: ``chcomb(k)`` after its 16 defaults (:data:`LCMODEL_COMBINATIONS`, kept, so its table
    keeps every row it printed before) for each name they lack, and ``ncombi``; none when the
    defaults already spell them all (``NAA+NAAG``, ``Cr+PCr``, ``GPC+PCh``, ``Glu+Gln``)."""
    wanted = [c for c in combinations(basis_names).values() if c not in LCMODEL_COMBINATIONS]
    if not wanted:
        return ()
    first = len(LCMODEL_COMBINATIONS) + 1
    return (
        f"ncombi={len(LCMODEL_COMBINATIONS) + len(wanted)}",
        *(f"chcomb({first + k})={_quoted(name)}" for k, name in enumerate(wanted)),
    )


@lru_cache(maxsize=16)
def read_basis_names(path: Path) -> tuple[str, ...]:
    """The metabolite names of an LCModel ``.BASIS`` file, as it spells them (read once per
    path by scaloquant's reader)."""
    return read_lcmodel_basis(path).names


def control_text(
    spectrum: Spectrum,
    files: Mapping[str, Path],
    settings: Settings,
    *,
    basis_names: Sequence[str] = (),
) -> str:
    """The ``$LCMODL`` namelist of one run.

    Parameters
    ----------
    spectrum : the data and its grid.
    files : the paths as LCModel must open them: ``raw``, ``basis``, ``table``, ``ps`` and,
        with a water reference, ``water`` (see :func:`run_files`).
    settings : changes beyond the grid (none: LCModel's defaults).
    basis_names : the basis' metabolite names, as its file spells them: LCModel is asked for
        the combined rows of :func:`combination_lines` (none: its default combinations only).
        ``settings.extra`` comes after them, so a ``chcomb`` line there overrides them.
    """
    lines = [
        f"key={LCMODEL_KEY}",
        f"nunfil={spectrum.n_points}",
        f"deltat={spectrum.dwell_time_s!r}",
        f"hzpppm={spectrum.spectrometer_freq_mhz!r}",
        f"filbas={_quoted(files['basis'])}",
        f"filraw={_quoted(files['raw'])}",
        f"filtab={_quoted(files['table'])}",
        "ltable=7",
        f"filps={_quoted(files['ps'])}",
    ]
    if spectrum.echo_time_ms is not None:
        lines.append(f"echot={spectrum.echo_time_ms!r}")
    if "water" in files:
        lines += [f"filh2o={_quoted(files['water'])}", "dows=T"]
        if settings.water_conc_mM is not None:
            lines.append(f"wconc={settings.water_conc_mM!r}")
        if settings.water_attenuation is not None:
            lines.append(f"atth2o={settings.water_attenuation!r}")
    if settings.ppm_start is not None:
        lines.append(f"ppmst={settings.ppm_start!r}")
    if settings.ppm_end is not None:
        lines.append(f"ppmend={settings.ppm_end!r}")
    lines += [*combination_lines(basis_names), *settings.extra]
    return "$LCMODL\n" + "".join(f" {line}\n" for line in lines) + "$END\n"


def parse_table(text: str) -> Result:
    """LCModel's ``.table`` text (``LTABLE=7``) -> :class:`Result` (``seconds`` left NaN).

    Raises
    ------
    LCModelError
        No ``$$CONC`` table (the run failed; the text is LCModel's message).
    """
    blocks = _blocks(text)
    if "CONC" not in blocks:
        raise LCModelError(f"no concentration table in LCModel's output: {text.strip()[:300]!r}")
    stated = re.match(r"\s*(\d+)\s+lines", text.split("$$CONC", 1)[1])
    try:
        table = lcmodel_table(
            blocks["CONC"], int(stated.group(1)) - 1 if stated else None, "LCModel's .table"
        )
    except InputFileError as err:
        raise LCModelError(str(err)) from None
    misc = "\n".join(blocks.get("MISC", []))
    fwhm = _FWHM.search(misc)
    shift = _SHIFT.search(misc)
    phase = _PHASE.search(misc)
    alphas = _ALPHAS.search(misc)
    knots = _KNOTS.search(misc)
    return Result(
        concentrations=table.concentrations,
        percent_sd=table.percent_sd,
        ratios=table.ratios,
        denominator=table.denominator,
        fwhm_ppm=float(fwhm.group(1)) if fwhm else float("nan"),
        snr=float(fwhm.group(2)) if fwhm else float("nan"),
        shift_ppm=float(shift.group(1)) if shift else float("nan"),
        phase0_deg=float(phase.group(1)) if phase else float("nan"),
        phase1_deg_per_ppm=float(phase.group(2)) if phase else float("nan"),
        flags=table.flags,
        diagnostics=tuple(line.strip() for line in blocks.get("DIAG", []) if line.strip()),
        alpha_b=float(alphas.group(1)) if alphas else float("nan"),
        alpha_s=float(alphas.group(2)) if alphas else float("nan"),
        n_knots=int(knots.group(1)) if knots else 0,
    )


def lcmodel_roughness(n_knots: int) -> np.ndarray:
    """LCModel's squared baseline regulariser for ``n_knots`` cubic B-splines on unit knot
    spacing ``(n_knots, n_knots)``: ``6 x`` the integrated products of their second
    derivatives (16, -9, 0, 1 off the diagonal), with its end rows as ``GBACKG`` in
    ``LCModel.f`` sets them."""
    if n_knots < 6:
        raise ValueError(f"LCModel's baseline needs at least 6 spline functions, got {n_knots}")
    r = np.zeros((n_knots, n_knots))
    for i in range(n_knots):
        r[i, i] = 16.0
        if i + 1 < n_knots:
            r[i, i + 1] = -9.0
        if i + 3 < n_knots:
            r[i, i + 3] = 1.0
    r[0, 0] = r[-1, -1] = 2.0
    r[0, 1] = r[-2, -1] = -3.0
    r[1, 1] = r[-2, -2] = 8.0
    r[1, 2] = r[-3, -2] = -6.0
    r[2, 2] = r[-3, -3] = 14.0
    return np.triu(r) + np.triu(r, 1).T


def baseline_ed_per_ppm(
    ppm: np.ndarray, alpha_b: float, n_knots: int, sd_ref: float, rms_amplitude: float
) -> float:
    """The effective dimension per ppm (scaloquant's measure of a spline baseline's
    flexibility, :mod:`scaloquant.physics.baseline`) of the baseline LCModel fitted with
    regulariser ``alpha_b`` on its axis ``ppm`` ``(NY,)``.

    LCModel (``GBACKG``, ``SETREG`` and the regulariser rows of the normal equations in
    ``LCModel.f``): ``n_knots`` cubic B-splines, knot spacing ``delta = span / (n_knots - 3)``,
    scaled by ``RMSAMP / delta`` (``rms_amplitude``: the RMS modulus of the complex data in the
    window); the rows ``SDREF alphaB sqrt(R) / delta^4`` appended to the real-part residuals,
    ``R`` = :func:`lcmodel_roughness`, ``SDREF`` (``sd_ref``) its running estimate of the fit's
    SD. So the smoother is ``B (B^T B + (SDREF alphaB)^2 R / delta^8)^-1 B^T`` and its trace,
    per ppm of window, is the returned figure. ``sd_ref`` and ``rms_amplitude`` must be on one
    scale (e.g. the ``.coord`` file's): only their ratio matters.
    """
    from scipy.interpolate import BSpline

    ppm = np.asarray(ppm, dtype=np.float64)
    x = ppm.max() - ppm
    span = float(x.max())
    delta = span / (n_knots - 3)
    knots = delta * (np.arange(n_knots + 4) - 3.0)  # centres from -delta to span + delta
    design = BSpline.design_matrix(np.clip(x, 0, span * (1 - 1e-12)), knots, 3).toarray()
    design *= rms_amplitude / delta
    gram = design.T @ design
    penalty = (sd_ref * alpha_b) ** 2 * lcmodel_roughness(n_knots) / delta**8
    return float(np.trace(np.linalg.solve(gram + penalty, gram))) / span


def _blocks(text: str) -> dict[str, list[str]]:
    """``$$NAME n lines ...`` sections of a table: name -> the lines that follow its title."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("$$"):
            current = blocks.setdefault(line[2:].split()[0], [])
        elif current is not None:
            current.append(line)
    return blocks


def run_files(spectrum: Spectrum, folder: Path) -> dict[str, Path]:
    """The paths one run opens and writes, in ``folder``; inputs with long paths are linked
    into it under short names."""

    def short(path: Path, name: str) -> Path:
        path = path.resolve()
        if len(str(path)) <= _MAX_PATH:
            return path
        link = folder / name
        if not link.exists():
            link.symlink_to(path)
        return link

    files = {
        "raw": short(spectrum.raw, "data.raw"),
        "basis": short(spectrum.basis, "basis.basis"),
        "table": folder / f"{spectrum.name}.table",
        "ps": folder / f"{spectrum.name}.ps",
        "control": folder / f"{spectrum.name}.control",
    }
    if spectrum.water is not None:
        files["water"] = short(spectrum.water, "water.h2o")
    return files


def run_one(exe: Path, spectrum: Spectrum, folder: Path, settings: Settings) -> Outcome:
    """Run LCModel on one spectrum in ``folder`` (created), asking for scaloquant's combined
    rows in the basis' spelling (:func:`combination_lines`); never raises for a failed fit."""
    folder.mkdir(parents=True, exist_ok=True)
    files = run_files(spectrum, folder)
    try:
        names = read_basis_names(spectrum.basis.resolve())
    except ScaloquantError as err:  # nor could scaloquant fit with it: nothing to compare
        return Outcome(spectrum, None, f"cannot read the basis' names: {err}", 0.0, files)
    files["control"].write_text(control_text(spectrum, files, settings, basis_names=names))
    t0 = time.perf_counter()
    with files["control"].open() as control:
        proc = subprocess.run(
            [str(exe)], stdin=control, cwd=folder, capture_output=True, text=True, check=False
        )
    seconds = time.perf_counter() - t0
    if not files["table"].is_file():
        message = (proc.stdout + proc.stderr).strip().replace("\n", " ")
        return Outcome(spectrum, None, f"LCModel wrote no table: {message[:300]}", seconds, files)
    try:
        result = parse_table(files["table"].read_text())
    except LCModelError as err:
        return Outcome(spectrum, None, str(err), seconds, files)
    return Outcome(spectrum, replace(result, seconds=seconds), None, seconds, files)


def run_many(
    exe: Path,
    spectra: Sequence[Spectrum],
    folder: Path,
    settings: Settings,
    *,
    workers: int = 2,
) -> tuple[list[Outcome], float]:
    """Run every spectrum, ``workers`` LCModel processes at a time (one folder each, since
    LCModel writes scratch files in its working directory). Returns the outcomes in input
    order and the wall time of the whole batch in s."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    names = [s.name for s in spectra]
    if len(set(names)) != len(names):
        raise ValueError("spectrum names must be unique (they name the run folders)")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda s: run_one(exe, s, folder / s.name, settings), spectra))
    return outcomes, time.perf_counter() - t0


def write_raw(
    path: Path,
    samples: np.ndarray,
    *,
    dwell_time_s: float,
    spectrometer_freq_mhz: float,
    name: str,
) -> Path:
    """Write one FID whose ``samples`` ``(n_points,)`` are in LCModel's orientation (NIfTI-MRS
    on-disk samples) as a ``.RAW`` with scaloquant's writer, and check the file holds them.

    scaloquant's writer takes its internal orientation (the conjugate), so the samples are
    conjugated on the way in; the check reads the numbers back and fails loudly if the writer's
    convention ever changes.
    """
    samples = np.asarray(samples, dtype=np.complex128).reshape(-1)
    fid = FID(np.conj(samples), dwell_time_s, spectrometer_freq_mhz)
    write_lcmodel_raw(path, fid, name=name, overwrite=True)
    body = path.read_text().rsplit("$END", 1)[1].split()
    written = np.array(body, dtype=np.float64).view(np.complex128)
    scale = np.abs(samples).max() or 1.0
    if not np.allclose(written, samples, rtol=0, atol=1e-7 * scale):
        raise LCModelError(f"{path}: scaloquant's .RAW writer did not keep LCModel's orientation")
    return path


def write_basis(path: Path, basis: BasisSet, *, renamed: Mapping[str, str] | None = None) -> Path:
    """Write ``basis`` as an LCModel ``.BASIS`` with scaloquant's writer, its names first
    ``renamed`` (e.g. ``{"MM_measured": "MMexp"}``: LCModel keeps 6 characters of a name), and
    check that scaloquant's reader reads back its names and FIDs (the writer's round trip; their
    moduli, since the writer moves a basis whose 0 Hz is not 4.65 ppm there)."""
    renamed = dict(renamed or {})
    basis = replace(basis, names=tuple(renamed.get(n, n) for n in basis.names))
    write_lcmodel_basis(path, basis, overwrite=True)
    back = read_lcmodel_basis(path)
    scale = np.abs(basis.fids).max() or 1.0
    if back.names != basis.names or not np.allclose(
        np.abs(back.fids), np.abs(basis.fids), rtol=0, atol=1e-6 * scale
    ):
        raise LCModelError(f"{path}: scaloquant's .BASIS writer did not keep the basis")
    return path
