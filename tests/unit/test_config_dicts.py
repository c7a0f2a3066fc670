"""Every config class has the same ``from_dict``/``to_dict`` pair, config files are read by
one reader (:func:`scaloquant.io.config.read_config`), and the classes' counts and positive
numbers are checked by one checker each, in one wording (:mod:`scaloquant._config`)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from scaloquant._config import positive_number, true_or_false, whole_number
from scaloquant.errors import ConfigError
from scaloquant.fit.config import FIT_PRESETS, FitConfig
from scaloquant.io.config import read_config, read_mapping
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


@pytest.mark.parametrize(
    ("value", "written"),
    [
        # a config file's words, not Python's (session 32, `audit32`: 'got True', 'got None')
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (1.5, "1.5"),
        (2.0, "2.0"),
        ("3", "'3'"),
        (0, "0"),
        (-1, "-1"),
        (np.float64(1.5), "1.5"),
    ],
)
def test_whole_number_refuses_what_is_not_a_count_at_least_the_minimum(value, written):
    with pytest.raises(ConfigError, match=rf"^n must be a whole number >= 1, got {written}$"):
        whole_number("n", value, 1)


def test_whole_number_gives_python_ints_and_keeps_none_where_allowed():
    assert whole_number("n", 1, 1) == 1
    taken = whole_number("n", np.int64(7), 0)  # a count computed with numpy
    assert taken == 7 and type(taken) is int
    assert whole_number("k", None, 0, or_none=True) is None
    with pytest.raises(ConfigError, match=r"^k must be a whole number >= 0 or null, got -1$"):
        whole_number("k", -1, 0, or_none=True)


@pytest.mark.parametrize("value", [True, 0, -1.5, float("inf"), float("nan"), "1e-3", None])
def test_positive_number_refuses_what_is_not_a_finite_number_above_zero(value):
    with pytest.raises(ConfigError, match=r"^lr must be a positive number, got "):
        positive_number("lr", value)


def test_positive_number_gives_floats_and_keeps_none_where_allowed():
    taken = positive_number("lr", 2)
    assert taken == 2.0 and type(taken) is float
    assert positive_number("sd", np.float32(0.5)) == 0.5
    assert positive_number("sd", None, or_none=True) is None
    with pytest.raises(ConfigError, match=r"^sd must be a positive number or null, got 0$"):
        positive_number("sd", 0, or_none=True)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: TrainConfig(seed=True), "seed must be a whole number >= 0, got true"),
        (lambda: TrainConfig(num_workers=1.5), "num_workers must be a whole number >= 0"),
        (lambda: TrainConfig(max_epochs=0), "max_epochs must be a whole number >= 1 or null"),
        (lambda: FitConfig(max_iterations=True), "max_iterations must be a whole number >= 1"),
        (lambda: ScalogramConfig(log_epsilon=float("inf")), "log_epsilon must be a positive"),
        (
            lambda: PhysicsTrainConfig(
                model="scalogram_physics", reconstruction_broadening_per_s=0
            ),
            "reconstruction_broadening_per_s must be a positive number or null, got 0",
        ),
    ],
)
def test_config_classes_use_the_checkers(make, words):
    """A bool for a count, a fraction for a count, infinity for a positive number: each class
    refuses them in the checkers' words (FitConfig took ``max_iterations=True`` as 1)."""
    with pytest.raises(ConfigError, match=re.escape(words)):
        make()


@pytest.mark.parametrize(
    ("config_class", "name"),
    [
        (FitConfig, "fit_phase0"),
        (FitConfig, "fit_phase1"),
        (FitConfig, "gaussian"),
        (FitConfig, "decimate_model"),
        (FitConfig, "baseline_ftest_two_starts"),
        (TrainConfig, "fresh_data"),
        (TrainConfig, "deterministic"),
        (ScalogramConfig, "log"),
        (SimulationConfig, "per_metabolite"),
    ],
)
@pytest.mark.parametrize(("value", "written"), [("no", "'no'"), ("false", "'false'"), (0, "0")])
def test_config_switches_refuse_what_is_not_true_or_false(config_class, name, value, written):
    """A config file's quoted ``"no"`` is a string, which Python takes as true: FitConfig ran
    ``fit_phase0: "no"`` with the phase fitted, and TrainConfig ``fresh_data: "false"`` with
    fresh data (session 34, ``audit34``)."""
    with pytest.raises(ConfigError, match=rf"^{name} must be true or false, got {written}$"):
        config_class.from_dict({name: value})


def test_every_fit_switch_is_checked():
    """Each bool field of FitConfig is one the check reads (``baseline_ftest_two_starts``,
    session 34, came after the check's list was written)."""
    from dataclasses import fields

    switches = [f.name for f in fields(FitConfig) if f.type in (bool, "bool")]
    assert len(switches) == 5
    for name in switches:
        with pytest.raises(ConfigError, match=rf"^{name} must be true or false"):
            FitConfig.from_dict({name: "no"})


def test_true_or_false_gives_the_bool_back():
    assert true_or_false("log", True) is True and true_or_false("log", False) is False
    with pytest.raises(ConfigError, match=r"^log must be true or false, got null$"):
        true_or_false("log", None)


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_a_config_file_saved_with_a_byte_order_mark_reads_as_without(tmp_path, suffix):
    """A UTF-8 byte-order mark (Windows editors save one) before the first key: TOML's reader
    refused it as 'Invalid statement (at line 1, column 1)' (audit34b); YAML's dropped it."""
    text = "max_iterations: 50\n" if suffix == ".yaml" else "max_iterations = 50\n"
    marked = tmp_path / f"fit{suffix}"
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_config(marked, FitConfig.from_dict).max_iterations == 50


def test_a_yaml_key_given_twice_is_refused(tmp_path):
    """PyYAML keeps the last of two equal keys without a word: ``water_removal: hlsvd`` then
    ``water_removal: none`` fitted with ``none`` (session 34, ``audit34``). TOML's reader
    refuses it already."""
    twice = tmp_path / "fit.yaml"
    twice.write_text("water_removal: hlsvd\nppm_range: [0.2, 4.0]\nwater_removal: none\n")
    with pytest.raises(ConfigError, match=r"'water_removal' is given twice \(lines 1 and 3\)"):
        read_config(twice, FitConfig.from_dict)
    nested = tmp_path / "sim.yaml"
    nested.write_text("baseline:\n  amplitude: 1\n  amplitude: 2\n")
    with pytest.raises(ConfigError, match=r"'amplitude' is given twice \(lines 2 and 3\)"):
        read_config(nested, SimulationConfig.from_dict)
    toml = tmp_path / "fit.toml"
    toml.write_text("max_iterations = 50\nmax_iterations = 60\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        read_config(toml, FitConfig.from_dict)
    once = tmp_path / "ok.yaml"
    once.write_text("ppm_range: [0.2, 4.0]\nlineshape: voigt\n")
    assert read_config(once, FitConfig.from_dict).ppm_range == (0.2, 4.0)


def test_a_yaml_number_with_an_exponent_is_a_number(tmp_path):
    """PyYAML's YAML 1.1 read 1e6, 1.0e6 and 2.5E-3 as text: 'freeform_halfwidth_hz: 1e1' was
    refused as "must be a positive number, got '1e1'" (session 36, audit36). Quoted, text."""
    path = tmp_path / "c.yaml"
    path.write_text("a: 1e6\nb: 1.0e6\nc: -2.5E-3\nd: '1e6'\ne: 5\nf: 1.0e+6\ng: e5\n")
    read = read_mapping(path)
    assert read == {"a": 1e6, "b": 1e6, "c": -2.5e-3, "d": "1e6", "e": 5, "f": 1e6, "g": "e5"}
    assert isinstance(read["e"], int)
