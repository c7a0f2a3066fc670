"""The one place where random streams are derived from a run's seed.

Every random number of scaloquant comes from a ``numpy.random.Generator`` (or a torch generator
seeded from one) that the caller passes in; this module is where those generators' seeds come
from, so that one seed fixes a whole run and every use of it gets its own independent stream.

A stream is ``numpy.random.SeedSequence([seed, *key], spawn_key=(block,))``
(:func:`seed_sequence`): ``key`` names the use, from the table below, and may continue with
indices (a fresh training batch is ``[seed, FRESH_KEY, epoch, rank, batch_index]``); ``block`` is
the index of a block of a simulated dataset (:func:`scaloquant.simulate.block_generator`: block
``j`` of the dataset with ``seed`` is ``SeedSequence(seed, spawn_key=(j,))``, so the data do not
depend on the chunk size). Where a stream must be stored or handed on as an integer (an HDF5
attribute, the seed of a simulated set), :func:`derived_seed` hashes it to one.

=================  ======  ===================================================================
key                value   stream
=================  ======  ===================================================================
``TRAIN_KEY``      0       the fixed training set (``train.data.simulate_set``, 32-bit seed)
``VAL_KEY``        1       the validation set, and the train/validation split of a data file
``FRESH_KEY``      2       fresh training batches, ``[seed, FRESH_KEY, epoch, rank, batch]``
``NORM_KEY``       3       the sample that fits the normalisation when training on fresh data
``TEST_KEY``       0x7E57  ``scaloquant reproduce``'s held-out test set (63-bit seed); the noise
                           at SNR ``x`` is ``derived_seed(test_seed, round(1000 x))``
``BOOTSTRAP_KEY``  0xB007  ``scaloquant reproduce``'s paired bootstrap (63-bit seed)
=================  ======  ===================================================================

These derivations are frozen: ``tests/unit/test_seeds.py`` pins values of each, since changing
one changes every data set, model and figure made from a seed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

TRAIN_KEY, VAL_KEY, FRESH_KEY, NORM_KEY = 0, 1, 2, 3
#: Far from the training keys 0-3.
TEST_KEY, BOOTSTRAP_KEY = 0x7E57, 0xB007


def seed_sequence(seed: int, *key: int, block: int | None = None) -> np.random.SeedSequence:
    """The seed sequence of one stream: ``SeedSequence([seed, *key])``, or, with ``block``, the
    sequence of that block of a simulated dataset, ``SeedSequence([seed, *key],
    spawn_key=(block,))`` (see the module docstring)."""
    entropy = [int(seed), *(int(k) for k in key)]
    return np.random.SeedSequence(entropy, spawn_key=() if block is None else (int(block),))


def derived_seed(seed: int, *key: int, bits: Literal[32, 63] = 63) -> int:
    """An integer seed for the stream ``[seed, *key]``.

    ``bits=63`` (HDF5-safe, a signed 64-bit integer): ``(w0 << 31) ^ w1`` of the sequence's
    first two 32-bit words; ``bits=32``: its first word.
    """
    words = seed_sequence(seed, *key).generate_state(2 if bits == 63 else 1, np.uint32)
    if bits == 32:
        return int(words[0])
    if bits != 63:
        raise ValueError(f"bits must be 32 or 63, got {bits!r}")
    return int((int(words[0]) << 31) ^ int(words[1]))


def generator(seed: int, *key: int, block: int | None = None) -> np.random.Generator:
    """``numpy.random.default_rng`` of :func:`seed_sequence`."""
    return np.random.default_rng(seed_sequence(seed, *key, block=block))
