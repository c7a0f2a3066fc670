"""Whether the in-vivo default's last Levenberg–Marquardt pass ends at the lowest cost it can
reach, and whether a lower end is nearer the truth: docs/history/fit-log.md "Does the in-vivo
default stop short of its minimum? (session 30, minima30)".

Fits ``bench_fit_engine.py``'s spectra (the tissue-like ``invivo`` simulation of ``--seed``:
``--run tissue``, the default; the default simulator's at SNR 30: ``--run invivo``; or, with
``--snr``, ``bench_invivo_default.py``'s tissue-like spectra at that SNR) with
``FIT_PRESETS["invivo"]`` on one torch thread, keeps the problem and the end of the call's
first last pass (the one after the continuation stages: for ``tissue`` the fit; for ``invivo``
the fit at the fixed stiffness, before the F-test's refits) and runs that pass again:

* ``again``: from its end with its own stopping rule, the damping reset to
  :data:`~scaloquant.fit.lm.LM_START` (what one more restart would give);
* ``strict``: from its end with no gain rule (``cost_rtol`` 0: it runs until the damping passes
  :data:`~scaloquant.fit.lm.LM_MAX`, at most 400 trials): the cost a run cut by its stopping rule
  or iteration cap (a plateau) would still lose;
* ``perturbed``: from its end moved by ``--dist`` CRLB SDs (a random direction in the metric of
  ``J^T J``, so that the quadratic model's cost rises by ``dist^2`` noise variances), ``--perturb``
  draws each, strict;
* ``groups``: from the pass's own start (the continuation stage's end) with the macromolecule and
  lipid groups' (damping 1/s, Gaussian 1/s^2) each started at one of (3, 50) (the preset's), (0,
  2500), (40, 0), (20, 1000), (60, 3000) (the upper bounds), 25 pairs, and the lipids' shift
  moved by -8 and +8 Hz at each of those five, with the pass's rule; the lowest end of a
  spectrum polished strictly.

Costs are the objective (:attr:`~scaloquant.fit.evaluation.Evaluation.cost`, the priors in) in
the pass's noise variances (the signal-free region's, per real part): ``sigma^2``, ~(distance in
CRLB SDs)^2. Printed per start: the spectra whose end is lower than the pass's by > 0.1, > 1 and
> 10 ``sigma^2`` and the largest gap; the paired change of the per-spectrum MAE against the
truth (below) at ``again``'s and ``strict``'s ends; each spectrum's gap classified as a plateau (``strict``
from its end gains > 1) or another minimum (``strict`` gains < 1, another start ends > 1
lower); the spectra with the largest gaps (the MM and lipid groups' damping, Gaussian and shift
at the pass's end and at the lowest); and, over the spectra whose lowest end is > 1 ``sigma^2``
below the pass's and over all, the paired change of the per-spectrum MAE against the truth at
the lowest end: ``tissue`` the 20 metabolites in mM (``bench_invivo_default.py``'s, ``Mac`` and
the lipids left out) and their ratios to Cr + PCr; ``invivo`` every amplitude (the pass's, not
the F-test's refits).

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_restarts.py [--run tissue|invivo] [--n 128]
[--seed 1] [--snr SNR] [--perturb 6] [--dist 3 8] [--save OUT.npz]``
"""

from __future__ import annotations

import argparse
import inspect
import itertools

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_invivo_default import tissue_spectra  # noqa: E402
from scaloquant.fit import batched, fit_spectra, lm, stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.simulate.prior import MEASURED_MM_NAMES, InvivoPrior  # noqa: E402

#: (damping 1/s, Gaussian 1/s^2) starts of the MM and lipid groups (session 28's four and the
#: upper bounds of ``FIT_PRESETS["invivo"]``)
WIDTHS = ((3.0, 50.0), (0.0, 2500.0), (40.0, 0.0), (20.0, 1000.0), (60.0, 3000.0))
#: the lipid group's shift moved by these (Hz) at each of :data:`WIDTHS`
LIPID_SHIFTS_HZ = (-8.0, 8.0)
STRICT_TRIALS = 400


def last_pass(fid, basis):
    """``(result, (problem, start, y, noise_var, lower, upper, options, solution))`` of
    ``fit_spectra(fid, basis, FIT_PRESETS["invivo"])`` and of its first LM run after the
    continuation stages."""
    solver, calls = batched.levenberg_marquardt, []

    def run(problem, theta, y, noise_var, lower, upper, **options):
        sol = solver(problem, theta, y, noise_var, lower, upper, **options)
        if "continuation" not in {f.function for f in inspect.stack()[1:12]}:
            calls.append((problem, theta.clone(), y, noise_var, lower, upper, options, sol))
        return sol

    batched.levenberg_marquardt = stages.levenberg_marquardt = run
    try:
        result = fit_spectra(fid, basis, FIT_PRESETS["invivo"])
    finally:
        batched.levenberg_marquardt = stages.levenberg_marquardt = solver
    return result, calls[0]


def perturbed(problem, sol, noise_var, lower, upper, dist: float, gen: torch.Generator):
    """``sol.theta`` moved by ``dist`` CRLB SDs in a random direction of the metric of the
    pass's ``J^T J`` (with its priors; a floor of 1e-6 of the largest scaled curvature keeps a
    group without amplitude finite), within the bounds."""
    jtj, _ = lm._normal_equations(problem, sol.evaluation, sol.theta, noise_var)
    scale = problem.scale[problem.free_index]
    diag = torch.diagonal(jtj, dim1=-2, dim2=-1)
    floor = 1e-6 * (diag * scale**2).amax(-1, keepdim=True) / scale**2
    factor = torch.linalg.cholesky(jtj + torch.diag_embed(floor + 1e-9 * diag))
    z = torch.randn(*diag.shape, 1, generator=gen, dtype=jtj.dtype)
    z = z / z.norm(dim=1, keepdim=True) * dist * noise_var.sqrt()[:, None, None]
    theta = sol.theta.clone()
    theta[:, problem.free_index] += torch.linalg.solve_triangular(factor.mT, z, upper=True)[..., 0]
    return torch.minimum(torch.maximum(theta, lower), upper)


def group_starts(problem, start, lower, upper):
    """``[(label, theta)]``: the pass's ``start`` with the MM and lipid groups (the problem's
    groups 1 and 2) at :data:`WIDTHS` and the lipids' shift moved by :data:`LIPID_SHIFTS_HZ`."""
    sl = problem.slices()
    out = []

    def put(theta, group, width, shift_hz):
        if width is not None:
            theta[:, sl["damping"].start + group] = width[0]
            theta[:, sl["gauss"].start + group] = width[1]
        theta[:, sl["shift"].start + group] += shift_hz

    for mm, lipids in itertools.product(WIDTHS, WIDTHS):
        theta = start.clone()
        put(theta, 1, mm, 0.0)
        put(theta, 2, lipids, 0.0)
        out.append((f"MM {mm} lipids {lipids}", theta))
    for lipids, shift in itertools.product(WIDTHS, LIPID_SHIFTS_HZ):
        theta = start.clone()
        put(theta, 2, lipids, shift)
        out.append((f"lipids {lipids} shifted {shift:+g} Hz", theta))
    return [(label, torch.minimum(torch.maximum(t, lower), upper)) for label, t in out]


def errors(run, amplitudes, names, basis, truth):
    """Per-spectrum MAE ``(n,)`` against the truth (and, for ``tissue``, of the ratios to Cr +
    PCr; else None) of ``amplitudes`` ``(n, M)`` in the result's units, columns ``names``."""
    if run == "invivo":
        est = amplitudes[:, [names.index(m) for m in basis.names]]
        return np.abs(est - truth).mean(1), None
    metabolites = [m for m in basis.names if m not in MEASURED_MM_NAMES]
    est = amplitudes[:, [names.index(m) for m in metabolites]]
    true = truth[:, [basis.names.index(m) for m in metabolites]]
    cr = [metabolites.index("Cr"), metabolites.index("PCr")]
    ratio = est / est[:, cr].sum(1, keepdims=True)
    true_ratio = true / true[:, cr].sum(1, keepdims=True)
    return np.abs(est - true).mean(1), np.abs(ratio - true_ratio).mean(1)


def paired(label: str, before: np.ndarray, after: np.ndarray) -> str:
    d = after - before
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return (
        f"{label} {before.mean():.5f} -> {after.mean():.5f}, paired {d.mean():+.5f} +- {se:.5f} "
        f"(nearer the truth in {int((d < 0).sum())}, farther in {int((d > 0).sum())} of {d.size})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", choices=("tissue", "invivo"), default="tissue")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--snr", type=float, help="tissue: bench_invivo_default.py's at this SNR")
    parser.add_argument("--perturb", type=int, default=6)
    parser.add_argument("--dist", type=float, nargs="+", default=[3.0, 8.0])
    parser.add_argument("--save", help="npz of every start's end costs and the errors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.snr is not None and args.run == "tissue":
        prior = InvivoPrior(snr_range=(args.snr, args.snr))
        basis, signals, fid = tissue_spectra(prior, args.n, args.seed)
        truth = signals.parameters.concentrations_mm
    else:
        basis, signals, fid, tissue = engine_spectra(args.n, 30.0, args.seed)
        if args.run == "tissue":
            prior = InvivoPrior()
            truth = tissue_spectra(prior, args.n, args.seed)[1].parameters.concentrations_mm
            fid = tissue
        else:
            truth = signals.amplitudes
    result, (problem, start, y, nv, lower, upper, options, sol) = last_pass(fid, basis)
    if start.shape[0] != args.n:
        raise SystemExit(f"the first last pass fitted {start.shape[0]} of {args.n} spectra")
    solver = lm.levenberg_marquardt
    rule = {k: v for k, v in options.items() if k != "max_iterations"}
    strict = {k: v for k, v in rule.items() if k != "cost_rtol"}

    def again(theta, *, strict_rule: bool):
        if strict_rule:
            return solver(
                problem, theta, y, nv, lower, upper, max_iterations=STRICT_TRIALS, cost_rtol=0.0,
                **strict,
            )  # fmt: skip
        return solver(
            problem, theta, y, nv, lower, upper, max_iterations=options["max_iterations"], **rule
        )

    s2 = nv.numpy()
    cost = sol.evaluation.cost.numpy()
    iterations = sol.iterations.numpy()
    print(
        f"{args.run}, {args.n} spectra (seed {args.seed}"
        f"{'' if args.snr is None else f', SNR {args.snr:g}'}): the last pass "
        f"{iterations.mean():.2f} trials a spectrum, {iterations.max()} the most "
        f"(cap {options['max_iterations']}: {int((iterations >= options['max_iterations']).sum())} "
        f"at it); end cost / 2K {np.median(cost / (2 * y.shape[-1]) / s2):.3f} noise variances"
    )

    def gaps(c):
        return (cost - c) / s2

    def line(label, g, extra=""):
        print(
            f"  {label:44s} lower by > 0.1 / 1 / 10 sigma^2 in {int((g > 0.1).sum()):3d} / "
            f"{int((g > 1).sum()):3d} / {int((g > 10).sum()):3d}; largest {g.max():7.2f} "
            f"(spectrum {int(g.argmax())}){extra}"
        )

    ends = {}
    sol_again = again(sol.theta, strict_rule=False)
    line("again (its rule, damping reset)", gaps(sol_again.evaluation.cost.numpy()),
         f"; {sol_again.iterations.double().mean():.2f} trials")  # fmt: skip
    sol_strict = again(sol.theta, strict_rule=True)
    ends["strict"] = sol_strict
    plateau = gaps(sol_strict.evaluation.cost.numpy())
    line("strict (no gain rule)", plateau, f"; {sol_strict.iterations.double().mean():.2f} trials")
    gen = torch.Generator().manual_seed(args.seed)
    for dist, k in itertools.product(args.dist, range(args.perturb)):
        s = again(perturbed(problem, sol, nv, lower, upper, dist, gen), strict_rule=True)
        ends[f"perturbed {dist:g} SD #{k}"] = s
        line(f"perturbed {dist:g} SD #{k}", gaps(s.evaluation.cost.numpy()))
    for label, theta in group_starts(problem, start, lower, upper):
        s = again(theta, strict_rule=False)
        ends[label] = s
        line(label, gaps(s.evaluation.cost.numpy()))
    costs = np.stack([s.evaluation.cost.numpy() for s in ends.values()])
    labels = list(ends)
    lowest = costs.argmin(0)
    theta = torch.stack([ends[labels[j]].theta[i] for i, j in enumerate(lowest)])
    best = again(theta, strict_rule=True)
    gap = gaps(best.evaluation.cost.numpy())
    line("lowest of all, polished strictly", gap)
    minimum = (gap > 1) & (plateau <= 1)
    print(
        f"  gaps > 1 sigma^2: plateaus (strict from the end gains > 1) {int((plateau > 1).sum())}, "
        f"other minima {int(minimum.sum())}"
    )
    sl = problem.slices()

    def groups(t):
        return " ".join(
            f"{name} {float(t[sl['damping'].start + g]):.1f}, {float(t[sl['gauss'].start + g]):.0f}, "
            f"{float(t[sl['shift'].start + g]):+.1f}"
            for g, name in ((1, "MM"), (2, "lipids"))
        )

    names = list(problem.names)
    result_names = list(result.names)
    # the evaluation's amplitudes in the result's units (a factor per metabolite)
    ratio = np.asarray(result.amplitudes)[:, [result_names.index(m) for m in names]]
    with np.errstate(invalid="ignore", divide="ignore"):  # amplitudes at 0
        ratio = ratio / sol.evaluation.amplitudes.numpy()
    factor = np.nanmedian(np.where(np.isfinite(ratio), ratio, np.nan), axis=0)
    before = errors(args.run, sol.evaluation.amplitudes.numpy() * factor, names, basis, truth)
    after = errors(args.run, best.evaluation.amplitudes.numpy() * factor, names, basis, truth)
    unit = "amplitudes" if args.run == "invivo" else "mM"
    for label, s in (("again", sol_again), ("strict", sol_strict)):
        moved = errors(args.run, s.evaluation.amplitudes.numpy() * factor, names, basis, truth)
        print(f"  {label}'s end: " + paired(f"MAE {unit}", before[0], moved[0]))
    for i in np.argsort(-gap)[:8]:
        print(
            f"  spectrum {i}: {gap[i]:.2f} sigma^2 lower from '{labels[lowest[i]]}' "
            f"(strict from the end {plateau[i]:.2f}); (damping, Gaussian, shift) {groups(sol.theta[i])}"
            f" -> {groups(best.theta[i])}; MAE {before[0][i]:.3f} -> {after[0][i]:.3f}"
        )
    for label, sel in (("> 1 sigma^2 lower", gap > 1), ("all", np.ones_like(gap, bool))):
        if not sel.any():
            continue
        print(
            f"  {label} ({int(sel.sum())}): " + paired(f"MAE {unit}", before[0][sel], after[0][sel])
        )
        if before[1] is not None:
            print("    " + paired("MAE of the ratios to tCr", before[1][sel], after[1][sel]))
    if args.save:
        np.savez(
            args.save, cost=cost, noise_var=s2, costs=costs, labels=np.array(labels), gap=gap,
            plateau=plateau, mae=before[0], mae_lowest=after[0], iterations=iterations,
        )  # fmt: skip


if __name__ == "__main__":
    main()
