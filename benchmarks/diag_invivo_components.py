"""Component by component: scaloquant's in-vivo fit beside LCModel's on one spectrum.

LCModel runs on the spectrum (as ``bench_lcmodel.py --sets invivo`` writes it, with the same
basis) with a ``.coord`` output (``LCOORD=9``, ``NEACH=999``: data, fit, baseline and each
metabolite's curve on LCModel's ppm axis, phased; :func:`scaloquant.io.read_lcmodel_coord`). scaloquant's
fit (``FIT_PRESETS["invivo"]``, changed by ``--set key=value``, values as JSON) is rebuilt with
:func:`scaloquant.fit.fitted_spectra`, phase corrected, moved by LCModel's referencing shift and
interpolated onto LCModel's axis, and put on LCModel's scale by a least-squares fit of our data
curve to LCModel's. Printed: LCModel's baseline stiffness as scaloquant's effective dimensions
per ppm (:func:`_lcmodel.baseline_ed_per_ppm`), both tools' phases, linewidths and a few
lineshape parameters of ours; per ppm band the area (real part, sum over LCModel's points) of
the data, the baseline, each group (tNAA, tCr, tCho, Glx, Ins, GSH, MM, lipids, the rest) and
the residual, LCModel / ours, each curve's constant floor (a sampled FID's first-point offset)
moved into the baseline; then every amplitude to tCr. The bands are only comparable where both
tools' phased data agree (the "data misfit" line near 0).

Usage::

    PYTHONPATH=src python benchmarks/diag_invivo_components.py CASE [--set key=value ...]
        [--out DIR] [--plot FILE.png]

CASE: one of ``philips_spant``, ``osprey_te35_sub1``/``2``, ``osprey_te30_sub1_ismrm``/``2``,
``siemens_suspect`` (``bench_lcmodel.py``'s in-vivo names).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

import _lcmodel as lcm
import bench_lcmodel as bl
from scaloquant.fit import fit_spectra, fitted_spectra
from scaloquant.fit.config import FIT_PRESETS, FitConfig
from scaloquant.fit.result import phase_corrected
from scaloquant.io import read_lcmodel_coord
from scaloquant.signal.snr_fwhm import NAA_WINDOW_PPM, first_below

GROUPS = {
    "tNAA": ("NAA", "NAAG"),
    "tCr": ("Cr", "PCr", "-CrCH2"),
    "tCho": ("GPC", "PCho", "PCh"),
    "Glx": ("Glu", "Gln"),
    "Ins": ("Ins",),
    "GSH": ("GSH",),
    "MM": ("MM09", "MM12", "MM14", "MM17", "MM20", "Mac"),
    "Lip": ("Lip09", "Lip13", "Lip13a", "Lip13b", "Lip20"),
}
BANDS = ((3.6, 3.85), (3.15, 3.6), (2.95, 3.15), (2.55, 2.95), (2.25, 2.55), (2.1, 2.25),
         (1.95, 2.1), (1.75, 1.95), (1.5, 1.75), (1.1, 1.5), (0.7, 1.1), (0.2, 0.7))  # fmt: skip


def _group_of(name: str) -> str:
    return next((g for g, members in GROUPS.items() if name in members), "other")


def singlet_fwhm_ppm(ppm: np.ndarray, curve: np.ndarray, window=NAA_WINDOW_PPM) -> float:
    """FWHM (ppm) of the tallest point of the real ``curve`` within ``window`` on the axis
    ``ppm`` (LCModel's: descending, evenly spaced), the half-maximum crossings interpolated
    linearly on each side (:func:`scaloquant.signal.snr_fwhm.first_below`, as
    ``quality.fwhm_ppm`` does on a spectrum)."""
    inside = np.flatnonzero((ppm >= window[0]) & (ppm <= window[1]))
    j = int(inside[np.argmax(curve[inside])])
    half = np.array([curve[j] / 2])
    width = first_below(curve[None, j:], half) + first_below(curve[None, j::-1], half)
    return float(width[0] * abs(ppm[1] - ppm[0]))


def _config(sets: list[str]) -> FitConfig:
    config = FIT_PRESETS["invivo"]
    overrides = {}
    for item in sets:
        key, value = item.split("=", 1)
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:  # a bare word: a string
            overrides[key] = value
        if isinstance(overrides[key], list):
            overrides[key] = tuple(overrides[key])
    return replace(config, **overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--set", action="append", default=[], help="FitConfig key=value (JSON)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.out or Path(tempfile.mkdtemp(prefix="diag_invivo_"))
    groups = bl.invivo_set(folder / "inputs")
    found = [(g, c) for g in groups for c in g.cases if c.name == args.case]
    if not found:
        names = [c.name for g in groups for c in g.cases]
        print(f"unknown case {args.case!r}; choose one of {', '.join(names)}")
        return 1
    group, case = found[0]
    run = folder / case.name
    run.mkdir(parents=True, exist_ok=True)
    coord_path = run / f"{case.name}.coord"
    settings = replace(
        group.settings,
        extra=(*group.settings.extra, "lcoord=9", "neach=999", f"filcoo='{coord_path}'"),
    )
    outcome = lcm.run_one(lcm.build(), case.lcmodel, run, settings)
    if outcome.result is None:
        print(f"LCModel failed: {outcome.error}")
        return 1
    coord = read_lcmodel_coord(coord_path)

    config = _config(args.set)
    basis = group.basis
    result = fit_spectra(case.fid, basis, config)
    ours = phase_corrected(fitted_spectra(result, case.fid, basis), result)

    # our arrays on LCModel's axis (ours ascend or descend; np.interp needs ascending)
    # LCModel draws on its referenced axis: the data's ppm plus its "Data shift"
    order = np.argsort(ours.ppm)
    x = ours.ppm[order] + outcome.result.shift_ppm

    def on_axis(y: np.ndarray) -> np.ndarray:
        return np.interp(coord.ppm, x, np.real(y)[..., order])

    names = result.names
    ours_curves = {n: on_axis(ours.metabolites[i]) for i, n in enumerate(names)}
    lcm_curves = {n: v - coord.background for n, v in coord.components.items()}
    tcr_ours = sum(result.amplitudes[names.index(n)] for n in GROUPS["tCr"] if n in names)
    tcr_lcm = sum(outcome.result.concentrations.get(n, 0.0) for n in ("Cr", "PCr"))
    # one scale: least squares of our (phase-corrected) data onto LCModel's phased data
    raw = on_axis(ours.data)
    scale = float(raw @ coord.data / (raw @ raw))
    data_ours = on_axis(ours.data) * scale
    d = coord.data
    print(
        f"case {case.name}; scale ours->LCModel {scale:.4g}; data misfit after scaling "
        f"{np.linalg.norm(data_ours - d) / np.linalg.norm(d):.3f} (relative; phase/shift)"
    )
    lr = outcome.result
    # LCModel's chosen baseline regulariser as scaloquant's effective dimensions per ppm: its
    # SDREF from its residual; its RMSAMP (RMS modulus of the complex data in the window) from
    # the phased real part it writes, times sqrt(2) (absorption and dispersion parts of a
    # spectrum carry equal energy); the range for RMSAMP from 1 to sqrt(2) rms(real) in brackets
    sd_ref = float(np.std(coord.data - coord.fit))
    rms_real = float(np.sqrt(np.mean(coord.data**2)))
    lcm_ed, lcm_ed_stiff = (
        lcm.baseline_ed_per_ppm(coord.ppm, lr.alpha_b, lr.n_knots, sd_ref, f * rms_real)
        for f in (np.sqrt(2), 1.0)
    )
    print(
        f"LCModel baseline: alphaB {lr.alpha_b:.3g} ({lr.n_knots} splines) = {lcm_ed:.2f} "
        f"ED/ppm ({lcm_ed_stiff:.2f}-{lcm_ed:.2f}); lineshape alphaS {lr.alpha_s:.3g}"
    )
    print(
        f"LCModel: FWHM {lr.fwhm_ppm} ppm, shift {lr.shift_ppm} ppm, phase {lr.phase0_deg} deg "
        f"{lr.phase1_deg_per_ppm} deg/ppm; ours: linewidth {float(result.linewidth_ppm.flat[0]):.4f} ppm, "
        f"phase {np.degrees(float(result.phase0_rad.flat[0])):.1f} deg "
        f"{np.degrees(float(result.phase1_rad_per_ppm.flat[0])):.1f} deg/ppm, baseline ED/ppm "
        f"{None if result.baseline_ed_per_ppm is None else float(result.baseline_ed_per_ppm.flat[0])}"
    )

    # a sampled FID's spectrum carries a constant real offset of half its first point (the
    # DFT's first-point weight); it is in every one of our curves and in the data, and the
    # baseline's constant term takes it. Move each curve's floor
    # into the baseline, for both tools alike, so that baselines and curves compare. The floor
    # is the mean of the 5 points at either end of the window, the one nearer zero.
    def floor(v: np.ndarray) -> float:
        return min(float(v[:5].mean()), float(v[-5:].mean()), key=abs)

    floor_ours = {n: floor(v) for n, v in ours_curves.items()}
    floor_lcm = {n: floor(v) for n, v in lcm_curves.items()}
    ours_curves = {n: v - floor_ours[n] for n, v in ours_curves.items()}
    lcm_curves = {n: v - floor_lcm[n] for n, v in lcm_curves.items()}
    for g in ("NAA", "Cr", "MM09", "MM20", "Lip13"):
        if g in names:
            i = names.index(g)
            print(
                f"ours {g}: damping {float(result.damping_per_s.reshape(-1)[i]):.2f} 1/s, "
                f"gauss {float(result.gauss_by_metabolite_per_s2.reshape(-1)[i]):.1f} 1/s^2, "
                f"shift {float(result.shift_hz.reshape(-1)[i]):.2f} Hz"
            )
    # LCModel's FWHM is the width of its lineshape kernel alone (``FWHMLS``, counted in whole
    # kernel points), not of a fitted line; each tool's fitted NAA curve and the data less each
    # baseline, measured alike on LCModel's axis, compare the linewidths themselves
    if "NAA" in names and "NAA" in lcm_curves:
        base_ours = on_axis(ours.baseline) * scale
        print(
            "NAA singlet FWHM (ppm) on LCModel's axis: fitted NAA curve LCModel "
            f"{singlet_fwhm_ppm(coord.ppm, lcm_curves['NAA']):.4f} / ours "
            f"{singlet_fwhm_ppm(coord.ppm, ours_curves['NAA']):.4f}; data less baseline "
            f"LCModel's {singlet_fwhm_ppm(coord.ppm, d - coord.background):.4f} / ours "
            f"{singlet_fwhm_ppm(coord.ppm, data_ours - base_ours):.4f}"
        )
    ours_g: dict[str, np.ndarray] = {}
    lcm_g: dict[str, np.ndarray] = {}
    for n, v in ours_curves.items():
        ours_g[_group_of(n)] = ours_g.get(_group_of(n), 0) + v * scale
    for n, v in lcm_curves.items():
        lcm_g[_group_of(n)] = lcm_g.get(_group_of(n), 0) + v
    ours_g["baseline"] = (on_axis(ours.baseline) + sum(floor_ours.values())) * scale
    lcm_g["baseline"] = coord.background + sum(floor_lcm.values())
    ours_g["residual"] = data_ours - on_axis(ours.model) * scale
    lcm_g["residual"] = coord.data - coord.fit
    keys = ["baseline", *GROUPS, "other", "residual"]
    print("band areas (sum over LCModel's points, LCModel's scale): LCModel / ours")
    print(f"{'ppm':>11s} {'data':>13s} " + " ".join(f"{k:>13s}" for k in keys))
    for lo, hi in BANDS:
        m = (coord.ppm >= lo) & (coord.ppm < hi)
        row = f"{lo:4.2f}-{hi:4.2f} {d[m].sum():6.0f}/{data_ours[m].sum():<6.0f} "
        for k in keys:
            a = np.asarray(lcm_g.get(k, np.zeros_like(d)))[m].sum()
            b = np.asarray(ours_g.get(k, np.zeros_like(d)))[m].sum()
            row += f"{a:6.0f}/{b:<6.0f} "
        print(row)
    print("amplitude / tCr: LCModel / ours")
    all_names = list(dict.fromkeys([*lr.concentrations, *names]))
    for n in all_names:
        if "+" in n:
            continue
        a = lr.concentrations.get(n, float("nan")) / tcr_lcm
        b = result.amplitudes[names.index(n)] / tcr_ours if n in names else float("nan")
        if (a > 0.005) or (b > 0.005):
            print(f"  {n:8s} {a:7.3f} {b:7.3f}")
    for g, members in GROUPS.items():
        a = sum(lr.concentrations.get(n, 0.0) for n in members) / tcr_lcm
        b = sum(result.amplitudes[names.index(n)] for n in members if n in names) / tcr_ours
        print(f"  [{g}] {a:7.3f} {b:7.3f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axs = plt.subplots(3, 1, figsize=(12, 12), sharex=True)
        axs[0].plot(coord.ppm, d, "k", lw=0.6, label="data (LCModel)")
        axs[0].plot(coord.ppm, data_ours, "c", lw=0.6, label="data (ours, scaled)")
        axs[0].plot(coord.ppm, coord.fit, "r", lw=0.8, label="fit LCModel")
        axs[0].plot(coord.ppm, on_axis(ours.model) * scale, "b", lw=0.8, label="fit ours")
        axs[0].plot(coord.ppm, coord.background, "r--", label="baseline LCModel")
        axs[0].plot(coord.ppm, ours_g["baseline"], "b--", label="baseline ours")
        axs[0].legend()
        for ax, keys2 in (
            (axs[1], ("Glx", "MM", "Lip", "GSH")),
            (axs[2], ("tNAA", "tCr", "Ins", "tCho", "other")),
        ):
            for k, c in zip(keys2, "rgbmk", strict=False):
                if k in lcm_g:
                    ax.plot(coord.ppm, lcm_g[k], c, lw=0.8, label=f"{k} LCModel")
                if k in ours_g:
                    ax.plot(coord.ppm, ours_g[k], c + "--", lw=0.8, label=f"{k} ours")
            ax.legend()
        axs[-1].invert_xaxis()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=90)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
