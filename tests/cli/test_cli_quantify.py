"""``scaloquant quantify`` end to end on files of every supported format (written here with the
project's writers), with a checkpoint trained for a few steps (accuracy does not matter here:
the outputs, the scale property, the acquisition checks and the refusals do)."""

from __future__ import annotations

import csv
import json

import nibabel
import numpy as np
import pytest
from _fids import fid_on_grid

from _shared import ISMRM2016_BASIS, one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, write_lcmodel_raw, write_nifti_mrs
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID

SHARED = ISMRM2016_BASIS


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def signals(basis):
    """16 noiseless simulated FIDs on the model's grid, (16, 2048)."""
    return simulate_batch(basis, SimulationConfig(), 16, np.random.default_rng(5)).fids


_fid = fid_on_grid


def _water(basis, first_point: float) -> FID:
    t = basis.acquisition.time_axis_s()
    return _fid(basis, first_point * np.exp(-t / 0.05))  # a singlet at 0 Hz = 4.65 ppm


def _quantify(ckpt, out, *inputs, extra=()):
    return main(["quantify", *map(str, inputs), "--model", str(ckpt), "--out", str(out), *extra])


def _rows(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _column(rows, name):
    return np.array([float(r[name]) for r in rows])


def test_nifti_single_voxel_writes_every_output(tiny_checkpoint, basis, signals, tmp_path):
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--max-figures", "1"]) == 0
    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["file"] == "svs.nii.gz" and rows[0]["spectrum"] == "0,0,0"
    names = basis.names
    assert list(rows[0])[:6] == ["file", "spectrum", "Mac", "Mac_sd", "Mac_ratio_tcr", "Ala"]
    for n in names:
        for col in (n, f"{n}_sd", f"{n}_ratio_tcr"):
            assert col in rows[0]
    assert not any(c.endswith("_mM") for c in rows[0])  # no water reference
    # the ratio column is the amplitude over Cr + PCr of the same row
    amp = {n: float(rows[0][n]) for n in names}
    assert float(rows[0]["NAA_ratio_tcr"]) == pytest.approx(
        amp["NAA"] / (amp["Cr"] + amp["PCr"]), rel=1e-6
    )
    doc = json.loads((out / "results.json").read_text())
    assert "NAA_ratio_tcr" in doc["columns"] and doc["inputs"][0]["spectrum_label"].startswith(
        "voxel"
    )
    assert (out / "figures" / "svs_0-0-0.png").stat().st_size > 1000
    assert "| NAA |" in (out / "summary.md").read_text()
    assert "<table" in (out / "report.html").read_text()
    prov = json.loads((out / "provenance.json").read_text())
    assert len(prov["checkpoint"]["sha256"]) == 64 and len(prov["inputs"][0]["sha256"]) == 64
    assert prov["scaloquant_version"] and prov["time_utc"]
    assert not (out / "maps").exists()  # single voxel: no maps


def test_nifti_mrsi_one_row_per_voxel_and_maps(tiny_checkpoint, basis, signals, tmp_path):
    samples = signals.reshape(4, 4, 1, -1)
    path = write_nifti_mrs(tmp_path / "mrsi.nii.gz", _fid(basis, samples))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--max-figures", "2"]) == 0
    rows = _rows(out)
    assert [r["spectrum"] for r in rows] == [f"{x},{y},0" for x in range(4) for y in range(4)]
    for suffix in ("", "_sd", "_ratio_tcr"):
        img = nibabel.load(out / "maps" / "mrsi" / f"NAA{suffix}.nii.gz")
        assert img.shape == (4, 4, 1)
    naa = np.asarray(nibabel.load(out / "maps" / "mrsi" / "NAA.nii.gz").dataobj)
    np.testing.assert_allclose(naa.reshape(-1), _column(rows, "NAA"), rtol=1e-6)
    assert len(list((out / "figures").glob("*.png"))) == 2
    assert "fit figures drawn for 2 of 16 spectra" in (out / "summary.md").read_text()


def test_nifti_extra_dimension_every_transient(tiny_checkpoint, basis, signals, tmp_path):
    samples = signals[:6].reshape(1, 2, 1, 3, -1)  # (x, y, z, DIM_DYN, n)
    path = write_nifti_mrs(tmp_path / "dyn.nii", _fid(basis, samples), dim_tags=["DIM_DYN"])
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--max-figures", "0"]) == 0
    rows = _rows(out)
    assert [r["spectrum"] for r in rows] == [f"0,{y},0,{d}" for y in range(2) for d in range(3)]
    assert nibabel.load(out / "maps" / "dyn" / "NAA.nii.gz").shape == (1, 2, 1, 3)


def test_lcmodel_raw_finds_its_h2o_and_reports_mM(tiny_checkpoint, basis, signals, tmp_path):
    raw = write_lcmodel_raw(tmp_path / "data.RAW", _fid(basis, signals[1]), name="data")
    write_lcmodel_raw(tmp_path / "data.H2O", _water(basis, 2.0e4), name="water")
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, raw, extra=["--max-figures", "0"]) == 0
    rows = _rows(out)
    # the embedded basis has 1 unit per proton (Cr starts at 5): mM = a * 2 * 29697 * 1.206 / w0
    factor = 2 * 29696.6 * np.exp(30 / 160) / 2.0e4
    for n in ("NAA", "Cr", "Glu"):
        assert float(rows[0][f"{n}_mM"]) == pytest.approx(float(rows[0][n]) * factor, rel=1e-4)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"][0]["water_reference"].endswith("data.H2O")
    assert prov["water_scaling"]["relaxation_corrected_water_mM"] == pytest.approx(29697, abs=1)


def test_jmrui_file(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    path = f"{SHARED}/jmrui/NAA.txt"  # 123.22 MHz: within 0.1% of the model's, relabelled
    assert _quantify(tiny_checkpoint, out, path, extra=["--max-figures", "0"]) == 0
    assert _rows(out)[0]["file"] == "NAA.txt"


def test_text_files_need_the_grid_flags(tiny_checkpoint, basis, signals, tmp_path, capsys):
    # 4 columns: metabolite re im (conjugated, as the ISMRM files), water re im
    water = _water(basis, 1.0e4).samples
    table = np.column_stack(
        [
            np.conj(signals[2]).real,
            np.conj(signals[2]).imag,
            np.conj(water).real,
            np.conj(water).imag,
        ]
    )
    path = tmp_path / "dataset.txt"
    np.savetxt(path, table)
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path) == 2
    assert "--dwell-time-s" in one_error_line(capsys, "quantify") and not out.exists()
    flags = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.261703"]
    assert _quantify(tiny_checkpoint, out, path, extra=[*flags, "--max-figures", "0"]) == 0
    rows = _rows(out)
    assert np.isfinite(float(rows[0]["NAA_mM"]))  # the water columns of the same file


def test_amplitudes_scale_with_the_data(tiny_checkpoint, basis, signals, tmp_path):
    k = 37.5
    paths = [
        write_nifti_mrs(tmp_path / "x.nii.gz", _fid(basis, signals[:4].reshape(2, 2, 1, -1))),
        write_nifti_mrs(tmp_path / "kx.nii.gz", _fid(basis, k * signals[:4].reshape(2, 2, 1, -1))),
    ]
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, *paths, extra=["--max-figures", "0"]) == 0
    rows = _rows(out)
    x, kx = rows[:4], rows[4:]
    for n in ("NAA", "Cr", "Glu", "Mac"):
        # float32 network: a relative tolerance of 1e-4 leaves room for its rounding only
        np.testing.assert_allclose(_column(kx, n), k * _column(x, n), rtol=1e-4, atol=1e-6 * k)
        np.testing.assert_allclose(_column(kx, f"{n}_sd"), k * _column(x, f"{n}_sd"), rtol=1e-4)
        np.testing.assert_allclose(
            _column(kx, f"{n}_ratio_tcr"), _column(x, f"{n}_ratio_tcr"), rtol=1e-4
        )


def test_7t_file_is_refused(tiny_checkpoint, basis, signals, tmp_path, capsys):
    path = write_nifti_mrs(
        tmp_path / "7t.nii.gz", _fid(basis, signals[0], spectrometer_freq_mhz=297.2)
    )
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path) == 2
    assert "297.2" in one_error_line(capsys, "quantify")
    assert _quantify(tiny_checkpoint, out, path, extra=["--force"]) == 2
    one_error_line(capsys, "quantify")
    assert not out.exists()


def test_other_dwell_time_refused_then_converted_with_force(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    # 1024 points at 0.5 ms: the same 512 ms, half the spectral width
    samples = signals[3][::2]
    path = write_nifti_mrs(tmp_path / "half.nii.gz", _fid(basis, samples, dwell_time_s=5e-4))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path) == 2
    assert "--force" in one_error_line(capsys, "quantify") and not out.exists()
    assert _quantify(tiny_checkpoint, out, path, extra=["--force", "--max-figures", "0"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["inputs"][0]["conversions"]  # what was done is reported
    assert "conversion:" in (out / "summary.md").read_text()


def test_corrupt_or_nan_input_leaves_no_output(tiny_checkpoint, basis, signals, tmp_path, capsys):
    good = write_nifti_mrs(tmp_path / "good.nii.gz", _fid(basis, signals[0]))
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(good.read_bytes()[:500])
    nan_raw = write_lcmodel_raw(tmp_path / "nan.RAW", _fid(basis, signals[0]), name="x")
    text = nan_raw.read_text().splitlines()
    text[-5] = "             NaN             NaN"
    nan_raw.write_text("\n".join(text) + "\n")
    out = tmp_path / "out"
    for bad in (corrupt, nan_raw):
        assert _quantify(tiny_checkpoint, out, good, bad) == 2
        assert bad.name in one_error_line(capsys, "quantify")
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_existing_output_is_not_touched(tiny_checkpoint, basis, signals, tmp_path, capsys):
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert _quantify(tiny_checkpoint, out, path) == 2
    assert "--overwrite" in one_error_line(capsys, "quantify")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert _quantify(tiny_checkpoint, out, path, extra=["--overwrite", "--max-figures", "0"]) == 0
    assert (out / "mine.txt").read_text() == "keep" and (out / "results.csv").is_file()


def test_basis_that_is_not_the_models_is_refused(tiny_checkpoint, basis, signals, tmp_path, capsys):
    from scaloquant.io import write_basis_npz

    other = write_basis_npz(tmp_path / "other.npz", basis.subset(["NAA", "Cr", "PCr"]))
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--basis", str(other)]) == 2
    assert "not the basis the model was trained on" in one_error_line(capsys, "quantify")


def test_refine_adds_the_fit_columns(tiny_checkpoint, basis, signals, tmp_path):
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[4]))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--refine", "--max-figures", "0"]) == 0
    row = _rows(out)[0]
    refined = np.array([float(row[f"{n}_refined"]) for n in basis.names])
    assert np.all(refined >= 0) and np.isfinite(float(row["NAA_crlb_sd"]))
    assert float(row["NAA_crlb_pct"]) == pytest.approx(
        100 * float(row["NAA_crlb_sd"]) / float(row["NAA_refined"]), rel=1e-6
    )
    # the refined fit's pairs it cannot tell apart, among the model's metabolites, most
    # negative first (here Gly+Ins -0.89, Cr+PCr -0.87, ...; session 33)
    doc = json.loads((out / "results.json").read_text())
    pairs = doc["spectra"][0]["fit"]["anticorrelated"]
    assert pairs and list(pairs.values()) == sorted(pairs.values()), pairs
    assert max(pairs.values()) <= -0.5
    assert all(set(pair.split("+")) <= set(basis.names) for pair in pairs), pairs


def _spy_rows(monkeypatch, cls, method):
    """Record the number of spectra each call of ``cls.method`` is given."""
    seen: list[int] = []
    original = getattr(cls, method)

    def spy(self, fids, *args, **kwargs):
        seen.append(len(fids))
        return original(self, fids, *args, **kwargs)

    monkeypatch.setattr(cls, method, spy)
    return seen


def test_mrsi_empty_voxel_is_not_run_through_the_model(
    tiny_checkpoint, basis, signals, tmp_path, monkeypatch
):
    """As ``fit``: an empty voxel of an MRSI input is not given to the network (its row is NaN,
    flagged); without a fit residual (no --refine) the figures are those of highest SNR."""
    from scaloquant.models import Quantifier

    samples = signals[:4].copy()
    samples[2] = 0  # outside the head
    path = write_nifti_mrs(tmp_path / "mrsi.nii.gz", _fid(basis, samples.reshape(2, 2, 1, -1)))
    seen = _spy_rows(monkeypatch, Quantifier, "predict_with_sd")
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--max-figures", "2"]) == 0
    assert seen == [3]
    rows = _rows(out)
    assert rows[2]["qc"] == "empty" and np.isnan(float(rows[2]["NAA"]))
    assert all(np.isfinite(float(rows[j]["NAA"])) for j in (0, 1, 3))
    snr = np.array([float(rows[j]["snr"]) for j in range(4)])
    largest = sorted(np.argsort(-snr)[:2])
    labels = [rows[j]["spectrum"].replace(",", "-") for j in largest]
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == [
        f"mrsi_{label}.png" for label in labels
    ]


def test_mrsi_voxel_of_nan_samples_is_quantified_as_an_empty_one(
    tiny_checkpoint, basis, signals, tmp_path
):
    """A voxel of an MRSI input holding a NaN sample (a scanner's failed voxel; main refused
    the whole file) is left out as an empty voxel: every row the same as for the file with that
    voxel all zero, and the voxel named in the run's warnings."""
    samples = signals[:4].copy()
    samples[2] = 0
    empty = write_nifti_mrs(tmp_path / "empty.nii.gz", _fid(basis, samples.reshape(2, 2, 1, -1)))
    img = nibabel.load(empty)
    data = np.asanyarray(img.dataobj).copy()
    data[1, 0, 0, 5] = np.nan  # voxel 1,0,0 is spectrum 2 in C order
    broken = tmp_path / "broken.nii.gz"
    nibabel.save(nibabel.Nifti2Image(data, img.affine, header=img.header), broken)
    for path, out in ((empty, tmp_path / "e"), (broken, tmp_path / "b")):
        assert _quantify(tiny_checkpoint, out, path, extra=["--max-figures", "0"]) == 0
    unnamed = [
        [{k: v for k, v in r.items() if k != "file"} for r in _rows(tmp_path / d)] for d in "be"
    ]
    assert unnamed[0] == unnamed[1]  # the file's name aside
    (facts,) = json.loads((tmp_path / "b" / "results.json").read_text())["inputs"]
    assert any("1 of 4 voxels hold NaN/Inf samples (voxel 1,0,0)" in w for w in facts["warnings"])


def test_refine_draws_a_flagged_spectrum_first(tiny_checkpoint, basis, signals, tmp_path):
    """As ``fit``: with more spectra than --max-figures, the spectra the run flags (here the
    refined fit's misfit) are drawn first, then the highest SNRs; before session 32
    (`figures32`) the figures were chosen by SNR before the estimates."""
    rng = np.random.default_rng(3)
    t = basis.acquisition.time_axis_s()
    hz = (1.3 - basis.ppm_reference) * basis.spectrometer_freq_mhz
    paths = []
    for i, samples in enumerate(signals[:3]):
        if i == 0:  # a tenth of the signal and a line at 1.3 ppm that the basis lacks: misfit
            samples = 0.1 * samples
            samples = samples + 0.05 * abs(samples[0]) * np.exp(2j * np.pi * hz * t - t / 0.1)
        samples = samples + 0.002 * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
        path = tmp_path / f"s{i}.RAW"
        paths.append(write_lcmodel_raw(path, _fid(basis, samples), name=f"s{i}"))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, *paths, extra=["--refine", "--max-figures", "2"]) == 0
    rows = _rows(out)
    # the 1.3 ppm line stands taller than the tenth's NAA: lipids too (since session 34)
    assert [r["qc"] for r in rows] == ["lipids;misfit", "", ""]
    snr = _column(rows, "snr")
    assert snr[0] < min(snr[1:])  # the flagged one, lowest SNR: drawn first all the same
    drawn = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert drawn == ["s0_0.png", f"s{1 + int(np.argmax(snr[1:]))}_0.png"]


def test_mrsi_refine_draws_representative_voxels_as_fit(
    tiny_checkpoint, basis, signals, tmp_path, monkeypatch
):
    """With --refine (a fit residual for every voxel) an MRSI input draws ``--mrsi-figures``
    voxels at evenly spaced ranks of the refined fit's residual, of the usable voxels, as
    ``fit`` does (``representative_voxels``), and says so; the empty voxel is neither given to
    the network nor refined."""
    from scaloquant.models import Quantifier
    from scaloquant.quantify.figures import representative_voxels

    samples = signals[:5].copy()
    samples[1] = 0
    path = write_nifti_mrs(tmp_path / "slice.nii.gz", _fid(basis, samples.reshape(5, 1, 1, -1)))
    seen = _spy_rows(monkeypatch, Quantifier, "predict_with_sd")
    out = tmp_path / "out"
    flags = ["--refine", "--mrsi-figures", "3"]
    assert _quantify(tiny_checkpoint, out, path, extra=flags) == 0
    assert seen == [4]
    rows = _rows(out)
    residual = _column(rows, "fit_residual")
    assert np.isnan(residual[1]) and np.isnan(float(rows[1]["NAA_refined"]))
    usable = np.array([r["qc"] != "empty" for r in rows])
    finite = np.flatnonzero(usable)
    order = finite[np.argsort(residual[finite])]
    want = sorted(order[[0, 2, 3]].tolist())  # best, median (rank round(1.5) = 2), worst
    assert sorted(representative_voxels(residual, usable, 3)) == want
    labels = [rows[j]["spectrum"].replace(",", "-") for j in want]
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == sorted(
        f"slice_{label}.png" for label in labels
    )
    assert "fit figures drawn for 3 of 5 voxels of slice.nii.gz" in (out / "summary.md").read_text()


def test_water_files_must_be_one_or_one_per_input(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    paths = [write_nifti_mrs(tmp_path / f"s{i}.nii.gz", _fid(basis, signals[i])) for i in range(3)]
    water = write_nifti_mrs(tmp_path / "w.nii.gz", _water(basis, 1e4))
    out = tmp_path / "out"
    extra = ["--water", str(water), "--water", str(water)]
    assert _quantify(tiny_checkpoint, out, *paths, extra=extra) == 2
    assert "one per input" in one_error_line(capsys, "quantify") and not out.exists()
    extra = ["--water", str(water), "--max-figures", "0"]
    assert _quantify(tiny_checkpoint, out, *paths, extra=extra) == 0
    assert all(np.isfinite(_column(_rows(out), "NAA_mM")))


def test_mrsi_water_of_another_grid_is_refused(tiny_checkpoint, basis, signals, tmp_path, capsys):
    path = write_nifti_mrs(tmp_path / "mrsi.nii.gz", _fid(basis, signals[:4].reshape(2, 2, 1, -1)))
    water = _water(basis, 1e4).samples
    water_path = write_nifti_mrs(
        tmp_path / "w.nii.gz", _fid(basis, np.broadcast_to(water, (3, 1, 1, water.size)))
    )
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--water", str(water_path)]) == 2
    assert "voxel grid" in one_error_line(capsys, "quantify") and not out.exists()


def test_cuda_device_without_a_gpu_is_a_clear_error(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    assert _quantify(tiny_checkpoint, tmp_path / "out", path, extra=["--device", "cuda"]) == 2
    # the flag and what to give it (session 31: usable_device names the key, worded as the flag)
    one_error_line(capsys, "quantify", "--device 'cuda': no CUDA GPU is available here; give cpu")


def test_file_echo_time_is_checked_and_used_for_mM(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    path = write_nifti_mrs(
        tmp_path / "te35.nii.gz", _fid(basis, signals[0]), extra_header={"EchoTime": 0.035}
    )
    water = write_nifti_mrs(tmp_path / "w.nii.gz", _water(basis, 1e4))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, path, extra=["--water", str(water)]) == 2
    assert "--force" in one_error_line(capsys, "quantify") and not out.exists()
    extra = ["--water", str(water), "--force", "--max-figures", "0"]
    assert _quantify(tiny_checkpoint, out, path, extra=extra) == 0
    row = _rows(out)[0]
    te = 35.0
    water_mM = 1000 / 18.015 * (0.6 * 0.78 * np.exp(-te / 110) + 0.4 * 0.65 * np.exp(-te / 80))
    factor = 2 * 1000 * water_mM * np.exp(te / 160) / 1e4
    assert float(row["Cr_mM"]) == pytest.approx(float(row["Cr"]) * factor, rel=1e-4)
    doc = json.loads((out / "results.json").read_text())
    assert doc["inputs"][0]["water_scaling"]["echo_time_ms"] == pytest.approx(35.0)
    assert doc["inputs"][0]["warnings"]  # the TE mismatch accepted with --force is reported


def test_mirrored_nifti_is_warned_about(tiny_checkpoint, basis, signals, tmp_path, capsys):
    """A NIfTI-MRS file in the other orientation (conjugated by the nifti_mrs package's own
    tool): quantify prints the mirror warning and stores it in results.json; with --conjugate
    it reads the file right and the warning goes."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    from nifti_mrs.tools import conjugate

    right = write_nifti_mrs(tmp_path / "right.nii.gz", _fid(basis, signals[0]))
    mirrored = tmp_path / "mirrored.nii.gz"
    conjugate(NIFTI_MRS(str(right))).save(str(mirrored))
    for extra, warned in (([], True), (["--conjugate"], False)):
        out = tmp_path / f"out{len(extra)}"
        assert _quantify(tiny_checkpoint, out, mirrored, extra=["--max-figures", "0", *extra]) == 0
        printed = capsys.readouterr().out
        assert ("mirrored.nii.gz: the spectrum looks mirrored" in printed) is warned
        stored = json.loads((out / "results.json").read_text())["inputs"][0]["warnings"]
        assert any("looks mirrored" in w for w in stored) is warned


@pytest.mark.parametrize("command", ["quantify", "fit"])
def test_flag_defaults_are_the_library_defaults(command):
    """The flags give the library's defaults: the CLI writes those of ``quantify.Options`` and
    ``WaterScaling`` down (reading the classes would load numpy for ``--help``), and this checks
    them against the classes' fields, so that the two cannot drift apart."""
    from dataclasses import MISSING, fields

    from scaloquant.cli import build_parser
    from scaloquant.cli._spectra import OPTION_DEFAULTS, TISSUES, WATER_DEFAULTS
    from scaloquant.quantify import Options, WaterScaling
    from scaloquant.quantify.water import TISSUES as WATER_TISSUES

    def dataclass_defaults(cls):
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    required = ["--model", "m.ckpt"] if command == "quantify" else []
    args = build_parser([command]).parse_args([command, "x.nii", "--out", "o", *required])
    water, options = dataclass_defaults(WaterScaling), dataclass_defaults(Options)
    assert WATER_DEFAULTS == {k: water[k] for k in WATER_DEFAULTS} and TISSUES == WATER_TISSUES
    assert OPTION_DEFAULTS == {k: options[k] for k in OPTION_DEFAULTS}
    assert tuple(args.tissue_fractions) == water["tissue_fractions"]
    assert tuple(args.water_t2_ms) == water["water_t2_ms"]
    assert args.metabolite_t2_ms == water["metabolite_t2_ms"]
    assert args.max_figures == options["max_figures"]
    made = options_of(args)
    assert made.water_scaling == WaterScaling() and made.max_figures == Options().max_figures


def options_of(args):
    from scaloquant.cli._spectra import options_from_args

    return options_from_args(args, basis_metadata={})
