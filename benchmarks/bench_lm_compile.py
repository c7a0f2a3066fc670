"""Does ``torch.compile`` (CPU, inductor) lower the cost of one Levenberg-Marquardt iteration
of the in-vivo default fit? Eager and compiled in the same process, alternated.

For each ``--sizes`` batch (1 spectrum; 13, as many as the F-test refits of the 128
default-simulator spectra; 64, a chunk) a fit of that many default-simulator spectra (seed 1,
SNR 30; ``bench_fit_engine.py``'s ``invivo`` row, ``FIT_PRESETS["invivo"]``, 1 torch thread)
is run once eager, recording the arguments of every
:func:`~scaloquant.fit.lm.levenberg_marquardt` call (as ``bench_lm_small.py`` does). Then the
library functions named by ``--targets`` (:data:`TARGETS`) are replaced by ``torch.compile`` of
themselves (``--dynamic``: its ``dynamic``; ``--suppress-errors``: a frame dynamo fails on runs
eager) in the modules that call them, and the script prints

1. the compile: the wall and thread CPU seconds of the first compiled replay of each size
   and of the second (a new shape compiles again; the inductor cache is
   ``TORCHINDUCTOR_CACHE_DIR``, so a second process with the same directory shows the on-disk
   cache's effect; inductor's C++ builds run in worker processes, so wall is the figure), the
   graphs compiled and graph breaks met, and with ``--explain`` (``--explain-only``: nothing
   else) each target's graphs, breaks and their reasons (``torch._dynamo.explain`` on its
   first call in the first recorded LM call of the largest size);
2. the answers: the compiled replay's ``theta``, cost and amplitudes against the eager
   replay's (largest relative difference), the LM runs whose iteration counts differ, and
   whether the bits are the same;
3. the cost: ``--rounds`` rounds, eager and compiled alternated (order rotated), each the
   replay of every recorded call ``--repeat`` times: thread CPU milliseconds per LM iteration
   (over the largest ``iterations`` of each call, as ``bench_lm_small.py``), load printed.

With ``--fit N`` also the whole fit of ``N`` spectra (``fit_spectra``, the in-vivo preset), eager
and compiled alternated ``--fit-rounds`` times (after the replays: compiled already): spectra/s
of wall and of process CPU, and how many amplitudes, CRLB SDs and evaluation counts differ.

Usage: ``PYTHONPATH=src python benchmarks/bench_lm_compile.py [--sizes 1 13 64]
[--targets normal_equations step nnls] [--dynamic auto|true|false] [--rounds 4] [--repeat 2]
[--explain | --explain-only] [--suppress-errors] [--fit 128 --fit-rounds 4]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scaloquant.threads import prefer_command_settings

# before torch initialises OpenMP and allocates, as the scaloquant command does
prefer_command_settings()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import batched, evaluation, fit_spectra, search, stages  # noqa: E402
from scaloquant.fit import lm as fit_lm  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.physics import model as physics_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fit_engine  # noqa: E402

#: The library functions that can be compiled, by the name ``--targets`` takes: each is
#: ``(module that defines it, name, modules whose global of that name is replaced too)``.
TARGETS = {
    # the data's normal equations J^T J, gradient, Kaufman's Schur complement (per accepted step)
    "normal_equations": [(fit_lm, "_data_normal_equations", ())],
    # the step: priors, held parameters, the damped solve, the projection, the LM rules
    "step": [
        (fit_lm, "_with_priors", ()),
        (fit_lm, "_held", ()),
        (fit_lm, "_trial", ()),
        (fit_lm, "_judged", ()),
    ],
    # the non-negative amplitudes (block principal pivoting, a data-dependent loop)
    "nnls": [(evaluation, "nnls_gram", ())],
    # the model columns (modulated FIDs, scipy's FFT, the phase)
    "columns": [(evaluation, "columns", ())],
    # the modulated FIDs alone (complex ramps, Gaussian factor)
    "modulated_fids": [(physics_model, "modulated_fids", (evaluation,))],
    # the derivative columns (more FFTs, the compact Jacobian)
    "derivatives": [(evaluation, "_derivative_columns", ())],
    # one whole evaluation (columns, whitening, Gram, amplitudes, residual, cost)
    "evaluate": [(evaluation, "evaluate", (fit_lm,))],
    # the whole LM run, with whatever graph breaks dynamo finds
    "lm": [(fit_lm, "levenberg_marquardt", (batched, search, stages))],
}


def copied(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def spectra(n: int):
    basis, _, fid, _ = bench_fit_engine.engine_spectra(n, 30.0, 1)
    return basis, fid


def record_calls(n: int) -> list:
    """The ``levenberg_marquardt`` calls of one in-vivo default fit of ``n`` spectra."""
    basis, fid = spectra(n)
    calls = []
    original = fit_lm.levenberg_marquardt

    def recording(*a, **kw):
        calls.append(([copied(v) for v in a], {k: copied(v) for k, v in kw.items()}))
        return original(*a, **kw)

    modules = (batched, search, stages)
    for module in modules:
        module.levenberg_marquardt = recording
    try:
        fit_spectra(fid, basis, FIT_PRESETS["invivo"])
    finally:
        for module in modules:
            module.levenberg_marquardt = original
    return calls


def replay(calls: list) -> list:
    return [
        fit_lm.levenberg_marquardt(*[copied(v) for v in a], **{k: copied(v) for k, v in kw.items()})
        for a, kw in calls
    ]


class Compiled:
    """The ``targets``' functions swapped between their eager and compiled versions."""

    def __init__(self, targets: list[str], dynamic: bool | None) -> None:
        self.swaps = []  # (module, name, eager, compiled)
        for target in targets:
            for module, name, users in TARGETS[target]:
                eager = getattr(module, name)
                compiled = torch.compile(eager, dynamic=dynamic)
                for where in (module, *users):
                    self.swaps.append((where, name, eager, compiled))

    def use(self, on: bool) -> None:
        for module, name, eager, compiled in self.swaps:
            setattr(module, name, compiled if on else eager)


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    scale = a.abs().amax().clamp_min(1e-300)
    return float((a - b).abs().amax() / scale)


def compare_solutions(eager: list, compiled: list) -> str:
    theta = max(rel_diff(e.theta, c.theta) for e, c in zip(eager, compiled, strict=True))
    cost = max(
        rel_diff(e.evaluation.cost, c.evaluation.cost) for e, c in zip(eager, compiled, strict=True)
    )
    amps = max(
        rel_diff(e.evaluation.amplitudes, c.evaluation.amplitudes)
        for e, c in zip(eager, compiled, strict=True)
    )
    iters = sum(
        int((e.iterations != c.iterations).sum()) for e, c in zip(eager, compiled, strict=True)
    )
    total = sum(e.iterations.numel() for e in eager)
    same = all(
        torch.equal(e.theta, c.theta) and torch.equal(e.evaluation.cost, c.evaluation.cost)
        for e, c in zip(eager, compiled, strict=True)
    )
    return (
        f"theta max rel diff {theta:.1e}, cost {cost:.1e}, amplitudes {amps:.1e}, "
        f"iterations differ in {iters} of {total} runs" + (" (identical bits)" if same else "")
    )


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else ""


def explain(targets: list[str], calls: list) -> None:
    """Graphs and graph breaks of each target function on its first call of ``calls``."""
    for target in targets:
        for module, name, _ in TARGETS[target]:
            fn = getattr(module, name)
            seen: list = []

            def spy(*a, _fn=fn, seen=seen, **kw):
                if not seen:
                    seen.append(([copied(v) for v in a], {k: copied(v) for k, v in kw.items()}))
                return _fn(*a, **kw)

            setattr(module, name, spy)
            users = [u for m, n, us in TARGETS[target] if n == name for u in us]
            for u in users:
                setattr(u, name, spy)
            try:
                replay(calls[:1])
            finally:
                setattr(module, name, fn)
                for u in users:
                    setattr(u, name, fn)
            if not seen:
                print(f"  {name}: not called")
                continue
            a, kw = seen[0]
            torch._dynamo.reset()
            try:
                out = torch._dynamo.explain(fn)(*a, **kw)
            except Exception as error:  # dynamo's own failures are a result here
                print(f"  {name}: dynamo failed: {type(error).__name__}: {first_line(error)}")
                continue
            reasons = {}
            for r in out.break_reasons:
                key = r.reason.splitlines()[0][:110]
                reasons[key] = reasons.get(key, 0) + 1
            print(
                f"  {name}: {out.graph_count} graphs, {out.graph_break_count} graph breaks, "
                f"{out.op_count} ops in graphs"
            )
            for key, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:8]:
                print(f"    {count} x {key}")
    torch._dynamo.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 13, 64])
    parser.add_argument("--targets", nargs="+", default=["normal_equations"])
    parser.add_argument("--dynamic", choices=["auto", "true", "false"], default="auto")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--explain-only", action="store_true", help="--explain, nothing timed")
    parser.add_argument(
        "--suppress-errors",
        action="store_true",
        help="torch._dynamo.config.suppress_errors: a frame dynamo fails on runs eager",
    )
    parser.add_argument("--fit", type=int, default=0)
    parser.add_argument("--fit-rounds", type=int, default=2)
    args = parser.parse_args()
    dynamic = {"auto": None, "true": True, "false": False}[args.dynamic]
    torch._dynamo.config.suppress_errors = args.suppress_errors
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, 1 thread, targets {args.targets}, dynamic={args.dynamic}, "
        f"suppress_errors={args.suppress_errors}, "
        f"cache {os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    recorded = {n: record_calls(n) for n in args.sizes}
    if args.explain or args.explain_only:
        print("graphs and breaks (first call of the largest size):")
        explain(args.targets, recorded[max(args.sizes)])
        if args.explain_only:
            return
    eager_out = {n: replay(calls) for n, calls in recorded.items()}  # also the warm-up
    loops = {n: sum(int(s.iterations.max()) for s in out) for n, out in eager_out.items()}
    swap = Compiled(args.targets, dynamic)
    swap.use(True)
    compiled_out = {}
    for n, calls in recorded.items():
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            compiled_out[n] = replay(calls)
        except Exception as error:
            print(f"n={n:3d} compiled replay failed: {type(error).__name__}: {first_line(error)}")
            return
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        wall2 = time.perf_counter()
        replay(calls)
        wall2 = time.perf_counter() - wall2
        print(
            f"n={n:3d} first compiled replay {wall:.2f} s wall ({cpu:.2f} s thread CPU; the "
            f"second {wall2:.3f} s): {len(calls)} LM calls, {loops[n]} iterations"
        )
        print(f"        compiled against eager: {compare_solutions(eager_out[n], compiled_out[n])}")
    swap.use(False)
    stats = torch._dynamo.utils.counters
    print(
        f"dynamo: {stats['stats'].get('unique_graphs', 0)} "
        f"graphs compiled, {sum(stats['graph_break'].values())} graph breaks met"
    )
    ms: dict[tuple[int, str], list[float]] = {}
    for round_ in range(args.rounds):
        order = [False, True] if round_ % 2 == 0 else [True, False]
        for on in order:
            swap.use(on)
            label = "compiled" if on else "eager"
            for n, calls in recorded.items():
                cpu = time.thread_time()
                for _ in range(args.repeat):
                    replay(calls)
                cpu = time.thread_time() - cpu
                ms.setdefault((n, label), []).append(1e3 * cpu / (args.repeat * loops[n]))
            swap.use(False)
        print(f"round {round_ + 1} done, load {os.getloadavg()[0]:.1f}")
    for n in args.sizes:
        e, c = ms[(n, "eager")], ms[(n, "compiled")]
        wins = sum(ci < ei for ei, ci in zip(e, c, strict=True))
        print(
            f"n={n:3d} ms thread CPU per LM iteration: eager median {np.median(e):.3f} "
            f"({min(e):.3f}-{max(e):.3f}), compiled {np.median(c):.3f} ({min(c):.3f}-{max(c):.3f}); "
            f"compiled lower in {wins} of {len(e)} rounds"
        )
    if args.fit:
        fit_compare(args.fit, swap, args.fit_rounds)


def fit_compare(n: int, swap: Compiled, rounds: int) -> None:
    """The whole in-vivo default fit of ``n`` spectra, eager and compiled alternated."""
    basis, fid = spectra(n)
    results = {}
    for round_ in range(rounds):
        for on in [False, True] if round_ % 2 == 0 else [True, False]:
            swap.use(on)
            wall, cpu = time.perf_counter(), time.process_time()  # the fit's chunk threads too
            result = fit_spectra(fid, basis, FIT_PRESETS["invivo"])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            swap.use(False)
            label = "compiled" if on else "eager"
            results[label] = result
            print(
                f"fit of {n} ({label:8s}): {n / wall:.2f} spectra/s wall, {n / cpu:.2f} per "
                f"process CPU-s (load {os.getloadavg()[0]:.1f})"
            )
    e, c = results["eager"], results["compiled"]
    for field in ("amplitudes", "crlb_sd", "n_evaluations"):
        a, b = getattr(e, field, None), getattr(c, field, None)
        if a is None:
            continue
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        scale = max(np.nanmax(np.abs(a)), 1e-300)
        print(
            f"  {field}: max |diff| / max |eager| {np.nanmax(np.abs(a - b)) / scale:.1e}, "
            f"{int(np.sum(a != b))} of {a.size} differ"
        )


if __name__ == "__main__":
    main()
