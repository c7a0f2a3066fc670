"""A user's chain for the realistic prior (session 35, evalinv35): ``train --simulation invivo``
-> ``simulate --preset invivo`` -> ``evaluate``. Until session 35 ``evaluate`` refused the model on
every simulate file (it estimates the prior's lipids, "which the test file does not hold"), and it
stopped on any file of the preset for every model (the Fig. 2 rebuild read the preset's config as
the default simulator's: "unknown simulation config key(s) 'basis_linewidth_hz', ..."). Now the
file's truth of the parametric components (``component_amplitudes_mm``, named by the config's
``components``) is scored beside the basis', and a column without truth is named as not scored.
Tiny models (2 steps) on the embedded basis: the chain, not the accuracy, is tested."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from scaloquant.cli import main

TINY = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--max-steps", "2"]
LIPIDS = ["Lip09", "Lip13", "Lip20"]


def _train(out, simulation):
    assert main([*TINY, "--simulation", simulation, "--out", str(out)]) == 0
    return out / "models" / "spectrum_physics.ckpt"


@pytest.fixture(scope="module")
def invivo_model(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("invivo"), "invivo")


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("default"), "default")


@pytest.fixture(scope="module")
def invivo_file(tmp_path_factory):
    data = tmp_path_factory.mktemp("sim") / "test.h5"
    argv = ["simulate", "--n", "8", "--seed", "3", "--preset", "invivo", "--out", str(data)]
    assert main(argv) == 0
    return data


@pytest.fixture(scope="module")
def default_file(tmp_path_factory):
    data = tmp_path_factory.mktemp("sim") / "test.h5"
    assert main(["simulate", "--n", "8", "--seed", "3", "--out", str(data)]) == 0
    return data


def _evaluate(out, data, *models):
    argv = ["evaluate", *(a for m in models for a in ("--model", str(m)))]
    assert main([*argv, "--data", str(data), "--out", str(out), "--n-boot", "50"]) == 0
    return json.loads((out / "metrics.json").read_text()), (out / "report.md").read_text()


def test_an_invivo_model_is_scored_on_the_basis_and_the_lipids_of_an_invivo_file(
    tmp_path, invivo_model, invivo_file, capsys
):
    doc, report = _evaluate(tmp_path / "ev", invivo_file, invivo_model)
    with h5py.File(invivo_file) as f:
        basis = [str(m) for m in f.attrs["metabolites"]]
        assert json.loads(f.attrs["config"])["components"] == LIPIDS
        assert np.asarray(f["component_amplitudes_mm"]).any()
    per = doc["models"]["spectrum_physics"]["per_metabolite"]
    assert list(per) == [*basis, *LIPIDS]
    assert doc["not_scored"] == {}
    slopes = doc["summary"]["spectrum_physics"]["slope_per_column"]
    assert list(slopes) == list(per)
    assert "Not scored" not in report
    assert "Fig. 2 is left out: the test file is of simulate --preset invivo" in report
    assert "not scored" not in capsys.readouterr().out


def test_columns_without_truth_are_named_as_not_scored(
    tmp_path, invivo_model, default_model, default_file, invivo_file, capsys
):
    # an invivo model on a file of the default simulator: its lipids have no truth there
    doc, report = _evaluate(tmp_path / "a", default_file, invivo_model)
    assert set(doc["not_scored"]) == set(LIPIDS)
    assert "the test file holds no truth for it" in doc["not_scored"]["Lip13"]
    assert not set(LIPIDS) & set(doc["models"]["spectrum_physics"]["per_metabolite"])
    assert "Not scored: Lip09 (estimated by spectrum_physics;" in report
    assert "not scored: Lip09, Lip13, Lip20" in capsys.readouterr().out
    # a default model beside it on an invivo file: one set of columns for the comparison, the
    # lipids the default model does not estimate named
    doc, report = _evaluate(tmp_path / "b", invivo_file, default_model, invivo_model)
    assert set(doc["not_scored"]) == set(LIPIDS)
    assert "not estimated by spectrum_physics" in doc["not_scored"]["Lip20"]
    assert {len(m["per_metabolite"]) for m in doc["models"].values()} == {21}
