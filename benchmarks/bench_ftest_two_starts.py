"""The F-test reference's second start (``FitConfig.baseline_ftest_two_starts``): its cost as a
second solve against as more rows of the reference's own solve, in one run, and whether the
rows are the two solves' fits to the bit.

``bench_fit_default.py``'s spectra (``--n`` default-simulator spectra, seed ``--seed``, SNR
30) fitted once with ``FIT_PRESETS["invivo"]`` and the field on, capturing the flagged
spectra's reference problem (``fit.spectra._solve``'s arguments); then, alternated for
``--rounds`` rounds in a rotated order, the process CPU seconds of the reference alone
(``one``), edpick34's two solves (``two``) and one solve with ``second_start`` (``merged``),
at ``--threads`` torch threads. Prints each one's median and every round's.

Usage: ``PYTHONPATH=src python benchmarks/bench_ftest_two_starts.py [--n 128] [--seed 1]
[--threads 2] [--rounds 10]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    # first: OpenMP's passive wait, huge pages and MKL's reproducible mode, as the command
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_fit_engine

    engine_spectra = bench_fit_engine.engine_spectra

    import numpy as np
    import torch

    from scaloquant.fit import batched, fit_spectra, spectra
    from scaloquant.fit.config import FIT_PRESETS

    torch.set_num_threads(args.threads)
    basis, _, fid, _ = engine_spectra(args.n, 30.0, args.seed)
    config = replace(FIT_PRESETS["invivo"], baseline_ftest_two_starts=True)
    seen = {}
    solve_spectra = spectra._solve

    def spy(fids, prepared, cfg, region, start, also_from=None):
        if also_from is not None:
            seen.update(fids=fids, basis=prepared, cfg=cfg, region=region, start=start)
            seen["also"] = also_from
        return solve_spectra(fids, prepared, cfg, region, start, also_from)

    spectra._solve = spy
    try:
        fit_spectra(fid, basis, config)
    finally:
        spectra._solve = solve_spectra
    if not seen:
        sys.exit("no spectrum was flagged for the F-test: nothing to time")
    x, prepared, region, start, also = (
        seen[k] for k in ("fids", "basis", "region", "start", "also")
    )
    cfg = seen["cfg"]
    flexible = replace(cfg, baseline_ed_per_ppm=cfg.baseline_ed_candidates_per_ppm[-1])
    stageless = replace(flexible, continuation_broadening_per_s=())

    def one():
        return batched.solve(x, prepared, flexible, region_noise_sd=region, start=start)

    def two():
        other = batched.solve(x, prepared, stageless, region_noise_sd=region, start={"theta": also})
        return one(), other

    def merged():
        return batched.solve(
            x, prepared, flexible, region_noise_sd=region, start=start, second_start=also
        )

    (first, other), both, b = two(), merged(), x.shape[0]
    same = all(
        np.array_equal(getattr(both, f), np.concatenate([getattr(first, f), getattr(other, f)]))
        for f in batched.BatchedFit.__dataclass_fields__
    )
    print(f"{b} flagged spectra; merged rows equal the two solves to the bit: {same}")
    cpu: dict[str, list[float]] = {"one": [], "two": [], "merged": []}
    runs = (("one", one), ("two", two), ("merged", merged))
    for round_ in range(args.rounds):
        for label, run in runs if round_ % 2 == 0 else runs[::-1]:
            t = time.process_time()
            run()
            cpu[label].append(time.process_time() - t)
    for label, values in cpu.items():
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"{label:6s}: median {np.median(values):.3f} CPU-s ({rounds})")


if __name__ == "__main__":
    main()
