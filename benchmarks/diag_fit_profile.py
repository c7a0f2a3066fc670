"""Where one ``fit_spectra`` call's time goes, and a branch's results against another's.

The three runs of ``bench_fit_engine.py`` (default simulator, seed 1, SNR 30: ``invivo`` and
``simulated``; tissue-like spectra of the ``invivo`` simulation preset: ``invivo``), ``--n``
spectra each, 1 torch thread unless ``--threads``.

* ``--profile DIR``: per run a cProfile of the call (``DIR/RUN.pstats``, top functions by own
  time printed) and, with ``--ops``, a ``torch.profiler`` table of the tensor ops with their
  input shapes (``DIR/RUN.ops.txt``).
* ``--device cuda`` fits on the GPU (``--gpu-chunk`` sets ``batched.GPU_CHUNK``); with ``--ops``
  the table is of the CUDA kernels' own time too, and a line says how much of the call's wall
  time the GPU was busy and how many kernels it ran (a fit bound by launches and host work keeps
  the GPU idle most of the time; one bound by the GPU keeps it busy).
* ``--stages``: the process CPU seconds (all threads) of the fit's stages, summed per stage: the
  solves (``batched.solve``: each call's spectra and mean/largest iterations listed, the F-test's
  refits among them), the adaptive rule's screen, the F-test's bound and scores, the result's
  assembly (derived spectra, linewidth, CRLB), water removal and basis preparation (timers
  wrapped around those module functions for the call, then removed; a stage inside another counts
  in both).
* ``--save FILE.npz``: amplitudes, CRLB SDs, residual norms, iterations and CPU seconds of each
  run; ``--compare A.npz B.npz``: per run the amplitude differences in units of A's CRLB SD
  (median, p99, max, and the spectra above 0.05 with their residual norms ``|data - model|``,
  the priors' terms not in them), the MAE against the truth for
  ``simulated``, and the CPU-seconds ratio.

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_profile.py [--n 128] [--runs invivo
simulated tissue] [--threads 1] [--device cuda [--gpu-chunk N]] [--profile DIR [--ops]]
[--stages] [--save FILE.npz]`` or
``... --compare A.npz B.npz``
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import pstats
import time
from dataclasses import replace
from pathlib import Path

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
# and runs, as the command does
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import batched, fit_spectra  # noqa: E402
from scaloquant.fit import spectra as fit_stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402

RUNS = {"invivo": "invivo", "simulated": "simulated", "tissue": "invivo"}


def spectra(n: int, seed: int = 1, snr: float = 30.0):
    """``(basis, {run: (FID, truth)})`` of ``bench_fit_engine.py``'s spectra."""
    basis, signals, fid, tissue_fid = engine_spectra(n, snr, seed)
    return basis, {
        "invivo": (fid, signals.amplitudes),
        "simulated": (fid, signals.amplitudes),
        "tissue": (tissue_fid, None),
    }


def compare(a_path: str, b_path: str) -> None:
    a, b = np.load(a_path), np.load(b_path)
    for run in RUNS:
        if f"{run}_amp" not in a or f"{run}_amp" not in b:
            continue
        amp_a, amp_b, sd = a[f"{run}_amp"], b[f"{run}_amp"], a[f"{run}_sd"]
        z = np.abs(amp_b - amp_a) / np.where(sd > 0, sd, np.inf)
        worst = z.max(-1)
        off = np.flatnonzero(worst > 0.05)
        line = (
            f"{run:10s} |diff|/CRLB SD median {np.median(z):.1e} p99 {np.quantile(z, 0.99):.2g} "
            f"max {z.max():.2g} ({len(off)} spectra > 0.05: {off[:8].tolist()}); "
            f"CPU s {float(a[f'{run}_cpu']):.2f} -> {float(b[f'{run}_cpu']):.2f} "
            f"(x{float(a[f'{run}_cpu'] / b[f'{run}_cpu']):.2f}); iterations "
            f"{a[f'{run}_it'].mean():.1f} -> {b[f'{run}_it'].mean():.1f}"
        )
        if f"{run}_truth" in a:
            t = a[f"{run}_truth"]
            line += f"; MAE {np.abs(amp_a - t).mean():.5f} -> {np.abs(amp_b - t).mean():.5f}"
        print(line)
        for i in off[:8]:
            print(
                f"   spectrum {i}: residual norm |data - model| {a[f'{run}_res'][i]:.6g} -> "
                f"{b[f'{run}_res'][i]:.6g}"
            )


#: The stages ``--stages`` times: (module, function name).
STAGES = (
    (fit_stages, "_without_water"),
    (fit_stages, "_prepared"),
    (fit_stages, "asks_for_flexible_baseline"),
    (fit_stages, "_batched_result"),
    (fit_stages, "_derived_spectra"),
    (fit_stages, "_linewidth_hz"),
    (batched, "solve"),
    (batched, "baseline_ftest_bound"),
    (batched, "baseline_ftest_ssq"),
    (batched, "crlb"),
)


@contextlib.contextmanager
def stage_timers():
    """While open, each of :data:`STAGES` adds its calls' process CPU seconds to the yielded
    ``{name: [calls, CPU s]}``; ``batched.solve`` also appends ``(spectra, mean iterations,
    largest, CPU s)`` of each outermost call to the ``"solve calls"`` entry. Restored on exit."""
    table = collections.defaultdict(lambda: [0, 0.0])
    solves = table["solve calls"] = []
    depth = collections.Counter()

    def timed_stage(module, name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            depth[name] += 1
            cpu = time.process_time()
            try:
                out = fn(*args, **kwargs)
            finally:
                depth[name] -= 1
                cpu = time.process_time() - cpu
                if not depth[name]:  # a solve that sorts its spectra calls itself once
                    entry = table[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"]
                    entry[0] += 1
                    entry[1] += cpu
            if name == "solve" and not depth[name]:
                its = out.iterations
                solves.append((len(its), its.mean(), its.max(), cpu))
            return out

        return wrapper

    saved = [(module, name, getattr(module, name)) for module, name in STAGES]
    try:
        for module, name, fn in saved:
            setattr(module, name, timed_stage(module, name, fn))
        yield table
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def print_stages(table) -> None:
    """The table of :func:`stage_timers`, largest CPU first."""
    solves = table.pop("solve calls")
    for name, (calls, cpu) in sorted(table.items(), key=lambda item: -item[1][1]):
        print(f"  {name:40s} {calls:3d} calls {cpu:7.2f} CPU s")
    for n, mean, largest, cpu in solves:
        print(
            f"  batched.solve of {n:4d} spectra: {cpu:6.2f} CPU s, {mean:5.1f} iterations on "
            f"average, {largest} the most"
        )


def sync() -> None:
    """Wait for the GPU's queued work, so that a timer read after it counts it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ops_table(fid, basis, config, path: Path) -> str:
    """A ``torch.profiler`` run of one ``fit_spectra`` call: its op table by own time (CPU, or
    the CUDA kernels' on a GPU; by name, then by input shape, written to ``path``), returned
    by name; on a GPU with a first line of how busy the GPU was: the kernels' summed time and
    count against the call's wall time."""
    cuda = config.device == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    wall = time.perf_counter()
    with torch.profiler.profile(activities=activities, record_shapes=True) as tp:
        fit_spectra(fid, basis, config)
        sync()
    wall = time.perf_counter() - wall
    averages = tp.key_averages()
    by_name = averages.table(sort_by=sort, row_limit=40, max_name_column_width=40)
    table = tp.key_averages(group_by_input_shape=True).table(
        sort_by=sort, row_limit=60, max_name_column_width=40
    )
    path.write_text(by_name + "\n" + table)
    if not cuda:
        return by_name
    kernels = [e for e in tp.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(e.device_time for e in kernels) / 1e6
    return (
        f"GPU busy {busy:.2f} s of {wall:.2f} s wall under the profiler "
        f"({100 * busy / wall:.0f} %), {len(kernels)} kernels "
        f"({1e6 * busy / max(len(kernels), 1):.1f} us each on average)\n{by_name}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--ops", action="store_true")
    parser.add_argument("--stages", action="store_true", help="CPU seconds per stage")
    parser.add_argument("--save", default=None)
    parser.add_argument("--compare", nargs=2, default=None)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--gpu-chunk", type=int, default=None, help="batched.GPU_CHUNK")
    args = parser.parse_args()
    if args.gpu_chunk:
        batched.GPU_CHUNK = args.gpu_chunk
    if args.compare:
        compare(*args.compare)
        return
    torch.set_num_threads(args.threads)
    basis, data = spectra(args.n)
    saved = {}
    for run in args.runs:
        fid, truth = data[run]
        config = replace(FIT_PRESETS[RUNS[run]], device=args.device)
        fit_spectra(fid.with_samples(fid.samples[:4]), basis, config)  # warm-up
        sync()
        prof = cProfile.Profile() if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        with stage_timers() if args.stages else contextlib.nullcontext() as table:
            result = fit_spectra(fid, basis, config)
            sync()
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{run}: {args.n / wall:.2f} spectra/s wall, {args.n / cpu:.2f} per CPU-s")
        if table is not None:
            print_stages(table)
        saved |= {
            f"{run}_amp": result.amplitudes,
            f"{run}_sd": result.crlb_sd,
            f"{run}_it": np.asarray(result.n_evaluations),
            f"{run}_res": np.asarray(result.residual_norm),
            f"{run}_cpu": cpu,
        }
        if truth is not None and truth.shape == result.amplitudes.shape:
            saved[f"{run}_truth"] = truth
        if prof:
            out = Path(args.profile)
            out.mkdir(parents=True, exist_ok=True)
            prof.dump_stats(out / f"{run}.pstats")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            if args.ops:
                print(ops_table(fid, basis, config, out / f"{run}.ops.txt"))
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
