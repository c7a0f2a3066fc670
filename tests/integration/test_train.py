"""Training end to end (tiny runs): beats the mean, checkpoints round-trip, determinism, resume."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from scaloquant import __version__
from scaloquant.errors import ConfigError, InputFileError, OutputExistsError
from scaloquant.io import default_basis
from scaloquant.io.training_log import read_log_rows, training_curve
from scaloquant.models import load_model
from scaloquant.train import TrainConfig, read_checkpoint, train_model
from scaloquant.train.data import VAL_KEY, simulate_set

MODELS = ("scalogram_cnn", "spectrum_cnn")


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, basis):
    """Both models trained once with the ``tiny`` preset (shared by the tests below)."""
    out = tmp_path_factory.mktemp("tiny")
    results = {}
    for model in MODELS:
        config = TrainConfig.preset("tiny", model=model)
        results[model] = (config, train_model(config, basis, out, progress=False))
    return out, results


@pytest.fixture(scope="module")
def test_set(basis):
    config = TrainConfig.preset("tiny")
    return simulate_set(basis, config.simulation_config(), 300, seed=987, key=5)


def _short(model="spectrum_cnn", **kw):
    """A few steps only: for determinism and resume, where accuracy does not matter."""
    base = TrainConfig.preset("tiny", model=model)
    return dataclasses.replace(
        base,
        **{
            "max_steps": 8,
            "max_epochs": None,
            "val_check_interval": 4,
            "n_train": 160,
            "n_val": 40,
            "early_stopping_patience": None,
            **kw,
        },
    )


@pytest.mark.parametrize("model", MODELS)
def test_tiny_training_beats_predicting_the_mean(trained, test_set, model):
    out, results = trained
    config, result = results[model]
    assert result.checkpoint_path == out / f"{model}.ckpt" and result.checkpoint_path.is_file()
    assert result.log_csv_path == out / "logs" / model / "metrics.csv"
    assert result.steps > 0 and np.isfinite(result.best_val_loss)
    # the curve the trainer returns (read from its logs once) is the one of the log it wrote
    written = training_curve(read_log_rows(result.log_csv_path))
    assert result.curve is not None and result.curve.val_loss.size > 0
    for field in dataclasses.fields(written):
        got, want = getattr(result.curve, field.name), getattr(written, field.name)
        assert (got is None) == (want is None), field.name
        if want is not None:
            np.testing.assert_array_equal(got, want)
    q = load_model(result.checkpoint_path).quantifier
    pred = q.predict(test_set.fids)
    truth = test_set.amplitudes
    rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
    # the mean predictor's RMSE is the amplitudes' standard deviation (1/sqrt(12) = 0.289 for
    # U[0, 1]); demand a clear gain, well outside the spread of a 300-signal estimate (~3 %)
    baseline = float(np.sqrt(np.mean((truth - truth.mean(0)) ** 2)))
    assert rmse < 0.85 * baseline, (rmse, baseline)


@pytest.mark.parametrize("model", MODELS)
def test_checkpoint_round_trip_reproduces_the_logged_validation(trained, basis, model):
    out, results = trained
    config, result = results[model]
    loaded = load_model(result.checkpoint_path)
    q = loaded.quantifier
    # the reloaded model reproduces, on the seeded validation set, the RMSE logged in training
    val = simulate_set(basis, config.simulation_config(), config.n_val, config.seed, VAL_KEY)
    pred = q.predict(val.fids, batch_size=50)
    rmse = float(np.sqrt(np.mean((pred - val.amplitudes) ** 2)))
    assert rmse == pytest.approx(result.best_val_rmse, rel=1e-4)
    # a second load predicts identically (same inputs, same batching)
    again = load_model(result.checkpoint_path).quantifier.predict(val.fids, batch_size=50)
    np.testing.assert_array_equal(pred, again)

    meta = read_checkpoint(result.checkpoint_path)["scaloquant"]
    assert loaded.metadata.to_dict() == meta
    assert loaded.metadata.training["steps"] == result.steps
    assert meta["basis"]["content_hash"] == basis.content_hash()
    assert tuple(meta["basis"]["names"]) == basis.names == q.metabolites
    assert meta["basis"]["metadata"]["echo_time_ms"] == 30.0
    assert meta["acquisition"] == {
        "n_points": 2048,
        "dwell_time_s": basis.dwell_time_s,
        "spectrometer_freq_mhz": basis.spectrometer_freq_mhz,
        "ppm_reference": basis.ppm_reference,
        "nucleus": "1H",
    }
    assert meta["scaloquant_version"] == __version__
    assert TrainConfig.from_dict(meta["train_config"]) == config
    assert meta["seeds"]["seed"] == config.seed and meta["seeds"]["val_set"] == [
        config.seed,
        VAL_KEY,
    ]
    assert meta["training"]["steps"] == result.steps
    if model == "scalogram_cnn":
        assert meta["quantifier"]["scalogram"] == config.scalogram_config().to_dict()
    # the normalisation was fitted and travels in the state dict
    assert not torch.equal(q.target_mean, torch.zeros_like(q.target_mean))
    assert not torch.equal(q.feature_std, torch.ones_like(q.feature_std))
    streams = json.loads((out / "logs" / model / "data_streams.json").read_text())
    assert streams["world_size"] == 1 and streams["ranks"][0]["rank"] == 0


def test_existing_outputs_are_refused_before_training(trained, basis):
    out, results = trained
    config, result = results["spectrum_cnn"]
    before = result.checkpoint_path.read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        train_model(config, basis, out, progress=False)
    assert result.checkpoint_path.read_bytes() == before


def test_same_seed_gives_identical_weights(tmp_path, basis):
    config = _short()
    a = train_model(config, basis, tmp_path / "a", progress=False)
    b = train_model(config, basis, tmp_path / "b", progress=False)
    sa = read_checkpoint(a.checkpoint_path)["state_dict"]
    sb = read_checkpoint(b.checkpoint_path)["state_dict"]
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)
    c = train_model(dataclasses.replace(config, seed=1), basis, tmp_path / "c", progress=False)
    sc = read_checkpoint(c.checkpoint_path)["state_dict"]
    assert not torch.equal(
        sa["quantifier.network.head.weight"], sc["quantifier.network.head.weight"]
    )


@pytest.mark.parametrize("model", MODELS)
def test_kept_inputs_give_the_weights_of_recomputed_ones(tmp_path, basis, model, monkeypatch):
    from scaloquant.train import run

    calls = []
    kept = run.network_inputs
    monkeypatch.setattr(run, "network_inputs", lambda *a, **k: calls.append(1) or kept(*a, **k))
    config = _short(model, max_steps=12, accelerator="cpu")
    a = train_model(config, basis, tmp_path / "a", progress=False)
    assert len(calls) == 2  # training and validation sets, once each
    monkeypatch.setattr(run, "INPUT_CACHE_BYTES", 0)
    b = train_model(config, basis, tmp_path / "b", progress=False)
    assert len(calls) == 2
    sa = read_checkpoint(a.checkpoint_path)["state_dict"]
    sb = read_checkpoint(b.checkpoint_path)["state_dict"]
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)
    assert a.best_val_loss == b.best_val_loss


class _Interrupt(Callback):
    """Fails after ``step`` optimizer steps, like a crash or a killed job."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("fresh", [False, True])
def test_resume_continues_from_the_saved_step(tmp_path, basis, fresh):
    # 160 signals / batch 20 = 8 steps per epoch; validation (and last.ckpt) every 8 steps, so
    # the checkpoint falls on an epoch boundary and the resumed run must equal an uninterrupted one
    config = _short(
        fresh_data=fresh, max_steps=16, batch_size=20, val_check_interval=8, lr_schedule="cosine"
    )
    whole = train_model(config, basis, tmp_path / "whole", progress=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_model(config, basis, tmp_path / "run", progress=False, callbacks=[_Interrupt(10)])
    last = tmp_path / "run" / ".spectrum_cnn.partial" / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == 8  # saved at the validation of step 8
    assert not (tmp_path / "run" / "spectrum_cnn.ckpt").exists()
    with pytest.raises(OutputExistsError, match="--resume"):
        train_model(config, basis, tmp_path / "run", progress=False)
    resumed = train_model(config, basis, tmp_path / "run", progress=False, resume=True)
    assert resumed.steps == whole.steps == 16
    assert not last.parent.exists()  # the working folder is gone after success
    a = read_checkpoint(whole.checkpoint_path)["state_dict"]
    b = read_checkpoint(resumed.checkpoint_path)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    # one log across the interruption: validations at steps 8 (before) and 16 (after)
    with open(tmp_path / "run" / "logs" / "spectrum_cnn" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) + 1 for r in rows if r["val/rmse"]] == [8, 16]
    with pytest.raises(InputFileError, match="nothing to resume"):
        train_model(config, basis, tmp_path / "other", progress=False, resume=True)


def test_training_that_never_validates_is_refused(tmp_path, basis):
    with pytest.raises(ConfigError, match="before the first validation") as refused:
        train_model(_short(max_steps=3), basis, tmp_path, progress=False)
    assert "max_steps: 4 in the --config file" in str(refused.value)


def test_training_that_never_validates_names_the_flags_that_lengthen_it(tmp_path, basis):
    """The tiny preset on a small --data file (session 34, ``audit34``: 160 training signals,
    4 epochs of 5 batches, the first validation at step 64) was refused with "lower
    val_check_interval", a key no flag sets."""
    config = _short(max_steps=-1, max_epochs=2, val_check_interval=100)  # batches of 32
    with pytest.raises(ConfigError) as refused:
        train_model(config, basis, tmp_path, progress=False)
    assert str(refused.value) == (
        "training stops after 10 steps, before the first validation at step 100, which keeps "
        "the checkpoint: train longer (2 epochs of 5 batches of 32 now: --max-epochs 20, more "
        "training signals or a smaller --batch-size) or validate sooner (val_check_interval: "
        "10 or less in a --config file)"
    )


def test_bad_checkpoints_get_clear_errors(tmp_path, trained):
    with pytest.raises(InputFileError, match="does not exist"):
        load_model(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputFileError, match="corrupt"):
        load_model(garbage)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(InputFileError, match="not a scaloquant checkpoint"):
        load_model(other)
    out, results = trained
    truncated = tmp_path / "truncated.ckpt"
    data = results["spectrum_cnn"][1].checkpoint_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="corrupt"):
        load_model(truncated)
