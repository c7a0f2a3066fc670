"""The in-vivo fit's macromolecule and lipid groups on the scanner spectra of
``bench_invivo_ratios.py``: where their damping, Gaussian and shift end against the bounds, the
fit from other starts of those two groups, and variants of their bounds and priors.

Each case is fitted as ``bench_invivo_ratios.py`` fits it (``scaloquant fit`` in-process, the
default ``invivo`` preset), with :func:`scaloquant.fit.spectra._solve` and
:func:`scaloquant.fit.batched.solve` wrapped to keep the FIDs, the basis and the fits. Printed per
fit: the adaptive rule's chosen stiffness, the cross-correlation shift (the shift bounds' centre),
the objective (:func:`scaloquant.fit.evaluation.evaluate`, the problem with its deviations, the
signal-free region's noise variance or, without one, the fit's) of the reference fit (the most
flexible stiffness, comparable across starts) and of the final fit (at its own stiffness), the
ratios to tCr against LCModel's, and each group's ``damping shift gauss`` with the bounds it
sits on (``d``, ``s``, ``g``).

``--starts``: also from 16 starts of the MM and lipid groups' (damping 1/s, Gaussian 1/s^2), each
of (3, 50) (the preset's), (0, 2500), (40, 0), (20, 1000); the shifts start where the fit's do.
``--probe``: also, after the default start's fit, refits from its end with the MM and lipid
groups' (damping, Gaussian) reset to each of those 16 pairs, every other parameter kept
(:func:`scaloquant.fit.batched.solve` from that ``theta`` at the fit's stiffness, without the
continuation stages, as the adaptive rule's refits start from the reference); the lowest end
becomes the next round's start, up to 3 rounds while it lowers the objective by more than 1
noise variance. Printed per refit: its objective less the fit's (noise variances), its ratios
and its time.
``--variants NAME ...``: the MM and lipid groups' bounds or priors changed (patched into
:func:`scaloquant.fit.problem.make_problem`; not options of the fit): ``g1015`` Gaussian at most
1015 1/s^2 (LCModel's ``FWHM= .15 < .2`` as an extra Gaussian at 127.8 MHz); ``lor`` Gaussian 0
(LCModel broadens its simulated lines by a Lorentzian ``RT2`` only); ``lor120`` the same with damping
up to 120 1/s; ``prior`` a Gaussian prior of mean 45 and SD 15 1/s on the damping (about LCModel's
``EXRT2``/``SDRT2`` of MM09-MM20 and the lipids at 3 T, 32-53 and 7-20 1/s); ``lorprior`` both.
``shiftprior`` the MM and lipid groups' shifts held to the metabolites' by a Gaussian prior of SD
1.3 Hz (LCModel's ``+- .01`` ppm of Lip13 and MM12, 0.005-0.03 ppm for the others); ``allprior``
both priors. Each variant ends with the mean |relative difference| over the 24 Philips ratios.
Since session 29 the ``invivo`` preset holds the MM shift prior itself (1.3 Hz): ``base`` is that
preset, and ``shiftprior`` adds a second prior of the same SD (1/sd^2 doubled); for session 28's
free groups set ``FIT_PRESETS["invivo"]`` to ``mm_shift_prior_sd_hz=None`` first.

Usage::

    PYTHONPATH=src python benchmarks/diag_invivo_mm_minima.py [--cases a,b] [--starts]
        [--probe] [--variants NAME ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

import bench_invivo_ratios as bench
from scaloquant.cli import main as cli
from scaloquant.fit import batched, problem, spectra, stages
from scaloquant.fit.evaluation import evaluate
from scaloquant.metabolites import COMBINATIONS, indices_of

GROUPS = ("macromolecules", "lipids")
STARTS = ((3.0, 50.0), (0.0, 2500.0), (40.0, 0.0), (20.0, 1000.0))
VARIANTS = {
    "base": {},
    "g1015": {"gmax": 1015.0},
    "lor": {"gmax": 0.0},
    "lor120": {"gmax": 0.0, "dmax": 120.0},
    "prior": {"prior": (45.0, 15.0)},
    "lorprior": {"gmax": 0.0, "dmax": 200.0, "prior": (45.0, 15.0)},
    "shiftprior": {"shift_sd": 1.3},
    "allprior": {"prior": (45.0, 15.0), "shift_sd": 1.3},
}

GOT: dict = {}
START: dict[str, tuple[float, float]] = {}
VARIANT: dict = {}
#: one ``(start, ratios' relative differences, stiffness, reference objective, objective)`` a fit
ENDS: list = []
_solve, _batched_solve = spectra._solve, batched.solve
_start_theta, _make_problem = batched.start_theta, problem.make_problem


def kept_solve(fids, basis, config, region, start):
    """:func:`spectra._solve`, keeping its inputs and result in ``GOT``."""
    GOT.update(fids=fids, basis=basis, config=config, region=region, calls=[])
    fit, ed = _solve(fids, basis, config, region, start)
    GOT.update(fit=fit, ed=ed)
    return fit, ed


def kept_batched_solve(fids, basis, config, **kw):
    """:func:`batched.solve`, keeping each fit (the first is the adaptive rule's reference)."""
    fit = _batched_solve(fids, basis, config, **kw)
    GOT["calls"].append(fit)
    return fit


def started(prob, config, y, dwell_time_s, start):
    """The fit's start with ``START``'s (damping, Gaussian) for the MM and lipid groups."""
    theta = _start_theta(prob, config, y, dwell_time_s, start)
    sl = prob.slices()
    GOT["xcorr"] = float(theta[0, sl["shift"]][0])
    for name, (damping, gauss) in START.items():
        if name in prob.group_names:
            k = prob.group_names.index(name)
            theta[:, sl["damping"].start + k] = damping
            theta[:, sl["gauss"].start + k] = gauss
    return theta


def varied(*args, **kw):
    """:func:`problem.make_problem` with ``VARIANT``'s bounds and damping prior on the MM and
    lipid groups."""
    prob = _make_problem(*args, **kw)
    if not VARIANT:
        return prob
    sl = prob.slices()
    lower, upper = prob.lower.clone(), prob.upper.clone()
    quad, lin, const = prob.kernel_penalty.clone(), prob.kernel_linear.clone(), prob.kernel_constant
    for name in GROUPS:
        if name not in prob.group_names:
            continue
        k = prob.group_names.index(name)
        d, g = sl["damping"].start + k, sl["gauss"].start + k
        upper[g] = VARIANT.get("gmax", upper[g])
        upper[d] = VARIANT.get("dmax", upper[d])
        if "prior" in VARIANT:  # ((d - mu) / sd)^2 as x^T Q x + 2 q^T x + c
            mu, sd = VARIANT["prior"]
            quad[d, d] += sd**-2
            lin[d] -= mu * sd**-2
            const += mu**2 * sd**-2
        if "shift_sd" in VARIANT:  # ((s_k - s_metabolites) / sd)^2
            s, s0 = sl["shift"].start + k, sl["shift"].start
            w = VARIANT["shift_sd"] ** -2
            quad[s, s] += w
            quad[s0, s0] += w
            quad[s, s0] -= w
            quad[s0, s] -= w
    return replace(
        prob,
        lower=lower,
        upper=upper,
        kernel_penalty=quad,
        kernel_linear=lin,
        kernel_constant=const,
        penalty_active=prob.penalty_active or "prior" in VARIANT or "shift_sd" in VARIANT,
    )


def objective(ed: float, theta: np.ndarray) -> float:
    """The fit's objective at ``theta`` with the spline baseline at stiffness ``ed``, in noise
    variances (the cost over the variance it weighs the priors with: the residual's sum of
    squares over the noise variance of one real sample, plus the priors)."""
    config = replace(GOT["config"], baseline_ed_per_ppm=float(ed))
    prob = problem.make_problem(GOT["basis"], config, device=torch.device("cpu"))
    x = torch.as_tensor(np.array(GOT["fids"]), dtype=torch.complex128)
    region = GOT["region"] if GOT["region"] is not None else GOT["calls"][0].noise_sd
    var = torch.as_tensor(np.asarray(region, dtype=float) ** 2)
    y = problem.data_window(prob, x)
    cost = evaluate(prob, torch.as_tensor(theta), y, var, derivatives=False).cost[0]
    return float(cost / var.reshape(-1)[0])


def run(name: str) -> dict[str, float]:
    """Fit case ``name``, print its line; its ratios' relative differences to LCModel's (and
    in ``ENDS`` its stiffness and objectives)."""
    inputs, reference, _ = bench.CASES[name]
    with tempfile.TemporaryDirectory() as out:
        cli(["fit", *map(str, inputs), "--out", out + "/o", "--overwrite"])
    fit, config, names = GOT["fit"], GOT["config"], GOT["basis"].names
    reference_fit = GOT["calls"][0]
    prob = problem.make_problem(GOT["basis"], config, device=torch.device("cpu"))
    sl = prob.slices()
    amplitudes = fit.amplitudes[0]
    tcr = amplitudes[indices_of(COMBINATIONS["tCr"], names)].sum()
    rel = {
        k: amplitudes[indices_of(COMBINATIONS.get(k, (k,)), names)].sum() / tcr / v - 1
        for k, v in reference.items()
    }
    lo, hi = prob.lower.numpy(), prob.upper.numpy()
    # the shift bounds' centre: the start's shift, or for a refit the reference's mean shift
    centres = (GOT["xcorr"], reference_fit.theta[0, sl["shift"]].mean())
    groups = []
    for k, group in enumerate(prob.group_names):
        values, on = [], ""
        for key, tag in (("damping", "d"), ("shift", "s"), ("gauss", "g")):
            i = sl[key].start + k
            v = fit.theta[0, i]
            values.append(v)
            if key == "shift":
                ends = [c + e for c in centres for e in config.shift_bounds_hz]
            else:
                ends = [lo[i], hi[i]]
            on += tag if min(abs(v - e) for e in ends) < 1e-3 * max(1.0, abs(v)) else ""
        groups.append(f"{group[:5]} {values[0]:6.2f} {values[1]:7.2f} {values[2]:7.1f} [{on}]")
    cost_ref = objective(config.baseline_ed_candidates_per_ppm[-1], reference_fit.theta)
    cost = objective(GOT["ed"][0], fit.theta)
    ENDS.append((dict(START), rel, float(GOT["ed"][0]), cost_ref, cost))
    print(
        f"{name:18s} ed {GOT['ed'][0]:.0f} xcorr {GOT['xcorr']:6.2f} objective reference "
        f"{cost_ref:.2f} final {cost:.2f}  "
        + " ".join(f"{k} {100 * v:+.1f}" for k, v in rel.items())
        + f"  mean {100 * np.mean(np.abs(list(rel.values()))):.2f} %\n    "
        + " | ".join(groups),
        flush=True,
    )
    return rel


def print_ends(name: str) -> None:
    """The distinct ends of ``ENDS`` (ratios within 0.1 point), the default start's first:
    how many starts reach each, its stiffness, its objectives in noise variances less the
    default start's (reference fit at the most flexible stiffness; final fit), its ratios'
    relative differences to LCModel's and their mean |.|."""
    ends: list[list] = []
    for end in ENDS:
        for group in ends:
            if max(abs(end[1][k] - group[0][1][k]) for k in end[1]) < 1e-3:
                group.append(end)
                break
        else:
            ends.append([end])
    _, _, _, ref0, final0 = ENDS[0]
    print(f"{name}: {len(ends)} distinct end(s) from {len(ENDS)} starts")
    for group in ends:
        start, rel, ed, ref, final = group[0]
        print(
            f"  {len(group):2d} start(s), ed {ed:.0f}, objective - default's: reference "
            f"{ref - ref0:+9.2f}, final {final - final0:+9.2f} (final {final:.1f})  "
            + " ".join(f"{k} {100 * v:+.1f}" for k, v in rel.items())
            + f"  mean {100 * np.mean(np.abs(list(rel.values()))):.2f} %"
            + ("" if group[0] is ENDS[0] else f"  first from {start}")
        )


def ratios(amplitudes: np.ndarray, reference: dict[str, float]) -> dict[str, float]:
    """The relative differences of ``amplitudes``' ratios to tCr from ``reference``'s."""
    names = GOT["basis"].names
    tcr = amplitudes[indices_of(COMBINATIONS["tCr"], names)].sum()
    return {
        k: amplitudes[indices_of(COMBINATIONS.get(k, (k,)), names)].sum() / tcr / v - 1
        for k, v in reference.items()
    }


def probe(name: str) -> None:
    """The ``--probe`` refits of case ``name`` from its last fit's end (in ``GOT``)."""
    fit, config, ed = GOT["fit"], GOT["config"], GOT["ed"]
    prob = problem.make_problem(GOT["basis"], config, device=torch.device("cpu"))
    sl = prob.slices()
    refit_config = replace(config, continuation_broadening_per_s=())
    cost0 = objective(ed[0], fit.theta)
    theta, cost = np.array(fit.theta), cost0
    for round_ in range(3):
        best = (cost, theta)
        for pair in [(s, t) for s in STARTS for t in STARTS]:
            start = theta.copy()
            for group, (damping, gauss) in zip(GROUPS, pair, strict=True):
                k = prob.group_names.index(group)
                start[:, sl["damping"].start + k] = damping
                start[:, sl["gauss"].start + k] = gauss
            t0 = time.perf_counter()
            sub = _batched_solve(
                GOT["fids"],
                GOT["basis"],
                refit_config,
                region_noise_sd=GOT["region"],
                start={"theta": start},
                baseline_ed_per_ppm=ed,
            )
            seconds = time.perf_counter() - t0
            c = objective(ed[0], sub.theta)
            rel = ratios(sub.amplitudes[0], bench.CASES[name][1])
            print(
                f"  round {round_ + 1} probe MM {pair[0]}, lipids {pair[1]}: objective - the "
                f"fit's {c - cost0:+9.2f}  "
                + " ".join(f"{k} {100 * v:+.1f}" for k, v in rel.items())
                + f"  {seconds:.2f} s",
                flush=True,
            )
            if c < best[0]:
                best = (c, np.array(sub.theta))
        if best[0] > cost - 1.0:
            break
        cost, theta = best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(bench.CASES))
    parser.add_argument("--starts", action="store_true")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS))
    args = parser.parse_args()
    spectra._solve, batched.solve, batched.start_theta = kept_solve, kept_batched_solve, started
    problem.make_problem = batched.make_problem = stages.make_problem = varied
    cases = args.cases.split(",")
    for variant in args.variants or ["base"]:
        VARIANT.clear()
        VARIANT.update(VARIANTS[variant])
        print(f"== {variant} {VARIANT}")
        rels = []
        for name in cases:
            tol = bench.CASES[name][2]
            grid = [(s, t) for s in STARTS for t in STARTS] if args.starts else [None]
            ENDS.clear()
            for pair in grid:
                START.clear()
                if VARIANT.get("gmax") == 0.0:
                    START.update(dict.fromkeys(GROUPS, (3.0, 0.0)))
                if pair is not None:
                    START.update(zip(GROUPS, pair, strict=True))
                    print(f"-- start MM {pair[0]}, lipids {pair[1]}")
                rel = run(name)
                if args.probe and pair is None:
                    probe(name)
                if tol is not None and pair is None:
                    rels += [(abs(v), abs(v) > tol) for v in rel.values()]
            if args.starts:
                print_ends(name)
        if rels:
            a = np.array(rels)
            print(
                f"{variant}: {int(a[:, 1].sum())} of {len(a)} Philips ratios outside, mean "
                f"|rel. diff.| {100 * a[:, 0].mean():.2f} %, largest {100 * a[:, 0].max():.1f} %"
            )


if __name__ == "__main__":
    main()
