"""Scalogram speed and memory: scaloquant against ssqueezepy, in one run, on the same signals.

What is compared, per preset (``paper`` 2 x 340 x 1536, ``cpu`` 2 x 128 x 384):

* scaloquant: ``MorseScalogram(ScalogramConfig.preset(name))`` on all signals in one call
  (it chunks internally), float32, on ``--device``.
* ssqueezepy: ``ssqueezepy.cwt`` with ``wavelet=('gmw', {'gamma': 3, 'beta': 20})``, given OUR
  scale vector (same number and values of scales), ``padtype='reflect'``, on the same two real
  channels (``Re s`` and ``Im s`` of the first 1536 points of each FID), followed by ``np.abs``:
  the same output as ``abs_re_im``. ssqueezepy cannot decimate, so at the ``cpu`` preset it
  computes the full 1536 columns and keeps every 4th (what a user of it would have to do).
  It is called one real signal at a time, its fastest mode here (a batched 2-D call was 2-3x
  slower in our trials); its filters are built once (a ``Wavelet`` object is reused).
  ssqueezepy pads 1536 points to 4096 (its own rule), we pad to 3072 (MATLAB's): that
  difference is part of what is measured.

The signals: the first ``--n-signals`` of a seeded simulation from the embedded ISMRM 2016 basis
(``scaloquant.io.default_basis`` + ``scaloquant.simulate.simulate_batch``, paper defaults).

Each (tool, preset) runs in a fresh worker process, so peak memory is that worker's peak RSS
(``ru_maxrss``) minus its RSS once imports are done and the signals loaded (filters, warm-up,
working memory and the output array all count; the output's own size is printed beside); speed is
signals per second over the whole set, best of ``--repeats`` passes after one warm-up pass on 8
signals. After timing (and after the peak is read), scaloquant's output on signal 0 is checked
against the float64 reference (:func:`scaloquant.scalogram.reference_scalogram`); ssqueezepy's
only for shape.

Threads: both workers get ``--threads`` (torch intra-op / MKL threads; scipy.fft workers and
numba follow ``OMP_NUM_THREADS``). On a machine shared with other busy processes, libgomp's
default spin-waiting makes every multi-threaded torch op wait for a descheduled partner thread:
we measured the ``cpu`` preset at 25 signals/s with the default policy and 557/s with
``OMP_WAIT_POLICY=PASSIVE`` in the same minute (2 threads, load average 4). On an idle machine
the opposite holds (paper size 191 vs 108 signals/s, load average 1): so the benchmark leaves the
policy at its default unless told (``--omp-wait-policy passive`` on a busy machine); it applies
the same policy to both workers and prints the load average so runs can be compared.

Run: ``python benchmarks/bench_scalogram.py [--threads 2] [--n-signals 256] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PRESETS = ("paper", "cpu")
TOOLS = ("scaloquant", "ssqueezepy")


def _rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_signals(n_signals: int, seed: int) -> np.ndarray:
    from scaloquant.io import default_basis
    from scaloquant.simulate import SimulationConfig, simulate_batch

    basis = default_basis()
    rng = np.random.default_rng(seed)
    return simulate_batch(basis, SimulationConfig(), n_signals, rng).fids


def worker(
    tool: str,
    preset: str,
    overrides: dict,
    signals_path: Path,
    threads: int,
    repeats: int,
    device: str,
) -> dict:
    import torch

    from scaloquant.scalogram import (
        MorseScalogram,
        ScalogramConfig,
        reference_scalogram,
        scales,
    )

    torch.set_num_threads(threads)
    config = ScalogramConfig.preset(preset, **overrides)
    fids = np.load(signals_path)
    first = fids[:, : config.n_points]
    before = _rss_mb()  # imports and signals; everything after counts, warm-up included

    if tool == "scaloquant":
        module = MorseScalogram(config).to(device)
        batch = torch.from_numpy(fids).to(torch.complex64).to(device)

        def run(n):
            out = module(batch[:n])
            if device != "cpu":
                torch.cuda.synchronize()
            return out

        def check():
            got = run(1)[0].cpu().numpy()
            ref = reference_scalogram(fids[0], config)
            return float(np.abs(got - ref).max() / np.abs(ref).max())
    else:
        import ssqueezepy

        wavelet = ssqueezepy.Wavelet(("gmw", {"gamma": 3, "beta": 20}), dtype="float32")
        row_scales = scales(config).astype(np.float32)
        real_channels = np.stack([first.real, first.imag], axis=1).astype(np.float32)

        def run(n):
            out = np.empty((n, 2, config.n_scales, config.n_time), np.float32)
            for i in range(n):
                for c in range(2):
                    coeffs, _ = ssqueezepy.cwt(
                        real_channels[i, c], wavelet=wavelet, scales=row_scales, padtype="reflect"
                    )
                    out[i, c] = np.abs(coeffs[:, :: config.decimation])
            return out

        def check():
            # Different padding (4096 points): not expected to match the MATLAB reference.
            assert run(1)[0].shape == config.output_shape
            return float("nan")

    run(min(8, len(fids)))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run(len(fids))
        best = min(best, time.perf_counter() - start)
    peak_mb = _peak_rss_mb() - before
    if tool == "scaloquant" and device != "cpu":  # GPU memory is what is bounded there
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    error = check()  # after the peak is taken: the float64 reference is large
    return {
        "tool": tool,
        "preset": preset,
        "shape": list(config.output_shape),
        "signals_per_s": len(fids) / best,
        "peak_mb": peak_mb,
        "output_mb": len(fids) * np.prod(config.output_shape) * 4 / 2**20,
        "rel_error_vs_reference": error,
        "threads": threads,
        "device": device,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-signals", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch / FFT threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--device", default="cpu", help="device for scaloquant (cpu, cuda)")
    parser.add_argument("--skip-peer", action="store_true", help="time scaloquant only")
    parser.add_argument(
        "--variants",
        default="",
        help="extra scaloquant-only sizes to time, as SCALESxDECIMATION list, e.g. 96x4,128x2",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=("passive", "active", "default"),
        default="default",
        help="OMP_WAIT_POLICY for both workers (see the module docstring)",
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--worker", nargs=3, metavar=("TOOL", "PRESET", "JSON"), help=argparse.SUPPRESS
    )
    parser.add_argument("--signals", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        tool, preset, overrides = args.worker
        result = worker(
            tool,
            preset,
            json.loads(overrides),
            args.signals,
            args.threads,
            args.repeats,
            args.device,
        )
        print(json.dumps(result))
        return 0

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if args.omp_wait_policy != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    tools = ("scaloquant",) if args.skip_peer else TOOLS
    runs = [(preset, tool, {}) for preset in args.presets.split(",") for tool in tools]
    for variant in filter(None, args.variants.split(",")):
        n_scales, decimation = (int(v) for v in variant.split("x"))
        runs.append(("cpu", "scaloquant", {"n_scales": n_scales, "decimation": decimation}))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        signals_path = Path(tmp) / "signals.npy"
        np.save(signals_path, make_signals(args.n_signals, args.seed))
        print(
            f"{args.n_signals} signals simulated from the embedded basis (seed {args.seed}); "
            f"{args.threads} thread(s), OMP_WAIT_POLICY {args.omp_wait_policy}; best of "
            f"{args.repeats} passes; load average {os.getloadavg()[0]:.1f} at start; "
            "peak = worker peak RSS minus RSS before timing, of which the output array is in ()"
        )
        for preset, tool, overrides in runs:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                tool,
                preset,
                json.dumps(overrides),
                "--signals",
                str(signals_path),
                "--threads",
                str(args.threads),
                "--repeats",
                str(args.repeats),
                "--device",
                args.device,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            r = json.loads(done.stdout.strip().splitlines()[-1])
            if not overrides:
                results[tool, preset] = r
            label = preset if not overrides else "variant"
            error = r["rel_error_vs_reference"]
            print(
                f"  {label:7s} {tool:11s} {tuple(r['shape'])!s:16s} {r['signals_per_s']:8.1f} "
                f"signals/s, peak +{r['peak_mb']:7.1f} MB ({r['output_mb']:.1f} MB)"
                + ("" if np.isnan(error) else f", rel. error vs float64 reference {error:.1e}"),
                flush=True,
            )
    if not args.skip_peer:
        print("ratio scaloquant / ssqueezepy (signals/s):")
        for preset in args.presets.split(","):
            ours = results["scaloquant", preset]["signals_per_s"]
            theirs = results["ssqueezepy", preset]["signals_per_s"]
            print(f"  {preset:6s} {ours / theirs:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
