"""TrainConfig: presets, validation, round trip, overrides."""

from __future__ import annotations

import pytest

from scaloquant.errors import ConfigError
from scaloquant.scalogram import ScalogramConfig
from scaloquant.simulate import SimulationConfig
from scaloquant.train import PRESETS, TrainConfig


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("model", ["scalogram_cnn", "spectrum_cnn"])
def test_presets_round_trip(preset, model):
    config = TrainConfig.preset(preset, model=model)
    assert config.model == model
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.simulation_config() == SimulationConfig()  # noiseless, as in the paper
    # both models of a preset share everything but the model kind (a fair comparison)
    other = TrainConfig.preset(
        preset, model="spectrum_cnn" if model == "scalogram_cnn" else "scalogram_cnn"
    )
    assert {k: v for k, v in config.to_dict().items() if k != "model"} == {
        k: v for k, v in other.to_dict().items() if k != "model"
    }


def test_paper_preset_is_the_papers_protocol():
    config = TrainConfig.preset("paper")
    assert config.scalogram_config() == ScalogramConfig.preset("paper")
    assert config.scalogram_config().output_shape == (2, 340, 1536)
    assert (config.batch_size, config.learning_rate, config.val_check_interval) == (30, 1e-5, 10)
    assert (config.n_train, config.n_val) == (8000, 2000)
    assert config.norm == "none" and config.early_stopping_patience is not None
    assert config.optimizer == "adam" and config.lr_schedule == "constant"


def test_cpu_preset_is_the_papers_data_at_the_reduced_size():
    config = TrainConfig.preset("cpu")
    assert config.scalogram_config() == ScalogramConfig.preset("cpu")
    assert (config.n_train, config.n_val) == (8000, 2000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"model": "mlp"}, "unknown model"),
        ({"max_epochs": None, "max_steps": -1, "max_time_s": None}, "never ends"),
        ({"batch_size": 100, "n_train": 50}, "exceeds n_train"),
        ({"simulation": {"amplitude_range": [1, 0]}}, "amplitude_range"),
        ({"scalogram": {"n_points": 1536, "decimation": 5}}, "decimation"),
        # checked for the spectrum CNN too, which does not use them (session 32)
        ({"model": "spectrum_cnn", "scalogram": {"n_points": -1}}, "n_points"),
        ({"colour": "red"}, "unknown training setting"),
    ],
)
def test_invalid_settings_raise_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({**TrainConfig.preset("tiny").to_dict(), **change})


def test_overrides_and_unknown_preset():
    config = TrainConfig.preset("tiny").with_overrides({"seed": 5, "learning_rate": None})
    assert config.seed == 5 and config.learning_rate == TrainConfig.preset("tiny").learning_rate
    assert TrainConfig.from_dict({**config.to_dict(), "kernel_sizes": 5}).kernel_sizes == (5,) * 6
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        TrainConfig.preset("huge")
