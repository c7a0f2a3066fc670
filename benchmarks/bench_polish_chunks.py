"""The physics models' polish on ``reproduce``'s test set by chunk size and ``K`` (issue 13, the
quick preset's 5-minute budget).

For each checkpoint, each ``--batch-size`` (spectra per call of the polish,
:meth:`scaloquant.models.physics.PhysicsQuantifier.predict_estimates`; default
:data:`scaloquant.fit.batched.CPU_CHUNK`) and each ``--polish`` K: estimate the noiseless test
set of ``reproduce --preset PRESET`` (the same ``--n-test`` signals, the same seed) and print
the wall and CPU time (this process, all threads) and the amplitudes' mean absolute error, and
the largest difference from the first configuration's amplitudes (0 when the chunking does
not change the result).

Usage: ``python benchmarks/bench_polish_chunks.py CKPT [CKPT ...] [--batch-size 128 256 500]
[--polish 20] [--n-test 500] [--preset quick] [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaloquant.threads import prefer_huge_pages, prefer_passive_wait


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--batch-size", nargs="+", type=int, default=[128, 256, 500])
    p.add_argument("--polish", nargs="+", type=int, default=[20])
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--preset", default="quick")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    # as the CLI does, before torch loads (scaloquant.threads)
    prefer_passive_wait()
    prefer_huge_pages()
    import torch

    from scaloquant.io.default import default_basis
    from scaloquant.io.hdf5 import read_simulation, write_simulation
    from scaloquant.models.checkpoint import load_model
    from scaloquant.reproduce import _configs
    from scaloquant.seeds import TEST_KEY, derived_seed
    from scaloquant.simulate import simulate_dataset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    basis = default_basis()
    first = _configs(args.preset, None, None, None, None)["scalogram_cnn"]
    test_seed = derived_seed(first.seed, TEST_KEY)
    simulation = replace(first.simulation_config(), snr=None)
    work = Path(tempfile.mkdtemp(prefix="bench_polish_chunks_"))
    test = read_simulation(
        write_simulation(
            work / "test.h5",
            simulate_dataset(basis, simulation, args.n_test, test_seed),
            n_signals=args.n_test,
            basis=basis,
            basis_name="default",
            config=simulation.to_dict(),
            seed=test_seed,
        )
    )
    print(f"threads {torch.get_num_threads()}, {args.n_test} test signals (seed {test_seed})")
    print(
        f"{'checkpoint':40s} {'chunk':>5s} {'K':>3s} {'wall s':>7s} {'CPU s':>7s} {'MAE':>9s} "
        f"{'max diff':>9s} {'load':>5s}"
    )
    for path in args.checkpoints:
        quantifier = load_model(path).quantifier
        order = [list(quantifier.metabolites).index(m) for m in test.metabolites]
        reference = None
        for k in args.polish:
            for chunk in args.batch_size:
                t0, c0 = time.perf_counter(), time.process_time()
                pred = quantifier.predict_estimates(
                    test.fids, batch_size=chunk, polish_iterations=k
                )
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                amplitudes = pred.amplitudes[:, order]
                reference = amplitudes if reference is None else reference
                print(
                    f"{str(path)[-40:]:40s} {chunk:5d} {k:3d} {wall:7.1f} {cpu:7.1f} "
                    f"{np.abs(amplitudes - test.amplitudes).mean():9.2e} "
                    f"{np.abs(amplitudes - reference).max():9.2e} {os.getloadavg()[0]:5.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
