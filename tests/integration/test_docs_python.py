"""docs/python.md's Python blocks run as written (the shared data found where ``../shared``
stands for CI and a checkout), and what they print agrees with the ``fit`` command's outputs
and with the nifti-mrs package's reading of the same file (the library FSL-MRS reads with)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from _shared import INVIVO, SHARED

DOC = Path(__file__).resolve().parents[2] / "docs" / "python.md"
SPANT = INVIVO / "philips-press30-spant"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_its_two_blocks_and_names_the_shared_folder_once():
    blocks = _blocks()
    assert len(blocks) == 2
    assert "\n".join(blocks).count('Path("../shared")') == 1


@pytest.mark.skipif(not SPANT.is_dir(), reason=f"shared scanner spectra absent: {SPANT}")
def test_the_python_blocks_run_and_agree_with_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # write_run("spant_fit") writes here
    code = "\n".join(_blocks()).replace('Path("../shared")', f"Path({str(SHARED)!r})")
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own code
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("tNAA/tCr ") and printed[0].endswith("flags none")
    assert printed[1].startswith("NAA ")

    # the first block's outputs are the command's: results.csv holds what it printed
    row = next(csv.DictReader((tmp_path / "spant_fit" / "results.csv").open()))
    ratio = float(printed[0].split()[1].rstrip(","))
    assert float(row["tNAA_ratio_tcr"]) == pytest.approx(ratio, abs=5e-4)
    # LCModel's own table for this spectrum has tNAA/tCr 1.306 (README's scanner section)
    assert 1.0 < ratio < 1.6

    # the array route: nifti-mrs gives the samples scaloquant's reader gives, and the same
    # model on them gives the same NAA as the file route
    from scaloquant.io import read_fid

    img, fid = namespace["img"], namespace["fid"]
    mine = read_fid(SPANT / "nifti_spec2nii" / "metab.nii.gz")
    np.testing.assert_array_equal(np.asarray(img[:]), mine.samples)
    assert fid.ppm_reference == mine.ppm_reference
    assert fid.spectrometer_freq_mhz == pytest.approx(mine.spectrometer_freq_mhz)
    run, fit = namespace["run"], namespace["fit"]
    naa_run = run.results[0].columns[""][0, run.names.index("NAA")]
    naa_fit = fit.amplitudes.reshape(-1, len(fit.names))[0, fit.names.index("NAA")]
    assert naa_fit == pytest.approx(naa_run, rel=1e-6)
