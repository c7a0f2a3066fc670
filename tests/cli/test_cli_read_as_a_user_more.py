"""Session 29's second audit of the outputs read as a user: which spectra the fit figures show
and how they are titled, and options refused in the words of the flags the user typed. On the
ISMRM 2016 challenge and spant spectra of ``../shared`` (skipped, saying so, where absent)."""

from __future__ import annotations

import pytest

from _shared import CHALLENGE, INVIVO
from scaloquant.cli import main

RAWS = CHALLENGE / "datasets_LCModel"
CHALLENGE_GRID = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.2"]
SPANT = INVIVO / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz"


@pytest.mark.skipif(not (RAWS / "dataset7.RAW").is_file(), reason=f"needs the shared {RAWS}")
def test_the_fit_figure_is_of_the_spectrum_with_most_signal(tmp_path):
    """Of challenge datasets 7 (SNR 132, FID RMS 28.4) and 13 (SNR 16, RMS 29.5), one figure
    shows dataset 7: by RMS alone the noise counted as signal and dataset 13 was drawn."""
    out = tmp_path / "out"
    raws = [str(RAWS / "dataset13.RAW"), str(RAWS / "dataset7.RAW")]
    argv = ["fit", *raws, *CHALLENGE_GRID, "--out", str(out), "--max-figures", "1"]
    assert main([*argv, "--threads", "1"]) == 0
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == ["dataset7_0.png"]
    assert "(those of highest SNR; --max-figures)" in (out / "summary.md").read_text()


@pytest.mark.skipif(not SPANT.is_file(), reason=f"needs the shared spant spectrum {SPANT}")
def test_a_single_voxels_figure_is_titled_as_the_tables_name_it(tmp_path, monkeypatch):
    """A single-voxel NIfTI's figure was titled 'metab.nii.gz, spectrum 0,0,0' where every
    table names the row 'metab.nii.gz' (no spectrum column for one spectrum)."""
    from scaloquant.report import figures

    titles = []
    plot_fit = figures.plot_fit

    def recording(*args, title, **kwargs):
        titles.append(title)
        return plot_fit(*args, title=title, **kwargs)

    monkeypatch.setattr(figures, "plot_fit", recording)
    out = tmp_path / "out"
    assert main(["fit", str(SPANT), "--out", str(out), "--threads", "1"]) == 0
    assert titles == ["metab.nii.gz"]
    assert "spectrum 0,0,0" not in (out / "report.html").read_text()


@pytest.mark.skipif(not SPANT.is_file(), reason=f"needs the shared spant spectrum {SPANT}")
def test_a_reversed_ppm_range_is_refused_naming_the_flag(tmp_path, capsys):
    """``--ppm-range 4.2 0.2`` was refused as 'ppm_range must have low < high', the config's
    field, not the flag typed."""
    out = tmp_path / "out"
    assert main(["fit", str(SPANT), "--ppm-range", "4.2", "0.2", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("scaloquant fit: error: --ppm-range must have low < high"), line
    assert not out.exists()
