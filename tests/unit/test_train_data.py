"""Training data: fresh batches per (seed, epoch, rank, batch), fixed sets, splits, file checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from scaloquant.errors import IncompatibleDataError, InvalidDataError
from scaloquant.io import default_basis
from scaloquant.io.hdf5 import write_simulation
from scaloquant.models.quantifier import Quantifier
from scaloquant.seeds import derived_seed
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.train import TrainConfig
from scaloquant.train.data import (
    FreshBatchSampler,
    FreshDataset,
    SignalDataModule,
    network_inputs,
    read_signal_file,
    simulate_set,
    split_signals,
)
from scaloquant.types import Acquisition, SignalSet


@pytest.fixture(scope="module")
def basis():
    return default_basis()


def _fresh(basis, seed=7, batch_size=4):
    return FreshDataset(basis, SimulationConfig(), batch_size=batch_size, seed=seed)


def test_fresh_batches_are_reproducible_and_differ_by_epoch_rank_batch(basis):
    ds = _fresh(basis)
    first = ds[(0, 0, 0)]
    again = _fresh(basis)[(0, 0, 0)]
    assert first.fids.dtype == torch.complex64 and first.fids.shape == (4, basis.n_points)
    assert first.amplitudes.shape == (4, basis.n_metabolites)
    torch.testing.assert_close(first.amplitudes, again.amplitudes, rtol=0, atol=0)
    torch.testing.assert_close(first.fids, again.fids, rtol=0, atol=0)
    for other in [(1, 0, 0), (0, 1, 0), (0, 0, 1)]:
        assert not torch.equal(first.amplitudes, ds[other].amplitudes), other
    assert not torch.equal(first.amplitudes, _fresh(basis, seed=8)[(0, 0, 0)].amplitudes)


def test_fresh_sampler_follows_the_epoch_lightning_sets(basis):
    sampler = FreshBatchSampler(3, rank=1)
    assert list(sampler) == [(0, 1, 0), (0, 1, 1), (0, 1, 2)]
    sampler.set_epoch(5)
    assert list(sampler) == [(5, 1, 0), (5, 1, 1), (5, 1, 2)]
    assert len(sampler) == 3


def test_fresh_data_do_not_depend_on_the_number_of_workers(basis):
    # every worker loads whole batches keyed by (epoch, rank, batch): same data with 0 or 2 workers
    ds = _fresh(basis)
    inline = list(DataLoader(ds, batch_size=None, sampler=FreshBatchSampler(4, 0)))
    workers = list(DataLoader(ds, batch_size=None, sampler=FreshBatchSampler(4, 0), num_workers=2))
    assert len(inline) == len(workers) == 4
    for a, b in zip(inline, workers, strict=True):
        torch.testing.assert_close(a.amplitudes, b.amplitudes, rtol=0, atol=0)
    fingerprints = {tuple(b.amplitudes[0].tolist()) for b in inline}
    assert len(fingerprints) == 4  # the four batches differ


def _set(fids, amplitudes):
    """A set on a made-up grid with made-up names (the shapes are what count here)."""
    fids, amplitudes = np.asarray(fids), np.asarray(amplitudes)
    names = [f"m{i}" for i in range(amplitudes.shape[-1])] if amplitudes.ndim == 2 else []
    return SignalSet(fids, amplitudes, names, Acquisition(fids.shape[-1], 2.5e-4, 123.2))


def test_fixed_set_is_the_seeded_simulation(basis):
    config = SimulationConfig()
    a = simulate_set(basis, config, 300, seed=3, key=0)
    b = simulate_set(basis, config, 300, seed=3, key=0)
    c = simulate_set(basis, config, 300, seed=3, key=1)
    assert a.fids.shape == (300, basis.n_points) and a.fids.dtype == np.complex64
    np.testing.assert_array_equal(a.fids, b.fids)
    assert not np.array_equal(a.amplitudes, c.amplitudes)
    # the amplitudes are the simulator's, row by row
    (chunk,) = list(simulate_dataset(basis, config, 5, seed=derived_seed(3, 0, bits=32)))
    np.testing.assert_allclose(a.amplitudes[:5], chunk.amplitudes, rtol=1e-6)


def _fixed_module(basis, signals, **kw):
    """A data module over one fixed set, used for training and validation."""
    return SignalDataModule(
        basis=basis,
        train=signals,
        val=signals,
        simulation=SimulationConfig(),
        seed=0,
        n_train=len(signals),
        **kw,
    )


def test_ranks_get_disjoint_shards_of_a_fixed_set(basis):
    signals = _set(
        np.zeros((40, 8), np.complex64) + np.arange(40)[:, None],
        np.arange(40, dtype=np.float32)[:, None],
    )
    seen = []
    for rank in (0, 1):
        dm = _fixed_module(basis, signals, batch_size=5, eval_batch_size=10)
        dm._rank_world = lambda rank=rank: (rank, 2)  # what a 2-process trainer reports
        seen.append({int(a) for batch in dm.train_dataloader() for a in batch.amplitudes[:, 0]})
    assert seen[0].isdisjoint(seen[1]) and len(seen[0] | seen[1]) == 40


def test_split_is_seeded_and_disjoint():
    signals = _set(np.ones((50, 4), np.complex64), np.arange(50, dtype=np.float32)[:, None])
    train, val = split_signals(signals, 0.2, seed=1)
    train2, val2 = split_signals(signals, 0.2, seed=1)
    assert len(train) == 40 and len(val) == 10
    np.testing.assert_array_equal(val.amplitudes, val2.amplitudes)
    assert set(train.amplitudes[:, 0]).isdisjoint(val.amplitudes[:, 0])
    with pytest.raises(InvalidDataError, match="cannot split"):
        split_signals(_set(np.ones((1, 4), np.complex64), np.ones((1, 1))), 0.2, seed=1)


def test_signal_set_refuses_bad_arrays():
    with pytest.raises(InvalidDataError, match="complex"):
        _set(np.ones((3, 4)), np.ones((3, 2)))
    with pytest.raises(InvalidDataError, match="same n"):
        _set(np.ones((3, 4), complex), np.ones((2, 2)))
    with pytest.raises(InvalidDataError, match="NaN"):
        _set(np.full((3, 4), np.nan, complex), np.ones((3, 2)))


def test_signal_file_must_match_the_basis(tmp_path, basis):
    config = SimulationConfig()
    path = tmp_path / "sim.h5"
    chunks = simulate_dataset(basis, config, 6, seed=1)
    write_simulation(
        path,
        chunks,
        n_signals=6,
        basis=basis,
        basis_name="default",
        config=config.to_dict(),
        seed=1,
    )
    signals = read_signal_file(path, basis)
    assert signals.fids.shape == (6, basis.n_points)
    reordered = basis.subset(basis.names[::-1])
    with pytest.raises(IncompatibleDataError, match="amplitude columns"):
        read_signal_file(path, reordered)
    with pytest.raises(IncompatibleDataError, match="points"):
        read_signal_file(path, basis.truncated(1024))


@pytest.mark.parametrize("model", ["scalogram_cnn", "spectrum_cnn"])
def test_kept_inputs_are_those_of_each_batch(basis, model):
    config = TrainConfig.preset("tiny", model=model)
    signals = simulate_set(basis, config.simulation_config(), 40, seed=3, key=0)
    quantifier = Quantifier(config.quantifier_config(basis))
    fids = torch.from_numpy(signals.fids)
    quantifier.fit_normalisation(fids, torch.from_numpy(signals.amplitudes))
    features, scale = network_inputs(quantifier, signals, batch_size=16)
    dm = _fixed_module(
        basis,
        signals,
        batch_size=8,
        eval_batch_size=8,
        inputs=lambda s: network_inputs(quantifier, s, batch_size=16),
    )
    dm.setup("fit")
    for batch in dm.train_dataloader():
        # the same bits as computed batch by batch from the shuffled FIDs
        expected = quantifier.features(batch.fids)
        assert torch.equal(batch.features, expected[0]) and torch.equal(batch.scale, expected[1])
    assert torch.equal(next(iter(dm.val_dataloader())).features, features[:8])
    assert torch.equal(scale, quantifier.features(fids)[1])
