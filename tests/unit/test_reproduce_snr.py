"""``reproduce --snr``: the SNR list, the training SNR range, and the noise added to the same
test signals with the simulator's SNR definition."""

import math

import numpy as np
import pytest

from scaloquant.errors import ConfigError
from scaloquant.io.default import DEFAULT_BASIS_NAME, default_basis
from scaloquant.io.hdf5 import read_simulation, write_simulation
from scaloquant.reproduce import check_snrs, noise_seed, parse_snrs, training_snr_range
from scaloquant.signal import axes
from scaloquant.simulate import SimulationConfig, add_noise, reference_heights, simulate_dataset


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    basis = default_basis()
    config = SimulationConfig()
    path = tmp_path_factory.mktemp("snr") / "test.h5"
    write_simulation(
        path,
        simulate_dataset(basis, config, 64, 5),
        n_signals=64,
        basis=basis,
        basis_name=DEFAULT_BASIS_NAME,
        config=config.to_dict(),
        seed=5,
    )
    return basis, read_simulation(path)


def test_parse_snrs_orders_noiseless_first_then_decreasing():
    assert parse_snrs("inf") == (math.inf,)
    assert parse_snrs("10, inf,100,30") == (math.inf, 100.0, 30.0, 10.0)
    assert parse_snrs("12.5") == (12.5,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "cannot read 'abc' as an SNR"),
        ("inf,,30", "cannot read '' as an SNR"),
        ("0", "must be > 0"),
        ("-5,inf", "must be > 0"),
        ("nan", "must be > 0"),
        ("30,inf,30.0", "SNR 30 is listed twice"),
    ],
)
def test_bad_snr_lists_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_snrs(text)


def test_empty_list_is_refused():
    with pytest.raises(ConfigError, match="at least one SNR"):
        check_snrs([])


def test_training_range():
    assert training_snr_range((math.inf,)) is None
    assert training_snr_range((math.inf, 100.0, 30.0, 10.0)) == (10.0, 100.0)
    assert training_snr_range((30.0,)) == (30.0, 30.0)


def test_noise_follows_the_simulators_snr_definition(test_set):
    basis, test = test_set
    noisy = add_noise(test, basis, 25.0, seed=7)
    noise = noisy.fids - test.fids
    # SNR = NAA peak height of the noiseless signal / SD of the real part of the noise spectrum:
    # with 2048 points per signal the SD is estimated to ~1.6%; over 64 signals the mean ratio
    # is within 2% of 25
    height = reference_heights(basis, test)
    noise_sd = axes.spectrum(noise).real.std(axis=1)
    assert np.mean(height / noise_sd) == pytest.approx(25.0, rel=0.02)
    # the reference is the NAA singlet of the noiseless (here: Eq. 1, no phase or baseline)
    # signal, as the simulator measures it (rtol: the file stores complex64 samples)
    ppm = test.acquisition.ppm_axis()
    window = (ppm >= 1.9) & (ppm <= 2.1)
    direct = axes.spectrum(test.fids).real[:, window].max(axis=1)
    np.testing.assert_allclose(height, np.maximum(direct, 0), rtol=1e-6)
    np.testing.assert_allclose(noisy.parameters["noise_sd"], height / (25.0 * np.sqrt(2048)))
    # the same signals: truth and every other parameter unchanged
    np.testing.assert_array_equal(noisy.amplitudes, test.amplitudes)
    np.testing.assert_array_equal(noisy.parameters["shift_hz"], test.parameters["shift_hz"])


def test_noise_is_seeded_and_the_noiseless_set_is_kept(test_set):
    basis, test = test_set
    a = add_noise(test, basis, 30.0, seed=noise_seed(11, 30.0))
    b = add_noise(test, basis, 30.0, seed=noise_seed(11, 30.0))
    c = add_noise(test, basis, 30.0, seed=noise_seed(11, 10.0))
    np.testing.assert_array_equal(a.fids, b.fids)
    assert not np.allclose(a.fids, c.fids)
    assert add_noise(test, basis, math.inf, seed=None) is test
    assert noise_seed(11, 30.0) != noise_seed(11, 100.0) != noise_seed(12, 100.0)
