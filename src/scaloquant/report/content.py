"""What the report shows, as plain data: the overview table of spectra x metabolites (with
the combined metabolites), the per-spectrum columns a run has (QC...), the acquisition facts
said once when the inputs share them, and the header. Pure numpy; no plotting, no file IO.

Both renderers (:mod:`scaloquant.report.html` and :mod:`scaloquant.report.markdown`) draw
from these blocks, so the HTML report and ``summary.md`` say the same things.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._words import counted
from ..metabolites import COMBINATIONS, has_all, indices_of
from ..quantify.gather import Run
from ..quantify.inputs import N_SPATIAL
from ..quantify.results import QUALITY_COLUMNS, SpectraResult, percent_sd

#: Combined metabolites as LCModel reports them (name -> the metabolites summed, under any
#: spelling of the basis, :mod:`scaloquant.metabolites`); a combination is shown when the basis
#: has every one of its parts, unless the run has a column of that name.
COMBINED = COMBINATIONS

#: %SD above which an estimate is marked unreliable: the LCModel manual's rough criterion of
#: acceptable reliability (%SD of at most 20), which LCModel users read the tables with.
SD_LIMIT_PCT = 20.0

#: Rows of the overview table at most (large MRSI grids: their maps and results.csv have all).
MAX_OVERVIEW_ROWS = 256

Unit = Literal["mM", "ratio", "amplitude"]

#: How each quantity is named in table captions and headers.
UNIT_LABELS: dict[str, str] = {
    "mM": "concentration (mM, water-scaled)",
    "ratio": "ratio to total creatine (/tCr)",
    "amplitude": "amplitude (basis scale, a.u.)",
}

# SpectraResult fields that are not per-spectrum columns (everything else of length N is)
_RESULT_FIELDS = {
    "input",
    "matched",
    "conversions",
    "warnings",
    "columns",
    "figures",
    "anticorrelated",
}


@dataclass(frozen=True)
class MetaboliteTable:
    """Every spectrum's estimates, combined metabolites first.

    Attributes
    ----------
    names : column names: the combined metabolites the basis allows, then the run's.
    combined : how many of ``names`` (from the front) are combinations.
    rows : ``(input index, spectrum index)`` per row, in the order of results.csv.
    values : unit -> ``(n_rows, len(names))``; ``"amplitude"`` and ``"ratio"`` always,
        ``"mM"`` when the run has mM columns.
    pct_sd : ``(n_rows, len(names))`` %SD of the amplitude (NaN when the run has none);
        a combination's SD is the root sum of squares of its parts' SDs.
    sd_label : what the %SD is (``"%SD"`` from the network, ``"%SD (CRLB)"`` of the fit).
    summed : the combinations formed here from their parts (SD in quadrature); the others of
        the first ``combined`` are the run's own columns (``fit``'s and a physics-head model's
        polish's: CRLB from the covariance).
    """

    names: tuple[str, ...]
    combined: int
    rows: tuple[tuple[int, int], ...]
    values: Mapping[str, np.ndarray]
    pct_sd: np.ndarray
    sd_label: str
    summed: tuple[str, ...] = ()

    @property
    def units(self) -> tuple[Unit, ...]:
        """The units in the order the report shows them: mM (when there), /tCr, amplitude."""
        return tuple(u for u in ("mM", "ratio", "amplitude") if u in self.values)  # type: ignore[misc]

    @functools.cached_property
    def unreliable(self) -> np.ndarray:
        """``(n_rows, len(names))`` True where the %SD exceeds :data:`SD_LIMIT_PCT` (an
        infinite %SD, a zero estimate with a finite SD, included). Computed once: the reports
        read it cell by cell (as a property it was formed again for every cell, quadratic in
        the rows: 3.3 s of summary.md for 1000 spectra)."""
        # on the whole percentage shown, so that a cell reading "20%" is never marked
        with np.errstate(invalid="ignore"):
            return np.round(np.nan_to_num(self.pct_sd, nan=0.0)) > SD_LIMIT_PCT


def combined_sd_sentence(table: MetaboliteTable, *, bold: bool = False) -> str:
    """What the combined rows' SDs are, for the overview's legend: the run's own (``fit``'s,
    from the covariance of the parts) or summed here in quadrature (:func:`metabolite_table`);
    empty without combined rows. ``bold``: the page shows them in bold (report.html)."""
    combos = table.names[: table.combined]
    own = [c for c in combos if c not in table.summed]
    if not combos:
        return ""
    out = f"Combined metabolites{' (bold)' if bold else ''} are sums of their parts"
    if own:
        out += (
            f"; {', '.join(own)}: results.csv's columns of that name (of a fit: its "
            f"{table.sd_label} from the covariance of the parts, as LCModel's)"
        )
    if table.summed:
        out += (
            f"; {', '.join(table.summed)}: SD adding the parts' SDs in quadrature, ignoring "
            "their correlation"
        )
    return out + "."


def format_value(value: float | None, unit: str = "amplitude") -> str:
    """3 significant digits (amplitudes have any scale), trailing zeros kept (13.0 mM, not 13
    beside 13.8: a dropped zero read as a coarser estimate), at most 3 decimals for mM and
    ratios (as LCModel's tables); NaN or None as an en dash."""
    if value is None or not np.isfinite(value):
        return "–"
    if unit != "amplitude" and abs(round(value, 3)) < 1:  # 0.9996 reads 1.00, not 1.000
        return f"{value:.3f}"
    if value == 0:  # an amplitude the fit held at its bound
        return "0"
    if abs(float(f"{value:.3g}")) >= 1000:  # 999.7 too: '1000', not '1.00e+03'
        return f"{value:.0f}"
    return f"{value:#.3g}".replace(".e", "e").removesuffix(".")  # '100.' -> '100'


def format_pct(value: float) -> str:
    """A %SD as a whole percentage (``>999%`` above, LCModel's cap); NaN as an en dash."""
    if np.isnan(value):
        return "–"
    return ">999%" if value > 999 else f"{value:.0f}%"


def metabolite_table(run: Run) -> MetaboliteTable:
    """The estimates of ``run`` as one table, with :data:`COMBINED` first.

    A combination the run has a column of (e.g. a basis with a ``tNAA`` spectrum) is that
    column (``fit``'s tNAA, tCr, tCho and Glx, and a physics-head model's with a polish: sums
    with the CRLB from the covariance, as LCModel's); otherwise, when the basis has its parts,
    its amplitude, ratio and mM are the sums of its parts' (NaN if a part is NaN) and its SD
    is ``sqrt(sum sd_i^2)``, which ignores the parts' correlation (NAA and NAAG are
    anticorrelated, so this overstates the SD of tNAA; a physics-head model's tCho with the
    network alone, ``K = 0``, whose polish forms no covariance); :attr:`MetaboliteTable.summed`
    names those.
    """
    names = list(run.names)
    combos = {
        c: [names.index(c)] if c in names else indices_of(parts, names)
        for c, parts in COMBINED.items()
        if c in names or has_all(parts, names)
    }
    columns = [*combos.values(), *([i] for i, n in enumerate(names) if n not in combos)]
    units: dict[str, str] = {"amplitude": "", "ratio": "_ratio_tcr"}
    if "_mM" in run.suffixes:
        units = {"mM": "_mM", **units}

    def table_of(suffix: str, square: bool = False) -> np.ndarray:
        v = np.concatenate([r.columns[suffix] for r in run.results], axis=0).astype(np.float64)
        v = v**2 if square else v
        return np.column_stack([v[:, index].sum(axis=1) for index in columns])

    values = {u: table_of(s) for u, s in units.items()}
    sd = np.sqrt(table_of(run.sd_suffix, square=True))
    rows = tuple((i, j) for i, r in enumerate(run.results) for j in range(r.input.n_spectra))
    return MetaboliteTable(
        names=(*combos, *(n for n in names if n not in combos)),
        combined=len(combos),
        rows=rows,
        values=values,
        pct_sd=percent_sd(values["amplitude"], sd),
        sd_label="%SD" if run.sd_suffix == "_sd" else "%SD (CRLB)",
        summed=tuple(c for c in combos if c not in names),
    )


def spectrum_columns(result: SpectraResult) -> dict[str, list[Any]]:
    """The per-spectrum columns of one input (QC figures, flags...), by name, ``N`` values each.

    Found without knowing their names: ``columns`` entries of shape ``(N,)`` and any further
    field of the result that is a mapping of ``(N,)`` arrays (e.g. ``quality``) or a sequence
    of ``N`` values (e.g. ``qc`` flags). A run without such columns gives ``{}``. A mapping's
    entry whose name is taken already gets the field's name in front (the fit's ``fwhm_hz``
    beside the quality figures' is ``fit_fwhm_hz``).
    """
    n = result.input.n_spectra
    found: dict[str, list[Any]] = {}

    def take(name: str, value: Any) -> None:
        if isinstance(value, np.ndarray) and value.ndim == 1 and value.shape[0] == n:
            found[name] = value.tolist()
        elif (
            isinstance(value, (list, tuple))
            and len(value) == n
            and all(isinstance(v, (str, int, float, np.generic)) for v in value)
        ):
            found[name] = list(value)

    for name, value in result.columns.items():
        take(name, np.asarray(value))
    for f in dataclasses.fields(result):
        if f.name in _RESULT_FIELDS:
            continue
        value = getattr(result, f.name)
        if isinstance(value, Mapping):
            for name, v in value.items():
                # a name seen already keeps its column: the fit's facts' fwhm_hz, named
                # fit_fwhm_hz, had replaced the data's (results.csv's) beside its fwhm_ppm
                label = f"{f.name}_{name}" if str(name) in found else str(name)
                take(label, np.asarray(v) if isinstance(v, (list, tuple, np.ndarray)) else v)
        else:
            take(f.name, value)
    return found


def run_spectrum_columns(run: Run) -> dict[str, list[Any]]:
    """:func:`spectrum_columns` of every input, stacked in row order; a column missing from
    some input is None in its rows. Columns in first-seen order, ``qc`` flags last."""
    per_input = [spectrum_columns(r) for r in run.results]
    names: list[str] = []
    for cols in per_input:
        names += [n for n in cols if n not in names]
    names.sort(key=lambda n: n == "qc")
    out: dict[str, list[Any]] = {n: [] for n in names}
    for r, cols in zip(run.results, per_input, strict=True):
        for n in names:
            out[n] += cols.get(n, [None] * r.input.n_spectra)
    return out


def not_in_csv_sentence(names: Iterable[str]) -> str:
    """Which of the overview's per-spectrum columns ``names`` (the keys of
    :func:`run_spectrum_columns`, which the renderers have built for the table already)
    results.csv lacks (the fit's own figures, ``fit_fwhm_hz``, ``shift_ppm``..., and
    ``reference_correction_ppm``, which results.json lists per spectrum), so that the report
    does not send the user to a column results.csv does not have; "" where it has them all
    (its columns: ``QUALITY_COLUMNS``)."""
    missing = [n for n in names if n not in QUALITY_COLUMNS]
    if not missing:
        return ""
    where = []
    if set(missing) - {"reference_correction_ppm"}:
        where.append("the fit's under fit")
    if "fit_fwhm_hz" in missing:
        where.append("fit_fwhm_hz as fwhm_hz")
    if "reference_correction_ppm" in missing:
        where.append("reference_correction_ppm as ppm_reference_correction")
    return (
        f"{', '.join(missing)}: not in results.csv; results.json lists "
        f"{'them' if len(missing) > 1 else 'it'} per spectrum (spectra[]: {', '.join(where)})."
    )


def input_label(result: SpectraResult) -> str:
    """How the report names an input: its unique label when the input has one, else its file
    name."""
    return str(getattr(result.input, "label", None) or result.input.path.name)


def row_labels(run: Run, rows: Sequence[tuple[int, int]]) -> dict[str, list[str]]:
    """The label columns of a table of ``rows`` (``(input index, spectrum index)``):
    ``"input"`` unless there is one input of several spectra, ``"spectrum"`` (``voxel x,y,z``
    for images) unless every input holds one spectrum."""
    out = {}
    several = any(r.input.n_spectra > 1 for r in run.results)
    if len(run.results) > 1 or not several:
        out["input"] = [input_label(run.results[i]) for i, _ in rows]
    if several:
        labels = {i: r.input.labels() for i, r in enumerate(run.results)}
        out["spectrum"] = [
            spectrum_name(run.results[i].input, labels[i][j], prefix="") for i, j in rows
        ]
    return out


def spectrum_name(inp: Any, label: str, *, prefix: str = "spectrum ") -> str:
    """How tables and figures name one spectrum of ``inp`` by its ``label`` (``"0,0,0,1"``):
    a NIfTI-MRS voxel as ``voxel x,y,z`` and each higher dimension by its tag, ``voxel 0,0,0,
    DIM_DYN 1``, where "voxel 0,0,0,1" read as a voxel of a 4-D grid (session 34,
    ``audit34``); another format's spectrum as ``prefix`` and its index."""
    if not inp.is_image:
        return prefix + label
    index = label.split(",")
    extra = [f", {tag} {i}" for tag, i in zip(inp.dim_tags, index[N_SPATIAL:], strict=False)]
    if len(extra) < len(index) - N_SPATIAL:  # tags unknown: the indices as they are
        return "voxel " + label
    return "voxel " + ",".join(index[:N_SPATIAL]) + "".join(extra)


def row_titles(run: Run, rows: Sequence[tuple[int, int]]) -> list[str]:
    """One title per row: the input's label, then the spectrum's when the input has several."""
    labels = {i: r.input.labels() for i, r in enumerate(run.results)}
    titles = []
    for i, j in rows:
        r = run.results[i]
        spectrum = "" if r.input.n_spectra == 1 else f", {spectrum_name(r.input, labels[i][j])}"
        titles.append(input_label(r) + spectrum)
    return titles


@dataclass(frozen=True)
class InputFacts:
    """What the report says about the inputs, each fact once.

    Attributes
    ----------
    labels : the inputs' labels.
    shared : (kind, text) facts every input has (kind: ``"acquisition"``, ``"conversion"``,
        ``"warning"``, ``"water"``).
    partial : (kind, text, labels) facts only some inputs have, with those inputs' labels.
    """

    labels: tuple[str, ...]
    shared: tuple[tuple[str, str], ...]
    partial: tuple[tuple[str, str, tuple[str, ...]], ...]
    water: tuple[tuple[str, str, str, str, str], ...] = ()

    @property
    def shared_by(self) -> str:
        """Who shares the shared facts: ``"the input X"`` or ``"all N inputs"``."""
        n = len(self.labels)
        return f"the input {self.labels[0]}" if n == 1 else f"all {n} inputs"


#: Columns of :attr:`InputFacts.water`: one row per input with a measured water reference.
WATER_COLUMNS = ("input", "water reference", "FWHM (Hz)", "FWHM (ppm)", "peak / metabolites'")


def _water_quality(result: SpectraResult) -> tuple[str, str, str, str, str] | None:
    """The water reference's peak figures (:mod:`scaloquant.signal.water_peak`) as a row of
    :data:`WATER_COLUMNS`, when measured: a table row each, not a sentence each (28 inputs gave
    28 sentences above the overview)."""
    q = result.water_quality
    if not q or result.input.water_path is None:
        return None

    def number(key: str, spec: str) -> str:
        value = q.get(key, float("nan"))
        return format(value, spec) if np.isfinite(value) else "–"

    return (
        input_label(result),
        result.input.water_path.name,
        number("fwhm_hz", ".1f"),
        number("fwhm_ppm", ".3f"),
        f"{number('water_ratio', '.0f')}x",
    )


def _facts_of(result: SpectraResult, water: str) -> list[tuple[str, str]]:
    facts = [("acquisition", result.input.fid.acquisition.describe())]
    facts += [("conversion", c) for c in result.conversions]
    facts += [("warning", w) for w in result.warnings]
    return [*facts, ("water", water)]


def _water_sentences(run: Run) -> list[str]:
    """Per input, what to say of its water reference; one sentence for all when every input has
    its own (a .H2O beside each .RAW)."""
    paths = [r.input.water_path for r in run.results]
    if len(paths) > 1 and all(p is not None for p in paths) and len(set(paths)) == len(paths):
        every = f"a water reference per input: {abbreviated([p.name for p in paths])}"
        return [every] * len(paths)
    return ["no water reference" if p is None else f"water reference {p.name}" for p in paths]


def input_facts(run: Run) -> InputFacts:
    """Acquisition, conversions, warnings and water references: each said once, with the
    inputs it applies to when not all."""
    labels = tuple(input_label(r) for r in run.results)
    each = [_facts_of(r, w) for r, w in zip(run.results, _water_sentences(run), strict=True)]
    order: list[tuple[str, str]] = []
    for facts in each:
        order += [f for f in facts if f not in order]
    shared = tuple(f for f in order if all(f in facts for facts in each))
    partial = tuple(
        (*f, tuple(lab for lab, facts in zip(labels, each, strict=True) if f in facts))
        for f in order
        if f not in shared
    )
    water = tuple(row for r in run.results if (row := _water_quality(r)) is not None)
    return InputFacts(labels, shared, partial, water)


@dataclass(frozen=True)
class ReportHeader:
    """The report's first lines.

    Attributes
    ----------
    title : e.g. ``"scaloquant fit: 21 spectra"``.
    command : the command line as given (provenance's ``command_line``), or without it the
        subcommand and its inputs (abbreviated).
    version : scaloquant's version.
    created_utc : ISO 8601 time the outputs were written.
    model : the model or basis the estimates come from.
    """

    title: str
    command: str
    version: str
    created_utc: str
    model: str


def abbreviated(names: Sequence[str], keep: int = 3, sep: str = ", ") -> str:
    """``names`` joined by ``sep``, the middle left out (with the count) beyond ``keep + 1``."""
    if len(names) <= keep + 1:
        return sep.join(names)
    return f"{sep.join(names[:keep])}{sep}...{sep}{names[-1]} ({len(names)} inputs)"


def report_header(
    run: Run, *, version: str, created_utc: str, provenance: Mapping[str, Any] | None = None
) -> ReportHeader:
    """The header of ``run``'s report; ``provenance`` as given to ``write_run`` (its
    ``command_line`` is the command shown, its ``checkpoint`` path names the model)."""
    provenance = provenance or {}
    n = run.n_spectra
    title = f"scaloquant {run.command}: {counted(n, 'spectrum', 'spectra')}"
    inputs = abbreviated([input_label(r) for r in run.results], sep=" ")
    command = provenance.get("command_line") or f"scaloquant {run.command} {inputs}"
    if run.command == "fit":
        model = f"linear-combination fit, basis {run.facts.get('basis_name', 'unknown')}"
    else:
        kind = (run.facts.get("model") or {}).get("kind", "network")
        checkpoint = (provenance.get("checkpoint") or {}).get("path")
        model = f"{kind} model" + (f" {checkpoint}" if checkpoint else "")
        if run.facts.get("basis_note"):
            model += f"; {run.facts['basis_note']}"
    return ReportHeader(title, command, version, created_utc, model)


def figure_numbers_path(figure: str) -> str:
    """Where the numbers of the fit figure ``figure`` (a ``.png`` path) lie: beside it, the same
    stem, ``.csv`` (:func:`scaloquant.report.outputs.fit_spectra_csv`)."""
    return figure.removesuffix(".png") + ".csv"
