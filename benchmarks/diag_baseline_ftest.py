"""LCModel's F-test for the baseline stiffness on the in-vivo spectra: the package's rule against
full refits at every candidate.

First, for each ``baseline_stiffness`` of ``--modes`` (``fixed``: the preset's 2 ED/ppm;
``ftest``: the package's rule, :func:`scaloquant.fit.spectra._solve`), the least wall and CPU
time of ``--repeat`` fits of the spectrum (1 torch thread), the stiffness chosen and the ratios
to tCr. Then (``--no-scan`` skips it) every spectrum is fitted with the ``invivo`` preset at each
fixed stiffness of ``--candidates`` (effective dimensions per ppm; ``--ppm-range``, LCModel's
0.2-4.0 by default). For each, the residual sum of squares of the phased spectrum is taken two
ways: the complex residual (``N`` = 2K real numbers over the K window points, the baseline's
effective dimension counted twice, the package's first port of the rule) and its real part only
(``N`` = K, the baseline once: LCModel fits the real part of the phased spectrum, and so does
:func:`scaloquant.fit.batched.baseline_ftest_bound` now). The stiffest candidate whose sum
stays within ``1 + n / (N - n) F^-1(p; n, N - n)`` of the most flexible one's (``n``: active
amplitudes, free nonlinear parameters and the baseline's dimensions of the most flexible fit)
is printed for p = 0.02, 0.05, 0.08 (LCModel's ``PRMNMX``), with the ratios to tCr at every
candidate. ``--set key=value`` changes the preset (values as JSON, e.g. ``--set
lineshape=freeform``). ``--kernel-sds`` adds the same F-test over the free-form kernel's
smoothness SD at the stiffness ``ftest`` chose (LCModel's ``alphaS`` chosen with its ``alphaB``
held). Compare LCModel's own choice with ``diag_invivo_components.py CASE``.

Usage::

    PYTHONPATH=src python benchmarks/diag_baseline_ftest.py CASE[,CASE...]
        [--candidates 1,1.5,2,3,4,5,6,7] [--ppm-range 0.2 4.0] [--no-scan] [--repeat 3]
        [--modes fixed,ftest] [--set key=value ...] [--kernel-sds 0.03,0.1,0.3,1]

CASE: ``bench_lcmodel.py``'s in-vivo names (``philips_spant``, ``osprey_te30_sub1_ismrm``, ...,
``siemens_suspect``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.special import fdtri

import bench_lcmodel as bl
from diag_invivo_components import _config
from scaloquant.fit import fit_spectra, fitted_spectra
from scaloquant.fit.problem import make_problem
from scaloquant.fit.result import phase_corrected
from scaloquant.fit.spectra import prepared_on_grid

RATIOS = {"tNAA": ("NAA", "NAAG"), "tCho": ("GPC", "PCho", "PCh"), "Glx": ("Glu", "Gln"),
          "Ins": ("Ins",)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases")
    parser.add_argument("--candidates", default="1,1.5,2,3,4,5,6,7")
    parser.add_argument("--ppm-range", nargs=2, type=float, default=(0.2, 4.0))
    parser.add_argument("--no-scan", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="timed fits per mode (the least)")
    parser.add_argument("--modes", default="fixed,ftest")
    parser.add_argument("--set", action="append", default=[], help="FitConfig key=value (JSON)")
    parser.add_argument("--kernel-sds", help="e.g. 0.03,0.1,0.3,1: the F-test over the kernel SD")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    candidates = sorted(float(v) for v in args.candidates.split(","))
    groups = bl.invivo_set(Path(tempfile.mkdtemp(prefix="diag_ftest_")))
    found = {c.name: (g, c) for g in groups for c in g.cases}
    for name in args.cases.split(","):
        if name not in found:
            print(f"unknown case {name!r}; choose from {', '.join(found)}")
            return 1
        group, case = found[name]
        base = replace(
            _config(args.set),
            ppm_range=tuple(args.ppm_range),
            baseline_ed_candidates_per_ppm=tuple(candidates),
        )
        for stiffness in args.modes.split(","):
            config = replace(base, baseline_stiffness=stiffness)
            wall, cpu = [], []
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                result = fit_spectra(case.fid, group.basis, config)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            picked = float(result.baseline_ed_per_ppm.reshape(-1)[0])
            print(
                f"{name:24s} {stiffness:9s} wall {min(wall):5.2f} s cpu {min(cpu):5.2f} s  "
                f"{picked:g} ED/ppm  " + _ratios(result),
                flush=True,
            )
        if args.kernel_sds:
            _kernel_sd_ftest(name, case, group, base, args.kernel_sds)
        if args.no_scan:
            continue
        fits, ssq_complex, ssq_real = [], [], []
        for ed in candidates:
            result = fit_spectra(case.fid, group.basis, replace(base, baseline_ed_per_ppm=ed))
            residual = phase_corrected(
                fitted_spectra(result, case.fid, group.basis), result
            ).residual
            fits.append(result)
            ssq_complex.append(float(np.sum(np.abs(residual) ** 2)))
            ssq_real.append(float(np.sum(residual.real**2)))
        _, prepared, _ = prepared_on_grid(group.basis, case.fid.acquisition, base)
        flexible = replace(base, baseline_ed_per_ppm=candidates[-1])
        problem = make_problem(prepared, flexible, device="cpu")
        k = problem.ppm.numel()
        shared = int((fits[-1].amplitudes > 0).sum()) + int(problem.free.sum())
        for label, ssq, n_points, dof in (
            ("complex", ssq_complex, 2 * k, shared + 2 * problem.baseline_ed),
            ("real", ssq_real, k, shared + problem.baseline_ed),
        ):
            line = f"{name:24s} {label:7s} N {n_points} n {dof:.0f}"
            for p in (0.02, 0.05, 0.08):
                bound = 1 + dof / (n_points - dof) * fdtri(dof, n_points - dof, p)
                pick = next(e for e, s in zip(candidates, ssq, strict=True) if s <= ssq[-1] * bound)
                line += f"  p {p}: bound {bound:.3f} -> {pick:g}"
            print(line + "  SSQ/SSQ_ref " + " ".join(f"{s / ssq[-1]:.3f}" for s in ssq))
        for ed, result in zip(candidates, fits, strict=True):
            print(f"    {ed:g} ED/ppm: " + _ratios(result))
    return 0


def _kernel_sd_ftest(name, case, group, base, sds_text: str) -> None:
    """The same F-test over the free-form kernel's smoothness SD (LCModel's ``alphaS`` with its
    ``alphaB`` held, ``IALPHA = 2`` in ``RFALSI``): full fits at the baseline stiffness
    ``ftest`` chose, for each SD of ``sds_text``; the smoothest whose real-part residual stays
    within the bound of the most flexible SD's (p = 0.05), and the ratios at each SD."""
    sds = sorted(float(v) for v in sds_text.split(","))
    config = replace(base, lineshape="freeform")
    chosen = fit_spectra(case.fid, group.basis, replace(config, baseline_stiffness="ftest"))
    ed = float(chosen.baseline_ed_per_ppm.reshape(-1)[0])
    fits, ssq = [], []
    for sd in sds:
        at = replace(config, baseline_ed_per_ppm=ed, freeform_smoothness_sd=sd)
        result = fit_spectra(case.fid, group.basis, at)
        residual = phase_corrected(fitted_spectra(result, case.fid, group.basis), result).residual
        fits.append(result)
        ssq.append(float(np.sum(residual.real**2)))
    _, prepared, _ = prepared_on_grid(group.basis, case.fid.acquisition, config)
    flexible = replace(config, baseline_ed_per_ppm=ed, freeform_smoothness_sd=sds[-1])
    problem = make_problem(prepared, flexible, device="cpu")
    k = problem.ppm.numel()
    dof = int((fits[-1].amplitudes > 0).sum()) + int(problem.free.sum()) + problem.baseline_ed
    bound = 1 + dof / (k - dof) * fdtri(dof, k - dof, 0.05)
    pick = next(sd for sd, s in zip(sds, ssq, strict=True) if s <= ssq[-1] * bound)
    print(
        f"{name:24s} kernel SD at {ed:g} ED/ppm: K {k} n {dof:.0f} bound {bound:.3f}  SSQ/SSQ_ref "
        + " ".join(f"{s / ssq[-1]:.3f}" for s in ssq)
        + f" -> SD {pick:g}"
    )
    for sd, result in zip(sds, fits, strict=True):
        print(f"    SD {sd:g}: " + _ratios(result))


def _ratios(result) -> str:
    """The ratios of :data:`RATIOS` to tCr of a one-spectrum fit."""
    names = result.names
    a = result.amplitudes.reshape(-1)
    tcr = sum(a[names.index(n)] for n in ("Cr", "PCr") if n in names)
    return "  ".join(
        f"{key} {sum(a[names.index(n)] for n in members if n in names) / tcr:.3f}"
        for key, members in RATIOS.items()
    )


if __name__ == "__main__":
    raise SystemExit(main())
