"""Random parameter draws: ranges, overrides, global mode, reproducibility."""

import numpy as np
import pytest

from scaloquant.errors import ConfigError
from scaloquant.simulate import SimulationConfig, draw_parameters

NAMES = ["Mac", "NAA", "Cr"]


def draw(mapping, n=2000, seed=0):
    return draw_parameters(
        SimulationConfig.from_dict(mapping), n, np.random.default_rng(seed), names=NAMES
    )


def test_default_draws_cover_the_paper_ranges():
    p = draw({})
    assert p.amplitudes.shape == p.damping_per_s.shape == p.shift_hz.shape == (2000, 3)
    for values, lo, hi in ((p.amplitudes, 0, 1), (p.damping_per_s, 0, 15), (p.shift_hz, -3, 3)):
        assert values.min() >= lo and values.max() <= hi
        # uniform: 2000 draws reach within 1% of both ends (miss probability ~1e-9)
        assert values.min() < lo + 0.01 * (hi - lo) and values.max() > hi - 0.01 * (hi - lo)
    assert set(p.arrays()) == {"amplitudes", "damping_per_s", "shift_hz"}


def test_per_metabolite_overrides():
    p = draw({"overrides": {"NAA": {"amplitude_range": [2, 3], "shift_range_hz": [5, 5]}}})
    assert np.all((p.amplitudes[:, 1] >= 2) & (p.amplitudes[:, 1] <= 3))
    assert np.all(p.shift_hz[:, 1] == 5)
    assert p.amplitudes[:, [0, 2]].max() <= 1 and np.abs(p.shift_hz[:, [0, 2]]).max() <= 3


def test_global_mode_shares_shift_and_damping_across_metabolites():
    p = draw({"per_metabolite": False})
    assert np.all(p.shift_hz == p.shift_hz[:, :1]) and np.all(
        p.damping_per_s == p.damping_per_s[:, :1]
    )
    assert np.unique(p.shift_hz[:, 0]).size == 2000
    assert np.unique(p.amplitudes[0]).size == 3  # amplitudes stay per metabolite


def test_lineshapes_choose_the_damping_factors():
    g = draw({"lineshape": "gaussian"})
    assert np.all(g.damping_per_s == 0)
    assert g.gaussian_damping_per_s.max() <= 9 and g.gaussian_damping_per_s.min() >= 0
    v = draw({"lineshape": "voigt", "gaussian_damping_range_per_s": [20, 30]})
    assert v.damping_per_s.max() > 0 and v.gaussian_damping_per_s.min() >= 20


def test_optional_effects_are_drawn_only_when_on():
    p = draw(
        {
            "snr": [10, 20],
            "phase0_range_deg": [-90, 90],
            "phase1_range_deg_per_ppm": [1, 2],
            "baseline": {"n_humps": 4, "height_range": [-0.1, 0.1]},
        },
        n=50,
    )
    assert p.snr.shape == p.phase0_deg.shape == p.phase1_deg_per_ppm.shape == (50,)
    assert p.snr.min() >= 10 and p.snr.max() <= 20
    assert p.baseline_height.shape == p.baseline_centre_ppm.shape == (50, 4)
    assert np.abs(p.baseline_height).max() <= 0.1


def test_same_generator_state_same_parameters():
    a, b, c = draw({"snr": 30}, 10, 7), draw({"snr": 30}, 10, 7), draw({"snr": 30}, 10, 8)
    for k in a.arrays():
        np.testing.assert_array_equal(a.arrays()[k], b.arrays()[k])
    assert not np.array_equal(a.amplitudes, c.amplitudes)


def test_take_and_concatenate_are_inverse():
    p = draw({"baseline": {}}, n=10)
    joined = type(p).concatenate([p.take(slice(0, 4)), p.take(slice(4, 10))])
    for k, v in p.arrays().items():
        np.testing.assert_array_equal(joined.arrays()[k], v)


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_bad_counts_are_refused(n):
    with pytest.raises(ConfigError, match="whole number"):
        draw({}, n=n)


def test_zero_signals_is_an_empty_batch():
    assert draw({}, n=0).amplitudes.shape == (0, 3)
