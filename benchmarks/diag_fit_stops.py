"""How far each Levenberg–Marquardt run of one ``fit_spectra`` call is from its end, and what a
stopping rule would save: the trajectories behind docs/history/fit-log.md "Fewer iterations for
the in-vivo default? (session 28, iters28)".

Fits ``bench_fit_engine.py``'s spectra (default simulator, seed 1, SNR 30: ``--run invivo``; or
the tissue-like ``invivo`` simulation of the same seed: ``--run tissue``) with
``FIT_PRESETS["invivo"]`` on one torch thread and records, for every LM run (the continuation
stage, the last pass, the F-test's reference fit and refits) and every trial of every spectrum,
the cost before and after the trial, whether it was accepted, and the decrease the undamped
(Gauss–Newton) step predicts there. A spectrum's trajectory does not depend on the others in
its run, so a rule that ends runs earlier is replayed on the record exactly: per run and rule
the mean trials (``it``) and the cost the rule would stop at above the cost the run ended at,
in the residual's noise variances (``sigma^2`` = the end cost / 2K, K the window's points;
~(distance from the end in CRLB SDs)^2): its 90th percentile, largest, and the spectra above 1.

Rules (each ends a spectrum's run at the first accepted trial that meets it), ``tau`` from
``--taus``:

* ``gain``: the trial lowered the cost by less than ``tau sigma^2``;
* ``gain+GN``: that, and the undamped step predicts less than ``tau sigma^2`` too (the
  per-metabolite model's rule, :data:`scaloquant.fit.lm.COST_NOISE_TOL` = 0.03);
* ``oracle``: the cost is within ``tau sigma^2`` of the run's end (no rule can stop earlier
  at that distance: the iterations a rule could save at best);
* ``oracle-r``: the same in the noise variance the run weighs with (the signal-free region's,
  for the in-vivo default's passes; its ``above the end`` in those units too).

Each row gives the mean trials a spectrum and the most (a small solve's loop runs as long as its
slowest spectrum).

A replayed rule only ever ends a run earlier (or where it ended); in the rules, ``sigma^2`` is
each trial's current cost / 2K, as a rule in the LM loop would see it.

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_stops.py [--run invivo|tissue] [--n 128]
[--taus 0.03 0.1 0.3]``
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import batched, fit_spectra, lm, stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402


class Recorder:
    """While installed, records every LM run's trials (:func:`lm._judged` and the Gauss–Newton
    decrease at each :func:`lm._trial`), per spectrum of the run."""

    def __init__(self) -> None:
        self.runs: list[dict] = []
        self._current: dict | None = None
        self._predicted: np.ndarray | None = None
        self._saved = (lm._trial, lm._judged, batched.levenberg_marquardt)

    def install(self) -> None:
        trial, judged, solver = self._saved

        def run(problem, theta, y, *args, **kwargs):
            names = {f.function for f in inspect.stack()[1:12]}
            site = "stage" if "continuation" in names else "last pass"
            record = {"site": site, "points": y.shape[-1], "trials": [[] for _ in theta]}
            record["region"] = args[0].cpu().numpy()  # the noise variance the run weighs with
            record["rows"] = np.arange(theta.shape[0])
            outer, self._current = self._current, record
            try:
                return solver(problem, theta, y, *args, **kwargs)
            finally:
                self._current = outer
                self.runs.append(record)

        def recorded_trial(problem, th, jtj, grad, lam, held, lo, hi):
            self._predicted = lm._gauss_newton_decrease(problem, jtj, grad, held).cpu().numpy()
            return trial(problem, th, jtj, grad, lam, held, lo, hi)

        def recorded_judged(cost, new_cost, lam, tolerance, predicted, *rest):
            better, lam, done = judged(cost, new_cost, lam, tolerance, predicted, *rest)
            record = self._current
            if record is not None:
                for j, row in enumerate(record["rows"]):
                    record["trials"][row].append(
                        (float(cost[j]), float(new_cost[j]), bool(better[j]), self._predicted[j])
                    )
                record["rows"] = record["rows"][~done.cpu().numpy()]
            return better, lam, done

        lm._trial, lm._judged = recorded_trial, recorded_judged
        batched.levenberg_marquardt = stages.levenberg_marquardt = run

    def remove(self) -> None:
        lm._trial, lm._judged, batched.levenberg_marquardt = self._saved
        stages.levenberg_marquardt = self._saved[2]


Rule = Callable[[float, float, float, float], bool]  # (cost, gain, predicted, sigma2) -> stop


def rules(tau: float) -> dict[str, Rule]:
    """The rules replayed, for ``tau`` noise variances."""
    return {
        "gain": lambda cost, gain, predicted, s2: gain < tau * s2,
        "gain+GN": lambda cost, gain, predicted, s2: gain < tau * s2 and predicted < tau * s2,
    }


def replay(
    trials: list[tuple], points: int, rule: Rule | float, region: float | None = None
) -> tuple[int, float]:
    """``(trials run, cost at the stop above the run's end in noise variances)`` of one
    spectrum's trajectory under ``rule``, or, for a number ``tau``, at its first trial within
    ``tau`` noise variances of the end (the oracle); ``region``: the oracle's noise variance
    (the signal-free region's) instead of the end's residual variance."""
    after = [new if better else cost for cost, new, better, _ in trials]
    end = after[-1]
    sigma2 = end / (2 * points) if region is None else region
    stop = len(trials)
    for i, (cost, new, better, predicted) in enumerate(trials):
        if isinstance(rule, float):
            met = after[i] - end <= rule * sigma2
        else:
            met = better and rule(cost, cost - new, predicted, cost / (2 * points))
        if met:
            stop = i + 1
            break
    return stop, (after[stop - 1] - end) / sigma2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", choices=("invivo", "tissue"), default="invivo")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--taus", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    args = parser.parse_args()
    torch.set_num_threads(1)
    basis, _, fid, tissue = engine_spectra(args.n, 30.0, 1)
    recorder = Recorder()
    recorder.install()
    try:
        fit_spectra(tissue if args.run == "tissue" else fid, basis, FIT_PRESETS["invivo"])
    finally:
        recorder.remove()
    for k, record in enumerate(recorder.runs):
        trials = [t for t in record["trials"] if t]
        counts = np.array([len(t) for t in trials])
        rejected = np.mean([sum(not t[2] for t in each) for each in trials])
        print(
            f"run {k} ({record['site']}, {len(trials)} spectra, K {record['points']}): "
            f"{counts.mean():.1f} trials a spectrum ({rejected:.1f} rejected), {counts.max()} the most"
        )
        regions = [record["region"][j] for j, t in enumerate(record["trials"]) if t]
        for tau in args.taus:
            for name, rule in [*rules(tau).items(), ("oracle", tau), ("oracle-r", tau)]:
                stops, above = np.array(
                    [
                        replay(t, record["points"], tau, v)
                        if name == "oracle-r"
                        else replay(t, record["points"], rule)
                        for t, v in zip(trials, regions, strict=True)
                    ]
                ).T
                print(
                    f"  {name:8s} tau {tau:4.2f}: {stops.mean():5.1f} trials ({stops.max():3.0f} "
                    f"the most), above the end p90 {np.quantile(above, 0.9):6.3f} max "
                    f"{above.max():7.3f} sigma^2, {int((above > 1).sum())} spectra above 1"
                )


if __name__ == "__main__":
    main()
