"""The one output writer of ``quantify`` and ``fit``: a folder with

* ``results.csv``: one row per spectrum (``file``, ``spectrum``, then per metabolite every
  column of the run, ``<name><suffix>``); ``results.json`` says what each column means, and
  lists per spectrum its quality figures and, after a batched fit, what the fit chose or
  measured (``spectra[].fit``: fitted FWHM, baseline stiffness, free-form kernel);
* ``maps/<input>/<name><suffix>.nii.gz``: NIfTI maps of MRSI inputs (more than one voxel),
  shape ``(x, y, z)`` or ``(x, y, z, *extra)``, the input's affine; ``snr.nii.gz`` and
  ``fwhm_hz.nii.gz`` beside them, and after a fit ``residual_over_noise.nii.gz``;
* ``figures/<input>_<spectrum>.png``: fit figures, and beside each ``.csv`` the numbers it draws
  (:func:`fit_spectra_csv`, as LCModel's ``.coord`` file holds those of its plot);
* ``report.html``: the page a user opens (:mod:`scaloquant.report`): the overview table of
  spectra x metabolites, the fit figures and MRSI maps inlined; ``summary.md``: the same in
  plain text;
* ``provenance.json``: version, time, model or basis, input files with SHA-256, options,
  conversions, warnings and the list of outputs.

It lives in the writers' room (``report``): the jobs of :mod:`scaloquant.quantify` compute a
:class:`~scaloquant.quantify.Run` and return it; the CLI hands it to :func:`write_run`.

Inputs are named by their label (:func:`scaloquant.quantify.inputs.input_labels`): the file
name, or the shortest path that tells it from the other inputs. Everything is written into a
hidden staging folder and moved into place at the end
(:func:`scaloquant.io.atomic.staged_directory`): an error leaves no partial output, and
``overwrite`` replaces the earlier run's whole set of outputs (:func:`previous_outputs`).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..fit import FitSpectra
from ..fit.config import macromolecule_names
from ..io.atomic import staged_directory, write_text_atomic
from ..io.nifti import write_nifti_map
from ..metabolites import COMBINATIONS, indices_of
from ..quantify.gather import Run
from ..quantify.results import (
    COLUMN_DESCRIPTIONS,
    FIT_FACTS,
    QC_FLAGS,
    QUALITY_COLUMNS,
    REFERENCE_CORRECTION,
    SpectraResult,
)
from .content import row_titles

_MODEL_LABEL = {
    "quantify": "model (network amplitudes, fitted phase/shift/linewidth)",
    "fit": "fit",
}


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file (taken from :mod:`scaloquant.readahead` if it read the file)."""
    from .. import readahead

    known = readahead.sha256(path)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stem(label: str) -> str:
    """The label without the file's extension, folders joined by ``_`` (a file name)."""
    if label.lower().endswith(".nii.gz"):
        label = label[: -len(".nii.gz")]
    else:
        head, dot, ext = label.rpartition(".")
        label = head if dot and head and "/" not in ext else label
    return label.replace("/", "_").replace(" #", "_")


def _input_keys(run: Run) -> list[str]:
    """A unique name per input for map folders and figure files (from its label, numbered on
    the rare clash)."""
    keys: list[str] = []
    for r in run.results:
        stem, n = _stem(r.input.label), 2
        key = stem
        while key in keys:
            key, n = f"{stem}_{n}", n + 1
        keys.append(key)
    return keys


def _number(v: float) -> str:
    return f"{v:.8g}"


def column_names(run: Run) -> list[str]:
    return [f"{n}{s}" for n in run.names for s in run.suffixes]


#: Quality columns holding numbers (``qc`` holds the flags).
_QUALITY_NUMBERS = tuple(c for c in QUALITY_COLUMNS if c != "qc")
#: Quality figures also written as maps for MRSI (where the voxels with signal are).
_QUALITY_MAPS = ("snr", "fwhm_hz")
#: A fit's quality figures also written as maps for MRSI, where the run fitted (NaN
#: everywhere else: a regression CNN without --refine): where the model does not describe a
#: voxel's spectrum down to its noise (lipids, a poor shim), as spant's FQN map shows it.
_FIT_QUALITY_MAPS = ("residual_over_noise",)


def _csv_cell(text: str) -> str:
    """``text`` as one CSV field, quoted as :mod:`csv`'s default dialect quotes it (where it
    holds a comma, a quote or a line break)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def results_csv(run: Run) -> str:
    """``results.csv``: a header, then one row per spectrum. The numbers of a row are
    formatted by one ``%`` of the row's format (:func:`_number`'s ``.8g`` for every field),
    the labels quoted as :mod:`csv` quotes them: the same text as a :func:`csv.writer` row of
    :func:`_number` strings (``tests/unit/test_report_outputs_csv.py``) at a quarter of its
    time (4096 spectra x 105 numbers)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "spectrum", *column_names(run), *QUALITY_COLUMNS])
    for r in run.results:
        stacked = np.stack([r.columns[s] for s in run.suffixes], axis=-1)  # (N, M, S)
        quality = np.stack([r.quality[c] for c in _QUALITY_NUMBERS], axis=-1)  # (N, Q)
        numbers = np.concatenate(
            [stacked.reshape(len(stacked), -1), quality], axis=1, dtype=np.float64
        ).tolist()
        fmt = ",".join(["%.8g"] * (len(numbers[0]) if numbers else 0))
        file_cell = _csv_cell(r.input.label)
        for label, row, flags in zip(r.input.labels(), numbers, r.qc, strict=True):
            buf.write(f"{file_cell},{_csv_cell(label)},{fmt % tuple(row)},{_csv_cell(flags)}\n")
    return buf.getvalue()


def _input_facts(r: SpectraResult, key: str) -> dict[str, Any]:
    inp = r.input
    return {
        "file": str(inp.path),
        "label": inp.label,
        "key": key,
        "format": inp.fid.provenance.get("format"),
        "n_spectra": inp.n_spectra,
        "shape": list(inp.fid.batch_shape),
        "spectrum_label": (
            "voxel x,y,z" + "".join(f",{t}" for t in inp.dim_tags)
            if inp.is_image
            else "index of the FID in the file"
        ),
        "acquisition": inp.fid.acquisition.describe(),
        "water_reference": None if inp.water_path is None else str(inp.water_path),
        "water_reference_quality": {k: _json_number(v) for k, v in r.water_quality.items()},
        "water_scaling": None if r.water_scaling is None else r.water_scaling.to_dict(),
        "header_overrides": dict(inp.fid.provenance.get("header_overrides") or {}),
        "conversions": list(r.conversions),
        "warnings": list(r.warnings),
    }


def results_json(run: Run, keys: list[str]) -> dict[str, Any]:
    columns = {
        "file": "input file: its name, or its shortest path that tells it from the other "
        "inputs (inputs[].label)",
        "spectrum": "which spectrum of the file (see inputs[].spectrum_label)",
    }
    macromolecules = set(macromolecule_names(run.names))
    for n in run.names:
        parts = [run.names[i] for i in indices_of(COMBINATIONS.get(n, ()), run.names)]
        for s in run.suffixes:
            if parts:  # fit's combined rows: say what they sum and how their SD is had
                sd = " (of the sum, from the covariance of its parts)" if "crlb" in s else ""
                if s == "_sd":  # a physics-head model's polish: the network's SD is a part's
                    sd = (
                        " (none, NaN, where the model's polish gives the row: its own SD is "
                        "calibrated per component; a spectrum fitted again: that fit's CRLB)"
                    )
                columns[f"{n}{s}"] = (
                    f"{n} = {' + '.join(parts)} (LCModel's combined row): "
                    f"{COLUMN_DESCRIPTIONS[s]}{sd}"
                )
            elif s == "_mM" and n in macromolecules:
                columns[f"{n}{s}"] = (
                    f"{n}: none (NaN): a macromolecule or lipid signal has no proton count to "
                    "scale by (see the notes)"
                )
            else:
                columns[f"{n}{s}"] = f"{n}: {COLUMN_DESCRIPTIONS[s]}"
    columns |= QUALITY_COLUMNS
    return {
        "command": run.command,
        "metabolites": list(run.names),
        "suffixes": {s or "(none)": COLUMN_DESCRIPTIONS[s] for s in run.suffixes},
        "columns": columns,
        "notes": list(run.notes),
        "qc_flags": QC_FLAGS,
        **({"fit_facts": FIT_FACTS} if any(r.fit for r in run.results) else {}),
        **(
            {"ppm_reference_correction": REFERENCE_CORRECTION}
            if any(r.reference_correction_ppm is not None for r in run.results)
            else {}
        ),
        "inputs": [_input_facts(r, k) for r, k in zip(run.results, keys, strict=True)],
        "spectra": [
            {
                "file": r.input.path.name,
                "spectrum": label,
                **{c: _json_number(r.quality[c][j]) for c in _QUALITY_NUMBERS},
                "qc": [f for f in r.qc[j].split(";") if f],
                **_reference_correction(r, j),
                **({"fit": _fit_facts(r, j, pairs)} if r.fit else {}),
            }
            for r, pairs in zip(run.results, _anticorrelated(run), strict=True)
            for j, label in enumerate(r.input.labels())
        ],
        "water_scaling": run.facts.get("water_scaling"),
        **({"mm_spectra": run.facts["mm_spectra"]} if "mm_spectra" in run.facts else {}),
        **{k: run.facts[k] for k in ("eddy_current_correction",) if k in run.facts},
    }


def results_json_text(doc: dict[str, Any]) -> str:
    """``results.json``'s text: ``doc`` as strict JSON indented by 2, but for its ``spectra``
    list, last, one line per spectrum. Those lines are encoded by :mod:`json`'s C encoder,
    which an ``indent`` turns off: the whole document through the indenting encoder took 4.2 s
    of a 65,536-spectrum run (docs/history/benchmarks-log.md "On a lent GPU, an H200 (session
    20)"); a line per spectrum is also what a reader scrolls."""
    head = {k: v for k, v in doc.items() if k != "spectra"}
    text = json.dumps(head, indent=2, allow_nan=False, default=str)
    if "spectra" not in doc:
        return text + "\n"
    encode = json.JSONEncoder(allow_nan=False, default=str).encode
    rows = ",\n".join(f"    {encode(row)}" for row in doc["spectra"])
    spectra = f'"spectra": [\n{rows}\n  ]' if rows else '"spectra": []'
    return f"{text[:-2]},\n  {spectra}\n}}\n" if head else f"{{\n  {spectra}\n}}\n"


def _reference_correction(r: SpectraResult, j: int) -> dict[str, Any]:
    """Spectrum ``j``'s ``ppm_reference_correction`` for results.json (none where the input
    was not referenced)."""
    if r.reference_correction_ppm is None:
        return {}
    return {"ppm_reference_correction": _json_number(r.reference_correction_ppm[j])}


def _anticorrelated(run: Run) -> list[list[dict[str, float] | None] | None]:
    """Per input, its spectra's pairs (:attr:`SpectraResult.anticorrelated`; None without
    the fact), coefficients rounded to 3 decimals as LCModel prints them."""
    out = []
    for r in run.results:
        pairs = r.anticorrelated
        out.append(
            None
            if pairs is None
            else [p if p is None else {k: round(v, 3) for k, v in p.items()} for p in pairs]
        )
    return out


def _fit_facts(
    r: SpectraResult, j: int, pairs: list[dict[str, float] | None] | None = None
) -> dict[str, Any]:
    """Spectrum ``j``'s :attr:`SpectraResult.fit` for results.json (:data:`FIT_FACTS`);
    ``pairs``: its input's :func:`_anticorrelated`."""
    out: dict[str, Any] = {}
    for name, values in r.fit.items():
        if name == "anticorrelated":
            out[name] = None if pairs is None else pairs[j]
        elif name == "lineshape_kernel":
            hz, weights = values[j]
            out[name] = {
                "offset_hz": [_json_number(v) for v in hz],
                "weight": [_json_number(v) for v in weights],
            }
        elif name == "window_ppm":
            out[name] = [_json_number(v) for v in values[j]]
        else:
            out[name] = _json_number(values[j])
    return out


def _json_number(value: float) -> float | None:
    """A float for JSON, None for NaN or inf (results.json is strict JSON)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _write_maps(run: Run, r: SpectraResult, folder: Path) -> list[str]:
    shape = r.input.fid.batch_shape
    folder.mkdir(parents=True, exist_ok=True)
    kinds = [s for s in ("", run.sd_suffix, "_ratio_tcr", "_mM") if s in run.suffixes]
    maps = {f"{name}{s}": r.columns[s][:, m] for m, name in enumerate(run.names) for s in kinds}
    maps |= {name: r.quality[name] for name in _QUALITY_MAPS}
    maps |= {n: r.quality[n] for n in _FIT_QUALITY_MAPS if np.isfinite(r.quality[n]).any()}
    written = []
    for name, values in maps.items():
        path = folder / f"{name}.nii.gz"
        write_nifti_map(
            path, values.reshape(shape), r.input.affine, description=f"scaloquant {name}"
        )
        written.append(str(path))
    return written


def _figure_name(key: str, label: str) -> str:
    return f"{key}_{label.replace(',', '-')}.png"


def fit_spectra_csv(spectra: FitSpectra, names: Sequence[str]) -> str:
    """One spectrum's fit figure as numbers, for a user's own plots (what LCModel's ``.coord``
    file holds of its plot): a row per point of the fitted window, from high to low ppm as
    drawn, columns ``ppm``, ``data``, ``fit`` (baseline included), ``baseline``, ``residual``
    (``data - fit``) and one per basis spectrum, its contribution (amplitude times its fitted
    lineshape); real parts of ``spectra`` as given (phase-corrected by the jobs, as drawn,
    :func:`scaloquant.fit.phase_corrected`), on the amplitudes' scale (the data's spectrum in
    the units of its file). ``names``: the run's names, the first ``M`` of which are
    ``spectra.metabolites``' (the combined rows that follow have no curve). Empty cells where a
    curve is NaN (a spectrum fitted over a shorter window than the others')."""
    n_components = spectra.metabolites.shape[0]
    header = ["ppm", "data", "fit", "baseline", "residual", *list(names)[:n_components]]
    columns = np.column_stack(
        [
            spectra.ppm,
            *(np.real(a) for a in (spectra.data, spectra.model, spectra.baseline)),
            np.real(spectra.residual),
            np.real(spectra.metabolites).T,
        ]
    )[::-1]
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    for row in columns:
        out.write(",".join("" if np.isnan(v) else f"{v:.9g}" for v in row) + "\n")
    return out.getvalue()


#: The files every run writes, whatever its inputs.
_FIXED_OUTPUTS = (
    "results.csv",
    "results.json",
    "summary.md",
    "report.html",
    "summary.html",  # the summary page before report.html
    "provenance.json",
)


def previous_outputs(out_dir: str | os.PathLike) -> list[str]:
    """The outputs of an earlier ``quantify``/``fit`` run in ``out_dir``, relative to it: the
    fixed files and what its ``provenance.json`` lists under ``outputs`` (figures, maps...);
    when that cannot be read but a ``results.csv`` is there, ``figures/*.png`` and
    ``maps/*/*.nii.gz``. ``--overwrite`` removes them, so no figure of the earlier run is left
    beside the new results."""
    out_dir = Path(out_dir)
    found = [name for name in _FIXED_OUTPUTS if (out_dir / name).is_file()]
    try:
        listed = json.loads((out_dir / "provenance.json").read_text())["outputs"]
        found += [
            str(p)
            for paths in listed.values()
            for p in (paths if isinstance(paths, list) else [paths])
            if isinstance(p, str)
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        if (out_dir / "results.csv").is_file():
            found += [
                str(p.relative_to(out_dir))
                for pattern in ("figures/*.png", "figures/*.csv", "maps/*/*.nii.gz")
                for p in out_dir.glob(pattern)
            ]
    return found


def _fit_png(run: Run, spectra: FitSpectra, *, title: str) -> bytes:
    """One spectrum's fit figure as PNG bytes (matplotlib loads here, only when drawing)."""
    from .figures import plot_fit, png_bytes

    label = run.model_label or _MODEL_LABEL[run.command]
    fig = plot_fit(spectra, title=title, model_label=label, names=run.names)
    return png_bytes(fig)


def write_run(
    run: Run,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
    map_figures: bool = True,
) -> Path:
    """Write every output of ``run`` into ``out_dir`` (see the module docstring).

    ``provenance``: more facts for ``provenance.json`` (model file and hash, options).
    ``map_figures``: draw the MRSI maps into ``report.html`` (the CLI: off with
    ``--max-figures 0``; the NIfTI maps are written either way).
    An existing non-empty ``out_dir`` is refused unless ``overwrite``; with ``overwrite`` the
    earlier run's outputs there are replaced as a whole (:func:`previous_outputs`) and other
    files are kept.
    """
    from .content import figure_numbers_path, report_header
    from .html import report_html
    from .markdown import report_markdown

    keys = _input_keys(run)
    doc = results_json(run, keys)
    created_utc = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    stale = previous_outputs(out_dir) if overwrite else []
    with staged_directory(out_dir, overwrite=overwrite, replaces=stale) as stage:
        write_text_atomic(stage / "results.csv", results_csv(run))
        write_text_atomic(stage / "results.json", results_json_text(doc))
        maps = []
        pngs: dict[tuple[int, int], bytes] = {}
        figure_files: dict[tuple[int, int], str] = {}
        for i, (r, key) in enumerate(zip(run.results, keys, strict=True)):
            if r.input.is_mrsi:
                maps += _write_maps(run, r, stage / "maps" / key)
            for j, spectra in r.figures.items():
                (stage / "figures").mkdir(exist_ok=True)
                label = r.input.labels()[j]
                # rendered once: the same bytes are the figure file and the report's image;
                # titled as the tables name the row ("voxel x,y,z" of an image)
                (title,) = row_titles(run, [(i, j)])
                pngs[i, j] = _fit_png(run, spectra, title=title)
                figure_files[i, j] = f"figures/{_figure_name(key, label)}"
                (stage / figure_files[i, j]).write_bytes(pngs[i, j])
                write_text_atomic(
                    stage / figure_numbers_path(figure_files[i, j]),
                    fit_spectra_csv(spectra, run.names),
                )
        header = report_header(
            run, version=__version__, created_utc=created_utc, provenance=provenance
        )
        write_text_atomic(stage / "summary.md", report_markdown(run, header, figure_files))
        write_text_atomic(
            stage / "report.html", report_html(run, header, pngs, map_figures=map_figures)
        )
        prov = {
            "command": run.command,
            "scaloquant_version": __version__,
            "time_utc": created_utc,
            **dict(provenance or {}),
            **{k: v for k, v in run.facts.items()},
            "inputs": [
                {
                    **_input_facts(r, k),
                    "sha256": file_sha256(r.input.path),
                    "water_sha256": None
                    if r.input.water_path is None
                    else file_sha256(r.input.water_path),
                }
                for r, k in zip(run.results, keys, strict=True)
            ],
            "outputs": {
                "maps": [str(Path(m).relative_to(stage)) for m in maps],
                "figures": sorted(
                    str(p.relative_to(stage)) for p in (stage / "figures").glob("*.png")
                ),
                "figure_data": sorted(
                    str(p.relative_to(stage)) for p in (stage / "figures").glob("*.csv")
                ),
                "report": ["report.html", "summary.md"],
            },
            "notes": list(run.notes),
        }
        write_text_atomic(stage / "provenance.json", json.dumps(prov, indent=2, default=str) + "\n")
    return Path(out_dir)
