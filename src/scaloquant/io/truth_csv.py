"""The truth of simulated signals as CSV, beside a NIfTI-MRS file of the signals.

One row per signal: ``index`` (the signal's position along the NIfTI-MRS ``DIM_USER_0``
dimension), then every per-signal column: a (k, M) column becomes one CSV column per
metabolite, ``<name>_<metabolite>`` (``amplitudes_NAA``, ``shift_hz_Cr``), a (k, H) column one
per hump, ``<name>_<h>`` (``baseline_height_0``), a (k,) column keeps its name (``snr``).
Numbers are written with enough digits to read back the same float64.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: ``sim.nii.gz`` -> ``sim_truth.csv``: the truth file's name beside a NIfTI-MRS file.
TRUTH_SUFFIX = "_truth.csv"


def truth_path_for(nifti_path: str | os.PathLike) -> Path:
    """``<stem>_truth.csv`` beside ``nifti_path``, with ``.nii`` or ``.nii.gz`` removed."""
    path = Path(nifti_path)
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return path.with_name(name + TRUTH_SUFFIX)


def truth_header(
    columns: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[str]]
) -> list[str]:
    """CSV column names: ``index``, then ``<name>`` or ``<name>_<label>`` for each column."""
    header = ["index"]
    for name, values in columns.items():
        if values.ndim == 1:
            header.append(name)
        else:
            own = labels.get(name, range(values.shape[1]))
            header += [f"{name}_{label}" for label in own]
    return header


def write_truth_csv(
    path: str | os.PathLike,
    columns: Mapping[str, np.ndarray],
    labels: Mapping[str, Sequence[str]],
) -> None:
    """Write the truth table to ``path`` (the caller makes it atomic, see ``atomic_path``).

    Parameters
    ----------
    columns : per-signal arrays by name, (k,) or (k, C), all with k rows.
    labels : for 2-D columns whose axis has names (metabolites), those C names; other 2-D
        columns are numbered from 0.
    """
    table = np.concatenate(
        [np.asarray(v, dtype=np.float64).reshape(v.shape[0], -1) for v in columns.values()],
        axis=1,
    )
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(truth_header(columns, labels))
        for i, row in enumerate(table):
            writer.writerow([i, *(repr(float(x)) for x in row)])
