"""Session 29's second audit of the outputs read as a user: which spectra the fit figures show
and how they are titled, and options refused in the words of the flags the user typed. On the
ISMRM 2016 challenge and spant spectra of ``../shared`` (skipped, saying so, where absent)."""

from __future__ import annotations

import os
import stat
import warnings

import pytest

from _shared import CHALLENGE, INVIVO, one_error_line
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
    one_error_line(capsys, "fit", "--ppm-range must have low < high")
    assert not out.exists()


def test_a_simulated_nifti_is_readable_as_any_written_file(tmp_path):
    """simulate's (and convert's) NIfTI-MRS came out 0600, readable by its owner alone: the
    NIfTI writer saves through a temporary of its own, after the atomic writer's chmod."""
    out = tmp_path / "sim.nii.gz"
    assert main(["simulate", "--n", "2", "--seed", "1", "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    truth = out.with_name("sim_truth.csv")
    assert stat.S_IMODE(truth.stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(not (RAWS / "dataset8.RAW").is_file(), reason=f"needs the shared {RAWS}")
def test_a_basis_without_its_grid_is_not_sent_to_the_inputs_flags(tmp_path, capsys):
    """A ``--basis`` .RAW (no dwell time recorded) was refused with 'pass --dwell-time-s', and
    again with it given: that flag describes the inputs (fit, quantify); train has none."""
    raw, basis = str(RAWS / "dataset7.RAW"), str(RAWS / "dataset8.RAW")
    out = tmp_path / "out"
    assert main(["fit", raw, "--basis", basis, *CHALLENGE_GRID, "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit")
    assert "pass --dwell-time-s" not in line and "a basis must record its own grid" in line
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--basis", basis]
    assert main([*argv, "--out", str(out)]) == 2
    line = one_error_line(capsys, "train")
    assert "pass --dwell-time-s" not in line and f"--basis {basis} does not record" in line
    assert not out.exists()


@pytest.mark.skipif(not (RAWS / "dataset7.RAW").is_file(), reason=f"needs the shared {RAWS}")
def test_train_refuses_a_grid_of_another_field_naming_the_file(tmp_path, capsys):
    """``--grid-from`` a 7 T file for the 3 T basis: 'the data: acquired at 297.2 MHz ...; or
    pass --spectrometer-freq-mhz with --override-header', flags train does not have."""
    grid = tmp_path / "d7_7T.nii.gz"
    raw = str(RAWS / "dataset7.RAW")
    argv = ["convert", raw, str(grid), "--dwell-time-s", "0.00025"]
    assert main([*argv, "--spectrometer-freq-mhz", "297.2"]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--grid-from", str(grid)]
    assert main([*argv, "--out", str(out), "--max-steps", "2"]) == 2
    line = one_error_line(capsys, "train")
    assert f"{grid}: acquired at 297.2 MHz" in line and "the embedded basis set" in line
    assert "pass a --grid-from file rewritten by scaloquant convert" in line
    assert not out.exists()


TRAIN_YAML = "n_train: 96\nn_val: 32\nmax_epochs: 1\nval_check_interval: 3\n"


def test_train_counts_one_epoch_in_english(tmp_path, capsys):
    """'after 3 steps (1 epochs, 2 s)'."""
    config = tmp_path / "tiny.yaml"
    config.write_text(TRAIN_YAML)
    argv = ["train", "--model", "spectrum_cnn", "--preset", "tiny", "--config", str(config)]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "after 3 steps (1 epoch, " in out, out


@pytest.fixture(scope="module")
def physics_invivo(tmp_path_factory):
    """A physics-head model of the default invivo prior (it estimates that prior's lipids)."""
    out = tmp_path_factory.mktemp("physics")
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    return out / "models" / "spectrum_physics.ckpt"


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "test.h5"
    assert main(["simulate", "--n", "8", "--seed", "5", "--out", str(path)]) == 0
    return path


def test_evaluate_names_what_it_does_not_score(tmp_path, capsys, physics_invivo, test_file):
    """A physics-head model of the invivo prior on a file of the default simulator (the
    embedded basis both): until session 35 refused ('estimates Lip09, Lip13, Lip20, which the
    test file does not hold'); now scored on the basis, its lipids named as not scored."""
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(physics_invivo), "--data", str(test_file)]
    assert main([*argv, "--out", str(out), "--n-boot", "50"]) == 0
    assert "not scored: Lip09, Lip13, Lip20" in capsys.readouterr().out
    assert "Not scored: Lip09" in (out / "report.md").read_text()


def test_evaluate_refuses_a_folder_and_a_nifti_as_what_they_are(
    tmp_path, capsys, tiny_checkpoint, test_file
):
    """A checkpoint folder was 'checkpoint DIR does not exist'; simulate's NIfTI output given
    as --data was 'not a readable HDF5 file (truncated or garbled?); simulate it again'."""
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(tmp_path), "--data", str(test_file), "--out", str(out)]
    assert main(argv) == 2
    assert f"checkpoint {tmp_path} is a folder" in one_error_line(capsys, "evaluate")
    nifti = tmp_path / "sim.nii.gz"
    assert main(["simulate", "--n", "2", "--seed", "1", "--out", str(nifti)]) == 0
    capsys.readouterr()
    argv = ["evaluate", "--model", str(tiny_checkpoint), "--data", str(nifti), "--out", str(out)]
    assert main(argv) == 2
    line = one_error_line(capsys, "evaluate")
    assert "is not an HDF5 file" in line and "garbled" not in line
    assert not out.exists()


def test_evaluate_report_of_one_model_without_a_baseline_row(
    tmp_path, capsys, tiny_checkpoint, test_file
):
    """report.md said '1 model(s) evaluated' and, under a table with no baseline row, 'The
    baseline predicts, for every signal, the mean of the training targets'."""
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(tiny_checkpoint), "--data", str(test_file)]
    assert main([*argv, "--out", str(out), "--n-boot", "10"]) == 0
    report = (out / "report.md").read_text()
    assert report.count("1 model evaluated on 8 simulated test signals") == 1
    assert "No baseline row" in report and "The baseline predicts" not in report


def test_export_names_the_onnx_file_and_keeps_the_exporters_chatter_off(
    tmp_path, capsys, tiny_checkpoint
):
    """A second export said 'm.json already exists' of the m.onnx asked for; the first one's
    terminal read torch's exporter warnings ('dynamic_axes is not recommended', ...)."""
    pytest.importorskip("onnx", reason="onnx is not installed (pip install '.[onnx]')")
    pytest.importorskip("onnxscript", reason="onnxscript is not installed")
    out = tmp_path / "m.onnx"
    argv = ["export", "--model", str(tiny_checkpoint), "--onnx", str(out)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(argv) == 0
    assert [str(w.message) for w in seen if "onnx" in str(w.filename)] == []
    capsys.readouterr()
    assert main(argv) == 2
    assert f"{out} already exists" in one_error_line(capsys, "export")


def test_reproduce_report_of_noiseless_tests_alone_says_no_noise_was_added():
    """--preset tiny tests noiseless alone: 'at: noiseless (the same signals with seeded noise
    added)'."""
    from types import SimpleNamespace

    from scaloquant.reproduce import _context

    first = SimpleNamespace(n_train=2048, n_val=256, seed=0)
    args = dict(first=first, fresh=False, n_test=200, test_seed=1, snr_range=None, fit_n=20)
    text = _context(**args, snrs=[float("inf")])
    assert "noise added" not in text and "(`data/test.h5`, noiseless, seed 1)." in text
    noisy = _context(**args, snrs=[float("inf"), 20.0])
    assert "(the same signals with seeded noise added)" in noisy


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--amplitude-range", "2", "1"], "--amplitude-range: min 2 > max 1"),
        (["--snr", "0"], "--snr must be positive"),
        (["--chunk-size", "0"], "--chunk-size must be a whole number >= 1"),
    ],
)
def test_simulate_refuses_a_flags_value_naming_the_flag(tmp_path, capsys, flags, words):
    """The config's checks named their keys ('amplitude_range: min 2 > max 1', 'snr must be
    positive', 'chunk size must be ...') of values typed as flags."""
    out = tmp_path / "a.h5"
    assert main(["simulate", "--n", "4", "--seed", "1", "--out", str(out), *flags]) == 2
    assert one_error_line(capsys, "simulate").startswith(f"scaloquant simulate: error: {words}")
    assert not out.exists()


def test_simulate_config_file_keys_stay_named_as_keys(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("amplitude_range: [2, 1]\n")
    argv = ["simulate", "--n", "4", "--seed", "1", "--out", str(tmp_path / "a.h5")]
    assert main([*argv, "--config", str(config)]) == 2
    assert "error: amplitude_range: min 2 > max 1" in one_error_line(capsys, "simulate")


def test_an_output_file_that_is_a_folder_is_refused_as_one(tmp_path, capsys):
    """simulate --out FOLDER said 'already exists; pass --overwrite to replace it', and with
    --overwrite then 'is a folder'."""
    argv = ["simulate", "--n", "4", "--seed", "1", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert f"{tmp_path} is a folder; give a file name" in one_error_line(capsys, "simulate")


@pytest.mark.parametrize("name", ["sim.txt", "sim"])
def test_a_simulation_output_not_named_as_hdf5_is_refused(tmp_path, capsys, name):
    """simulate --out sim.txt wrote HDF5 there, exit 0, which fit then refused as 'a binary
    file, not text' (session 36, audit36)."""
    out = tmp_path / name
    assert main(["simulate", "--n", "2", "--seed", "1", "--out", str(out)]) == 2
    line = one_error_line(capsys, "simulate")
    assert f"{out} is named otherwise; name it {out.with_suffix('.h5')}" in line
    assert list(tmp_path.iterdir()) == []


def test_a_simulation_file_given_to_fit_is_named_as_one(tmp_path, capsys, test_file):
    """fit/quantify/convert of simulate's .h5 said 'test.h5 is a binary file, not text; check
    the file format'."""
    assert main(["fit", str(test_file), "--out", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys, "fit")
    assert "is an HDF5 file (scaloquant simulate's signals" in line and "binary" not in line
    assert not (tmp_path / "out").exists()


def test_train_counts_the_flags_it_refuses_and_refuses_an_unwritable_place_as_others(
    tmp_path, capsys
):
    """'--resume do(es) not apply to spectrum_physics ...; drop them' of one flag; an --out
    that cannot be made was refused by the first mkdir ('No such file or directory (/proc/x)'),
    not as every other command refuses it."""
    argv = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--resume"]) == 2
    line = one_error_line(capsys, "train")
    assert "--resume does not apply to spectrum_physics" in line and line.endswith("drop it")
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main([*argv, "--out", str(blocked / "run")]) == 2
    line = one_error_line(capsys, "train")
    assert f"{blocked} is a file, so {blocked / 'run'} cannot be made" in line
    assert not (tmp_path / "run").exists()


SIEMENS_BASIS = INVIVO / "siemens-press30-suspect" / "press_30ms_3T.basis"


@pytest.mark.skipif(not SIEMENS_BASIS.is_file(), reason=f"needs the shared basis {SIEMENS_BASIS}")
def test_evaluate_on_another_grid_says_what_a_user_can_do(tmp_path, capsys, tiny_checkpoint):
    """A test file simulated on another basis' grid (2472 points): the refusal named a library
    call (scaloquant.signal.match.match_acquisition) as the remedy; a command's user is told to
    simulate on the model's grid or use a model for this one."""
    data = tmp_path / "siemens.h5"
    argv = ["simulate", "--n", "4", "--seed", "1", "--basis", str(SIEMENS_BASIS)]
    assert main([*argv, "--out", str(data)]) == 0
    capsys.readouterr()
    argv = ["evaluate", "--model", str(tiny_checkpoint), "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "ev")]) == 2
    line = one_error_line(capsys, "evaluate")
    assert "the test file: 2472 points" in line, line
    assert "match_acquisition" not in line and "scaloquant simulate" in line, line
    assert not (tmp_path / "ev").exists()
