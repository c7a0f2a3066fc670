"""The terminal's account of a run (``scaloquant.cli._spectra.print_run``) prints the notes
the run holds (:attr:`Run.terminal_notes`, which are also in its ``notes``), not notes worded
a second time from its results (a fit of MRSI voxels: test_fit_correlations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaloquant.cli._spectra import print_run
from scaloquant.quantify import Run, SpectraInput, SpectraResult
from scaloquant.types import FID


def test_the_terminal_prints_the_notes_the_run_holds(capsys):
    """A flagged spectrum whose run holds other words: those are printed (the flag's note,
    worded again from the results, was printed before)."""
    fid = FID(np.ones((1, 64), dtype=complex), 2.5e-4, 123.2)
    inp = SpectraInput(Path("a.RAW"), fid, None, None, None, ())
    result = SpectraResult(inp, fid, ("zero-filled to 64 points",), (), {}, qc=("low_snr",))
    held = ("the run's own note", "and its second")
    run = Run("fit", ("NAA",), (result,), ("",), "_crlb_sd", ("x", *held), {}, terminal_notes=held)
    print_run(run, "fitted", 1, Path("out"))
    assert capsys.readouterr().out.splitlines() == [
        "fitted 1 spectrum from 1 file",
        "a.RAW: zero-filled to 64 points",
        *held,
        f"results: {Path('out') / 'results.csv'}; report: {Path('out') / 'report.html'}",
    ]
