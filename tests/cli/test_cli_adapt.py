"""``scaloquant quantify --model CKPT --adapt``: test-time adaptation of a physics-head model on
the input spectra (the value is measured in ``tests/unit/test_models_adapt.py`` and
``benchmarks/bench_adapt.py``; here the flags, outputs and refusals)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _fids import fid_on_grid

from _shared import one_error_line
from scaloquant.cli import main
from scaloquant.cli.quantify import ADAPT_DEFAULTS
from scaloquant.io import default_basis, write_nifti_mrs
from scaloquant.models import load_model
from scaloquant.models.adapt import AdaptConfig
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior


@pytest.fixture(scope="module")
def physics(tmp_path_factory):
    out = tmp_path_factory.mktemp("physics")
    args = ["train", "--model", "spectrum_physics", "--preset", "tiny", "--out", str(out)]
    assert main([*args, "--seed", "3"]) == 0
    return out / "models" / "spectrum_physics.ckpt"


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    basis = default_basis()
    signals = simulate_invivo_batch(basis, InvivoPrior(), 3, np.random.default_rng(0))
    path = tmp_path_factory.mktemp("data") / "svs.nii.gz"
    write_nifti_mrs(path, fid_on_grid(basis, signals.fids))  # three spectra in one file
    return path


def test_help_defaults_are_the_configs():
    config = AdaptConfig()
    assert (config.steps, config.learning_rate) == (
        ADAPT_DEFAULTS["steps"],
        ADAPT_DEFAULTS["learning_rate"],
    )


def test_adapt_writes_before_after_and_the_adapted_checkpoint(physics, spectra, tmp_path, capsys):
    out, saved = tmp_path / "out", tmp_path / "adapted.ckpt"
    args = ["quantify", str(spectra), "--model", str(physics), "--out", str(out)]
    flags = ["--adapt", "--adapt-steps", "4", "--adapt-lr", "1e-3", "--save-adapted", str(saved)]
    assert main([*args, *flags]) == 0
    printed = capsys.readouterr().out.splitlines()
    # once, among the run's notes that print_run prints after its counts (session 36): the
    # CLI worded it again, before them, from the run's adaptation
    said = [i for i, line in enumerate(printed) if line.startswith("--adapt: the encoder")]
    assert len(said) == 1, printed
    assert printed[said[0]].startswith("--adapt: the encoder fine-tuned on the 3 usable spectra")
    assert printed[said[0] - 1] == "quantified 3 spectra from 1 file"
    # the run's lines in one order: the counts first, the adapted model's file last, after the
    # results' (session 36, `tidy36`: it printed first, before the counts)
    assert printed[0] == "quantified 3 spectra from 1 file", printed
    assert printed[-2].startswith("results: ") and printed[-1] == f"adapted model: {saved}"
    summary = (out / "summary.md").read_text()
    assert "mean relative residual at the network's parameters" in summary
    facts = json.loads((out / "provenance.json").read_text())
    text = json.dumps(facts)
    assert '"reconstruction_before"' in text and '"reconstruction_after"' in text
    # the adapted checkpoint loads as any other, says where it came from, and the original
    # file is unchanged
    adapted, original = load_model(saved), load_model(physics)
    entry = adapted.metadata.to_dict()["adaptation"]
    assert entry["steps"] == 4 and entry["source"]["path"] == str(physics)
    assert entry["reconstruction_after"] <= entry["reconstruction_before"]
    changed = [
        not torch.equal(v, original.quantifier.state_dict()[k])
        for k, v in adapted.quantifier.state_dict().items()
    ]
    assert any(changed) == (entry["best_step"] > 0)
    # an existing --save-adapted is refused without --overwrite, before any work
    args[-1] = str(tmp_path / "out2")
    assert main([*args, *flags]) != 0
    assert "adapted.ckpt already exists" in one_error_line(capsys, "quantify")
    assert not (tmp_path / "out2" / "results.csv").exists()


def test_adapt_refuses_a_regression_model(tiny_checkpoint, spectra, tmp_path, capsys):
    args = ["quantify", str(spectra), "--model", str(tiny_checkpoint), "--adapt"]
    assert main([*args, "--out", str(tmp_path / "out")]) != 0
    assert "--adapt needs a physics-head model" in one_error_line(capsys, "quantify")


def test_adapt_flags_need_adapt(physics, spectra, tmp_path, capsys):
    args = ["quantify", str(spectra), "--model", str(physics), "--adapt-steps", "3"]
    assert main([*args, "--out", str(tmp_path / "out")]) != 0
    assert "--adapt-steps only with --adapt" in one_error_line(capsys, "quantify")
    args = ["quantify", str(spectra), "--model", str(physics), "--adapt", "--adapt-lr", "-1"]
    assert main([*args, "--out", str(tmp_path / "out2")]) != 0
    assert "--adapt-lr must be a positive number, got -1.0" in one_error_line(capsys, "quantify")
