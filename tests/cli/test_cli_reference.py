"""A spectrum whose ppm reference is off is fitted right or flagged ``reference_off``, never a
silent wrong table: the spant Philips spectrum (``../shared/data/invivo``), its reference moved
as a scanner set on the wrong frequency (the FID times a phase ramp) or a header with the wrong
reference (``--ppm-reference`` with ``--override-header``), through ``fit`` and ``quantify``.

Before session 24, moved by -0.3 ppm it gave Cr = PCr = 0, NaN ratios and no flag (the fit's
shift search was +-25 Hz, 0.2 ppm); moved by -0.5 ppm only ``no_signal`` (its NAA left the SNR's
window), which says nothing of the reference."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from _shared import INVIVO
from scaloquant.cli import main
from scaloquant.io import read_fid, write_nifti_mrs
from scaloquant.signal import axes

PHILIPS = INVIVO / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz"
RATIOS = ("tNAA", "tCho", "Glx", "Ins")
#: How far a ratio of the moved spectrum may be from the unmoved one's: the tolerance the
#: spant spectrum is held to against LCModel's table (benchmarks/bench_invivo_ratios.py).
TOLERANCE = 0.15

pytestmark = pytest.mark.skipif(
    not PHILIPS.is_file(), reason="../shared/data/invivo/philips-press30-spant is not present"
)


def _moved(tmp_path: Path, shift_ppm: float) -> Path:
    """The spant spectrum moved by ``shift_ppm`` on its own axis (the FID times
    ``exp(2 pi i shift f0 t)``), written as NIfTI-MRS."""
    fid = read_fid(PHILIPS)
    t = axes.time_axis_s(fid.n_points, fid.dwell_time_s)
    ramp = np.exp(2j * np.pi * shift_ppm * fid.spectrometer_freq_mhz * t)
    return write_nifti_mrs(
        tmp_path / f"moved{shift_ppm:+.1f}.nii.gz", fid.with_samples(fid.samples * ramp)
    )


def _row(command: str, path: Path, out: Path, *extra: str) -> dict[str, str]:
    assert main([command, str(path), "--out", str(out), "--max-figures", "0", *extra]) == 0
    with open(out / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    return row


def _ratio(row: dict[str, str], name: str) -> float:
    return float(row[f"{name}_ratio_tcr"])


@pytest.fixture(scope="module")
def unmoved(tmp_path_factory) -> dict[str, str]:
    return _row("fit", PHILIPS, tmp_path_factory.mktemp("unmoved") / "out")


def test_unmoved_spectrum_is_not_flagged(unmoved):
    assert unmoved["qc"] == ""
    assert np.isfinite(_ratio(unmoved, "tNAA"))


@pytest.mark.parametrize("how", ["ramp", "header"])
def test_fit_of_a_reference_off_by_0_3_ppm_is_right_or_flagged(unmoved, tmp_path, how):
    if how == "ramp":
        row = _row("fit", _moved(tmp_path, -0.3), tmp_path / "out")
    else:  # the header says 4.35 ppm at the receiver: every peak reads 0.3 ppm low
        flags = ("--ppm-reference", "4.35", "--override-header")
        row = _row("fit", PHILIPS, tmp_path / "out", *flags)
    if "reference_off" in row["qc"].split(";"):
        return
    for name in RATIOS:
        assert _ratio(row, name) == pytest.approx(_ratio(unmoved, name), rel=TOLERANCE), name


def test_fit_of_a_reference_off_beyond_the_search_is_flagged(tmp_path):
    row = _row("fit", _moved(tmp_path, -0.5), tmp_path / "out")
    assert "reference_off" in row["qc"].split(";")


def test_quantify_flags_a_reference_the_network_cannot_reach(tiny_checkpoint, tmp_path):
    """A network's estimate has no fitted shift: the data's singlets more than 0.1 ppm from
    their places (the simulator's referencing range) are flagged; the unmoved ones are not.
    The tiny model is trained on the embedded basis' grid: --force takes the Philips one."""
    ckpt = str(tiny_checkpoint)
    row = _row("quantify", PHILIPS, tmp_path / "a", "--model", ckpt, "--force")
    assert "reference_off" not in row["qc"].split(";")
    moved = _moved(tmp_path, -0.3)
    row = _row("quantify", moved, tmp_path / "b", "--model", ckpt, "--force")
    assert "reference_off" in row["qc"].split(";")
