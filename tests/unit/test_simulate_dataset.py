"""Seeded streamed datasets: reproducible, independent of the chunk size, validated up front."""

import numpy as np
import pytest

from scaloquant.errors import ConfigError, InvalidDataError, UnknownMetaboliteError
from scaloquant.signal import lineshapes
from scaloquant.simulate import BLOCK_SIZE, SimulationConfig, simulate_dataset
from scaloquant.types import BasisSet, SignalSet

N, DWELL_S, MHZ, REF = 256, 5e-4, 123.26, 4.65
# noise, phases and baseline on: every random stream of a block is exercised
FULL = SimulationConfig.from_dict(
    {
        "snr": [10, 30],
        "phase0_range_deg": [-30, 30],
        "phase1_range_deg_per_ppm": [-2, 2],
        "baseline": {},
    }
)


@pytest.fixture(scope="module")
def basis():
    fids = [
        lineshapes.singlet_fid(N, DWELL_S, MHZ, REF, ppm, damping_per_s=12.0)
        for ppm in (3.03, 2.01, 1.31)
    ]
    return BasisSet(["Cr", "NAA", "Lac"], np.array(fids), DWELL_S, MHZ, REF)


def collect(basis, n, seed, chunk_size, config=FULL):
    return SignalSet.concatenate(
        list(simulate_dataset(basis, config, n, seed, chunk_size=chunk_size))
    )


def assert_same(a, b):
    np.testing.assert_array_equal(a.fids, b.fids)
    assert a.columns().keys() == b.columns().keys()
    for key, value in a.columns().items():
        np.testing.assert_array_equal(value, b.columns()[key])


def test_chunk_size_does_not_change_the_data(basis):
    n = BLOCK_SIZE + 100  # spans a block boundary
    reference = collect(basis, n, 5, chunk_size=n)
    for chunk_size in (1, 7, BLOCK_SIZE, 300):
        assert_same(collect(basis, n, 5, chunk_size), reference)


def test_chunks_have_the_requested_sizes(basis):
    sizes = [c.fids.shape[0] for c in simulate_dataset(basis, FULL, 700, 0, chunk_size=300)]
    assert sizes == [300, 300, 100]


def test_same_seed_same_signals_other_seed_other_signals(basis):
    assert_same(collect(basis, 20, 11, 8), collect(basis, 20, 11, 8))
    assert not np.array_equal(collect(basis, 20, 12, 8).fids, collect(basis, 20, 11, 8).fids)


def test_first_signals_do_not_depend_on_n(basis):
    short = collect(basis, 10, 3, 10)
    long = collect(basis, BLOCK_SIZE + 5, 3, 64)
    assert_same(short, long.take(slice(0, 10)))


@pytest.mark.parametrize(
    ("n", "seed", "chunk", "message"),
    [
        (-3, 0, 10, "n must be a whole number >= 1"),
        (0, 0, 10, "n must be a whole number >= 1"),
        (5, -1, 10, "seed must be a whole number >= 0"),
        (5, 2**63, 10, "seed must be at most"),
        (5, 0, 0, "chunk_size must be a whole number >= 1"),
    ],
)
def test_bad_run_arguments_are_refused_before_any_work(basis, n, seed, chunk, message):
    with pytest.raises(ConfigError, match=message):
        simulate_dataset(basis, FULL, n, seed, chunk_size=chunk)


def test_unknown_override_is_refused_before_any_work(basis):
    config = SimulationConfig.from_dict({"overrides": {"GABA": {"amplitude_range": [0, 1]}}})
    with pytest.raises(UnknownMetaboliteError, match="valid names: Cr, NAA, Lac"):
        simulate_dataset(basis, config, 5, 0)


def test_signal_set_take_and_concatenate_are_inverse(basis):
    whole = next(simulate_dataset(basis, FULL, 10, 2))
    parts = [whole.take(slice(0, 3)), whole.take(slice(3, 10))]
    joined = SignalSet.concatenate(parts)
    np.testing.assert_array_equal(joined.fids, whole.fids)
    assert joined.columns().keys() == whole.columns().keys()
    for key, value in whole.columns().items():
        np.testing.assert_array_equal(joined.columns()[key], value)
    assert joined.metabolites == basis.names and joined.acquisition == basis.acquisition
    with pytest.raises(InvalidDataError, match="rows"):
        SignalSet(
            whole.fids,
            whole.amplitudes,
            whole.metabolites,
            whole.acquisition,
            {"snr": np.ones(3)},
        )
