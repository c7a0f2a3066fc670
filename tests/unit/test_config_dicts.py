"""Every config class has the same ``from_dict``/``to_dict`` pair, and config files are read by
one reader (:func:`scaloquant.io.config.read_config`)."""

from __future__ import annotations

import json

import pytest

from scaloquant.errors import ConfigError
from scaloquant.fit.config import FIT_PRESETS, FitConfig
from scaloquant.io.config import read_config
from scaloquant.quantify import WaterScaling
from scaloquant.scalogram import ScalogramConfig
from scaloquant.simulate import BaselineConfig, InvivoPrior, SimulationConfig
from scaloquant.train.config import TrainConfig
from scaloquant.train.physics import PhysicsTrainConfig

CONFIGS = [
    SimulationConfig.from_dict({"snr": [20, 40], "baseline": {}, "lineshape": "voigt"}),
    BaselineConfig(),
    InvivoPrior(),
    ScalogramConfig.preset("cpu"),
    FitConfig(),
    FIT_PRESETS["invivo"],
    TrainConfig.preset("tiny"),
    PhysicsTrainConfig.preset("tiny", model="scalogram_physics", polish_iterations=3),
    WaterScaling(tissue_fractions=(0.5, 0.3, 0.2), echo_time_ms=35.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_to_dict_is_json_and_from_dict_rebuilds_it(config):
    plain = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(plain) == config


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_from_dict_refuses_an_unknown_key(config):
    with pytest.raises(ConfigError, match="nonsense_key"):
        type(config).from_dict({**config.to_dict(), "nonsense_key": 1})


def test_read_config_layers_defaults_file_and_overrides(tmp_path):
    toml = tmp_path / "fit.toml"
    toml.write_text("lineshape = 'lorentzian'\nmax_iterations = 50\n")
    base = FIT_PRESETS["invivo"]
    config = read_config(
        toml, FitConfig.from_dict, defaults=base.to_dict(), overrides={"max_iterations": 70}
    )
    assert config.lineshape == "lorentzian" and config.max_iterations == 70
    assert config.ppm_range == base.ppm_range  # the rest from the defaults
    assert read_config(None, FitConfig.from_dict) == FitConfig()


def test_fit_config_refuses_an_empty_flexible_window():
    """``baseline_flexible_ppm_range`` (``baseline_stiffness="adaptive"``) is a window: low
    below high, stored as a tuple of floats whatever sequence a config file gives."""
    with pytest.raises(ConfigError, match="baseline_flexible_ppm_range"):
        FitConfig(baseline_flexible_ppm_range=(4.0, 0.2))
    config = FitConfig.from_dict({"baseline_flexible_ppm_range": [0.5, 4]})
    assert config.baseline_flexible_ppm_range == (0.5, 4.0)
