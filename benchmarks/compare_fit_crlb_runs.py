"""Two saved runs of ``benchmarks/validate_fit_crlb.py`` on the same draws compared draw by draw
(issue 12, done-when 1): is an SD above the CRLB made by the search (a draw left in a basin of
higher cost than the other run found) or by the estimator itself (the lower-cost basin of every
draw still spread beyond the bound)?

``A`` is typically the default fit (``--save a.npz``) and ``B`` the fit from the true
parameters (``--start truth --save b.npz``), same ``--seed``, ``--snr`` and ``--draws``. Prints
how many draws end more than 0.5 noise variances above the other run's cost, and for
``--metabolite`` (default Glu) the SD over the bound at the truth of A, of B and of the
lower-cost estimate of each draw, the skewness, and the SD without the draws whose fitted
damping exceeds ``--broad`` (1/s) in the lower-cost run.

Run: ``python benchmarks/compare_fit_crlb_runs.py a.npz b.npz [--metabolite Glu] [--broad 25]``
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import skew


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--metabolite", default="Glu")
    parser.add_argument("--broad", type=float, default=25.0)
    args = parser.parse_args()
    a, b = np.load(args.a), np.load(args.b)
    names = list(a["names"])
    if args.metabolite not in names:
        raise SystemExit(f"no metabolite {args.metabolite!r} in {args.a}")
    if a["amplitudes"].shape != b["amplitudes"].shape or not np.array_equal(a["truth"], b["truth"]):
        raise SystemExit("the two runs are not of the same draws (seed, SNR and draws must match)")
    i = names.index(args.metabolite)
    bound = float(np.sqrt(a["truth_covariance"][i, i]))
    gap = a["cost"] - b["cost"]
    print(
        f"draws: {gap.size}; A above B by > 0.5 noise variances: {np.count_nonzero(gap > 0.5)}, "
        f"B above A: {np.count_nonzero(gap < -0.5)}"
    )
    a_lower = (gap <= 0)[:, None]
    best = {k: np.where(a_lower, a[k], b[k]) for k in ("amplitudes", "damping_per_s")}
    truth = float(a["truth"][i])
    print(f"{args.metabolite}: truth {truth:.3f}, CRLB at the truth {bound:.4f}")
    for label, run in (("A", a), ("B", b), ("lower cost of A, B", best)):
        x = run["amplitudes"][:, i]
        print(
            f"  {label:18s} SD/CRLB {x.std(ddof=1) / bound:5.2f}  bias {x.mean() - truth:+.4f}  "
            f"skewness {skew(x):5.2f}  damping > {args.broad:g}/s in "
            f"{np.count_nonzero(run['damping_per_s'][:, i] > args.broad)}"
        )
    narrow = best["damping_per_s"][:, i] <= args.broad
    x = best["amplitudes"][narrow, i]
    print(
        f"  lower cost, the {narrow.sum()} draws with damping <= {args.broad:g}/s: "
        f"SD/CRLB {x.std(ddof=1) / bound:.2f}"
    )


if __name__ == "__main__":
    main()
