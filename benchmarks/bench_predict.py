"""``Quantifier.predict`` throughput: the fused inference path against the plain eval-mode network,
in one run, on the same simulated spectra.

* ours: ``quantifier.predict(fids, batch_size=B)`` (input checks, per-FID scale, transform,
  standardisation, the cached BatchNorm-folded channels-last copy of the CNN, de-normalisation,
  and the standard deviations with ``--sd``).
* peer: what ``predict`` did before (scaloquant 0.1): the same input checks, then the trained
  network itself in eval mode (BatchNorm layers, NCHW, ``torch.no_grad``), batch by batch.

Both give the same amplitudes (the largest relative difference is printed; the unit tests demand
< 1e-4). Speed is spectra per second over ``--n`` spectra, best of ``--repeats`` passes after a
warm-up; the load average is printed, since the machine may be shared. ``--omp-wait-policy
passive`` helps on a busy machine (see ``bench_scalogram.py``).

Run: ``python benchmarks/bench_predict.py --model RUN/models/scalogram_cnn.ckpt [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint (.ckpt) of scaloquant train")
    p.add_argument("--n", type=int, default=512, help="spectra per pass (default 512)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sd", action="store_true", help="also return the standard deviations")
    p.add_argument("--omp-wait-policy", choices=("default", "passive"), default="default")
    args = p.parse_args(argv)
    if args.omp_wait_policy == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when torch loads libgomp, below

    import numpy as np
    import torch

    from scaloquant.io import default_basis
    from scaloquant.models import load_model
    from scaloquant.simulate import SimulationConfig
    from scaloquant.train.data import draw_signals

    torch.set_num_threads(args.threads)
    q = load_model(args.model).quantifier
    config = SimulationConfig.from_dict({"snr": [10.0, 100.0]})
    fids = draw_signals(default_basis(), config, args.n, np.random.default_rng(0)).fids

    def peer(batch_size: int) -> np.ndarray:
        arr = q.check_fids(fids)
        with torch.no_grad():
            out = [q(arr[i : i + batch_size]).double() for i in range(0, len(arr), batch_size)]
        return torch.cat(out).numpy()

    def ours(batch_size: int) -> np.ndarray:
        out = q.predict(fids, batch_size=batch_size, return_sd=args.sd)
        return out[0] if args.sd else out

    def rate(fn, batch_size: int) -> float:
        fn(batch_size)  # warm-up (and, for ours, building the fused copy)
        best = min(_timed(fn, batch_size) for _ in range(args.repeats))
        return args.n / best

    ref, new = peer(64), ours(64)
    diff = float(np.abs(new - ref).max() / np.abs(ref).max())
    print(
        f"{args.model}: {q.config.model}, input {q.input_shape}, {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.1f}; max relative difference {diff:.1e}"
    )
    for batch_size in args.batch_size:
        r_peer, r_ours = rate(peer, batch_size), rate(ours, batch_size)
        print(
            f"batch {batch_size:4d}: predict {r_ours:7.1f} spectra/s, plain eval network "
            f"{r_peer:7.1f} spectra/s, ratio {r_ours / r_peer:.2f}"
        )
    return 0


def _timed(fn, batch_size: int) -> float:
    t0 = time.perf_counter()
    fn(batch_size)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
