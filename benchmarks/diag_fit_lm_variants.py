"""Geodesic acceleration and NL2SOL's structured secant term in the in-vivo default's
Levenberg–Marquardt runs, against plain LM in one process: docs/history/fit-log.md "Geodesic
acceleration and a structured secant for the in-vivo default (session 29, geo29)".

EXPERIMENT, kept with the commit that measured it: the switches it sets
(``scaloquant.fit.lm.GEODESIC``, ``SECANT``, ``SECANT_GAIN``) were removed from the library
again in the next commit (neither was adopted); run it at this commit.

Fits ``bench_fit_engine.py``'s spectra (default simulator, seed 1, SNR 30; and the tissue-like
``invivo`` simulation of the same seed) with ``FIT_PRESETS["invivo"]``, the arms alternated
(``--rounds``, the order reversed every other round): ``main`` (plain LM), ``geo`` (geodesic
acceleration, ``h`` 0.1, ``alpha`` 0.75), ``secant`` (the structured term from the first
step), ``late`` (the term used once an accepted step gained < 1e-3 of the cost). Prints per
arm the model evaluations (trial rows of ``lm.evaluate_copied``) per spectrum, the mean LM
trials of the continuation stage and of the last passes (with the F-test's), spectra/s (wall,
CPU), MAE against the truth (default: amplitudes; tissue-like: ratios to Cr + PCr), and, against
``main``, the change of every amplitude in CRLB SD and of the residual cost in noise variances.

``--fvv-check``: on 16 default-simulator spectra with ``geo``, how well the finite-difference
second directional derivative predicts the plain step's residual, whole and projected on
the range of ``J``, and how often the accelerated step costs less than the plain one.

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_lm_variants.py [--n 128] [--threads 2]
[--rounds 2] [--arms main geo secant late] [--h 0.1] [--alpha 0.75] [--reject] [--fd-double]
[--fvv-check]`` (the last four: the ``geo`` arm's variants: the finite-difference step, the
largest ``2 |a| / |v|`` taken, a step whose acceleration is larger rejected (GSL's rule) instead
of taken without it, the point at ``h`` evaluated in float64)
"""

from __future__ import annotations

import argparse
import inspect
from collections import defaultdict

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import timed  # noqa: E402
from scaloquant.fit import batched, fit_spectra, lm, stages  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.fit.evaluation import whitened_inner  # noqa: E402
from scaloquant.simulate import InvivoPrior, simulate_invivo_batch  # noqa: E402

ARMS = {
    "main": {},
    "geo": {"GEODESIC": True},
    "secant": {"SECANT": True},
    "late": {"SECANT": True, "SECANT_GAIN": 1e-3},
}
OFF = {"GEODESIC": False, "SECANT": False, "SECANT_GAIN": 0.0}  # (the geo arm's h etc. are
# read only with GEODESIC on)


class Counter:
    """While installed, counts the trial rows evaluated and each LM run's trials by site."""

    def __init__(self) -> None:
        self.evaluations = 0
        self.runs: dict[str, list[np.ndarray]] = defaultdict(list)

    def install(self) -> None:
        evaluate, solver = lm.evaluate_copied, lm.levenberg_marquardt

        def counted(problem, theta, *args, **kwargs):
            self.evaluations += theta.shape[0] - 1  # the copied last row
            return evaluate(problem, theta, *args, **kwargs)

        def recorded(problem, theta, *args, **kwargs):
            names = [f.function for f in inspect.stack()[1:6]]
            site = "stage" if "continuation" in names else "last passes"
            sol = solver(problem, theta, *args, **kwargs)
            self.runs[site].append(sol.iterations.cpu().numpy())
            return sol

        lm.evaluate_copied = counted
        batched.levenberg_marquardt = stages.levenberg_marquardt = recorded

    def reset(self) -> None:
        self.evaluations = 0
        self.runs.clear()


def set_arm(arm: str) -> None:
    for name, value in {**OFF, **ARMS[arm]}.items():
        setattr(lm, name, value)


def compare(arms: list[str], n: int, rounds: int) -> None:
    basis, signals, fid, tissue = engine_spectra(n, 30.0, 1)
    truth = simulate_invivo_batch(basis, InvivoPrior(), n, np.random.default_rng(1))
    names = list(basis.names)
    cr, pcr = names.index("Cr"), names.index("PCr")

    def mae(family: str, result) -> float:
        amp = np.asarray(result.amplitudes)[:, [list(result.names).index(m) for m in names]]
        if family == "default":
            return float(np.mean(np.abs(amp - signals.amplitudes)))
        c = truth.parameters.concentrations_mm
        ratio = amp / (amp[:, [cr]] + amp[:, [pcr]])
        return float(np.mean(np.abs(ratio - c / (c[:, [cr]] + c[:, [pcr]]))))

    counter = Counter()
    counter.install()
    results: dict[str, dict] = defaultdict(dict)
    speeds: dict[tuple[str, str], list] = defaultdict(list)
    for rnd in range(rounds):
        for family, source in (("default", fid), ("tissue", tissue)):
            for arm in arms if rnd % 2 == 0 else arms[::-1]:
                set_arm(arm)
                counter.reset()
                result, wall, cpu = timed(fit_spectra, source, basis, FIT_PRESETS["invivo"])
                set_arm("main")
                speeds[family, arm].append((n / wall, n / cpu))
                if rnd:
                    continue
                results[family][arm] = result
                trials = ", ".join(
                    f"{site} {np.concatenate(its).mean():.2f} ({sum(map(len, its))} runs)"
                    for site, its in counter.runs.items()
                )
                print(
                    f"{family:8s} {arm:7s}: {counter.evaluations / n:6.2f} evaluations a spectrum, "
                    f"trials a spectrum: {trials}; MAE {mae(family, result):.5f}",
                    flush=True,
                )
    for family in ("default", "tissue"):
        base = results[family]["main"] if "main" in arms else None
        for arm in arms:
            s = np.array(speeds[family, arm])
            line = (
                f"{family:8s} {arm:7s}: per CPU-s {' '.join(f'{x:.2f}' for x in s[:, 1])}, "
                f"wall {' '.join(f'{x:.2f}' for x in s[:, 0])} spectra/s"
            )
            if base is not None and arm != "main":
                r = results[family][arm]
                moved = np.abs(np.asarray(r.amplitudes) - np.asarray(base.amplitudes))
                sd = np.nan_to_num(moved / np.asarray(base.crlb_sd), posinf=0.0)
                cost = (
                    np.asarray(r.residual_norm) ** 2 - np.asarray(base.residual_norm) ** 2
                ) / np.asarray(base.noise_sd) ** 2
                line += (
                    f"; moved max {sd.max():.3f} mean {sd.mean():.4f} CRLB SD, spectra > 0.1 / "
                    f"0.5 SD {(sd.max(1) > 0.1).sum()} / {(sd.max(1) > 0.5).sum()}; cost against "
                    f"main lower / higher in {(cost < -0.01).sum()} / {(cost > 0.01).sum()}, "
                    f"{cost.min():.1f} .. {cost.max():.1f} noise variances"
                )
            print(line, flush=True)


def fvv_check() -> None:
    """The finite-difference ``f_vv`` against the plain step's residual (see the docstring)."""
    basis, _, fid, _ = engine_spectra(16, 30.0, 1)
    accelerated = lm._accelerated_trial
    rows = []

    def checked(problem, th, jtj, grad, lam, held, lo, hi, local, evaluate_at, prior):
        fi = problem.free_index
        a_mat, _ = lm._damped(problem, jtj, lam, held)
        v = lm._solved(a_mat, grad, held)
        whole = th.clone()
        whole[:, fi] += v
        inside = ((whole >= lo) & (whole <= hi)).all(-1)  # no bound cuts the step
        h = lm.GEODESIC_H
        near = th.clone()
        near[:, fi] += h * v
        ev_h, ev_1 = evaluate_at(near), evaluate_at(whole)
        jr, w_jr = local.jacobian()
        jv, w_jv = jr @ v[..., None], w_jr @ v[..., None]
        fvv = (2 / h) * ((ev_h.residual - local.residual) / h - jv)
        w_fvv = (2 / h) * ((ev_h.w_residual - local.w_residual) / h - w_jv)
        first = ev_1.residual - local.residual - jv, ev_1.w_residual - local.w_residual - w_jv
        second = first[0] - fvv / 2, first[1] - w_fvv / 2

        def norm(x, w_x):
            return whitened_inner(x, w_x, x, w_x)[..., 0, 0].sqrt()

        def on_range(x, w_x):  # |P_J x| in the damped metric
            g = (jr.mT @ x - w_jr.mT @ w_x).to(a_mat.dtype)
            return (g.mT @ torch.linalg.solve(a_mat, g))[..., 0, 0].clamp_min(0).sqrt()

        trial, taken = accelerated(
            problem, th, jtj, grad, lam, held, lo, hi, local, evaluate_at, prior
        )
        gain = evaluate_at(trial).cost - ev_1.cost
        got = (norm(*first), norm(*second), on_range(*first), on_range(*second), taken, gain)
        for i in torch.nonzero(inside)[:, 0].tolist():
            rows.append([float(t[i]) for t in got])
        return trial, taken

    lm._accelerated_trial = checked
    set_arm("geo")
    try:
        fit_spectra(fid, basis, FIT_PRESETS["invivo"])
    finally:
        lm._accelerated_trial = accelerated
        set_arm("main")
    r = np.array(rows)
    taken = r[:, 4] > 0
    print(
        f"{len(r)} trials (no bound cut): |f(th+v) - f - Jv - f_vv/2| / |f(th+v) - f - Jv| "
        f"median {np.median(r[:, 1] / r[:, 0]):.2f} (smaller in {np.mean(r[:, 1] < r[:, 0]):.0%}); "
        f"on the range of J median {np.median(r[:, 3] / r[:, 2]):.2f} (smaller in "
        f"{np.mean(r[:, 3] < r[:, 2]):.0%}); acceleration taken in {taken.sum()}, the "
        f"accelerated step costs less than the plain one in {np.mean(r[taken, 5] < 0):.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arms", nargs="+", choices=tuple(ARMS), default=list(ARMS))
    parser.add_argument("--fvv-check", action="store_true")
    parser.add_argument("--h", type=float, default=0.1, help="geo: finite-difference step")
    parser.add_argument("--alpha", type=float, default=0.75, help="geo: largest 2|a|/|v|")
    parser.add_argument(
        "--reject", action="store_true", help="geo: a step whose 2|a|/|v| > alpha is rejected"
    )
    parser.add_argument(
        "--fd-double", action="store_true", help="geo: the point at h evaluated in float64"
    )
    args = parser.parse_args()
    ARMS["geo"].update(
        GEODESIC_H=args.h,
        GEODESIC_ALPHA=args.alpha,
        GEODESIC_REJECT=args.reject,
        GEODESIC_FD_DOUBLE=args.fd_double,
    )
    torch.set_num_threads(args.threads)
    if args.fvv_check:
        fvv_check()
    else:
        compare(args.arms, args.n, args.rounds)


if __name__ == "__main__":
    main()
