"""Where the time of ``scaloquant reproduce`` goes: wall and CPU time of each stage (issue 13,
the quick preset's 5-minute budget).

Runs :func:`scaloquant.reproduce.reproduce` in this process, as ``scaloquant reproduce --preset
PRESET --out DIR`` does (same defaults, torch's own thread count unless ``--threads``), and
times each stage between two of its log lines (simulation, each model's training, each model's
prediction per SNR, the fit per SNR, the evaluation and report) by the wall clock and by this
process's CPU time (all its threads, :func:`time.process_time`) and, at the end of the
trainings' stage, its worker processes' (``reproduce.TRAIN_IN_PROCESSES``). Prints, per stage, wall s, CPU
s and CPU/wall; the run's own ``wall_times_s`` from ``metrics.json``; the physics models'
training steps (from their checkpoints); the load average before and after (other jobs on the
machine stretch the wall times, not the CPU times), and the peak memory.

Usage: ``python benchmarks/bench_reproduce.py [--preset quick] [--out DIR] [--snr inf]
[--seed 0] [--threads N] [--sequential] [--trainings-in-this-process]``
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path

from scaloquant.threads import prefer_command_settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick")
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default: a temporary one)"
    )
    p.add_argument("--snr", default="inf", help="SNRs as reproduce's --snr (default: inf)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="the physics models' polish and the fit one after the other (reproduce.SIDE_BY_SIDE "
        "False) instead of side by side",
    )
    p.add_argument(
        "--trainings-in-this-process",
        action="store_true",
        help="the regression CNNs one after the other in this process, then the physics "
        "models side by side in threads (reproduce.TRAIN_IN_PROCESSES False) instead of the "
        "four side by side in processes of their own",
    )
    args = p.parse_args()
    # as the CLI does, before torch loads (scaloquant.threads): OpenMP threads that spin while
    # waiting cost up to 10 times the time on a machine shared with other jobs
    prefer_command_settings()
    import torch

    from scaloquant import reproduce as reproduce_module
    from scaloquant.models.checkpoint import CHECKPOINT_KEY, read_checkpoint
    from scaloquant.reproduce import PHYSICS_MODELS, parse_snrs, reproduce

    reproduce_module.SIDE_BY_SIDE = not args.sequential
    reproduce_module.TRAIN_IN_PROCESSES = not args.trainings_in_this_process

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_reproduce_")) / "run"
    marks: list[tuple[str, float, float]] = []

    def cpu_s() -> float:
        # this process and its ended worker processes (run_in_processes waits for them)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def log(line: str) -> None:
        marks.append((line, time.perf_counter(), cpu_s()))
        print(f"[{marks[-1][1] - marks[0][1]:7.1f} s] {line}", flush=True)

    load_before = os.getloadavg()
    t0, c0 = time.perf_counter(), cpu_s()
    result = reproduce(
        args.preset,
        out,
        seed=args.seed,
        snrs=parse_snrs(args.snr),
        overwrite=True,
        progress=False,
        log=log,
    )
    t1, c1 = time.perf_counter(), cpu_s()
    load_after = os.getloadavg()

    # stages: from one log line to the next (a training's own lines, "<model>: ...", are
    # merged into its stage)
    stages: dict[str, list[float]] = {}
    models = (*reproduce_module.MODELS, *PHYSICS_MODELS)
    bounds = [m for m in marks if m[0].split(": ")[0] not in models] + [("end", t1, c1)]
    for (line, tw, tc), (_, nw, nc) in zip(bounds, bounds[1:], strict=False):
        key = line.split(" (")[0]
        wall_cpu = stages.setdefault(key, [0.0, 0.0])
        wall_cpu[0] += nw - tw
        wall_cpu[1] += nc - tc
    print(f"\n{'stage':62s} {'wall s':>8s} {'CPU s':>8s} {'CPU/wall':>8s}")
    for key, (w, c) in stages.items():
        print(f"{key:62s} {w:8.1f} {c:8.1f} {c / w if w > 0 else math.nan:8.2f}")
    print(f"{'total':62s} {t1 - t0:8.1f} {c1 - c0:8.1f} {(c1 - c0) / (t1 - t0):8.2f}")
    print("\nwall_times_s (metrics.json):")
    for key, value in result.wall_times_s.items():
        print(f"  {key:40s} {value:8.1f}")
    for model in PHYSICS_MODELS:
        meta = read_checkpoint(out / "models" / f"{model}.ckpt")[CHECKPOINT_KEY]
        training = meta.get("training", {})
        print(
            f"{model}: {training.get('steps')} training steps in "
            f"{training.get('wall_time_s', math.nan):.1f} s, best val loss "
            f"{training.get('best_val_loss', math.nan):.4g}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"{'sequential' if args.sequential else 'side by side'}"
        f"{', trainings in this process' if args.trainings_in_this_process else ''}; "
        f"threads {torch.get_num_threads()}, load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f} (1 min); peak memory {peak:.0f} MB (largest worker process {peak_worker:.0f} MB); output {out}"
    )


if __name__ == "__main__":
    main()
