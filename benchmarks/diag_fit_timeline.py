"""Where the in-vivo default's wall time goes on ``bench_fit_engine.py``'s 128 default-simulator
spectra, thread by thread, stage by stage and spectrum by spectrum (docs/history/fit-log.md
"The F-test's refit rounds in one solve (session 31, speed31)").

Fits ``bench_fit_engine.py``'s spectra (default simulator, seed ``--seed``, SNR 30; ``--run
tissue``: the tissue-like ``invivo`` simulation of the same seed) with ``FIT_PRESETS["invivo"]``
at ``--threads`` torch threads (2: the fixed fit's two chunks side by side, as the command), a
warm-up call first, then ``--rounds`` timed calls. Every Levenberg–Marquardt iteration is
stamped (``lm._judged`` wrapped: wall clock, thread, spectra still running) and so are the
stages on the caller's thread (``batched.solve``, the adaptive rule's screen, the results, the
F-test's bound and scores). Printed per call:

* the wall time, the process CPU time and the cores' idle share (2 x wall - CPU at 2 threads);
* the stages in the order they ran, each with its wall seconds (the path of the call: the
  fixed fit's chunks side by side, then the screen, the results and the F-test on the caller's
  thread) and, for the fixed fit, when each chunk's thread ended its last iteration;
* the iterations by the number of spectra still running in them: count, wall seconds, median
  ms, for the fixed fit (two threads) and for the F-test's solves (one): what an iteration
  costs with 1, 2-3, ... spectra left, so what the tails cost;
* the flagged spectra's iterations in each of the F-test's solves (reference, refit rounds;
  from one more call with the rounds one solve each, as before session 31):
  each solve runs as long as its slowest spectrum, so the loop iterations are the sum of the
  solves' maxima, where a schedule that started each spectrum's next solve as soon as its last
  ended would need the largest sum over one spectrum's solves (a bound, not a design: the
  solves' problems differ).

``--speculate R``: the F-test's two refit rounds as they ran until session 31 (one solve a
round) against one solve of round 1's refits and both refits round 2 may ask of each (one
candidate stiffer if it passes, one more flexible if it fails; what
:func:`scaloquant.fit.spectra._solve` does since session 31), alternated ``R`` times on one
thread (as both run: fewer than 64 spectra), wall and thread CPU seconds. Every refit starts
from the reference, so a refit is the same in any round and company: the merged solve's rows
that round 2 used are checked against round 2's own, to the bit.

No library code changes; the timers are removed after each call. Wall times on a shared
machine carry the other jobs' load (printed).

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_timeline.py [--n 128] [--seed 1]
[--run invivo|tissue] [--threads 2] [--rounds 2] [--speculate 4]``
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import threading
import time

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import batched, fit_spectra, lm, stages  # noqa: E402
from scaloquant.fit import spectra as fit_stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402

#: The stages stamped on the caller's thread: (module, function name, label).
STAGES = (
    (batched, "solve", "solve"),
    (fit_stages, "asks_for_flexible_baseline", "screen"),
    (fit_stages, "_batched_result", "results"),
    (batched, "baseline_ftest_bound", "F-test bound"),
    (batched, "baseline_ftest_ssq", "F-test score"),
)

#: Spectra-running bins of the iteration table.
BINS = ((1, 1), (2, 3), (4, 8), (9, 16), (17, 32), (33, 64), (65, 1 << 30))


class Timeline:
    """While installed, stamps every LM iteration and the :data:`STAGES`' calls."""

    def __init__(self, fids: np.ndarray) -> None:
        self.rows = {fids[i].tobytes(): i for i in range(fids.shape[0])}
        self.iterations: list[tuple[float, int, int]] = []  # (wall, thread, running)
        self.runs: list[tuple[float, int]] = []  # an LM run's start: (wall, thread)
        self.stages: list[tuple[str, float, float, object]] = []  # (label, start, end, info)
        self.solves: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, iterations)
        self._saved = [(module, name, getattr(module, name)) for module, name, _ in STAGES]
        self._judged = lm._judged
        self._solver = batched.levenberg_marquardt
        self._depth: collections.Counter = collections.Counter()

    def install(self) -> None:
        judged = self._judged

        def stamped_judged(cost, *args, **kwargs):
            self.iterations.append((time.perf_counter(), threading.get_ident(), cost.shape[0]))
            return judged(cost, *args, **kwargs)

        def stamped_run(*args, **kwargs):
            self.runs.append((time.perf_counter(), threading.get_ident()))
            return self._solver(*args, **kwargs)

        lm._judged = stamped_judged
        batched.levenberg_marquardt = stages.levenberg_marquardt = stamped_run
        for (module, name, fn), (_, _, label) in zip(self._saved, STAGES, strict=True):
            setattr(module, name, self._stamped(label, fn))

    def _stamped(self, label: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            self._depth[label] += 1
            start = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                self._depth[label] -= 1
            if self._depth[label]:  # a solve that sorts its spectra calls itself once
                return out
            info = None
            if label == "solve":
                fids = args[0]
                rows = np.array([self.rows.get(f.tobytes(), -1) for f in fids])
                self.solves.append((rows, np.asarray(out.iterations)))
                info = len(rows)
            elif label == "screen":
                info = int(np.count_nonzero(out))
            self.stages.append((label, start, time.perf_counter(), info))
            return out

        return wrapper

    def remove(self) -> None:
        lm._judged = self._judged
        batched.levenberg_marquardt = stages.levenberg_marquardt = self._solver
        for module, name, fn in self._saved:
            setattr(module, name, fn)


def iteration_walls(tl: Timeline, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``(wall s, spectra running)`` of each iteration stamped within ``[lo, hi]``: from its
    thread's previous stamp, or for a run's first iteration from the run's start (so it holds
    the run's first evaluation too)."""
    events = collections.defaultdict(list)
    for t, thread, n in tl.iterations:
        if lo <= t <= hi:
            events[thread].append((t, 1, n))
    for t, thread in tl.runs:
        if lo <= t <= hi:
            events[thread].append((t, 0, 0))
    walls, running = [], []
    for stamps in events.values():
        last = None
        for t, kind, n in sorted(stamps):
            if kind == 1 and last is not None:
                walls.append(t - last)
                running.append(n)
            last = t
    return np.array(walls), np.array(running)


def iteration_table(tl: Timeline, lo: float, hi: float, model: bool) -> list[str]:
    """The iterations within ``[lo, hi]`` by spectra running: count, wall s, median ms; with
    ``model`` the least-squares line ``wall = a + b x running`` (one thread: what an
    iteration costs whatever its spectra, and what each adds)."""
    dt, n = iteration_walls(tl, lo, hi)
    if not dt.size:
        return []
    lines = []
    for a, b in BINS:
        m = (n >= a) & (n <= b)
        if m.any():
            label = f"{a}" if a == b else (f"{a}-{b}" if b < 1 << 30 else f">= {a}")
            lines.append(
                f"      {label:>7s} running: {m.sum():4d} iterations, {dt[m].sum():6.3f} s, "
                f"median {1e3 * np.median(dt[m]):5.1f} ms"
            )
    lines.append(f"      all: {dt.size} iterations, {dt.sum():.3f} s")
    if model:
        a, b = np.linalg.lstsq(np.stack([np.ones_like(n), n], 1).astype(float), dt, rcond=None)[0]
        lines.append(
            f"      an iteration ~ {1e3 * a:.2f} ms + {1e3 * b:.2f} ms a spectrum running "
            f"(least squares): {a * dt.size:.3f} s of the {dt.sum():.3f} s the first term"
        )
    return lines


def report(tl: Timeline, t0: float, wall: float, cpu: float, threads: int) -> None:
    print(
        f"  wall {wall:.3f} s, CPU {cpu:.3f} s, {threads} threads: cores idle "
        f"{max(threads * wall - cpu, 0.0):.3f} core-s ({100 * (1 - cpu / (threads * wall)):.0f} %)"
    )
    solves = [s for s in tl.stages if s[0] == "solve"]
    for label, start, end, info in sorted(tl.stages, key=lambda s: s[1]):
        extra = ""
        if label == "solve":
            extra = f" ({info} spectra)"
        elif label == "screen":
            extra = f" ({info} flagged)"
        print(f"    {start - t0:6.3f} -> {end - t0:6.3f} s  {end - start:6.3f} s  {label}{extra}")
    if not solves:
        return
    fixed = solves[0]
    ends = collections.defaultdict(float)
    for t, thread, _ in tl.iterations:
        if fixed[1] <= t <= fixed[2]:
            ends[thread] = max(ends[thread], t)
    print(
        "    the fixed fit's threads end their last iteration at "
        + ", ".join(f"{t - t0:.3f}" for t in sorted(ends.values()))
        + " s"
    )
    print("    iterations of the fixed fit (its chunks side by side):")
    print("\n".join(iteration_table(tl, fixed[1], fixed[2], model=False)))
    if len(solves) > 1:
        print("    iterations of the F-test's solves (the caller's thread):")
        print("\n".join(iteration_table(tl, solves[1][1], solves[-1][2], model=True)))


def chains(tl: Timeline) -> None:
    """The flagged spectra's iterations per F-test solve, and the loop iterations' bound."""
    if len(tl.solves) < 2:
        print("  no spectrum flagged: no F-test")
        return
    flagged = tl.solves[1][0]
    table = {int(r): [] for r in flagged}
    for rows, its in tl.solves[1:]:
        for r, k in zip(rows, its, strict=True):
            table[int(r)].append(int(k))
    print("  flagged spectrum: iterations in the F-test's solves (reference, refit rounds)")
    for r, its in table.items():
        print(f"    {r:4d}: {its} = {sum(its)}")
    maxima = [int(its.max()) for _, its in tl.solves[1:]]
    print(
        f"  loop iterations: the solves' maxima {maxima} = {sum(maxima)}; the largest sum over "
        f"one spectrum {max(sum(v) for v in table.values())}"
    )


def refit_calls(fid, basis, config) -> list[tuple]:
    """The F-test's refit rounds of one ``fit_spectra`` call, one solve a round (as before
    session 31 merged them): ``(args, kwargs, fit)`` of each ``batched.solve`` with a
    stiffness per spectrum."""
    calls, solver, depth = [], batched.solve, [0]

    def recorded(*args, **kwargs):
        depth[0] += 1
        try:
            out = solver(*args, **kwargs)
        finally:
            depth[0] -= 1
        # the outermost call (a solve that sorts its spectra by stiffness calls itself)
        if kwargs.get("baseline_ed_per_ppm") is not None and not depth[0]:
            calls.append((args, kwargs, out))
        return out

    batched.solve = recorded
    try:
        with rounds_one_at_a_time():
            fit_spectra(fid, basis, config)
    finally:
        batched.solve = solver
    return calls


@contextlib.contextmanager
def rounds_one_at_a_time():
    """While open, the F-test's refit rounds run one solve a round, as before session 31
    (which solves two rounds at once, ``spectra._FtestSearch.next_pairs``); a checkout
    without it is left alone."""
    search = getattr(fit_stages, "_FtestSearch", None)
    if search is None:
        yield
        return
    ahead = search.next_pairs
    search.next_pairs = lambda self, rows, k: []
    try:
        yield
    finally:
        search.next_pairs = ahead


def speculate(fid, basis, config, rounds: int) -> None:
    """``--speculate``: the two refit rounds against one merged solve (see the docstring)."""
    calls = refit_calls(fid, basis, config)
    if len(calls) < 2:
        print(f"  {len(calls)} refit rounds: nothing to merge")
        return
    (args1, kw1, _), (args2, kw2, fit2) = calls[0], calls[1]
    fids, prepared, refit_config = args1
    candidates = np.asarray(config.baseline_ed_candidates_per_ppm)
    last = len(candidates) - 1
    ed1 = np.asarray(kw1["baseline_ed_per_ppm"])
    k1 = np.searchsorted(candidates, ed1)
    rows, eds = [np.arange(len(ed1))], [ed1]
    for step in (-1, 1):  # stiffer after a pass, more flexible after a failure (not the last)
        k = k1 + step
        ok = (k >= 0) & (k < last)
        rows.append(np.flatnonzero(ok))
        eds.append(candidates[k[ok]])
    take = np.concatenate(rows)
    ed = np.concatenate(eds)
    region = kw1["region_noise_sd"]
    merged_kwargs = {
        "region_noise_sd": None if region is None else region[take],
        "start": {"theta": kw1["start"]["theta"][take]},
        "baseline_ed_per_ppm": ed,
    }

    def sequential():
        batched.solve(*args1, **kw1)
        return batched.solve(*args2, **kw2)

    def merged():
        return batched.solve(fids[take], prepared, refit_config, **merged_kwargs)

    # round 2's rows in the merged solve: the same spectrum (FID) at the same stiffness
    key = {(fids[t].tobytes(), float(e)): i for i, (t, e) in enumerate(zip(take, ed, strict=True))}
    fids2, ed2 = args2[0], np.asarray(kw2["baseline_ed_per_ppm"])
    where = [key.get((f.tobytes(), float(e)), -1) for f, e in zip(fids2, ed2, strict=True)]
    print(
        f"  refit rounds: {len(ed1)} + {len(ed2)} refits; merged: {len(take)} refits in one solve "
        f"({len(take) - len(ed1) - len(ed2)} not used), round 2's found in it: "
        f"{sum(w >= 0 for w in where)} of {len(where)}"
    )
    out = merged()
    same = all(
        np.array_equal(
            np.asarray(getattr(fit2, name))[j],
            np.asarray(getattr(out, name))[w],
            equal_nan=np.issubdtype(np.asarray(getattr(fit2, name)).dtype, np.inexact),
        )
        for name in batched.BatchedFit.__dataclass_fields__
        for j, w in enumerate(where)
        if w >= 0 and np.ndim(getattr(fit2, name))
    )
    print(f"  round 2's refits in the merged solve equal to round 2's own, every field: {same}")
    times = {"two rounds": [], "merged": []}
    with torch_one_thread():
        for r in range(rounds):
            ways = [("two rounds", sequential), ("merged", merged)]
            for label, fn in ways if r % 2 == 0 else ways[::-1]:
                wall, cpu = time.perf_counter(), time.thread_time()
                fn()
                times[label].append((time.perf_counter() - wall, time.thread_time() - cpu))
    pairs = zip(times["two rounds"], times["merged"], strict=True)
    wins = sum(merged[0] < two[0] for two, merged in pairs)
    print(f"  the merged solve's wall lower in {wins} of {rounds} alternated pairs")
    for label, values in times.items():
        v = np.array(values)
        print(
            f"  {label:10s}: wall s {', '.join(f'{w:.3f}' for w in v[:, 0])} (median "
            f"{np.median(v[:, 0]):.3f}); thread CPU s median {np.median(v[:, 1]):.3f}"
        )


def torch_one_thread():
    from scaloquant.threads import torch_threads

    return torch_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run", choices=("invivo", "tissue"), default="invivo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--speculate", type=int, default=0, metavar="R")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis, _, fid, tissue_fid = engine_spectra(args.n, 30.0, args.seed)
    fid = fid if args.run == "invivo" else tissue_fid
    config = FIT_PRESETS["invivo"]
    fit_spectra(fid, basis, config)  # warm-up: first-call costs out of the timed calls
    fids = fit_stages._without_water(fid, config)
    for round_ in range(args.rounds):
        tl = Timeline(fids)
        tl.install()
        load = os.getloadavg()[0]
        t0, cpu = time.perf_counter(), time.process_time()
        try:
            fit_spectra(fid, basis, config)
        finally:
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
            tl.remove()
        print(
            f"call {round_ + 1}: {args.n} {args.run} spectra, {args.n / wall:.2f} spectra/s, "
            f"load {load:.2f} -> {os.getloadavg()[0]:.2f}"
        )
        report(tl, t0, wall, cpu, args.threads)
    # the flagged spectra's iterations per F-test solve, with the rounds one at a time
    tl = Timeline(fids)
    tl.install()
    try:
        with rounds_one_at_a_time():
            fit_spectra(fid, basis, config)
    finally:
        tl.remove()
    chains(tl)
    if args.speculate:
        print(f"--speculate {args.speculate}: load {os.getloadavg()[0]:.2f}")
        speculate(fid, basis, config, args.speculate)


if __name__ == "__main__":
    main()
