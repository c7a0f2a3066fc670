"""Training data: fixed sets (arrays, HDF5, seeded simulation) or fresh signals every epoch.

Seeds
-----
Every random stream is ``numpy.random.SeedSequence([seed, KEY, ...])`` with a fixed key per use
(:mod:`scaloquant.seeds` derives them all):
:data:`TRAIN_KEY` (the fixed training set), :data:`VAL_KEY` (the validation set, the same whatever
``fresh_data`` is), :data:`FRESH_KEY` (fresh batches), :data:`NORM_KEY` (the sample used to fit the
normalisation when training on fresh data). A fresh batch is drawn from
``SeedSequence([seed, FRESH_KEY, epoch, rank, batch_index])``: each rank (and each data-loader
worker, which loads different batch indices) draws its own stream, and the data depend on
``(seed, epoch, rank, batch)`` only, not on how many workers load them.

Fresh data or a fixed set? (measured; spectrum CNN, ``cpu`` preset settings, 1000 noiseless test
signals, same number of steps)
---------------------------------------------------------------------------------------------
==========================  ====================  ====================  =======================
training length             fixed 8,000 signals   fresh every epoch     fresh: extra CPU time
==========================  ====================  ====================  =======================
6 epochs (1,500 steps)      test RMSE 0.1019      test RMSE 0.1021      +19 %
24 epochs (6,000 steps)     test RMSE 0.0764      test RMSE 0.0707      +25 %
==========================  ====================  ====================  =======================

In short runs the network does not yet overfit 8,000 signals and fresh data only cost the
drawing time (done in the training process unless ``num_workers > 0``); in long runs the fixed
set is overfitted (final training loss 0.055 against validation 0.068) and fresh data gave a 7.5 %
lower RMSE; the fixed-set curve had flattened by then (validation RMSE 0.0768 -> 0.0756 over its
last four epochs), so 25 % more fixed-set steps would not close the gap. So
``fresh_data`` is the default of ``TrainConfig`` (custom, long trainings), while the presets that
replicate the paper's fixed 10,000-signal protocol (``paper``, ``cpu``) or are short (``quick``,
``tiny``) keep a fixed set; ``--fresh-data`` switches any of them.

Noisy training needs fresh data: a network memorises the noise of a fixed noisy set. The ``cpu``
spectrum CNN trained on 8,000 fixed signals at SNR 8-120 had an RMSE of 0.139 on its own
training signals of SNR below ~12 but 0.202 on new ones; its variance head, which learns from
training residuals, then under-rated the noise and its 95 % intervals covered 76 % at SNR 10.
With fresh data: 94.3 % at SNR 10 (and a lower RMSE, 0.206 against 0.229 at SNR 10). So
``scaloquant train --snr`` (and the other realism flags) imply ``--fresh-data``.

Network inputs: batches carry complex FIDs, and the model computes its input transform batch by
batch on its own device; for a fixed set, :class:`SignalDataModule` can instead compute every
signal's standardised input once (``inputs``, :func:`network_inputs`) and hand it out with the
batches, the same values as batch by batch (each signal's transform is computed on its own;
checked bit for bit in ``tests/unit/test_train.py``). ``train_model`` does so on the CPU when
the inputs fit :data:`scaloquant.train.run.INPUT_CACHE_BYTES`: the ``quick`` scalogram CNN
recomputed each of its 2 x 64 x 192 scalograms in every one of its 5 epochs (a sixth of a
training step's CPU time); kept, its 4,000 + 500 inputs take 442 MB.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import NamedTuple

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ..errors import IncompatibleDataError, InvalidDataError
from ..io.hdf5 import read_simulation
from ..models.quantifier import Quantifier
from ..seeds import FRESH_KEY, VAL_KEY, derived_seed, seed_sequence
from ..simulate import SimulationConfig, simulate_batch, simulate_dataset
from ..types import BasisSet, SignalSet


class SignalBatch(NamedTuple):
    """One batch: complex FIDs ``(B, N)`` (complex64) and their amplitudes ``(B, M)`` (float32);
    with precomputed inputs also the network's standardised inputs ``(B, *input_shape)`` and
    the FIDs' scales ``(B,)`` (:meth:`scaloquant.models.Quantifier.features`), else None."""

    fids: torch.Tensor
    amplitudes: torch.Tensor
    features: torch.Tensor | None = None
    scale: torch.Tensor | None = None


#: A set's network inputs: standardised inputs ``(n, *input_shape)`` and scales ``(n,)``.
NetworkInputs = tuple[torch.Tensor, torch.Tensor]


def for_training(signals: SignalSet) -> SignalSet:
    """``signals`` with the dtypes training uses: complex64 FIDs, float32 amplitudes."""
    return signals.with_arrays(
        np.ascontiguousarray(signals.fids, dtype=np.complex64),
        np.asarray(signals.amplitudes, dtype=np.float32),
    )


def draw_signals(
    basis: BasisSet, config: SimulationConfig, n: int, rng: np.random.Generator
) -> SignalSet:
    """``n`` complete signals (Eq. 1 plus any configured baseline, phase and noise) drawn from
    ``config`` by ``rng`` (:func:`scaloquant.simulate.simulate_batch`), cast for training."""
    return for_training(simulate_batch(basis, config, n, rng))


def simulate_set(
    basis: BasisSet, config: SimulationConfig, n: int, seed: int, key: int
) -> SignalSet:
    """A fixed, seeded set of ``n`` signals (streamed in chunks by :func:`simulate_dataset`),
    cast for training."""
    chunks = [
        for_training(chunk)
        for chunk in simulate_dataset(basis, config, n, derived_seed(seed, key, bits=32))
    ]
    return chunks[0] if len(chunks) == 1 else SignalSet.concatenate(chunks)


def network_inputs(
    quantifier: Quantifier, signals: SignalSet, *, batch_size: int = 256
) -> NetworkInputs:
    """Every signal's standardised network input and scale
    (:meth:`~scaloquant.models.Quantifier.features`, on the quantifier's device), computed in
    batches of ``batch_size`` into one preallocated tensor."""
    fids = torch.from_numpy(signals.fids)
    device = quantifier.fixed_scale.device
    features = torch.empty((len(fids), *quantifier.input_shape), device=device)
    scale = torch.empty(len(fids), device=device)
    with torch.no_grad():
        for i in range(0, len(fids), batch_size):
            rows = slice(i, i + batch_size)
            features[rows], scale[rows] = quantifier.features(fids[rows].to(device))
    return features, scale


class ArrayDataset(Dataset):
    """Map-style dataset over a :class:`~scaloquant.types.SignalSet` cast by
    :func:`for_training`; an item is ``(fid (N,), amplitudes (M,))``, followed by the signal's
    network input and scale when ``inputs`` (:func:`network_inputs`) are given."""

    def __init__(self, signals: SignalSet, inputs: NetworkInputs | None = None) -> None:
        self.arrays = (torch.from_numpy(signals.fids), torch.from_numpy(signals.amplitudes))
        if inputs is not None:
            self.arrays += tuple(inputs)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(array[index] for array in self.arrays)


class FreshBatchSampler(Sampler):
    """Yields batch keys ``(epoch, rank, k)``, ``k = 0 .. n_batches - 1``, for this rank.

    Lightning calls :meth:`set_epoch` at the start of every epoch, like a ``DistributedSampler``.
    """

    def __init__(self, n_batches: int, rank: int) -> None:
        self.n_batches = int(n_batches)
        self.rank = int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return iter([(self.epoch, self.rank, k) for k in range(self.n_batches)])


class FreshDataset(Dataset):
    """New signals on demand: ``dataset[(epoch, rank, k)]`` is a whole batch drawn from
    ``SeedSequence([seed, FRESH_KEY, epoch, rank, k])`` (reproducible, independent of workers)."""

    def __init__(
        self, basis: BasisSet, config: SimulationConfig, *, batch_size: int, seed: int
    ) -> None:
        self.basis = basis
        self.config = config
        self.batch_size = int(batch_size)
        self.seed = int(seed)

    def __getitem__(self, key: tuple[int, int, int]) -> SignalBatch:
        rng = np.random.default_rng(seed_sequence(self.seed, FRESH_KEY, *key))
        signals = draw_signals(self.basis, self.config, self.batch_size, rng)
        return SignalBatch(torch.from_numpy(signals.fids), torch.from_numpy(signals.amplitudes))


def _collate(items: list[tuple[torch.Tensor, ...]]) -> SignalBatch:
    return SignalBatch(*(torch.stack(field) for field in zip(*items, strict=True)))


def batch_fingerprint(batch: SignalBatch) -> str:
    """Short hash of a batch's amplitudes: tells in the logs whether two ranks drew the same data."""
    return hashlib.sha1(batch.amplitudes.detach().cpu().numpy().tobytes()).hexdigest()[:16]


class SignalDataModule(L.LightningDataModule):
    """Wires training/validation data into Lightning.

    Parameters
    ----------
    basis : the basis set the signals are simulated from (fresh data) or belong to.
    train : fixed training set, or None for fresh data every epoch (then ``n_train`` signals per
        epoch across all ranks, drawn as described in the module docstring).
    val : fixed validation set.
    simulation : simulation settings for fresh data.
    batch_size, eval_batch_size, seed, num_workers, n_train : as in ``TrainConfig``.
    inputs : None, or a function that gives a fixed set's network inputs
        (:func:`network_inputs` of the model being trained): called once for the training
        (if fixed) and validation sets in :meth:`setup`, whose results then come with every
        batch instead of being recomputed in every epoch.
    """

    def __init__(
        self,
        *,
        basis: BasisSet,
        train: SignalSet | None,
        val: SignalSet,
        simulation: SimulationConfig,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        n_train: int,
        num_workers: int = 0,
        inputs: Callable[[SignalSet], NetworkInputs] | None = None,
    ) -> None:
        super().__init__()
        self.inputs = inputs
        self.train_inputs: NetworkInputs | None = None
        self.val_inputs: NetworkInputs | None = None
        self.basis = basis
        self.train = train
        self.val = val
        self.simulation = simulation
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.n_train = n_train
        self.num_workers = num_workers

    def setup(self, stage: str) -> None:
        if self.inputs is None:
            return
        if self.train is not None and self.train_inputs is None:
            self.train_inputs = self.inputs(self.train)
        if self.val_inputs is None:
            self.val_inputs = self.inputs(self.val)

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_batches_per_epoch(self, world_size: int = 1) -> int:
        """Optimizer steps per epoch on each rank (incomplete last batches are dropped)."""
        n = self.n_train if self.train is None else len(self.train)
        return max(1, n // (self.batch_size * world_size))

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        workers = dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        if self.train is None:
            dataset = FreshDataset(
                self.basis, self.simulation, batch_size=self.batch_size, seed=self.seed
            )
            sampler = FreshBatchSampler(self.train_batches_per_epoch(world), rank)
            return DataLoader(dataset, batch_size=None, sampler=sampler, **workers)
        # a DistributedSampler also for one process: its shuffle depends on (seed, epoch) only,
        # so a resumed run sees the same order as an uninterrupted one
        sampler = DistributedSampler(
            range(len(self.train)),
            num_replicas=world,
            rank=rank,
            shuffle=True,
            seed=self.seed,
            drop_last=True,
        )
        return DataLoader(
            ArrayDataset(self.train, self.train_inputs),
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            collate_fn=_collate,
            **workers,
        )

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = DistributedSampler(
            range(len(self.val)), num_replicas=world, rank=rank, shuffle=False
        )
        return DataLoader(
            ArrayDataset(self.val, self.val_inputs),
            batch_size=self.eval_batch_size,
            sampler=sampler,
            collate_fn=_collate,
            num_workers=0,
        )


def read_signal_file(path: str | os.PathLike, basis: BasisSet) -> SignalSet:
    """Signals of a simulation file (:func:`scaloquant.io.hdf5.read_simulation`), checked against
    ``basis``: same metabolites in the same order, same number of points and dwell time."""
    sim = read_simulation(path)
    if tuple(sim.metabolites) != tuple(basis.names):
        raise IncompatibleDataError(
            f"{path} has amplitude columns {', '.join(sim.metabolites)} but the basis has "
            f"{', '.join(basis.names)}; simulate the data with this basis"
        )
    acq = sim.acquisition
    if acq.n_points != basis.n_points or not np.isclose(acq.dwell_time_s, basis.dwell_time_s):
        raise IncompatibleDataError(
            f"{path} holds {acq.n_points}-point FIDs at {acq.dwell_time_s * 1e3:g} ms "
            f"but the basis has {basis.n_points} points at {basis.dwell_time_s * 1e3:g} ms"
        )
    return for_training(sim)


def split_signals(
    signals: SignalSet, val_fraction: float, seed: int
) -> tuple[SignalSet, SignalSet]:
    """Split into (train, validation) by a permutation seeded with ``[seed, VAL_KEY]``."""
    n_val = int(round(len(signals) * val_fraction))
    if not 1 <= n_val < len(signals):
        raise InvalidDataError(
            f"cannot split {len(signals)} signals into training and validation sets; "
            "give more signals or a separate validation file"
        )
    order = np.random.default_rng(seed_sequence(seed, VAL_KEY)).permutation(len(signals))
    val, train = order[:n_val], order[n_val:]
    return signals.take(train), signals.take(val)
