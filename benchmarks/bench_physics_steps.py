"""Training steps against polish cost of the physics-head models in ``reproduce --preset quick``
(issue 13, the quick preset's 5-minute budget): a better-trained network starts the polish
closer, so fewer spectra need its iterations and global moves.

For each model and each ``--steps`` value: train it as ``reproduce`` does
(:func:`scaloquant.reproduce._physics_configs`, the default simulator, the run's seed) but
capped at that many steps (no time cap), then estimate reproduce's noiseless test set (the
same ``--n-test`` signals, the same seed) with the model's polish. Prints the training's and
the polish's wall and CPU time (this process, all threads, :func:`time.process_time`), the best
validation loss, and the amplitude mean absolute error after the polish and of the network
alone (``K = 0``, one extra pass that is not timed with the polish).

Usage: ``python benchmarks/bench_physics_steps.py [--models scalogram_physics spectrum_physics]
[--steps 50 100 200] [--n-test 500] [--preset quick] [--threads N]``

``--checkpoints CKPT [CKPT ...] [--batch-size 128 500]``: no training; the polish of trained
models on the same test set by chunk size (spectra per call of the polish; default
:data:`scaloquant.fit.batched.CPU_CHUNK`, 128), with the largest difference of the amplitudes
from the first chunk size's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaloquant.threads import prefer_command_settings


def reproduce_test_set(basis, preset: str, n_test: int, work: Path):
    """``reproduce --preset PRESET``'s noiseless test set of ``n_test`` signals (its seed, as
    written to and read back from ``work/test.h5``) and its seed."""
    from scaloquant.io.hdf5 import read_simulation, write_simulation
    from scaloquant.reproduce import _configs
    from scaloquant.seeds import TEST_KEY, derived_seed
    from scaloquant.simulate import simulate_dataset

    first = _configs(preset, None, None, None, None)["scalogram_cnn"]
    test_seed = derived_seed(first.seed, TEST_KEY)
    simulation = replace(first.simulation_config(), snr=None)
    path = write_simulation(
        work / "test.h5",
        simulate_dataset(basis, simulation, n_test, test_seed),
        n_signals=n_test,
        basis=basis,
        basis_name="default",
        config=simulation.to_dict(),
        seed=test_seed,
    )
    return read_simulation(path), test_seed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["scalogram_physics", "spectrum_physics"])
    p.add_argument("--steps", nargs="+", type=int, default=[50, 100, 200])
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--preset", default="quick")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--checkpoints",
        nargs="+",
        type=Path,
        help="polish these trained models instead of training (then --batch-size applies)",
    )
    p.add_argument("--batch-size", nargs="+", type=int, default=[128])
    args = p.parse_args()
    # as the CLI does, before torch loads (scaloquant.threads): OpenMP threads that spin while
    # waiting cost up to 10 times the time on a machine shared with other jobs
    prefer_command_settings()
    import torch

    from scaloquant.evaluate.run import predict_physics_test_set
    from scaloquant.io.default import default_basis
    from scaloquant.models.checkpoint import load_model
    from scaloquant.reproduce import _configs, _physics_configs
    from scaloquant.train.physics import train_physics

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    basis = default_basis()
    first = _configs(args.preset, None, None, None, None)["scalogram_cnn"]
    simulation = first.simulation_config()
    work = Path(tempfile.mkdtemp(prefix="bench_physics_steps_"))
    test, test_seed = reproduce_test_set(basis, args.preset, args.n_test, work)
    if args.checkpoints:
        polish_chunks(args.checkpoints, args.batch_size, test)
        return
    configs = _physics_configs(args.preset, first.seed)
    print(
        f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, {args.n_test} test "
        f"signals (seed {test_seed})"
    )
    print(
        f"{'model':18s} {'steps':>5s} {'train wall':>10s} {'train CPU':>9s} {'val loss':>9s} "
        f"{'polish wall':>11s} {'polish CPU':>10s} {'MAE':>9s} {'MAE K=0':>9s} {'load':>5s}"
    )
    for model in args.models:
        for steps in args.steps:
            config = replace(configs[model], max_steps=steps, max_time_s=None)
            path = work / f"{model}_{steps}.ckpt"
            c0 = time.process_time()
            result = train_physics(
                config, basis, path, simulation_config=simulation, log=lambda _line: None
            )
            train_cpu = time.process_time() - c0
            quantifier = load_model(path).quantifier
            t0, c0 = time.perf_counter(), time.process_time()
            pred = predict_physics_test_set(quantifier, test, name=model)
            polish_wall, polish_cpu = time.perf_counter() - t0, time.process_time() - c0
            raw = quantifier.predict(test.fids, polish_iterations=0)
            order = [list(quantifier.metabolites).index(m) for m in test.metabolites]
            mae = float(np.abs(pred.amplitudes - test.amplitudes).mean())
            mae0 = float(np.abs(raw[:, order] - test.amplitudes).mean())
            print(
                f"{model:18s} {result.steps:5d} {result.wall_time_s:10.1f} {train_cpu:9.1f} "
                f"{result.best_val_loss:9.4g} {polish_wall:11.1f} {polish_cpu:10.1f} "
                f"{mae:9.2e} {mae0:9.2e} {os.getloadavg()[0]:5.2f}",
                flush=True,
            )


def polish_chunks(checkpoints: list[Path], chunks: list[int], test) -> None:
    """``--checkpoints``: the polish of each model by chunk size (spectra per call,
    :meth:`~scaloquant.models.physics.PhysicsQuantifier.predict_estimates`' ``batch_size``):
    wall and CPU time, MAE, and the largest difference from the first chunk size's amplitudes."""
    from scaloquant.models.checkpoint import load_model

    print(
        f"{'checkpoint':40s} {'chunk':>5s} {'wall s':>7s} {'CPU s':>7s} {'MAE':>9s} {'max diff':>9s}"
    )
    for path in checkpoints:
        quantifier = load_model(path).quantifier
        order = [list(quantifier.metabolites).index(m) for m in test.metabolites]
        reference = None
        for chunk in chunks:
            t0, c0 = time.perf_counter(), time.process_time()
            amplitudes = quantifier.predict_estimates(test.fids, batch_size=chunk).amplitudes
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            amplitudes = amplitudes[:, order]
            reference = amplitudes if reference is None else reference
            print(
                f"{str(path)[-40:]:40s} {chunk:5d} {wall:7.1f} {cpu:7.1f} "
                f"{np.abs(amplitudes - test.amplitudes).mean():9.2e} "
                f"{np.abs(amplitudes - reference).max():9.2e} (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
