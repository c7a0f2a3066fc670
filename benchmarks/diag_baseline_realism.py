"""Are the ``invivo`` simulation prior's baselines like a scanner's? LCModel's fitted baselines
of the in-vivo spectra beside draws of the prior's baseline humps, on the same measures.

LCModel runs on each in-vivo spectrum of ``bench_lcmodel.py --sets invivo`` (its own basis,
default control keys plus the grid keys) with a ``.coord`` output; its baseline
(``background``, :func:`scaloquant.io.read_lcmodel_coord`) is divided by the spectrum's NAA height ``H``:
the largest value of LCModel's fit less its baseline in 1.9-2.1 ppm (metabolites and
macromolecules, as the prior's ``H``). The prior's baseline is, after phase correction, the sum
of its Gaussian humps (``BaselineConfig``: heights in units of ``H``), drawn ``--n`` times from
``--seed``. Both on 0.2-4.0 ppm (LCModel's window), measured as:

- ``p2p``: peak-to-peak / H; ``rms``: RMS about the mean / H;
- ``curv``: RMS of the second derivative, H/ppm^2 (the energy of the curvature);
- ``res@E``: RMS / H of what a penalised spline of ``E`` effective dimensions per ppm (the fit's
  baseline, :mod:`scaloquant.physics.baseline`, knots 0.15 ppm apart) leaves of the curve when
  fitted to it alone, noiseless: the part of the baseline that the metabolites must absorb.

Usage: ``PYTHONPATH=src python benchmarks/diag_baseline_realism.py [--n 2000] [--seed 0]
[--out DIR] [--prior-heights LO,HI --prior-fwhm LO,HI --prior-humps N]``
(the ``--prior-*`` options measure another candidate prior; default: the ``invivo`` prior's).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

import _lcmodel as lcm
import bench_lcmodel as bl
from scaloquant.io import read_lcmodel_coord
from scaloquant.physics.baseline import bspline_baseline, smoothing_for_ed
from scaloquant.simulate.config import BaselineConfig
from scaloquant.simulate.prior import InvivoPrior

WINDOW_PPM = (0.2, 4.0)
EDS = (1.0, 2.0, 4.0, 8.0)
GRID = np.linspace(WINDOW_PPM[0], WINDOW_PPM[1], 781)  # 0.0049 ppm, LCModel's spacing


def smoothers(ppm: np.ndarray) -> dict[float, np.ndarray]:
    """ED/ppm -> the (K, K) hat matrix of the fit's penalised spline on ``ppm``."""
    design, penalty = bspline_baseline(ppm, 0.15)
    span = float(ppm.max() - ppm.min())
    out = {}
    for ed in EDS:
        lam = smoothing_for_ed(design, penalty, ed * span)
        out[ed] = design @ np.linalg.solve(design.T @ design + lam * penalty, design.T)
    return out


def measures(ppm: np.ndarray, b: np.ndarray, hats: dict[float, np.ndarray]) -> dict[str, float]:
    """The module docstring's measures of one baseline ``b`` (in units of H) on ``ppm``."""
    order = np.argsort(ppm)
    x, y = ppm[order], b[order]
    d2 = np.gradient(np.gradient(y, x), x)[2:-2]
    out = {
        "p2p": float(y.max() - y.min()),
        "rms": float(np.std(y)),
        "curv": float(np.sqrt(np.mean(d2**2))),
    }
    for ed, hat in hats.items():
        out[f"res@{ed:g}"] = float(np.sqrt(np.mean((y - hat @ y) ** 2)))
    return out


def real_baselines(folder: Path) -> dict[str, np.ndarray]:
    """case -> LCModel's baseline / H on :data:`GRID` (also printed: LCModel's own ED/ppm)."""
    exe = lcm.build()
    out = {}
    for group in bl.invivo_set(folder / "inputs"):
        for case in group.cases:
            run = folder / case.name
            run.mkdir(parents=True, exist_ok=True)
            coord_path = run / f"{case.name}.coord"
            settings = replace(
                group.settings,
                extra=(*group.settings.extra, "lcoord=9", f"filcoo='{coord_path}'"),
            )
            outcome = lcm.run_one(exe, case.lcmodel, run, settings)
            if outcome.result is None:
                print(f"{case.name}: LCModel failed: {outcome.error}")
                continue
            c = read_lcmodel_coord(coord_path)
            window = (c.ppm >= 1.9) & (c.ppm <= 2.1)
            height = float(np.max((c.fit - c.background)[window]))
            lr = outcome.result
            sd_ref = float(np.std(c.data - c.fit))
            rms_real = float(np.sqrt(np.mean(c.data**2)))
            ed = lcm.baseline_ed_per_ppm(
                c.ppm, lr.alpha_b, lr.n_knots, sd_ref, np.sqrt(2) * rms_real
            )
            o = np.argsort(c.ppm)
            b = np.interp(GRID, c.ppm[o], c.background[o] / height)
            print(
                f"{case.name}: LCModel window {c.ppm.min():.2f}-{c.ppm.max():.2f} ppm, "
                f"its baseline {ed:.2f} ED/ppm, residual SD / H {sd_ref / height:.3f}"
            )
            out[case.name] = b
    return out


def prior_baselines(config: BaselineConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, K) draws of the humps of ``config`` on :data:`GRID` in units of H."""
    shape = (n, config.n_humps)
    c = rng.uniform(*config.centre_range_ppm, size=shape)
    w = rng.uniform(*config.fwhm_range_ppm, size=shape)
    h = rng.uniform(*config.height_range, size=shape)
    z = (GRID[None, None, :] - c[..., None]) / w[..., None]
    return np.sum(h[..., None] * np.exp(-4 * np.log(2) * z**2), axis=1)


def prior_water(prior: InvivoPrior, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, K) real part of the prior's residual water on :data:`GRID` in units of H: Lorentzian
    lines of magnitude peak ``height``, each with its own phase (its dispersion tail reaches the
    metabolites), in ``water_fraction`` of the draws (the rest zero)."""
    shape = (n, prior.water_components)
    c = rng.uniform(*prior.water_centre_range_ppm, size=shape)
    gamma = np.pi * rng.uniform(*prior.water_fwhm_range_hz, size=shape)
    lo, hi = np.log(prior.water_height_range)
    h = np.exp(rng.uniform(lo, hi, size=shape)) * (rng.random(n) < prior.water_fraction)[:, None]
    phase = np.exp(1j * rng.uniform(-np.pi, np.pi, size=shape))
    df = (GRID[None, None, :] - c[..., None]) * prior.spectrometer_freq_mhz
    line = gamma[..., None] / (gamma[..., None] + 2j * np.pi * df)
    return np.sum(np.real(h[..., None] * phase[..., None] * line), axis=1)


def _pair(text: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in text.split(","))
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--prior-heights", type=_pair, default=None)
    p.add_argument("--prior-fwhm", type=_pair, default=None)
    p.add_argument("--prior-humps", type=int, default=None)
    p.add_argument("--no-lcmodel", action="store_true", help="only the prior")
    p.add_argument("--water", action="store_true", help="add the prior's residual water")
    p.add_argument("--window-hi", type=float, default=WINDOW_PPM[1], help="ppm (prior only)")
    args = p.parse_args(argv)
    global GRID
    if args.window_hi != WINDOW_PPM[1]:
        if not args.no_lcmodel:
            print("--window-hi needs --no-lcmodel (LCModel's window is 0.2-4.0 ppm)")
            return 2
        GRID = np.linspace(WINDOW_PPM[0], args.window_hi, 781)
    hats = smoothers(GRID)
    keys = ["p2p", "rms", "curv", *(f"res@{e:g}" for e in EDS)]
    print(f"{'baseline':>24s} " + " ".join(f"{k:>9s}" for k in keys))
    if not args.no_lcmodel:
        folder = args.out or Path(tempfile.mkdtemp(prefix="diag_baseline_"))
        rows = {}
        for name, b in real_baselines(folder).items():
            rows[name] = measures(GRID, b, hats)
        print(f"{'baseline':>24s} " + " ".join(f"{k:>9s}" for k in keys))
        for name, m in rows.items():
            print(f"{name:>24s} " + " ".join(f"{m[k]:9.4f}" for k in keys))
    config = InvivoPrior().baseline
    config = replace(
        config,
        **{
            k: v
            for k, v in (
                ("height_range", args.prior_heights),
                ("fwhm_range_ppm", args.prior_fwhm),
                ("n_humps", args.prior_humps),
            )
            if v is not None
        },
    )
    print(f"prior {config}")
    rng = np.random.default_rng(args.seed)
    draws = prior_baselines(config, args.n, rng)
    if args.water:
        draws = draws + prior_water(InvivoPrior(), args.n, rng)
        print(f"plus residual water, window {GRID[0]:.2f}-{GRID[-1]:.2f} ppm")
    ms = [measures(GRID, b, hats) for b in draws]
    for q in (10, 50, 90):
        row = [np.percentile([m[k] for m in ms], q) for k in keys]
        print(f"{f'prior, {q}th percentile':>24s} " + " ".join(f"{v:9.4f}" for v in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
