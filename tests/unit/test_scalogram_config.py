"""ScalogramConfig: presets, resolution of the scale rule, serialisation, validation; plot axes."""

import json

import numpy as np
import pytest

from scaloquant.errors import ConfigError
from scaloquant.scalogram import (
    ScalogramConfig,
    centre_frequencies_hz,
    centre_ppm,
    channel_names,
    default_scale_span,
    preset_names,
    scales,
    time_axis_ms,
)
from scaloquant.signal.axes import hz_to_ppm

DWELL_S = 0.25e-3  # the paper: 4000 Hz spectral width
MHZ = 123.2


def test_paper_preset_is_exactly_2_x_340_x_1536():
    config = ScalogramConfig.preset("paper")
    assert config.output_shape == (2, 340, 1536)
    assert config.n_points == 1536
    assert config.channels == "abs_re_im"
    assert config.padded_length == 3072
    row_scales = scales(config)
    smallest, largest = default_scale_span(1536)
    assert row_scales[0] == pytest.approx(smallest, rel=1e-14)
    assert row_scales[-1] == pytest.approx(largest, rel=1e-14)
    assert np.all(np.diff(row_scales) > 0)


def test_cpu_preset_shape_and_override():
    config = ScalogramConfig.preset("cpu")
    assert config.output_shape == (2, 128, 384)
    assert config.n_channels * config.n_scales * config.n_time == 2 * 128 * 384
    assert ScalogramConfig.preset("cpu", n_scales=96).output_shape == (2, 96, 384)


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown scalogram preset 'fast'"):
        ScalogramConfig.preset("fast")


def test_the_offered_preset_names_are_the_presets():
    """``preset_names()`` (``scaloquant scalogram --preset``'s choices, kept in the numpy-free
    :mod:`scaloquant.presets`) names every preset, and nothing else: the refusal of an unknown
    name lists the presets the config knows."""
    with pytest.raises(ConfigError) as refused:
        ScalogramConfig.preset("fast")
    assert str(refused.value).endswith(f"choose from {', '.join(preset_names())}")


def test_default_is_matlab_10_voices():
    config = ScalogramConfig()
    assert config.voices_per_octave == 10
    assert config.n_scales == 77


@pytest.mark.parametrize(("voices", "expected"), [(10, 77), (32, 246), (48, 368)])
def test_voices_per_octave_resolves_the_matlab_count(voices, expected):
    config = ScalogramConfig(voices_per_octave=voices)
    assert config.n_scales == expected
    row_scales = scales(config)
    assert len(row_scales) == expected
    assert np.allclose(row_scales[1:] / row_scales[:-1], 2 ** (1 / voices), rtol=1e-13)


def test_voices_and_matching_count_agree_but_mismatch_is_an_error():
    assert ScalogramConfig(voices_per_octave=10, n_scales=77).n_scales == 77
    with pytest.raises(ConfigError, match="disagrees with voices_per_octave 10"):
        ScalogramConfig(voices_per_octave=10, n_scales=76)


@pytest.mark.parametrize("name", ["paper", "cpu"])
def test_dict_round_trip_through_json(name):
    config = ScalogramConfig.preset(name, log=True, normalise="max", channels="pos_neg")
    data = json.loads(json.dumps(config.to_dict()))
    assert ScalogramConfig.from_dict(data) == config


def test_round_trip_of_a_voices_config_keeps_the_rule():
    config = ScalogramConfig(voices_per_octave=32, n_points=1000)
    again = ScalogramConfig.from_dict(config.to_dict())
    assert again == config
    assert np.array_equal(scales(again), scales(config))


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown scalogram setting"):
        ScalogramConfig.from_dict({"n_points": 1536, "wavelet": "morlet"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_points": 1}, "n_points must be a whole number >= 2"),
        ({"n_points": 1536.0}, "n_points must be a whole number"),
        ({"decimation": 0}, "decimation must be a whole number >= 1"),
        ({"decimation": 5}, "decimation 5 does not divide n_points 1536"),
        ({"n_points": 1535, "decimation": 5}, "does not divide the padded length"),
        ({"channels": "magnitude"}, "channels must be one of"),
        ({"padding": "symmetric"}, "padding must be one of"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"normalise": "l2"}, "normalise must be one of"),
        ({"gamma": -3}, "gamma must be a positive number"),
        ({"beta": float("inf")}, "beta must be a positive number"),
        ({"n_scales": 0}, "n_scales must be a whole number >= 1"),
        ({"voices_per_octave": 49}, "at most 48"),
        ({"log": True, "channels": "complex"}, "log needs magnitudes"),
        ({"log": 1}, "log must be true or false"),
        ({"log_epsilon": 0}, "log_epsilon must be a positive number"),
        ({"freq_min_hz": 10.0}, "both freq_min_hz and freq_max_hz"),
        ({"freq_min_hz": 100.0, "freq_max_hz": 50.0}, "need 0 < freq_min_hz < freq_max_hz"),
        ({"freq_min_hz": "10", "freq_max_hz": 50.0}, "frequency limits must be numbers"),
        ({"n_scales": "340"}, "n_scales must be a whole number"),
    ],
)
def test_invalid_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ScalogramConfig(**kwargs)


def test_padding_geometry():
    assert ScalogramConfig(n_points=1000).padded_length == 2000
    assert ScalogramConfig(n_points=1001).padded_length == 2001  # MATLAB: N + 2 floor(N/2)
    assert ScalogramConfig(n_points=1000, padding="zeros").pad_before == 500
    periodic = ScalogramConfig(n_points=1000, padding="periodic")
    assert (periodic.pad_before, periodic.padded_length) == (0, 1000)


def test_span_in_hz_needs_the_dwell_time_and_hits_its_ends():
    config = ScalogramConfig(n_scales=50, freq_min_hz=20.0, freq_max_hz=1500.0)
    with pytest.raises(ConfigError, match="pass the FIDs' dwell_time_s"):
        scales(config)
    freqs = centre_frequencies_hz(config, DWELL_S)
    assert freqs[0] == pytest.approx(1500.0, rel=1e-13)
    assert freqs[-1] == pytest.approx(20.0, rel=1e-13)


def test_span_in_hz_with_voices_counts_octaves_without_dwell_time():
    # 20 -> 1280 Hz is exactly 6 octaves: 6 * 8 + 1 scales.
    config = ScalogramConfig(voices_per_octave=8, freq_min_hz=20.0, freq_max_hz=1280.0)
    assert config.n_scales == 49
    freqs = centre_frequencies_hz(config, DWELL_S)
    assert len(freqs) == 49
    assert freqs[0] == pytest.approx(1280.0, rel=1e-13)


def test_span_in_hz_outside_the_usable_band_is_an_error():
    config = ScalogramConfig(n_scales=10, freq_min_hz=20.0, freq_max_hz=1900.0)
    with pytest.raises(ConfigError, match="outside the usable band"):
        scales(config, DWELL_S)


def test_row_frequencies_fall_from_matlab_highest():
    config = ScalogramConfig.preset("paper")
    freqs = centre_frequencies_hz(config, DWELL_S)
    assert freqs.shape == (340,)
    assert np.all(np.diff(freqs) < 0)
    # morse-cwt.md: band 8.58-1736.5 Hz for N = 1536 at 4000 Hz.
    assert freqs[0] == pytest.approx(1736.5, abs=0.05)
    assert freqs[-1] == pytest.approx(8.58, abs=0.005)


def test_row_ppm_follows_the_signal_axes_convention():
    config = ScalogramConfig.preset("cpu")
    freqs = centre_frequencies_hz(config, DWELL_S)
    negative = centre_ppm(config, DWELL_S, MHZ, 4.65)
    positive = centre_ppm(config, DWELL_S, MHZ, 4.65, side="positive")
    assert np.allclose(negative, hz_to_ppm(-freqs, MHZ, 4.65), rtol=0, atol=1e-12)
    assert np.allclose(positive + negative, 2 * 4.65, rtol=0, atol=1e-12)
    assert np.all(np.diff(negative) > 0)  # row 0 = highest |f| = furthest below the reference


def test_time_axis_in_ms_follows_decimation():
    cpu = ScalogramConfig.preset("cpu")
    t = time_axis_ms(cpu, DWELL_S)
    assert t.shape == (384,)
    assert t[0] == 0.0
    assert np.allclose(np.diff(t), 4 * 0.25, rtol=1e-12)
    assert time_axis_ms(ScalogramConfig.preset("paper"), DWELL_S)[-1] == pytest.approx(383.75)


def test_channel_names_match_channel_count():
    for mode in ("abs_re_im", "pos_neg", "complex"):
        config = ScalogramConfig(channels=mode)
        assert len(channel_names(config)) == config.n_channels
