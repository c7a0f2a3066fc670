"""``train --grid-from`` -> ``simulate --grid-from`` -> ``evaluate`` (session 34, gridmm34): a
physics-head model trained for another scanner's file is evaluated on test spectra simulated for
that file; ``simulate --preset invivo --grid-from`` renders the macromolecules the fit of such a
model uses (``fit.problem.macromolecule_choice``: LCModel's parametric components for another
scanner type) and records which, and ``evaluate`` scores the model of the invivo prior on them
(session 35); ``evaluate`` refuses a model of another basis or another grid with the real
difference and the flag that mends it. On spant's Philips spectrum of
``../shared`` (skipped, saying so, where absent)."""

from __future__ import annotations

import json

import h5py
import pytest
import yaml

from _shared import INVIVO, one_error_line
from scaloquant.cli import main

SPANT = INVIVO / "philips-press30-spant" / "nifti_spec2nii" / "metab.nii.gz"
SUSPECT_BASIS = INVIVO / "siemens-press30-suspect" / "press_30ms_3T.basis"
REPLACED = "the basis' measured macromolecules replaced by LCModel's parametric ones"
pytestmark = pytest.mark.skipif(
    not SPANT.is_file(), reason=f"needs the shared spant spectrum {SPANT}"
)
TINY = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"]


def _train(out, *simulation):
    assert main([*TINY, *simulation, "--grid-from", str(SPANT), "--out", str(out)]) == 0
    return out / "models" / "spectrum_physics.ckpt"


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    """A model of the default simulation for spant's grid (the fit keeps the basis' Mac)."""
    return _train(tmp_path_factory.mktemp("default"), "--simulation", "default")


@pytest.fixture(scope="module")
def invivo_model(tmp_path_factory):
    """A model of the invivo prior for spant's grid (parametric macromolecules: another
    scanner type than the embedded basis')."""
    return _train(tmp_path_factory.mktemp("invivo"))


def test_a_model_trained_for_a_files_grid_evaluates_on_spectra_simulated_for_it(
    tmp_path, default_model
):
    data = tmp_path / "test.h5"
    assert (
        main(
            ["simulate", "--n", "8", "--seed", "2", "--grid-from", str(SPANT)]
            + [
                "--out",
                str(data),
            ]
        )
        == 0
    )
    out = tmp_path / "ev"
    assert (
        main(
            ["evaluate", "--model", str(default_model), "--data", str(data)]
            + [
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert "spectrum_physics" in json.dumps(metrics)


def test_simulate_renders_and_records_the_macromolecules_train_trains_on(
    tmp_path, capsys, invivo_model
):
    """Before: the file rendered the basis' measured Mac (prior 'measured', components the
    lipids only) where the model was trained on LCModel's MM09...MM20."""
    trained = yaml.safe_load((invivo_model.parents[1] / "train_config.yaml").read_text())
    assert any(REPLACED in s for s in trained["data"]["basis_conversions"])
    data = tmp_path / "test.h5"
    argv = ["simulate", "--n", "4", "--seed", "2", "--preset", "invivo", "--grid-from"]
    assert main([*argv, str(SPANT), "--out", str(data)]) == 0
    assert REPLACED in capsys.readouterr().out
    with h5py.File(data) as f:
        config = json.loads(f.attrs["config"])
        grid = json.loads(f.attrs["grid"])
        assert config["macromolecules"] == "parametric"
        assert config["components"][:5] == ["MM09", "MM12", "MM14", "MM17", "MM20"]
        assert (f["component_amplitudes_mm"][:, :5] > 0).all()
    assert grid["basis_conversions"][-1] == trained["data"]["basis_conversions"][-1]
    # evaluate scores the model on the file's basis and components, and names the basis' Mac,
    # which the file did not render, as not scored (until session 35 it refused the model)
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(invivo_model), "--data", str(data), "--out", str(out)]
    assert main([*argv, "--n-boot", "50"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    scored = metrics["models"]["spectrum_physics"]["per_metabolite"]
    assert set(config["components"]) <= set(scored) and "Mac" not in scored
    assert metrics["not_scored"] == {
        "Mac": "the test file's truth, 0 in every signal; not estimated by spectrum_physics"
    }


def test_evaluate_refuses_a_file_whose_basis_macromolecules_were_not_rendered(
    tmp_path, capsys, default_model
):
    """A file of ``simulate --preset invivo --grid-from`` another scanner type's file holds
    LCModel's MM09...MM20 and the basis' Mac at 0 in every signal: a model of the default
    simulation, which estimates Mac, was evaluated against that 0, exit 0 (audit34b)."""
    data = tmp_path / "test.h5"
    argv = ["simulate", "--n", "4", "--seed", "2", "--preset", "invivo", "--grid-from"]
    assert main([*argv, str(SPANT), "--out", str(data)]) == 0
    capsys.readouterr()
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(default_model), "--data", str(data), "--out", str(out)]
    assert main(argv) == 2
    line = one_error_line(capsys, "evaluate")
    assert "macromolecules: parametric" in line and "Mac, which spectrum_physics" in line
    assert "without --preset invivo" in line
    assert not out.exists()


def test_simulate_without_the_preset_keeps_the_basis_macromolecules(tmp_path):
    """The default simulation renders the basis on the grid as train's default signals are."""
    data = tmp_path / "test.h5"
    assert (
        main(["simulate", "--n", "2", "--seed", "1", "--grid-from", str(SPANT), "--out", str(data)])
        == 0
    )
    with h5py.File(data) as f:
        assert "Mac" in list(f.attrs["metabolites"])
        assert not any(REPLACED in s for s in json.loads(f.attrs["grid"])["basis_conversions"])


@pytest.mark.skipif(not SUSPECT_BASIS.is_file(), reason=f"needs the shared {SUSPECT_BASIS}")
def test_evaluate_names_another_basis_and_the_flag(tmp_path, capsys, default_model):
    data = tmp_path / "test.h5"
    argv = [
        "simulate",
        "--n",
        "2",
        "--seed",
        "1",
        "--basis",
        str(SUSPECT_BASIS),
        "--grid-from",
        str(SPANT),
    ]
    assert main([*argv, "--out", str(data)]) == 0
    argv = ["evaluate", "--model", str(default_model), "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "ev")]) == 2
    line = one_error_line(capsys, "evaluate")
    assert f"the test file was simulated with another basis set ({SUSPECT_BASIS})" in line
    assert "a model trained with --basis that basis" in line
    assert "simulate the test file with --basis the model's" in line


def test_evaluate_on_another_grid_names_grid_from(tmp_path, capsys, default_model):
    """Before: 'scaloquant simulate with the model's basis', which was the file's basis."""
    data = tmp_path / "test.h5"
    assert main(["simulate", "--n", "2", "--seed", "1", "--out", str(data)]) == 0
    argv = ["evaluate", "--model", str(default_model), "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "ev")]) == 2
    line = one_error_line(capsys, "evaluate")
    assert "scaloquant simulate --grid-from the data file the model was trained for" in line
