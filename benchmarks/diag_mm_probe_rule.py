"""A candidate rule against the in-vivo fit's start-dependent ends (issue 12, session 30):
after each fit, refits from its end with the macromolecule (MM) and lipid groups' (damping 1/s,
Gaussian 1/s^2) reset to a few pairs, every other parameter kept, each spectrum keeping the end
of lowest objective. Not an option of the fit: :func:`scaloquant.fit.spectra._solve` is wrapped.

The probes (:data:`PROBES`) are the three pairs of ``diag_invivo_mm_minima.py --probe``'s 16
that found the lowest ends of the scanner spectra: MM (0, 2500) with lipids (3, 50), MM (40, 0)
with lipids (0, 2500), MM (20, 1000) with lipids (0, 2500). Each is one
:func:`scaloquant.fit.batched.solve` of every spectrum from the (so far best) end's ``theta`` at
the spectrum's own baseline stiffness without the continuation stages (as the adaptive rule's
refits); a probe's end replaces the fit's where its objective (the problem with its deviations
and priors, in noise variances: the signal-free region's, or without one the fit's) is lower
by more than 1. The rule wraps every ``_solve`` of a fit (the adaptive rule's fixed pass and its
flexible-window refits alike).

Both modes fit the same spectra without, then with the rule, in one process, and print the
time of the fit's own solves and of the probes (process CPU is not separated: one torch
thread), how many spectra a probe changed and by how much it lowered their objective:

* scanner (default): the seven cases of ``bench_invivo_ratios.py`` (``scaloquant fit``
  in-process, as ``diag_invivo_mm_minima.py``), each case's ratios against LCModel's (with the
  rule, under each case the objective drops of the probe ends it kept, in noise variances, of
  every solve of the case: the adaptive rule's fixed pass included), and the 24 Philips
  ratios' count outside their tolerance and mean |relative difference|;
* ``--tissue N SNR SEED``: ``N`` tissue-like spectra of ``bench_invivo_default.py`` (one
  ``fit_spectra`` call each way, 1 torch thread): the MAE over the 20 metabolites and the
  paired per-spectrum difference (rule - default) with its standard error.

Usage::

    PYTHONPATH=src python benchmarks/diag_mm_probe_rule.py [--tissue N SNR SEED]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

import bench_invivo_default as tissue
import diag_invivo_mm_minima as minima
from scaloquant.fit import batched, fit_spectra, problem, spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.evaluation import evaluate
from scaloquant.simulate.prior import MEASURED_MM_NAMES, InvivoPrior

PROBES = (
    ((0.0, 2500.0), (3.0, 50.0)),
    ((40.0, 0.0), (0.0, 2500.0)),
    ((20.0, 1000.0), (0.0, 2500.0)),
)
#: the rule on or off; the seconds of the fit's solves and of the probes; each change's drop
STATE: dict = {"on": False, "solve_s": 0.0, "probe_s": 0.0, "lowered": []}
_solve = spectra._solve


def objective_rows(fids, basis, config, theta, ed, var) -> np.ndarray:
    """The objective ``(B,)`` in noise variances of fits ``theta`` ``(B, P)`` of ``fids``, each
    at its baseline stiffness ``ed`` ``(B,)``, with noise variances ``var`` ``(B,)``."""
    out = np.empty(len(fids))
    for e in np.unique(ed):
        rows = np.flatnonzero(ed == e)
        at = replace(config, baseline_ed_per_ppm=float(e))
        prob = problem.make_problem(basis, at, device=torch.device("cpu"))
        x = torch.as_tensor(np.array(fids[rows]), dtype=torch.complex128)
        v = torch.as_tensor(var[rows])
        y = problem.data_window(prob, x)
        cost = evaluate(prob, torch.as_tensor(theta[rows]), y, v, derivatives=False).cost
        out[rows] = (cost / v).numpy()
    return out


def probed(fids, basis, config, region, start):
    """:func:`spectra._solve`, then (``STATE["on"]``) the probes of :data:`PROBES`."""
    t0 = time.perf_counter()
    fit, ed = _solve(fids, basis, config, region, start)
    STATE["solve_s"] += time.perf_counter() - t0
    if not STATE["on"]:
        return fit, ed
    t0 = time.perf_counter()
    prob = problem.make_problem(basis, config, device=torch.device("cpu"))
    sl = prob.slices()
    var = np.asarray(region if region is not None else fit.noise_sd, dtype=float) ** 2
    cost = objective_rows(fids, basis, config, fit.theta, ed, var)
    parts = {f: np.array(getattr(fit, f)) for f in batched.BatchedFit.__dataclass_fields__}
    refit_config = replace(config, continuation_broadening_per_s=())
    for pair in PROBES:
        theta = parts["theta"].copy()
        for group, (damping, gauss) in zip(minima.GROUPS, pair, strict=True):
            if group in prob.group_names:
                k = prob.group_names.index(group)
                theta[:, sl["damping"].start + k] = damping
                theta[:, sl["gauss"].start + k] = gauss
        sub = batched.solve(
            fids,
            basis,
            refit_config,
            region_noise_sd=region,
            start={"theta": theta},
            baseline_ed_per_ppm=ed,
        )
        c = objective_rows(fids, basis, config, sub.theta, ed, var)
        better = c < cost - 1.0
        STATE["lowered"] += list(cost[better] - c[better])
        for name, value in parts.items():
            value[better] = getattr(sub, name)[better]
        cost = np.where(better, c, cost)
    STATE["probe_s"] += time.perf_counter() - t0
    return replace(fit, **parts), ed


def report(label: str) -> str:
    """The times and changes recorded in :data:`STATE` since the last reset."""
    lowered = np.sort(STATE["lowered"])[::-1]
    drops = (
        ", objective lowered by " + " ".join(f"{v:.1f}" for v in lowered) if lowered.size else ""
    )
    return (
        f"{label}: solves {STATE['solve_s']:.1f} s, probes {STATE['probe_s']:.1f} s; "
        f"{lowered.size} probe end(s) kept{drops}"
    )


def scanner() -> None:
    """The seven scanner cases without and with the rule."""
    spectra._solve, batched.solve = minima.kept_solve, minima.kept_batched_solve
    batched.start_theta = minima.started
    minima._solve = probed  # kept_solve calls it
    for on in (False, True):
        STATE.update(on=on, solve_s=0.0, probe_s=0.0, lowered=[])
        print(f"== rule {'on' if on else 'off'}")
        rels, drops = [], []
        for name, (_, _, tol) in minima.bench.CASES.items():
            minima.START.clear()
            rel = minima.run(name)
            if on:
                kept = np.sort(STATE["lowered"])[::-1]
                print(f"    probe ends kept: {' '.join(f'{v:.1f}' for v in kept) or 'none'}")
                drops += STATE["lowered"]
                STATE["lowered"] = []
            if tol is not None:
                rels += [(abs(v), abs(v) > tol) for v in rel.values()]
        STATE["lowered"] = drops
        a = np.array(rels)
        print(
            report(f"rule {'on' if on else 'off'}")
            + f"; {int(a[:, 1].sum())} of {len(a)} Philips ratios outside, mean |rel. diff.| "
            f"{100 * a[:, 0].mean():.2f} %, largest {100 * a[:, 0].max():.1f} %",
            flush=True,
        )


def tissue_like(n: int, snr: float, seed: int) -> None:
    """``n`` tissue-like spectra at ``snr`` from ``seed`` without and with the rule."""
    spectra._solve = probed
    torch.set_num_threads(1)
    prior = InvivoPrior(snr_range=(snr, snr))
    basis, signals, fid = tissue.tissue_spectra(prior, n, seed)
    metabolites = [m for m in basis.names if m not in MEASURED_MM_NAMES]
    truth = signals.parameters.concentrations_mm[:, [basis.names.index(m) for m in metabolites]]
    print(f"{n} tissue-like spectra at SNR {snr:g} (seed {seed}), 1 torch thread")
    errors = {}
    for on in (False, True):
        STATE.update(on=on, solve_s=0.0, probe_s=0.0, lowered=[])
        result = fit_spectra(fid, basis, FIT_PRESETS["invivo"])
        est = result.amplitudes[:, [result.names.index(m) for m in metabolites]]
        errors[on] = np.abs(est - truth).mean(axis=1)
        print(report(f"rule {'on' if on else 'off'}") + f"; MAE {errors[on].mean():.4f} mM")
    d = errors[True] - errors[False]
    print(
        f"paired MAE difference (rule - default) {d.mean():+.4f} +- "
        f"{d.std(ddof=1) / np.sqrt(d.size):.4f} mM; {np.count_nonzero(d)} spectra changed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tissue", nargs=3, metavar=("N", "SNR", "SEED"))
    args = parser.parse_args()
    if args.tissue:
        n, snr, seed = args.tissue
        tissue_like(int(n), float(snr), int(seed))
    else:
        scanner()


if __name__ == "__main__":
    main()
