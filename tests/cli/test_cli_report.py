"""``report.html`` of real runs: ``fit`` of challenge spectra and ``quantify`` of a 4 x 4 MRSI
grid, parsed (overview rows, inline images, nothing fetched from elsewhere) and, where Chromium
is installed, rendered headless by ``tools/screenshot_report.py`` (a screenshot that is not
blank, and a PDF)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from _shared import CHALLENGE as CHALLENGE_DATA
from scaloquant.cli import main
from scaloquant.io import default_basis, write_nifti_mrs
from scaloquant.report.check import ReportPage
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID

CHALLENGE = CHALLENGE_DATA / "datasets_LCModel"
SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "screenshot_report.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
GRID = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.261703"]


def _self_contained(text: str, page: ReportPage) -> None:
    assert not page.external_urls, page.external_urls[:5]
    style = text[text.index("<style>") : text.index("</style>")]
    assert "url(" not in style and "@import" not in style and "<script" not in text


@pytest.fixture(scope="module")
def fit_report(tmp_path_factory) -> Path:
    """``scaloquant fit`` of 3 challenge spectra (about 15 s; 21 in the hand-made check)."""
    files = [CHALLENGE / f"dataset{i}.RAW" for i in (1, 2, 3)]
    if not all(f.is_file() for f in files):
        pytest.skip(f"the ISMRM 2016 challenge spectra are not in {CHALLENGE}")
    out = tmp_path_factory.mktemp("fit_report") / "out"
    assert main(["fit", *map(str, files), *GRID, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def mrsi_report(tiny_checkpoint, tmp_path_factory) -> Path:
    """``scaloquant quantify`` of a 4 x 4 x 1 simulated MRSI grid, 2 fit figures."""
    basis = default_basis()
    signals = simulate_batch(basis, SimulationConfig(), 16, np.random.default_rng(5)).fids
    fid = FID(
        samples=signals.reshape(4, 4, 1, -1),
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    folder = tmp_path_factory.mktemp("mrsi_report")
    path = write_nifti_mrs(folder / "mrsi.nii.gz", fid)
    out = folder / "out"
    argv = ["quantify", str(path), "--model", str(tiny_checkpoint), "--out", str(out)]
    assert main([*argv, "--max-figures", "2"]) == 0
    return out


def test_fit_report_has_the_overview_and_the_figures(fit_report):
    text = (fit_report / "report.html").read_text()
    page = ReportPage(text)
    assert page.rows["overview"] == 3  # one row per spectrum, in mM (the .H2O files)
    assert page.rows["overview-ratio"] == 3 and page.rows["overview-amplitude"] == 3
    assert len(page.images) == 3  # the fit figures, inline (no external URL)
    _self_contained(text, page)
    for name in ("tNAA", "tCr", "tCho", "Glx", "%SD (CRLB)"):
        assert f">{name}<" in text
    assert text.count("2048 points, dwell 0.25 ms") == 1  # the shared acquisition, once
    assert not (fit_report / "summary.html").exists()
    summary = (fit_report / "summary.md").read_text()
    assert summary.count("2048 points") == 1 and "| tNAA |" in summary
    assert "figures/dataset1_0.png" in summary


def test_mrsi_report_has_the_overview_maps_and_figures(mrsi_report):
    text = (mrsi_report / "report.html").read_text()
    page = ReportPage(text)
    assert page.rows["overview"] == 16  # one row per voxel
    assert "voxel 3,3,0" in text and "id='maps'" in text
    # 2 fit figures; maps of tNAA, tCr, tCho, Glx and of 3 ratios to tCr
    assert len(page.images) == 2 + 7
    assert sum(alt.endswith(" map") for _, alt in page.images) == 7
    _self_contained(text, page)


def test_mrsi_report_without_figures_points_to_the_nifti_maps(
    mrsi_report, tiny_checkpoint, tmp_path
):
    """``--max-figures 0``: no fit figure and no map drawn (matplotlib's cost per map does
    not shrink with the file), the NIfTI maps written as with figures."""
    source = next((mrsi_report / "maps").iterdir())
    out = tmp_path / "out"
    path = mrsi_report.parent / "mrsi.nii.gz"
    argv = ["quantify", str(path), "--model", str(tiny_checkpoint), "--out", str(out)]
    assert main([*argv, "--max-figures", "0"]) == 0
    text = (out / "report.html").read_text()
    page = ReportPage(text)
    assert page.rows["overview"] == 16 and "id='maps'" in text
    assert len(page.images) == 0 and "maps not drawn (--max-figures 0)" in text
    drawn = sorted(p.name for p in source.iterdir())
    written = sorted(p.name for p in (out / "maps" / source.name).iterdir())
    assert written == drawn and len(written) > 7


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
@pytest.mark.parametrize("which", ["fit_report", "mrsi_report"])
def test_report_renders_in_headless_chromium(which, request, tmp_path):
    report = request.getfixturevalue(which) / "report.html"
    png, pdf = tmp_path / "report.png", tmp_path / "report.pdf"
    cmd = [sys.executable, str(SCRIPT), str(report), "--png", str(png), "--pdf", str(pdf)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pixels = mpimg.imread(png)
    assert pixels.shape[:2] == (2000, 1400)
    # not blank: many distinct colours (text, tables, the red %SD marks, the plots)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50
    assert pdf.read_bytes().startswith(b"%PDF")
