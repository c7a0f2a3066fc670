"""Simulation config: defaults, round trips, files, and one clear error per bad value."""

from pathlib import Path

import numpy as np
import pytest

from scaloquant.errors import ConfigError, InputFileError, UnknownMetaboliteError
from scaloquant.io.config import read_config
from scaloquant.simulate import (
    BaselineConfig,
    SimulationConfig,
    draw_parameters,
)


def load_simulation_config(path, overrides=None):
    """A simulation config file read the way ``scaloquant simulate --config`` reads it."""
    return read_config(path, SimulationConfig.from_dict, overrides=overrides)


DOC_CONFIG = Path(__file__).resolve().parents[2] / "docs" / "simulation-config.yaml"


def test_defaults_are_the_paper_model():
    c = SimulationConfig.from_dict({})
    assert c == SimulationConfig()
    assert c.amplitude_range == (0.0, 1.0)
    assert c.damping_range_per_s == (0.0, 15.0)
    assert c.shift_range_hz == (-3.0, 3.0)
    assert c.per_metabolite and c.lineshape == "lorentzian"
    # everything beyond the paper is off
    assert c.snr is None and c.phase0_range_deg is None and c.phase1_range_deg_per_ppm is None
    assert c.baseline is None and c.gaussian_damping_range_per_s is None


def test_documented_example_is_the_default():
    assert load_simulation_config(DOC_CONFIG) == SimulationConfig()


def test_round_trip_through_to_dict():
    c = SimulationConfig.from_dict(
        {
            "snr": [10, 40],
            "lineshape": "voigt",
            "phase0_range_deg": [-20, 20],
            "phase1_range_deg_per_ppm": [-5, 5],
            "baseline": {"n_humps": 2},
            "overrides": {"Mac": {"amplitude_range": [0.5, 1]}},
        }
    )
    assert SimulationConfig.from_dict(c.to_dict()) == c
    assert c.gaussian_damping_range_per_s == (0.0, 9.0)  # the voigt default, now explicit
    assert c.baseline == BaselineConfig(n_humps=2)
    assert c.to_dict()["overrides"] == {"Mac": {"amplitude_range": [0.5, 1.0]}}


def test_single_snr_is_a_fixed_range():
    assert SimulationConfig.from_dict({"snr": 25}).snr == (25.0, 25.0)


def test_yaml_and_toml_files(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("snr: [5, 10]\noverrides:\n  NAA:\n    shift_range_hz: [0, 1]\n")
    t = tmp_path / "c.toml"
    t.write_text("snr = [5, 10]\n[overrides.NAA]\nshift_range_hz = [0, 1]\n")
    assert load_simulation_config(y) == load_simulation_config(t)
    assert load_simulation_config(y).overrides["NAA"].shift_range_hz == (0.0, 1.0)


def test_overrides_replace_file_keys(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("snr: 10\nlineshape: voigt\n")
    c = load_simulation_config(y, {"snr": 30, "lineshape": "lorentzian"})
    assert c.snr == (30.0, 30.0) and c.lineshape == "lorentzian"
    assert c.gaussian_damping_range_per_s is None


def test_empty_file_gives_defaults(tmp_path):
    (tmp_path / "e.yaml").write_text("")
    assert load_simulation_config(tmp_path / "e.yaml") == SimulationConfig()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"amplitude_range": [1, 0]}, "amplitude_range: min 1 > max 0"),
        ({"damping_range_per_s": [-1, 5]}, "damping_range_per_s must not go below 0"),
        ({"amplitude_range": [0, float("nan")]}, "must be a finite number"),
        ({"shift_range_hz": [0, "x"]}, "must be a number"),
        ({"shift_range_hz": ["1e-3", 1]}, "write 1.0e-3"),
        ({"shift_range_hz": [0, True]}, "must be a number"),
        ({"shift_range_hz": [0, 1, 2]}, "got 3 values"),
        ({"shift_range_hz": 3}, "must be a [min, max] pair"),
        ({"snr": -5}, "snr must be positive"),
        ({"snr": 0}, "snr must be positive"),
        ({"snr": [30, 10]}, "snr: min 30 > max 10"),
        ({"lineshape": "sinc"}, "lineshape must be one of lorentzian, gaussian, voigt"),
        ({"per_metabolite": "no"}, "per_metabolite must be true or false"),
        ({"gaussian_damping_range_per_s": [0, 5]}, "needs lineshape gaussian or voigt"),
        ({"reference_window_ppm": [2, 2]}, "min 2 >= max 2"),
        ({"baseline": {"n_humps": 0}}, "baseline.n_humps must be a whole number >= 1"),
        ({"baseline": {"fwhm_range_ppm": [0, 1]}}, "fwhm_range_ppm must be positive"),
        ({"baseline": {"humps": 3}}, "unknown simulation config key(s) in baseline 'humps'"),
        ({"overrides": {"NAA": {"amp": [0, 1]}}}, "in overrides.NAA 'amp'"),
        ({"overrides": {"NAA": {"amplitude_range": [2, 1]}}}, "overrides.NAA.amplitude_range"),
        (
            {"per_metabolite": False, "overrides": {"NAA": {"shift_range_hz": [0, 1]}}},
            "per_metabolite is false",
        ),
    ],
)
def test_invalid_values_are_refused_with_one_line(mapping, message):
    with pytest.raises(ConfigError) as err:
        SimulationConfig.from_dict(mapping)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        SimulationConfig.from_dict({"snrr": 3})
    text = str(err.value)
    assert "'snrr'" in text and "valid keys: amplitude_range" in text and "baseline" in text


def test_unknown_metabolite_names_the_valid_ones():
    c = SimulationConfig.from_dict({"overrides": {"Foo": {"amplitude_range": [0, 1]}}})
    with pytest.raises(UnknownMetaboliteError) as err:
        draw_parameters(c, 2, np.random.default_rng(0), names=["NAA", "Cr"])
    assert "Foo" in str(err.value) and "valid names: NAA, Cr" in str(err.value)


def test_missing_and_garbled_files(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_simulation_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("snr: [1, 2\n  - ]: :")
    with pytest.raises(ConfigError, match="cannot parse .* as YAML") as err:
        load_simulation_config(bad)
    assert "\n" not in str(err.value)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("snr = [1, \n")
    with pytest.raises(ConfigError, match="as TOML"):
        load_simulation_config(bad_toml)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_simulation_config(listing)
