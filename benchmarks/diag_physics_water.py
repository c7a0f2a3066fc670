"""Residual water just above the window and a physics-head model: does ``water_near_window``
mean anything for it? (session 19, ``water19``)

``--n`` spectra of the ``invivo`` prior (docs/invivo-prior.md) at ``--snr``, drawn once from
``--seed`` with residual water in every one (``water_fraction=1.0``, the default ranges
otherwise) and rendered three times with the same parameters and the same noise: without the
water (its heights set to 0), with the prior's water (centres 4.35-4.95 ppm) and with its
centres moved to ``--near`` (default 4.30-4.45 ppm: many near the window's top). The prior
draws the water's centres after everything else from a stream of the same length whatever
their range, so the three sets differ only in the water: each spectrum's error with water is
paired with its own error without.

For each checkpoint (``scaloquant train --model spectrum_physics|scalogram_physics``;
``predict_with_checks``, its default polish K, as ``quantify`` runs it) and for ``scaloquant
fit``'s ``invivo`` preset (``--no-fit`` leaves it out): each spectrum's error, the mean over the
main metabolites (NAA, Cr+PCr, GPC+PCho, Ins, Glu, as ``bench_physics.py``'s slopes sum them) of
|estimate - truth| in the prior's units (mM), and its ``water_near_window`` ratio
(:func:`scaloquant.signal.water_peak.water_near_window` above the window's top: the model's
``fit_config.ppm_range[1]`` on the spectra it saw, as the lead's attempt; the fit's on the data
less the water it removed, as ``quantify/checks.py`` ``water_near_window_seen``). Per set, in bins of the
ratio: the count, the mean and 90th percentile of the error with water, the mean of the same
spectra's error without water, the mean paired difference (and its 95 % bootstrap interval), the
share of spectra whose error grew by more than ``--worse`` mM; and the share above
:data:`~scaloquant.signal.water_peak.WATER_NEAR_WINDOW_RATIO`.

With ``--remove-water all`` each model on the spectra less the water that the fit's HLSVD
removes, instead of the spectra as they are (:func:`scaloquant.signal.water.remove_water`, as
``FIT_PRESETS["invivo"]`` does before its fit): what the models lose to the water that the fit
does not; ``--remove-water flagged``: as ``quantify`` runs them (``quantify.run._physics_estimates``:
from session 20 less that water only where ``water_near_window`` is above its threshold; since
session 28 so only at ``K = 0``, and with a polish less it on every spectrum, as the fit).

Usage: ``PYTHONPATH=src python benchmarks/diag_physics_water.py CKPT [CKPT ...] [--n 400]
[--snr 30] [--seed 11] [--near 4.30 4.45] [--threads 2] [--no-fit] [--remove-water none|all|flagged]
[--bins 1 3 10] [--thresholds 1 2 3 5] [--worse 1] [--water-max-fwhm HZ] [--save OUT.npz]``; per
threshold: the share flagged, the mean paired difference of the flagged and of the others, and how
many of the spectra worse by > ``--worse`` mM it flags. ``--water-max-fwhm``: the fit's HLSVD width
bound for this run (:data:`scaloquant.signal.water.WATER_MAX_FWHM_HZ`, read at each call; ``inf``:
none, as before session 20). ``--save``: each arm's per-spectrum errors and ratios per set, for
paired comparisons between runs; the water-free spectra above the threshold are listed.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

import scaloquant.signal.water

# the main metabolites (and sums) of the slopes, as bench_physics compares them
from bench_physics import SLOPES as MAIN
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.models import load_model
from scaloquant.quantify.run import _physics_estimates as physics_estimates
from scaloquant.signal.water import remove_water
from scaloquant.signal.water_peak import WATER_NEAR_WINDOW_RATIO, water_near_window
from scaloquant.simulate.draws import InvivoParameters, draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.simulate.linewidths import basis_lines
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.types import FID


def main_error(names, est, truth_names, truth) -> np.ndarray:
    """Mean over :data:`MAIN` of |estimate - truth| ``(n,)``, each a sum of its parts."""
    out = []
    for parts in MAIN.values():
        e = sum(est[:, list(names).index(p)] for p in parts)
        t = sum(truth[:, list(truth_names).index(p)] for p in parts)
        out.append(np.abs(e - t))
    return np.mean(out, axis=0)


def _bootstrap_ci(d: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    if d.size < 2:
        return (np.nan, np.nan)
    means = d[rng.integers(0, d.size, size=(n, d.size))].mean(axis=1)
    return tuple(np.percentile(means, [2.5, 97.5]))


def table(label, ratio, err, err_dry, edges, worse, rng, thresholds=()) -> None:
    print(
        f"  {label}: above {WATER_NEAR_WINDOW_RATIO:g}: "
        f"{100 * np.mean(ratio > WATER_NEAR_WINDOW_RATIO):.1f} %; MAE with water "
        f"{err.mean():.3f}, without {err_dry.mean():.3f} mM"
    )
    print(
        "    ratio bin      n   err  p90 | dry err | paired diff [95 % CI]      | worse by >"
        f" {worse:g} mM"
    )
    bounds = [-np.inf, *edges, np.inf]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        sel = (ratio >= lo) & (ratio < hi)
        name = (
            f"< {hi:g}" if lo == -np.inf else (f">= {lo:g}" if hi == np.inf else f"{lo:g}-{hi:g}")
        )
        if not sel.any():
            print(f"    {name:<10} {0:5d}")
            continue
        d = err[sel] - err_dry[sel]
        lo_ci, hi_ci = _bootstrap_ci(d, rng)
        print(
            f"    {name:<10} {sel.sum():5d} {err[sel].mean():5.2f} "
            f"{np.percentile(err[sel], 90):5.2f} | {err_dry[sel].mean():7.2f} | "
            f"{d.mean():+6.2f} [{lo_ci:+6.2f}, {hi_ci:+6.2f}] | {100 * np.mean(d > worse):5.1f} %"
        )
    d = err - err_dry
    hurt = d > worse
    for t in thresholds:
        flag = ratio > t
        print(
            f"    flag at > {t:g}: {100 * flag.mean():5.1f} % flagged; paired diff flagged "
            f"{np.mean(d[flag]) if flag.any() else np.nan:+.2f}, not {np.mean(d[~flag]):+.2f} mM; "
            f"of the {hurt.sum()} worse by > {worse:g} mM {100 * np.mean(flag[hurt]):.0f} % "
            f"flagged; of the flagged {100 * np.mean(hurt[flag]) if flag.any() else np.nan:.0f} "
            "% worse"
        )


def water_sets(
    basis, n: int, snr: float, seed: int, near: tuple[float, float]
) -> tuple[dict[str, np.ndarray], InvivoParameters]:
    """The three renderings of ``n`` ``invivo`` spectra at ``snr`` drawn from ``seed`` (noise
    seed ``seed + 1000``): ``{"no water", "water 4.35-4.95", "water NEAR"}`` -> FIDs ``(n, N)``,
    and the draw's parameters (the truth)."""
    prior = InvivoPrior(snr_range=(snr, snr), water_fraction=1.0)
    lines = basis_lines(basis, prior)  # the basis' own lines, as training draws
    params = draw_invivo(prior, basis.names, n, np.random.default_rng(seed), lines)
    moved = draw_invivo(
        replace(prior, water_centre_range_ppm=tuple(near)),
        basis.names,
        n,
        np.random.default_rng(seed),
        lines,
    )
    # the same draw but the water's centres (checked, not assumed)
    assert np.array_equal(moved.concentrations_mm, params.concentrations_mm)
    assert np.array_equal(moved.water_height, params.water_height)
    dry = replace(params, water_height=np.zeros_like(params.water_height))
    sets = {
        name: render_invivo(basis, p, np.random.default_rng(seed + 1000)).fids
        for name, p in (
            ("no water", dry),
            ("water 4.35-4.95", params),
            (f"water {near[0]:g}-{near[1]:g}", moved),
        )
    }
    return sets, params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--near", type=float, nargs=2, default=(4.30, 4.45))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument(
        "--remove-water",
        choices=("none", "all", "flagged"),
        default="none",
        help="each model on the spectra as they are (none), less the water the fit's HLSVD "
        "removes (all), or as quantify runs it (flagged: with a polish on every spectrum, at "
        "K = 0 where water_near_window is above its threshold)",
    )
    ap.add_argument("--water-max-fwhm", type=float, help="Hz (default: the library's)")
    ap.add_argument("--save", help="npz of the per-spectrum errors and ratios")
    ap.add_argument("--bins", type=float, nargs="+", default=(1.0, 3.0, 10.0))
    ap.add_argument("--worse", type=float, default=1.0, help="mM")
    ap.add_argument("--thresholds", type=float, nargs="*", default=(1.0, 2.0, 3.0, 5.0))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.water_max_fwhm is not None:
        scaloquant.signal.water.WATER_MAX_FWHM_HZ = args.water_max_fwhm
    basis = default_basis()
    grid = (basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    sets, params = water_sets(basis, args.n, args.snr, args.seed, tuple(args.near))
    prior = InvivoPrior()
    truth_names, truth = basis.names, params.concentrations_mm
    rng = np.random.default_rng(0)
    print(
        f"{args.n} invivo spectra, SNR {args.snr:g}, seed {args.seed}, water in all "
        f"(heights {prior.water_height_range} x NAA); error: mean |est - truth| over "
        f"{', '.join(MAIN)} (mM); {args.threads} threads"
    )
    arms = []
    for path in args.checkpoints:
        q = load_model(path).quantifier
        top = q.config.fit_config.ppm_range[1]
        print(f"model {path}: {q.config.model}, polish K = {q.config.polish_iterations}, "
              f"window top {top:g} ppm")  # fmt: skip

        def run(fids, q=q, top=top, less_water=args.remove_water == "all"):
            start = time.perf_counter()
            seen = remove_water(fids, *grid, threads=args.threads) if less_water else fids
            amps = q.predict_with_checks(seen)[0]
            sec = time.perf_counter() - start
            return (
                main_error(q.metabolites, amps, truth_names, truth),
                (water_near_window(seen, *grid, top)),
                sec,
            )

        def run_flagged(fids, q=q):
            start = time.perf_counter()
            fid = FID(samples=fids, dwell_time_s=grid[0], spectrometer_freq_mhz=grid[1],
                      ppm_reference=grid[2])  # fmt: skip
            rows = physics_estimates(q, fids, fid, None, None, "adaptive")
            sec = time.perf_counter() - start
            near = rows.facts["water_near_window"]
            return main_error(q.metabolites, rows.columns[0], truth_names, truth), near, sec

        label = f"{q.config.model} K={q.config.polish_iterations}"
        if args.remove_water == "flagged":
            arms.append((f"{label}, as quantify runs it", run_flagged))
        else:
            arms.append(
                (label + (", the fit's HLSVD first" if args.remove_water == "all" else ""), run)
            )
    if not args.no_fit:
        config = FIT_PRESETS["invivo"]

        def run_fit(fids):
            fid = FID(samples=fids, dwell_time_s=grid[0], spectrometer_freq_mhz=grid[1],
                      ppm_reference=grid[2])  # fmt: skip
            start = time.perf_counter()
            r = fit_spectra(fid, basis, config)
            sec = time.perf_counter() - start
            seen = fids - (0 if r.removed_water is None else r.removed_water)
            return (
                main_error(r.names, r.amplitudes, truth_names, truth),
                (water_near_window(seen, *grid, config.ppm_range[1])),
                sec,
            )

        arms.append(("fit (invivo preset)", run_fit))
    saved: dict[str, np.ndarray] = {}
    for label, run in arms:
        print(f"== {label}")
        results = {name: run(fids) for name, fids in sets.items()}
        for name, (err, ratio, _) in results.items():
            saved[f"{label}|{name}|err"], saved[f"{label}|{name}|ratio"] = err, ratio
        err_dry, ratio_dry, sec = results["no water"]
        print(
            f"  no water: MAE {err_dry.mean():.3f} mM, ratio median {np.nanmedian(ratio_dry):.2f}"
            f" max {np.nanmax(ratio_dry):.2f}, above {WATER_NEAR_WINDOW_RATIO:g}: "
            f"{100 * np.mean(ratio_dry > WATER_NEAR_WINDOW_RATIO):.1f} % ({sec:.1f} s)"
        )
        for b in np.flatnonzero(ratio_dry > WATER_NEAR_WINDOW_RATIO):
            print(f"    spectrum {b}: ratio {ratio_dry[b]:.2f}, error {err_dry[b]:.2f} mM")
        for name, (err, ratio, _) in results.items():
            if name != "no water":
                table(name, ratio, err, err_dry, args.bins, args.worse, rng, args.thresholds)
    if args.save:
        np.savez(args.save, **saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
