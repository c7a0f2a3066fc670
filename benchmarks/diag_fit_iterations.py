"""Where the Levenberg–Marquardt iterations of the batched fit go, per call site.

Fits the spectra of ``bench_fit_engine.py`` (default simulator, seed 1, SNR 30; and the
tissue-like ``invivo`` simulation) with ``fit_spectra`` and counts, per call site of
:func:`scaloquant.fit.lm.levenberg_marquardt` (continuation stage, main/last pass, global
moves of :mod:`scaloquant.fit.search`, second search): calls, spectra entering, trial
evaluations summed over the spectra still running (= LM iterations), derivative evaluations
(accepted steps whose derivatives were formed), batched evaluation calls (a fixed cost each),
and CPU seconds. Also the iterations run with at most
4 spectra left in their call (the tail), and the accuracy of the fit (amplitude MAE against
the truth for ``simulated``, ratio-to-tCr MAE for the tissue-like spectra).

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_iterations.py [--n 128] [--runs invivo
simulated tissue] [--threads 1]``
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time
from collections import defaultdict

from scaloquant.threads import prefer_command_settings

prefer_command_settings()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import batched, evaluation, fit_spectra, lm, search, stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.io import default_basis  # noqa: E402
from scaloquant.simulate import (  # noqa: E402
    InvivoPrior,
    SimulationConfig,
    simulate_batch,
    simulate_invivo_batch,
)
from scaloquant.types import FID  # noqa: E402

SITES = ("stage", "main", "probe", "rest", "polish", "second")
TAIL = 4
_probe = [False]
#: The functions counted, with every module that looks each up at call time (where the wrapper
#: is installed): the LM runs of the driver and of the global moves, the model evaluations of
#: the LM loop, the driver and the moves, the derivatives of the LM loop and of an evaluation.
WRAPPED = (
    ("levenberg_marquardt", (batched, search, stages)),
    ("evaluate", (lm, batched, search)),
    ("with_derivatives", (lm, evaluation)),
)


def site() -> str:
    names = {f.function for f in inspect.stack()[2:12]}
    if "second_search" in names:
        return "second"
    if "attempt" in names:
        return "probe" if "fit" in names and _probe[0] else "rest"
    if "global_moves" in names:
        return "polish"
    if "continuation" in names:
        return "stage"
    return "main"


class Counter:
    def __init__(self) -> None:
        self.stats = defaultdict(lambda: defaultdict(float))
        self.current: str | None = None
        self.full = False
        self.lm = lm.levenberg_marquardt
        self.evaluate = evaluation.evaluate
        self.derivs = evaluation.with_derivatives

    def install(self) -> None:
        wrappers = (self.wrap_lm, self.wrap_evaluate, self.wrap_derivs)
        for (name, modules), wrapper in zip(WRAPPED, wrappers, strict=True):
            for module in modules:
                setattr(module, name, wrapper)

    def remove(self) -> None:
        for (name, modules), original in zip(
            WRAPPED, (self.lm, self.evaluate, self.derivs), strict=True
        ):
            for module in modules:
                setattr(module, name, original)

    def wrap_lm(self, *args, **kwargs):
        _probe[0] = kwargs.get("max_iterations") == search.PROBE_ITERATIONS
        name = site()
        s = self.stats[name]
        s["calls"] += 1
        s["spectra"] += args[1].shape[0]
        previous, self.current = self.current, name
        cpu = time.process_time()
        out = self.lm(*args, **kwargs)
        s["cpu"] += time.process_time() - cpu
        self.current = previous
        s["iterations"] += float(out.iterations.sum())
        s["capped"] += float((~out.converged).sum())
        return out

    def wrap_evaluate(self, *args, **kwargs):
        # a trial passes its column dtype; the evaluation formed again at an LM call's end not
        if (
            self.current is not None
            and kwargs.get("derivatives", True) is False
            and "column_dtype" in kwargs
        ):
            s = self.stats[self.current]
            b = args[1].shape[0]
            s["trial_calls"] += 1
            s["trials"] += b
            if b <= TAIL:
                s["tail_trials"] += b
                s["tail_calls"] += 1
            return self.evaluate(*args, **kwargs)
        self.full = True
        try:
            return self.evaluate(*args, **kwargs)
        finally:
            self.full = False

    def wrap_derivs(self, problem, ev, *args, **kwargs):
        if self.current is not None and not self.full:
            self.stats[self.current]["accepted"] += ev.cost.shape[0]
        return self.derivs(problem, ev, *args, **kwargs)


def ratio_mae(result, tissue, names) -> float:
    """Mean absolute error of the ratios to tCr (Cr + PCr) against the simulated ones."""
    fitted = {n: result.amplitudes[:, i] for i, n in enumerate(result.names)}
    true = {n: tissue.parameters.concentrations_mm[:, i] for i, n in enumerate(names)}
    tcr_f = fitted["Cr"] + fitted["PCr"]
    tcr_t = true["Cr"] + true["PCr"]
    errs = [np.abs(fitted[n] / tcr_f - true[n] / tcr_t) for n in names if n in fitted and n in true]
    return float(np.mean(errs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", nargs="+", default=["invivo", "simulated", "tissue"])
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        help="constants of scaloquant.fit modules, e.g. lm.LM_DOWN=0.3",
    )
    args = parser.parse_args()
    for item in args.set:
        target, value = item.split("=", 1)
        module, name = target.split(".")
        setattr(importlib.import_module(f"scaloquant.fit.{module}"), name, eval(value))
    torch.set_num_threads(args.threads)
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [30.0, 30.0]})
    signals = simulate_batch(basis, config, args.n, np.random.default_rng(args.seed))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    tissue = simulate_invivo_batch(basis, InvivoPrior(), args.n, np.random.default_rng(args.seed))
    for run in args.runs:
        preset = "simulated" if run == "simulated" else "invivo"
        source = fid.with_samples(tissue.fids) if run == "tissue" else fid
        counter = Counter()
        counter.install()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            result = fit_spectra(source, basis, FIT_PRESETS[preset])
        finally:
            counter.remove()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if run == "simulated":
            accuracy = (
                f"amplitude MAE {np.mean(np.abs(result.amplitudes - signals.amplitudes)):.4f}"
            )
        elif run == "tissue":
            accuracy = (
                f"ratio-to-tCr MAE {ratio_mae(result, tissue, tissue.parameters.basis_names):.4f}"
            )
        else:
            accuracy = ""
        n = args.n
        print(
            f"{run}: {n} spectra, CPU {cpu:.1f} s ({n / cpu:.2f}/CPU-s), wall {wall:.1f} s {accuracy}"
        )
        total = 0.0
        for name in SITES:
            s = counter.stats.get(name)
            if not s:
                continue
            total += s["trials"]
            print(
                f"  {name:7s} calls {s['calls']:3.0f} spectra-in {s['spectra']:5.0f}"
                f" iter/spectrum {s['trials'] / n:6.2f} derivatives {s['accepted'] / n:5.2f}"
                f" capped {s['capped']:4.0f} eval-calls {s['trial_calls']:4.0f}"
                f" tail(<= {TAIL}) iter {s['tail_trials'] / n:5.2f} calls {s['tail_calls']:4.0f}"
                f" CPU {s['cpu']:6.1f} s"
            )
        print(f"  all     iter/spectrum {total / n:6.2f}")


if __name__ == "__main__":
    main()
