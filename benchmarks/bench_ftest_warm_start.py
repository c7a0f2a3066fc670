"""The adaptive default's F-test started from the fixed fit's answer, against main's cold start:
speed, iterations and answers in one run (docs/history/fit-log.md "The F-test started from the
fixed fit's answer? (session 32, warm32)").

``fit_spectra`` with ``FIT_PRESETS["invivo"]`` (``baseline_stiffness="adaptive"``) of ``--n``
spectra of each set in ``--sets``: ``simulator`` (``bench_fit_engine.py``'s default-simulator
spectra, SNR 30, seed ``--seed``; truth: their amplitudes), ``tissue`` (its tissue-like spectra
of the ``invivo`` simulation prior; truth: the concentrations in mM of the 20 metabolites,
``Mac`` and the lipids left out) and ``scanner`` (``bench_invivo_ratios.py``'s cases through
``scaloquant fit``'s ``main`` in the child: the four ratios to tCr against LCModel's, starred
beyond the issue's tolerance), at ``--threads`` torch threads. Each measurement is a child
process: ``baseline`` runs ``--compare SRC`` (main's ``src``, e.g. exported by ``git
archive``) as it is, each of ``--variants`` this checkout's ``src`` with the F-test's starts
changed by the child (:data:`VARIANTS`: ``warm``, the reference fit from the fixed fit's
``theta`` without the continuation stage; ``warm-stage``, with it; ``warm-refits``, the
refits from the fixed fit's ``theta``; ``warm-all``, both), in a rotated order ``--rounds``
times, each child a first call (its answers) and ``--repeat`` timed ones (wall and process CPU
seconds, the load average, the F-test's own wall and thread CPU seconds: the flexible-window
``_solve`` of the flagged spectra, which runs on the caller's thread); ``--repeat 0``: the
answers only.

The child wraps ``fit.spectra._solve``, ``fit.batched.solve`` and the LM of ``fit.batched``
and ``fit.stages`` (main's names since session 31) to record, for the flagged spectra, the
F-test's solves and LM runs (spectra and most iterations: a small solve is paid by its slowest
spectrum's iterations, so "one after another" is the sum of each run's most), the reference
fit (the most flexible candidate) and the stiffness each spectrum keeps; it then scores each
flagged spectrum's objective (the cost the LM minimises, priors in, on the decimated model,
over the variance of one real noise sample: the signal-free region's, else the fixed fit's
residual's) at the reference's end (at the most flexible candidate) and at the kept fit's end
(at its stiffness).

Printed per set: each run's median spectra/s (wall; per CPU-s) and F-test seconds, and whether
every call of a run gave the same fits (a SHA-256 of every array of the ``FitResult``); then
each variant's answers against ``baseline``: the picks, the solves and LM runs, the objective
differences (variant - baseline, noise variances; > 1 higher: another, worse minimum), the
amplitudes moved in CRLB SDs, and the MAE and per-metabolite paired differences of |error| and
of the signed error (bias) against the truth with their SEs (the flagged spectra).

Usage: ``PYTHONPATH=src python benchmarks/bench_ftest_warm_start.py --compare MAIN_SRC
[--sets simulator,tissue,scanner] [--variants warm,warm-stage,warm-refits,warm-all] [--n 128]
[--seed 1] [--threads 2] [--repeat 3] [--rounds 4]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def spectra(name: str, n: int, seed: int):
    """``(basis, fid, truth (n, K), the truth's column names)`` of the set ``name``."""
    # first: the command's thread, huge-page and MKL settings before numpy and torch load
    import bench_fit_engine  # noqa: I001
    import numpy as np

    from scaloquant.simulate.prior import MEASURED_MM_NAMES, InvivoPrior
    from scaloquant.simulate.invivo import simulate_invivo_batch

    basis, signals, fid, tissue_fid = bench_fit_engine.engine_spectra(n, 30.0, seed)
    if name == "simulator":
        return basis, fid, signals.amplitudes, tuple(basis.names)
    tissue = simulate_invivo_batch(basis, InvivoPrior(), n, np.random.default_rng(seed))
    names = tuple(m for m in basis.names if m not in MEASURED_MM_NAMES)
    truth = tissue.parameters.concentrations_mm[:, [basis.names.index(m) for m in names]]
    return basis, tissue_fid, truth, names


#: the F-test variants a child can run (``--variant``), each on the code of its checkout
VARIANTS = {
    "none": "the checkout's own F-test",
    "warm": "the reference fit from the fixed fit's theta, without the continuation stage",
    "warm-stage": "the reference fit from the fixed fit's theta, its continuation stage kept",
    "warm-refits": "the reference as the checkout's, the refits from the fixed fit's theta",
    "warm-all": "the reference and the refits from the fixed fit's theta, no stage",
}


class Recorder:
    """Wraps ``spectra._solve``, ``batched.solve`` and the LM of ``batched`` and ``stages``:
    the F-test's (a ``_solve`` whose config has ``baseline_stiffness == "ftest"``) inputs,
    outputs, seconds, solves and LM runs; ``variant`` (:data:`VARIANTS`) changes the starts of
    its solves."""

    def __init__(self, variant: str) -> None:
        from scaloquant.fit import batched, spectra, stages

        self.variant = variant
        self.modules = (spectra, batched, stages)
        self.inner_solve, self.inner_batched = spectra._solve, batched.solve
        self.inner_lm = batched.levenberg_marquardt
        self.depth, self.ftest, self.fixed = 0, None, None
        self.calls: list[dict] = []
        spectra._solve = self._solve
        batched.solve = self._batched
        batched.levenberg_marquardt = stages.levenberg_marquardt = self._lm

    def _solve(self, fids, basis, config, region, start):
        from dataclasses import replace

        if config.baseline_stiffness == "fixed":
            fit, eds = self.inner_solve(fids, basis, config, region, start)
            self.fixed = fit, {row.tobytes(): i for i, row in enumerate(fids)}
            return fit, eds
        if config.baseline_stiffness != "ftest":
            return self.inner_solve(fids, basis, config, region, start)
        record = {"solves": [], "lm": [], "fids": fids, "basis": basis, "config": config}
        record["region"] = region
        fixed, where = self.fixed
        at = [where[row.tobytes()] for row in fids]
        record["fixed_theta"], record["fixed_noise_sd"] = fixed.theta[at], fixed.noise_sd[at]
        record["where"] = {row.tobytes(): i for i, row in enumerate(fids)}
        if self.variant in ("warm", "warm-all"):
            config = replace(config, continuation_broadening_per_s=())
        if self.variant in ("warm", "warm-stage", "warm-all"):
            start = {"theta": record["fixed_theta"]}
        self.ftest = record
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            fit, eds = self.inner_solve(fids, basis, config, region, start)
        finally:
            self.ftest = None
        record["wall"], record["cpu"] = time.perf_counter() - wall, time.thread_time() - cpu
        record["fit"], record["eds"] = fit, eds
        self.calls.append(record)
        return fit, eds

    def _batched(self, fids, basis, config, **options):
        record = self.ftest
        refit = record is not None and self.depth == 0 and record["solves"]
        if refit and self.variant in ("warm-refits", "warm-all"):
            at = [record["where"][row.tobytes()] for row in fids]
            options = {**options, "start": {"theta": record["fixed_theta"][at]}}
        self.depth += 1
        try:
            fit = self.inner_batched(fids, basis, config, **options)
        finally:
            self.depth -= 1
        if record is not None and self.depth == 0:
            record["solves"].append(fit)
        return fit

    def _lm(self, *args, **options):
        sol = self.inner_lm(*args, **options)
        if self.ftest is not None:
            it = sol.iterations
            self.ftest["lm"].append((int(it.numel()), int(it.max()), int(it.sum())))
        return sol


def objective(record: dict, theta, eds):
    """``(B,)`` the objective of ``record``'s spectra at ``theta`` ``(B, P)`` with the spline
    baseline at ``eds`` ``(B,)`` ED/ppm, in noise variances of one real sample."""
    from dataclasses import replace

    import numpy as np
    import torch

    from scaloquant.fit.evaluation import evaluate
    from scaloquant.fit.problem import data_window, make_problem

    fids, basis, config = record["fids"], record["basis"], record["config"]
    # without a signal-free region (the Siemens file): the fixed fit's residual noise, the same
    # in every variant
    region = record["region"] if record["region"] is not None else record["fixed_noise_sd"]
    out = np.empty(len(eds))
    cpu = torch.device("cpu")
    for ed in np.unique(eds):
        at = np.flatnonzero(eds == ed)
        at_ed = replace(config, baseline_ed_per_ppm=float(ed))
        prob = make_problem(basis, at_ed, device=cpu)  # the decimated model the LM minimises
        x = torch.as_tensor(np.array(fids[at]), dtype=torch.complex128)
        var = torch.as_tensor(np.asarray(region, dtype=float)[at] ** 2)
        th = torch.as_tensor(np.array(theta[at], dtype=np.float64))
        cost = evaluate(prob, th, data_window(prob, x), var, derivatives=False).cost
        out[at] = (cost / var).numpy()
    return out


def ftest_record(ftest: dict) -> dict:
    """The saved figures of one F-test (``Recorder``'s record): its rows' reference and final
    objectives, stiffness picks, solves and LM runs."""
    import numpy as np

    reference = ftest["solves"][0]
    n = reference.iterations.size
    last = np.asarray(ftest["config"].baseline_ed_candidates_per_ppm)[-1]
    lm = np.array(ftest["lm"]).reshape(-1, 3)
    return {
        "reference_cost": objective(ftest, reference.theta, np.full(n, last)),
        "final_cost": objective(ftest, ftest["fit"].theta, np.asarray(ftest["eds"])),
        "ftest_eds": np.asarray(ftest["eds"]),
        "solve_sizes": np.array([s.iterations.size for s in ftest["solves"]]),
        "lm_sizes": lm[:, 0],
        "lm_max": lm[:, 1],
        "lm_sum": lm[:, 2],
    }


def child(args: argparse.Namespace) -> None:
    """``--set``'s fits in this process: ``--repeat`` timed calls (one JSON line) after a first
    call whose answers go to ``--save``; the scanner cases once each."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.sets == "scanner":
        return scanner_child(args)
    # first: bench_fit_engine's settings (OpenMP's passive wait, huge pages, MKL's reproducible
    # mode) before torch loads, as the command
    basis, fid, truth, names = spectra(args.sets, args.n, args.seed)
    import numpy as np
    import torch

    from bench_fit_default import digest  # one digest of a FitResult for both benchmarks
    from scaloquant.fit import fit_spectra
    from scaloquant.fit.config import FIT_PRESETS

    torch.set_num_threads(args.threads)
    config = FIT_PRESETS["invivo"]
    recorder = Recorder(args.variant)
    first = fit_spectra(fid, basis, config)  # warm-up, and the answers
    ftest = recorder.calls[-1] if recorder.calls else None
    calls = []
    for _ in range(args.repeat):
        recorder.calls = []
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit_spectra(fid, basis, config)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        call = {"wall": wall, "cpu": cpu, "load": [load, os.getloadavg()[0]]}
        call["digest"] = digest(result)
        if recorder.calls:
            call["ftest_wall"] = recorder.calls[-1]["wall"]
            call["ftest_cpu"] = recorder.calls[-1]["cpu"]
        calls.append(call)
    print(json.dumps({"calls": calls, "digest": digest(first)}), flush=True)
    index = [first.names.index(m) for m in names]
    saved = {
        "amplitudes": first.amplitudes[:, index],
        "crlb_sd": first.crlb_sd[:, index],
        "truth": truth,
        "names": np.array(names),
        "eds": first.baseline_ed_per_ppm,
    }
    if ftest is not None:
        saved["rows"] = np.array(sorted(recorder.fixed[1][r.tobytes()] for r in ftest["fids"]))
        saved |= ftest_record(ftest)
    np.savez(args.save, **saved)


def scanner_child(args: argparse.Namespace) -> None:
    """The scanner cases of ``bench_invivo_ratios.py`` fitted in this process (``scaloquant
    fit``'s ``main``, the F-test wrapped): each case's four ratios to tCr, LCModel's, the
    tolerance and the F-test's figures in ``--save``."""
    import numpy as np

    import bench_invivo_ratios as ratios
    from scaloquant.cli import main as cli

    recorder = Recorder(args.variant)
    saved = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (inputs, reference, tol) in ratios.CASES.items():
            recorder.calls = []
            out = Path(tmp) / name
            assert cli(["fit", *map(str, inputs), "--out", str(out)]) == 0
            with open(out / "results.csv", newline="") as handle:
                row = next(csv.DictReader(handle))
            keys = list(reference)
            saved[f"{name}/ours"] = np.array([ratios.ratio_tcr(row, k) for k in keys])
            saved[f"{name}/lcmodel"] = np.array([reference[k] for k in keys])
            saved[f"{name}/tol"] = np.array(np.nan if tol is None else tol)
            if recorder.calls:
                for key, value in ftest_record(recorder.calls[-1]).items():
                    saved[f"{name}/{key}"] = value
    np.savez(args.save, **saved)
    print(json.dumps({"calls": [], "digest": ""}), flush=True)


def paired(d) -> str:
    """``mean +- SE`` of the paired differences ``d``."""
    import numpy as np

    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return f"{d.mean():+.4f} +- {se:.4f}"


def costs_line(label: str, d) -> str:
    """One line of objective differences ``d`` (noise variances, one per spectrum)."""
    import numpy as np

    if d.size == 0:
        return f"  {label}: no rows"
    return (
        f"  {label} ({d.size} rows): lower by > 1: {int((d < -1).sum())}, higher by > 1: "
        f"{int((d > 1).sum())}; min {d.min():+.2f}, median {np.median(d):+.3f}, max {d.max():+.2f}"
    )


def ftest_line(label: str, rec: dict, rows) -> str:
    """A checkout's F-test in one line: picks, solves and LM runs."""
    import numpy as np

    eds, counts = np.unique(rec["ftest_eds"], return_counts=True)
    picks = ", ".join(f"{e:g}: {c}" for e, c in zip(eds, counts, strict=True))
    runs = " ".join(f"{n}:{m}" for n, m in zip(rec["lm_sizes"], rec["lm_max"], strict=True))
    return (
        f"  {label:11s} picks ED/ppm {picks}; {rec['solve_sizes'].size} solves; LM runs "
        f"(spectra:most iterations) {runs}; iterations one after another "
        f"{rec['lm_max'].sum()}, spectrum-iterations {rec['lm_sum'].sum()}"
    )


def answers(set_name: str, label: str, base: dict, change: dict) -> None:
    """The answers of ``change`` (variant ``label``) against ``baseline`` (each one's first
    call), :func:`compare`'s printout."""
    import numpy as np

    truth = base["truth"]
    print(f"\n{set_name}: {label} against baseline")
    if "rows" not in base or "rows" not in change:
        same = np.array_equal(base["amplitudes"], change["amplitudes"])
        print(f"  no spectrum flagged in one of them; amplitudes equal: {same}")
        return
    rows = base["rows"]
    print(f"  flagged: {rows.size}; the same rows: {np.array_equal(rows, change['rows'])}")
    print(ftest_line("baseline", base, rows))
    print(ftest_line(label, change, rows))
    moved = base["ftest_eds"] != change["ftest_eds"]
    pairs = zip(rows[moved], base["ftest_eds"][moved], change["ftest_eds"][moved], strict=True)
    print(
        f"  picks moved: {int(moved.sum())} of {rows.size}"
        + "".join(f"; spectrum {r} {a:g} -> {b:g}" for r, a, b in pairs)
    )
    d = change["reference_cost"] - base["reference_cost"]
    print(costs_line("reference fit's objective, change - baseline (noise variances)", d))
    d = change["final_cost"] - base["final_cost"]
    print(costs_line("kept fit's objective where the pick is the same", d[~moved]))
    for j in np.flatnonzero(~moved & (d > 1)):
        print(f"    higher: spectrum {rows[j]} {d[j]:+.2f} at {base['ftest_eds'][j]:g} ED/ppm")
    a, b = base["amplitudes"], change["amplitudes"]
    shift = np.abs(b[rows] - a[rows]) / base["crlb_sd"][rows]
    print(
        f"  amplitudes moved (flagged spectra, baseline CRLB SDs): median "
        f"{np.nanmedian(shift):.3f}, largest {np.nanmax(shift):.2f}, > 1 SD: "
        f"{int((shift > 1).sum())} of {shift.size}"
    )
    ea, eb = a - truth, b - truth
    mae = np.abs(eb).mean(1) - np.abs(ea).mean(1)
    print(
        f"  MAE over all {a.shape[0]}: baseline {np.abs(ea).mean():.5f}, {label} "
        f"{np.abs(eb).mean():.5f}; paired per spectrum {paired(mae)}, over the flagged "
        f"{paired(mae[rows])}"
    )
    worst = []
    for j, name in enumerate(base["names"]):
        for kind, dj in (
            ("|error|", np.abs(eb[rows, j]) - np.abs(ea[rows, j])),
            ("bias", eb[rows, j] - ea[rows, j]),
        ):
            se = dj.std(ddof=1) / np.sqrt(dj.size) if dj.size > 1 else 0.0
            z = dj.mean() / se if se > 0 else 0.0
            worst.append((abs(z), f"{name} {kind} {paired(dj)} ({z:+.1f} SE)"))
    worst.sort(key=lambda item: -item[0])
    print("  per metabolite over the flagged spectra, paired, largest |mean / SE| first: ")
    print("    " + "; ".join(text for _, text in worst[:6]))


def scanner_answers(label: str, base: dict, change: dict) -> None:
    """The scanner cases: each one's ratios' relative differences from LCModel's (starred
    beyond the tolerance), stiffness, objectives (a case without a signal-free region in the
    fixed fit's residual noise variances) and iterations, baseline and ``label``."""
    import numpy as np

    print(
        f"\nscanner: {label} against baseline (ratios tNAA, tCho, Glx, Ins to tCr, % of LCModel's)"
    )
    cases = sorted({key.split("/")[0] for key in base})
    outside = {"baseline": 0, label: 0}
    for case in cases:
        line = f"  {case:18s}"
        for tag, rec in (("baseline", base), (label, change)):
            rel = 100 * (rec[f"{case}/ours"] / rec[f"{case}/lcmodel"] - 1)
            tol = 100 * float(rec[f"{case}/tol"])
            bad = np.abs(rel) > tol
            outside[tag] += int(bad.sum())
            text = " ".join(f"{r:+.1f}{'*' if b else ''}" for r, b in zip(rel, bad, strict=True))
            eds = rec.get(f"{case}/ftest_eds")
            line += f" | {tag}: {text}" + (f" ED {eds[0]:g}" if eds is not None else " fixed")
        if f"{case}/reference_cost" in base and f"{case}/reference_cost" in change:
            dr = change[f"{case}/reference_cost"][0] - base[f"{case}/reference_cost"][0]
            df = change[f"{case}/final_cost"][0] - base[f"{case}/final_cost"][0]
            line += f" | objective change - baseline: reference {dr:+.2f}, kept {df:+.2f}"
            line += f"; iterations one after another {base[f'{case}/lm_max'].sum()}"
            line += f" -> {change[f'{case}/lm_max'].sum()}"
        print(line)
    print("  ratios outside tolerance: " + ", ".join(f"{k} {v}" for k, v in outside.items()))


def compare(args: argparse.Namespace) -> None:
    """Children alternating between ``--compare``'s src (``baseline``, its own F-test) and
    this checkout's with each of ``--variants``, per set, in a rotated order."""
    import numpy as np

    here = Path(__file__).resolve()
    runs = {"baseline": (Path(args.compare).resolve(), "none")}
    for variant in args.variants.split(","):
        runs[variant] = (here.parents[1] / "src", variant)
    labels = list(runs)
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets.split(","):
            scanner = set_name == "scanner"
            rounds = 1 if scanner else args.rounds
            stats: dict[str, dict[str, list[float]]] = {k: {} for k in labels}
            digests: dict[str, set[str]] = {k: set() for k in labels}
            saved: dict[str, dict] = {}
            for round_ in range(rounds):
                shift = round_ % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    src, variant = runs[label]
                    path = Path(tmp) / f"{set_name}-{label}-{round_}.npz"
                    cmd = [sys.executable, str(here), "--child", "--sets", set_name]
                    cmd += ["--variant", variant, "--save", str(path), "--n", str(args.n)]
                    cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
                    cmd += ["--repeat", str(args.repeat)]
                    env = dict(os.environ, PYTHONPATH=str(src))
                    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                    record = json.loads(out.stdout.splitlines()[-1])
                    saved.setdefault(label, dict(np.load(path)))
                    if scanner or not args.repeat:
                        continue
                    digests[label].add(record["digest"])
                    for call in record["calls"]:
                        for key, value in (
                            ("rate", args.n / call["wall"]),
                            ("cpu_rate", args.n / call["cpu"]),
                            ("ftest_wall", call.get("ftest_wall", 0.0)),
                            ("ftest_cpu", call.get("ftest_cpu", 0.0)),
                        ):
                            stats[label].setdefault(key, []).append(value)
                        digests[label].add(call["digest"])
                    calls = record["calls"]
                    print(
                        f"{set_name} round {round_ + 1} {label:11s}: "
                        + ", ".join(f"{args.n / c['wall']:.2f}" for c in calls)
                        + " spectra/s, F-test "
                        + ", ".join(f"{c.get('ftest_wall', 0.0):.2f}" for c in calls)
                        + " s (load "
                        + ", ".join(f"{c['load'][0]:.1f}" for c in calls)
                        + ")",
                        flush=True,
                    )
            if scanner:
                for label in labels[1:]:
                    scanner_answers(label, saved["baseline"], saved[label])
                continue
            for label in labels if args.repeat else ():
                st = stats[label]
                same = (
                    "one digest" if len(digests[label]) == 1 else f"{len(digests[label])} digests"
                )
                print(
                    f"{set_name} {label:11s}: median {np.median(st['rate']):.2f} spectra/s wall "
                    f"({min(st['rate']):.2f}-{max(st['rate']):.2f}), "
                    f"{np.median(st['cpu_rate']):.2f} per CPU-s; F-test median "
                    f"{np.median(st['ftest_wall']):.3f} s wall, {np.median(st['ftest_cpu']):.3f} "
                    f"thread CPU-s; {same}"
                )
            for label in labels[1:]:
                answers(set_name, label, saved["baseline"], saved[label])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="simulator", help="simulator,tissue,scanner")
    parser.add_argument("--variants", default="warm", help=", ".join(VARIANTS))
    parser.add_argument("--variant", default="none", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", help="main's src folder")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
    elif args.compare is None:
        parser.error("give --compare MAIN_SRC (main's src folder)")
    elif unknown := [v for v in args.variants.split(",") if v not in VARIANTS or v == "none"]:
        parser.error(f"unknown variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    else:
        compare(args)


if __name__ == "__main__":
    main()
