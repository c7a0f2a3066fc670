"""Training with uncertainty (short runs): amplitudes unchanged, calibration stored in the
checkpoint, old checkpoints, the train flags, and ``scaloquant evaluate``'s calibration files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

from _shared import one_error_line
from scaloquant.cli import build_parser, main
from scaloquant.cli.train import build_config
from scaloquant.evaluate.calibration import coverage
from scaloquant.io import default_basis
from scaloquant.io.hdf5 import write_simulation
from scaloquant.models import load_model
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.train import TrainConfig, read_checkpoint, train_model
from scaloquant.train.data import VAL_KEY, simulate_set

NOISY = {"snr": [10.0, 100.0]}


@pytest.fixture(scope="module")
def basis():
    return default_basis()


def _short(uncertainty):
    base = TrainConfig.preset("tiny", model="spectrum_cnn")
    return dataclasses.replace(
        base,
        max_steps=8,
        max_epochs=None,
        val_check_interval=4,
        n_train=160,
        n_val=80,
        early_stopping_patience=None,
        widths=(4, 4, 8, 8, 8, 8),
        simulation={**base.simulation, **NOISY},
        fresh_data=True,  # noisy training: see scaloquant.train.data
        uncertainty=uncertainty,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, basis):
    """The same short noisy run with and without uncertainty."""
    out = {}
    for uncertainty in ("gaussian", "none"):
        folder = tmp_path_factory.mktemp(uncertainty)
        out[uncertainty] = (
            _short(uncertainty),
            train_model(_short(uncertainty), basis, folder, progress=False),
        )
    return out


def test_presets_and_custom_runs_default_to_gaussian():
    assert TrainConfig().uncertainty == "gaussian"
    assert all(TrainConfig.preset(p).uncertainty == "gaussian" for p in ("tiny", "cpu", "paper"))
    with pytest.raises(Exception, match="unknown uncertainty 'mc'"):
        dataclasses.replace(TrainConfig(), uncertainty="mc")


def test_variance_head_leaves_the_amplitude_weights_bit_identical(trained):
    with_sd = read_checkpoint(trained["gaussian"][1].checkpoint_path)["state_dict"]
    plain = read_checkpoint(trained["none"][1].checkpoint_path)["state_dict"]
    assert set(with_sd) - set(plain) == {
        "quantifier.log_var_head.weight",
        "quantifier.log_var_head.bias",
        "quantifier.sd_calibration",
    }
    for key, value in plain.items():
        torch.testing.assert_close(with_sd[key], value, rtol=0, atol=0, msg=key)
    assert trained["gaussian"][1].best_val_loss == trained["none"][1].best_val_loss


def test_checkpoint_holds_the_calibration_fitted_on_the_validation_set(trained, basis):
    config, result = trained["gaussian"]
    loaded = load_model(result.checkpoint_path)
    q, meta = loaded.quantifier, loaded.metadata
    assert q.has_uncertainty
    assert meta.format == 2 and meta.quantifier["uncertainty"] == "gaussian"
    cal = meta.uncertainty_calibration
    assert cal["level"] == 0.95 and cal["n_signals"] == 80
    factors = np.array([cal["factors"][m] for m in q.metabolites])
    np.testing.assert_allclose(q.sd_calibration.numpy(), factors, rtol=1e-6)
    assert not np.allclose(factors, 1.0)
    # the basis metadata quantify checks the data against
    assert meta.basis_metadata == dict(basis.metadata)
    assert meta.acquisition["n_points"] == basis.n_points
    val = simulate_set(basis, config.simulation_config(), config.n_val, config.seed, VAL_KEY)
    mean, sd = q.predict_with_sd(val.fids)
    # exactly calibrated on these 80 signals: 76 or 77 of them inside per metabolite
    np.testing.assert_allclose(coverage(val.amplitudes, mean, sd * (1 + 1e-6)), 0.95, atol=0.0126)


def test_fixed_noisy_training_set_warns(tmp_path, basis):
    config = dataclasses.replace(_short("gaussian"), fresh_data=False, max_steps=4)
    with pytest.warns(UserWarning, match="fixed set of noisy signals"):
        train_model(config, basis, tmp_path, progress=False)


def test_checkpoint_without_the_setting_loads_without_uncertainty(trained, tmp_path):
    ckpt = read_checkpoint(trained["none"][1].checkpoint_path)
    del ckpt["scaloquant"]["quantifier"]["uncertainty"]
    ckpt["scaloquant"]["format"] = 1
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    q = load_model(old).quantifier
    assert not q.has_uncertainty
    fids = simulate_set(default_basis(), SimulationConfig(), 4, 0, 7).fids
    mean, sd = q.predict_with_sd(fids)
    assert np.all(np.isfinite(mean)) and np.all(np.isnan(sd))


def _args(*extra):
    argv = ["train", "--preset", "tiny", "--out", "unused", *extra]
    return build_parser(argv).parse_args(argv)


def test_train_flags_set_the_simulation_and_uncertainty():
    config = build_config(
        _args(
            "--snr", "10", "100", "--phase0-range", "-5", "5", "--baseline", "--uncertainty", "none"
        )
    )
    sim = config.simulation_config()
    assert sim.snr == (10.0, 100.0) and sim.phase0_range_deg == (-5.0, 5.0)
    assert sim.baseline is not None and sim.phase1_range_deg_per_ppm is None
    assert config.uncertainty == "none"
    # noisy training draws fresh signals (a fixed noisy set is memorised) unless told not to
    assert config.fresh_data is True
    assert build_config(_args("--snr", "10", "20", "--no-fresh-data")).fresh_data is False
    # unchanged otherwise: the preset's simulation and fixed set, gaussian
    plain = build_config(_args())
    assert plain.simulation_config().snr is None and plain.uncertainty == "gaussian"
    assert plain.fresh_data is False


def test_train_cli_reports_the_calibration(tmp_path, capsys):
    overrides = tmp_path / "short.yaml"
    overrides.write_text(
        "max_steps: 4\nmax_epochs: null\nval_check_interval: 4\nn_val: 40\nn_train: 96\n"
        "widths: [4, 4, 8, 8, 8, 8]\n"
    )
    argv = ["train", "--model", "spectrum_cnn", "--preset", "tiny", "--out", str(tmp_path / "r")]
    assert main([*argv, "--config", str(overrides), "--snr", "10", "100"]) == 0
    out = capsys.readouterr().out
    assert "standard deviations calibrated on 40 validation signals (95% intervals" in out
    resolved = yaml.safe_load((tmp_path / "r" / "train_config.yaml").read_text())["train"]
    assert resolved["simulation"]["snr"] == [10.0, 100.0] and resolved["fresh_data"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--snr", "0", "10"], "snr must be positive"),
        (["--snr", "10", "20", "--data", "sim.h5"], "drop them with --data"),
    ],
)
def test_bad_flags_are_one_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sim.h5").touch()  # a path that exists: missing ones are refused first
    code = main(["train", "--preset", "tiny", "--out", str(tmp_path / "out"), *extra])
    assert code == 2
    assert message in one_error_line(capsys, "train")


def test_evaluate_writes_the_calibration_of_models_with_uncertainty(
    trained, basis, tmp_path, capsys
):
    config = SimulationConfig.from_dict(NOISY)
    data = tmp_path / "test.h5"
    write_simulation(
        data,
        simulate_dataset(basis, config, 120, seed=11),
        n_signals=120,
        basis=basis,
        basis_name="default",
        config=config.to_dict(),
        seed=11,
    )
    out = tmp_path / "eval"
    ckpts = [str(trained[u][1].checkpoint_path) for u in ("gaussian", "none")]
    argv = ["evaluate", "--data", str(data), "--out", str(out), "--n-boot", "20"]
    assert main([*argv, "--model", ckpts[0], "--model", ckpts[1]]) == 0
    printed = capsys.readouterr().out
    assert "spectrum_cnn: 95% intervals cover" in printed
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["calibration"]) == ["spectrum_cnn"]  # the model without uncertainty: left out
    groups = doc["calibration"]["spectrum_cnn"]["groups"]
    assert len(groups) == 5 and groups["all"]["n_signals"] == 120  # 4 SNR groups of 30 + all
    assert sum(g["n_signals"] for k, g in groups.items() if k != "all") == 120
    assert set(groups["all"]["coverage"]["0.95"]) == set(basis.names)
    assert "| NAA |" in (out / "report.md").read_text()
    assert (out / "figures" / "reliability.png").stat().st_size > 1000
    assert yaml.safe_load((out / "metrics.json").read_text())["models"]
