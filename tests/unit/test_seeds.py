"""Seed derivation is frozen: the values below were computed with the three derivations as they
were before they moved to :mod:`scaloquant.seeds` (``reproduce.derived_seed``,
``train.data.seed_sequence``/``_int_seed``, ``simulate.dataset.block_generator``), at commit
4f465ea; the same seed must keep giving the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant import seeds
from scaloquant.reproduce import noise_seed
from scaloquant.simulate import block_generator


def test_keys_are_unchanged():
    assert (seeds.TRAIN_KEY, seeds.VAL_KEY, seeds.FRESH_KEY, seeds.NORM_KEY) == (0, 1, 2, 3)
    assert (seeds.TEST_KEY, seeds.BOOTSTRAP_KEY) == (32343, 45063)


@pytest.mark.parametrize(
    ("seed", "key", "expected"),
    [
        (0, seeds.TEST_KEY, 2738845923926616055),
        (20240101, seeds.TEST_KEY, 5653936215257628472),
        (0, seeds.BOOTSTRAP_KEY, 6806027160968899254),
        (7, 30000, 2235936200478420002),
    ],
)
def test_63_bit_seeds_of_reproduce(seed, key, expected):
    assert seeds.derived_seed(seed, key) == expected
    assert 0 <= expected < 2**63


def test_noise_seeds_of_reproduce():
    assert noise_seed(11, 30.0) == 2775249270675177935
    assert noise_seed(11, 100.0) == 7733197181556529921


@pytest.mark.parametrize(
    ("seed", "key", "expected"),
    [(0, 0, 2968811710), (0, 1, 3964924996), (3, 0, 1576890651), (20240101, 1, 2982616947)],
)
def test_32_bit_seeds_of_the_training_sets(seed, key, expected):
    assert seeds.derived_seed(seed, key, bits=32) == expected


def test_training_streams():
    fresh = np.random.default_rng(seeds.seed_sequence(5, seeds.FRESH_KEY, 2, 0, 7))
    assert fresh.integers(0, 2**31, 3).tolist() == [1951733649, 179221319, 1655536081]
    norm = seeds.generator(5, seeds.NORM_KEY)
    assert norm.integers(0, 2**31, 3).tolist() == [2085592306, 1528632259, 614053383]


def test_blocks_of_a_simulated_dataset():
    assert block_generator(1234, 0).integers(0, 2**31, 3).tolist() == [
        923416902,
        1136761651,
        920687946,
    ]
    assert block_generator(1234, 5).integers(0, 2**31, 3).tolist() == [
        248164089,
        2095080128,
        1521185932,
    ]
    # the block stream is numpy's spawned child of SeedSequence(seed)
    child = np.random.SeedSequence(1234).spawn(6)[5]
    assert (seeds.seed_sequence(1234, block=5).generate_state(4) == child.generate_state(4)).all()


def test_bits_other_than_32_or_63_are_refused():
    with pytest.raises(ValueError, match="32 or 63"):
        seeds.derived_seed(0, 1, bits=16)  # type: ignore[arg-type]
