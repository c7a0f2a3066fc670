"""The F-test reference's second start (``FitConfig.baseline_ftest_two_starts``): its cost as a
second solve against as more rows of the reference's own solve, in one run, and whether the
rows are the two solves' fits to the bit; with ``--compare SRC``, its cost in the whole F-test
of the flagged spectra, another checkout's code against this one's, alternated in one run.

``bench_fit_default.py``'s spectra (``--n`` default-simulator spectra, seed ``--seed``, SNR
30) fitted once with ``FIT_PRESETS["invivo"]`` and the field on, capturing the flagged
spectra's reference problem (``fit.spectra._solve``'s arguments); then, alternated for
``--rounds`` rounds in a rotated order, the process CPU seconds of the reference alone
(``one``), edpick34's two solves (``two``) and one solve with ``second_start`` (``merged``),
and the F-test bound of the chosen reference scored again (``rescored``, as before session
35's tidyfit35) and from the choice's own score (``given``), at ``--threads`` torch threads.
Prints each one's median and every round's.

``--compare SRC``: child processes alternate ``SRC`` (another checkout's ``src``, e.g. main's
exported by ``git archive``) and this checkout's ``src``, ``--rounds`` each in a rotated order;
each captures the flagged spectra as above and times ``fit.spectra._solve`` on them (the
F-test: the reference, the choice of its start, the bound, the refit rounds) with the field
off and on, alternated ``--repeat`` times, numpy's BLAS on one thread as in the fit. Prints
each checkout's median CPU seconds off and on, the median on-cost (on - off of the same
repeat), the load, and whether every call of both gave the same fits (a SHA-256 of every
field of the ``BatchedFit`` and the chosen stiffnesses).

Usage: ``PYTHONPATH=src python benchmarks/bench_ftest_two_starts.py [--n 128] [--seed 1]
[--threads 2] [--rounds 10] [--compare SRC --repeat 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path


def flagged(args: argparse.Namespace) -> dict:
    """The flagged spectra's F-test arguments (``fit.spectra._solve``'s) of one fit with the
    field on; exits where none was flagged."""
    # first: OpenMP's passive wait, huge pages and MKL's reproducible mode, as the command
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_fit_engine

    engine_spectra = bench_fit_engine.engine_spectra

    import torch

    from scaloquant.fit import fit_spectra, spectra
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
    return seen


def parts(args: argparse.Namespace) -> None:
    """The reference alone, two solves and the merged solve, alternated (the default)."""
    import numpy as np

    from scaloquant.fit import batched, spectra

    seen = flagged(args)
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
    # the merged solve's rows: each spectrum's two side by side (rows 2 j and 2 j + 1)
    same = all(
        np.array_equal(getattr(both, f)[::2], getattr(first, f))
        and np.array_equal(getattr(both, f)[1::2], getattr(other, f))
        for f in batched.BatchedFit.__dataclass_fields__
    )
    print(f"{b} flagged spectra; merged rows equal the two solves to the bit: {same}")
    reference, score = spectra.lower_reference(x, prepared, cfg, both)

    def rescored():
        return batched.baseline_ftest_bound(x, prepared, cfg, reference)

    def given():
        return batched.baseline_ftest_bound(x, prepared, cfg, reference, score=score)

    print(
        f"the bound from the choice's score equals it rescored: {np.array_equal(rescored(), given())}"
    )
    cpu: dict[str, list[float]] = {k: [] for k in ("one", "two", "merged", "rescored", "given")}
    runs = (
        ("one", one),
        ("two", two),
        ("merged", merged),
        ("rescored", rescored),
        ("given", given),
    )
    for round_ in range(args.rounds):
        for label, run in runs if round_ % 2 == 0 else runs[::-1]:
            t = time.process_time()
            run()
            cpu[label].append(time.process_time() - t)
    for label, values in cpu.items():
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"{label:6s}: median {np.median(values):.3f} CPU-s ({rounds})")


def child(args: argparse.Namespace) -> None:
    """``--compare``'s child: the flagged spectra's F-test off and on, alternated, one JSON
    line per call."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from scaloquant.fit import batched, spectra

    seen = flagged(args)
    solve_args = [seen[k] for k in ("fids", "basis", "cfg", "region", "start")]

    def digest(out) -> str:
        fit, baseline_ed = out
        h = hashlib.sha256()
        for name in sorted(batched.BatchedFit.__dataclass_fields__):
            h.update(name.encode())
            h.update(np.ascontiguousarray(getattr(fit, name)).tobytes())
        h.update(np.ascontiguousarray(baseline_ed).tobytes())
        return h.hexdigest()[:16]

    runs = (("off", None), ("on", seen["also"]))
    for repeat in range(args.repeat):
        for label, also in runs if repeat % 2 == 0 else runs[::-1]:
            load = os.getloadavg()[0]
            with threadpool_limits(limits=1, user_api="blas"):  # as around the whole fit
                t = time.process_time()
                out = spectra._solve(*solve_args, also)
                cpu = time.process_time() - t
            record = {"repeat": repeat, "run": label, "cpu": cpu, "load": load}
            print(json.dumps({**record, "digest": digest(out)}), flush=True)


def compare(args: argparse.Namespace) -> None:
    """Children alternating between ``--compare``'s src and this checkout's."""
    import numpy as np

    here = Path(__file__).resolve()
    sources = {"baseline": Path(args.compare).resolve(), "change": here.parents[1] / "src"}
    cpu: dict[tuple[str, str], list[float]] = {}
    cost: dict[str, list[float]] = {}
    digests: dict[str, set[str]] = {}
    loads: list[float] = []
    for round_ in range(args.rounds):
        order = list(sources.items())
        for label, src in order if round_ % 2 == 0 else order[::-1]:
            cmd = [sys.executable, str(here), "--child", "--n", str(args.n)]
            cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
            cmd += ["--repeat", str(args.repeat)]
            env = dict(os.environ, PYTHONPATH=str(src))
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            calls = [json.loads(line) for line in out.stdout.splitlines()]
            for call in calls:
                cpu.setdefault((label, call["run"]), []).append(call["cpu"])
                digests.setdefault(call["run"], set()).add(call["digest"])
                loads.append(call["load"])
            for repeat in sorted({c["repeat"] for c in calls}):
                on, off = (
                    next(c["cpu"] for c in calls if c["repeat"] == repeat and c["run"] == run)
                    for run in ("on", "off")
                )
                cost.setdefault(label, []).append(on - off)
            shown = ", ".join(f"{c['run']} {c['cpu']:.2f}" for c in calls)
            print(f"round {round_ + 1} {label:8s}: {shown} CPU-s", flush=True)
    for label in sources:
        off, on = (np.median(cpu[(label, run)]) for run in ("off", "on"))
        print(
            f"{label:8s}: off {off:.3f}, on {on:.3f} CPU-s (medians); on - off median "
            f"{np.median(cost[label]):.3f} CPU-s"
        )
    print(f"load {min(loads):.1f}-{max(loads):.1f}")
    for run, found in digests.items():
        print(f"{run}: {'the same fits to the bit in every call' if len(found) == 1 else found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", default=None, help="another checkout's src folder")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
    elif args.compare is not None:
        compare(args)
    else:
        parts(args)


if __name__ == "__main__":
    main()
