"""``results.csv`` (:func:`scaloquant.report.outputs.results_csv`) is the text a
:func:`csv.writer` writes for rows of ``.8g`` numbers (the oracle below, the writer it
replaced): labels that need quoting (commas, quotes), NaN, infinities, negative zero, float32
columns and empty and several quality flags.
And ``results.json``'s text (:func:`~scaloquant.report.outputs.results_json_text`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from scaloquant.quantify import Run, SpectraInput, SpectraResult
from scaloquant.quantify.results import QUALITY_COLUMNS
from scaloquant.report.outputs import column_names, results_csv, results_json_text
from scaloquant.types import FID

NAMES = ("NAA", "Cr", "Glu")
SUFFIXES = ("", "_crlb_sd")
NUMBERS = tuple(c for c in QUALITY_COLUMNS if c != "qc")


def _result(name: str, n: int, rng: np.random.Generator) -> SpectraResult:
    fid = FID(np.ones((n, 1, 1, 64), dtype=complex), 2.5e-4, 123.2)
    inp = SpectraInput(Path(name), fid, None, None, None, ())
    values = rng.lognormal(0.0, 3.0, (n, len(NAMES))) * rng.choice([-1, 1], (n, len(NAMES)))
    values[0, :] = [np.nan, np.inf, -0.0]
    columns = {"": values, "_crlb_sd": rng.random((n, len(NAMES))).astype(np.float32)}
    quality = {c: rng.normal(0, 1e5, n) for c in NUMBERS}
    qc = tuple(["", "too_broad", "residual_large;too_broad"][i % 3] for i in range(n))
    return SpectraResult(inp, fid, (), (), columns, quality=quality, qc=qc)


def _oracle(run: Run) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "spectrum", *column_names(run), *QUALITY_COLUMNS])
    for r in run.results:
        stacked = np.stack([r.columns[s] for s in run.suffixes], axis=-1)
        quality = np.stack([r.quality[c] for c in NUMBERS], axis=-1)
        rows = zip(r.input.labels(), stacked.reshape(len(stacked), -1), quality, r.qc, strict=True)
        for label, row, figures, flags in rows:
            numbers = (f"{v:.8g}" for v in (*row, *figures))
            writer.writerow([r.input.label, label, *numbers, flags])
    return buf.getvalue()


def test_results_csv_is_the_csv_writers_text():
    rng = np.random.default_rng(0)
    run = Run(
        command="fit",
        names=NAMES,
        results=(_result("a, quoted.nii.gz", 7, rng), _result('b"c.RAW', 4, rng)),
        suffixes=SUFFIXES,
        sd_suffix="_crlb_sd",
        notes=(),
        facts={},
    )
    text = results_csv(run)
    assert text == _oracle(run)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 11 and rows[1][0] == "a, quoted.nii.gz" and rows[-1][0] == 'b"c.RAW'
    assert rows[1][2:7:2] == ["nan", "inf", "-0"]  # each amplitude, then its SD


def test_results_json_text_is_the_documents_strict_json_a_spectrum_per_line():
    """``results.json``'s text (:func:`results_json_text`) parses back to the document, with
    its ``spectra`` last, one line per spectrum, the rest indented as ``json.dumps(indent=2)``;
    NaN refused (strict JSON, as before); a document without spectra, or with none, too."""
    doc = {
        "command": "quantify",
        "inputs": [{"file": 'a "quoted", file.nii', "shape": [2, 1, 1], "warnings": []}],
        "spectra": [
            {
                "file": "a.nii",
                "spectrum": "0,0,0",
                "snr": 31.5,
                "qc": [],
                "fit": {"w": [1.0, None]},
            },
            {"file": "a.nii", "spectrum": "1,0,0", "snr": None, "qc": ["too_broad"]},
        ],
        "water_scaling": None,
    }
    text = results_json_text(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    start = lines.index('  "spectra": [')
    assert [json.loads(line.rstrip(",")) for line in lines[start + 1 : start + 3]] == doc["spectra"]
    assert lines[start + 3 :] == ["  ]", "}"]
    head = {k: v for k, v in doc.items() if k != "spectra"}
    assert "\n".join(lines[:start]) == json.dumps(head, indent=2)[:-2] + ","
    for other in ({"spectra": []}, {"a": 1}, {"a": {}, "spectra": [{"x": 1}]}):
        assert json.loads(results_json_text(other)) == other
    with pytest.raises(ValueError):
        results_json_text({"spectra": [{"snr": float("nan")}]})


def test_every_quality_column_has_its_values_and_its_description():
    """The columns are named twice: their descriptions (:data:`QUALITY_COLUMNS`, which the
    writers iterate) and their values (:func:`scaloquant.quantify.checks.quality_columns`). A
    column added to one only fails here, not with a ``KeyError`` in a fit's writer or a column
    dropped from ``results.csv`` without a word."""
    from types import SimpleNamespace

    from scaloquant.quantify.checks import quality_columns
    from scaloquant.signal.quality import QualityFigures

    n = 3
    figures = QualityFigures(**{f: np.zeros(n) for f in QualityFigures._fields})
    prep = SimpleNamespace(quality=figures, input=SimpleNamespace(n_spectra=n))
    for residual in (None, np.ones(n)):
        values = quality_columns(prep, residual, residual)
        assert list(values) == list(NUMBERS)
        assert all(v.shape == (n,) for v in values.values())
