"""The scanner spectra of ``../shared/data/invivo`` with their ppm reference moved: does
``scaloquant fit`` find them again, or flag them ``reference_off``?

A reference error arrives in two ways, both measured: a header whose reference or offset is
wrong (``--how header``: the FID kept, its ``ppm_reference`` moved by ``+d``, so every peak reads
``d`` ppm off, what ``--ppm-reference`` does; one input per move), or a scanner frequency set on
the wrong peak (``--how ramp``, the default: the FID multiplied by ``exp(2 pi i d f0 t)``, the
spectrum moved by ``d`` ppm on an unchanged axis, its band edges wrapped; every move in one
batch). Each case of ``bench_invivo_ratios.py`` (its file and basis) is fitted through
:func:`fit_inputs` (what ``scaloquant fit`` runs, flags included); one line per move: where the
data's own singlets are and how clearly (:func:`scaloquant.signal.singlets.singlet_shift`, ppm
and noise SDs), where the fit put them (its ``shift_ppm`` fact), tNAA, tCho, Glx and Ins over
tCr, the relative residual and the flags; since session 25 also the correction the referencing
made to its ppm reference before the fit (``corr``, ppm; ``--referencing off`` for none, the fit
of session 24). The unmoved line is the control. ``--search-hz 25`` gives the fit of main before
session 24 (its preset's search).

``--challenge OUT.json``: the 28 ISMRM 2016 challenge spectra unmoved (compare two runs' JSON);
``--simulated N``: the flags of ``fit`` on N tissue-like spectra and N of the default simulator.

Usage::

    PYTHONPATH=src python benchmarks/bench_reference_shift.py [--cases a,b] [--how ramp|header]
        [--shifts -0.5,-0.4,...] [--search-hz HZ] [--referencing singlets|off]
        [--challenge OUT.json | --simulated N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_invivo_ratios import CASES  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402
from scaloquant.io.default import DEFAULT_BASIS_NAME, default_basis  # noqa: E402
from scaloquant.quantify import Options, fit_inputs  # noqa: E402
from scaloquant.quantify.inputs import read_inputs  # noqa: E402
from scaloquant.signal import axes  # noqa: E402
from scaloquant.signal.singlets import singlet_shift  # noqa: E402

CHALLENGE = Path(__file__).resolve().parents[2] / "shared/data/ismrm2016-challenge/datasets_LCModel"
SHIFTS_PPM = (0.0, -0.5, -0.4, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.5)
SHOWN = ("tNAA", "tCho", "Glx", "Ins")


def moved_input(inp, shifts_ppm: tuple[float, ...], how: str):
    """``inp`` (one spectrum) as ``len(shifts_ppm)`` spectra, each moved by its shift."""
    fid = inp.fid
    one = fid.samples.reshape(-1, fid.n_points)[0]
    t = axes.time_axis_s(fid.n_points, fid.dwell_time_s)
    if how == "ramp":
        hz = np.asarray(shifts_ppm)[:, None] * fid.spectrometer_freq_mhz
        samples = one[None, :] * np.exp(2j * np.pi * hz * t[None, :])
        return [replace(inp, fid=fid.with_samples(samples), affine=None, dim_tags=())]
    # header: one input per move (the reference is the file's, one per input)
    out = []
    for d in shifts_ppm:
        moved = replace(fid.with_samples(one[None, :]), ppm_reference=fid.ppm_reference + d)
        out.append(replace(inp, fid=moved, affine=None, dim_tags=(), label=f"{d:+.1f}"))
    return out


def grid_of(fid) -> tuple[float, float, float]:
    return fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference


def options_for(args: argparse.Namespace) -> Options:
    config = FIT_PRESETS["invivo"]
    if args.search_hz:
        config = replace(config, global_shift_range_hz=(-args.search_hz, args.search_hz))
    return Options(fit_config=config, max_figures=0, referencing=args.referencing == "singlets")


def correction(r, i: int) -> float:
    """What the referencing added to spectrum ``i``'s ppm reference (NaN: not referenced)."""
    values = getattr(r, "reference_correction_ppm", None)
    return float("nan") if values is None else float(values[i])


def challenge(options: Options, out: str) -> int:
    """The 28 challenge spectra unmoved, in one run; one line each, and ``out`` (JSON)."""
    paths = [CHALLENGE / f"dataset{i}.RAW" for i in range(1, 29)]
    grid = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}
    inputs = read_inputs(paths, overrides=grid)
    t0, c0 = time.perf_counter(), time.process_time()
    run = fit_inputs(inputs, default_basis(), basis_name=DEFAULT_BASIS_NAME, options=options)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"challenge ({wall:.1f} s wall, {cpu:.1f} s CPU)")
    names = list(run.names)
    rows = {}
    for k, r in enumerate(run.results, start=1):
        amps = r.columns[""][0]
        row = {n: float(amps[names.index(n)]) for n in ("tNAA", "tCr", "tCho", "Glx", "Ins")}
        row["shift_ppm"] = float(r.fit["shift_ppm"][0]) if "shift_ppm" in r.fit else None
        row["qc"] = r.qc[0]
        row["correction_ppm"] = correction(r, 0)
        at, clear, _ = singlet_shift(r.matched.samples, *grid_of(r.matched))
        row["singlets_ppm"], row["strength"] = float(at.reshape(-1)[0]), float(clear.reshape(-1)[0])
        rows[k] = row
        print(
            f"  {k:2d} "
            + " ".join(f"{v:8.3f}" if isinstance(v, float) else str(v) for v in row.values())
        )
    Path(out).write_text(json.dumps(rows, indent=1))
    return 0


def simulated(options: Options, n: int) -> int:
    """The flags of ``fit`` on the project's simulated sets (none expected)."""
    from bench_invivo_default import tissue_spectra
    from scaloquant.quantify.inputs import SpectraInput
    from scaloquant.simulate import SimulationConfig, simulate_batch
    from scaloquant.simulate.prior import InvivoPrior
    from scaloquant.types import FID

    basis, _, invivo = tissue_spectra(InvivoPrior(snr_range=(30.0, 30.0)), n, 5)
    plain = simulate_batch(basis, SimulationConfig(snr=(30.0, 30.0)), n, np.random.default_rng(1))
    grid = dict(
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ppm_reference=basis.ppm_reference,
    )
    simulated_preset = replace(options, fit_config=FIT_PRESETS["simulated"])
    cases = (
        ("invivo prior, invivo preset", invivo, options),
        ("default simulator, invivo preset", FID(plain.fids, **grid), options),
        ("default simulator, simulated preset", FID(plain.fids, **grid), simulated_preset),
    )
    for name, fid, options in cases:
        inp = SpectraInput(Path(name), fid, None, None, None, ())
        t0, c0 = time.perf_counter(), time.process_time()
        run = fit_inputs([inp], basis, basis_name=DEFAULT_BASIS_NAME, options=options)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        (r,) = run.results
        counts: dict[str, int] = {}
        for q in r.qc:
            for flag in q.split(";") if q else ():
                counts[flag] = counts.get(flag, 0) + 1
        shift = r.fit.get("shift_ppm", np.full(1, np.nan))
        moved = sum(correction(r, i) != 0 for i in range(n))
        print(
            f"{name}: {n} spectra ({wall:.1f} s wall, {cpu:.1f} s CPU), flags {counts or 'none'}; "
            f"fitted shift {np.nanmin(shift):+.3f}..{np.nanmax(shift):+.3f} ppm; "
            f"{moved} referenced"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--cases", default="spant-default,osprey-te30-sub01,osprey-te35-sub01,siemens-te30"
    )
    p.add_argument("--how", choices=("ramp", "header"), default="ramp")
    p.add_argument("--shifts", default=",".join(f"{s:g}" for s in SHIFTS_PPM))
    p.add_argument(
        "--challenge",
        metavar="JSON",
        help="fit the 28 ISMRM 2016 challenge spectra unmoved instead, and write their shift, "
        "tNAA, tCr, tCho, Glx, Ins and flags to JSON (to compare two runs)",
    )
    p.add_argument(
        "--simulated",
        metavar="N",
        type=int,
        help="fit N spectra of the invivo prior (SNR 30, seed 5, as bench_invivo_default.py) "
        "and N of the default simulator (SNR 30, seed 1) instead, and count their flags",
    )
    p.add_argument(
        "--search-hz", type=float, help="global_shift_range_hz +-this (default: the preset's)"
    )
    p.add_argument(
        "--referencing",
        choices=("singlets", "off"),
        default="singlets",
        help="the referencing before the fit (off: each file's axis, the fit of session 24)",
    )
    args = p.parse_args(argv)
    from scaloquant.io import read_basis

    shifts = tuple(float(s) for s in args.shifts.split(","))
    if args.challenge:
        return challenge(options_for(args), args.challenge)
    if args.simulated:
        return simulated(options_for(args), args.simulated)
    options = options_for(args)
    for case in args.cases.split(","):
        fit_args, _, _ = CASES[case]
        basis_path = fit_args[fit_args.index("--basis") + 1] if "--basis" in fit_args else None
        basis = read_basis(basis_path) if basis_path else default_basis()
        name = str(basis_path) if basis_path else DEFAULT_BASIS_NAME
        inp = read_inputs([fit_args[0]], water=())[0]
        inputs = moved_input(inp, shifts, args.how)
        t0, c0 = time.perf_counter(), time.process_time()
        run = fit_inputs(inputs, basis, basis_name=name, options=options)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{case} ({args.how}; {wall:.1f} s wall, {cpu:.1f} s CPU)")
        print(
            f"  {'move':>5} {'data':>6} {'clear':>5} {'corr':>6} {'fit':>6} "
            + " ".join(f"{k:>6}" for k in SHOWN)
            + "  resid  qc"
        )
        rows = [(r, i) for r in run.results for i in range(r.input.n_spectra)]
        data = [
            [v.reshape(-1)[i] for v in singlet_shift(r.matched.samples, *grid_of(r.matched))[:2]]
            for r, i in rows
        ]
        for d, (r, i), (at, clear) in zip(shifts, rows, data, strict=True):
            names = list(run.names)
            ratios = r.columns["_ratio_tcr"][i]
            found = r.fit.get("shift_ppm")
            found_s = f"{found[i]:+6.3f}" if found is not None else "     -"
            vals = " ".join(f"{ratios[names.index(k)]:6.3f}" for k in SHOWN)
            resid = r.quality["fit_residual"][i]
            corr = correction(r, i)
            print(
                f"  {d:+5.2f} {at:+6.3f} {clear:5.0f} {corr:+6.3f} {found_s} {vals} {resid:6.3f}  "
                f"{r.qc[i]}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
