"""The quality check's water just above the fit window (``signal.water_peak.water_near_window``,
the ``water_near_window`` flag above ``WATER_NEAR_WINDOW_RATIO``) with its metabolite height
taken two ways, in one run (session 36, ``water36``):

* ``window``: the tallest point of 1.8-3.4 ppm less its local baseline (the measure until
  session 36);
* ``singlets``: the tallest of the NAA, Cr and Cho singlets, each less its local baseline
  (``water_peak._tallest_singlet``, the ``water`` flag's since session 35).

On the spectra as read (the water in: ``--water-removal none``, a preset without the HLSVD, and
``quantify --model``'s choice at ``K = 0`` of the spectra it removes the water from) and less the
water the fit's HLSVD removes (``FIT_PRESETS["invivo"]``, what ``fit`` flags), above the default
window's top (4.2 ppm). Sets: the ``invivo`` prior (``scaloquant simulate --preset invivo``,
``--n`` from each ``--seeds``; its truth: the numerator over the reference height H, the NAA peak
of the metabolites), the default simulator (no water), the shared scanner spectra and the
challenge's 28 spectra and water references (transients averaged, as the tests read them).

    PYTHONPATH=src python benchmarks/diag_water_near_ratio.py --n 2048 --seeds 0 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diag_water_ratio import WINDOW_PPM
from scaloquant.io import default_basis
from scaloquant.io.dispatch import read_fid
from scaloquant.signal.axes import WINDOW_PPM_1H
from scaloquant.signal.qc_spectra import _columns, _spectra, _window
from scaloquant.signal.snr_fwhm import _heights, _peak_segments
from scaloquant.signal.water import remove_water
from scaloquant.signal.water_peak import (
    WATER_NEAR_WINDOW_RATIO,
    _tallest_singlet,
    water_near_window,
)
from scaloquant.simulate.config import SimulationConfig
from scaloquant.simulate.dataset import simulate_dataset
from scaloquant.simulate.invivo import simulate_invivo_dataset
from scaloquant.simulate.prior import InvivoPrior

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHALLENGE_GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}
TOP = WINDOW_PPM_1H[1]


def near_ratios(
    fids: np.ndarray, dwell: float, sf: float, ref: float, top: float = TOP
) -> dict[str, np.ndarray]:
    """``water_near_window``'s ratio (the library's, ``singlets``), its numerator (the tallest
    point just above a window ending at ``top``, ``near``) and its ratio with the ``window``
    measure's height, of ``fids`` ``(B, N)``; where the ``window`` measure's tallest point lies
    (``at``, ppm)."""
    ratio = water_near_window(fids, dwell, sf, ref, top)
    s = _spectra(fids, dwell, sf, ref)
    batch = (s.raw.shape[0],)
    singlets = _tallest_singlet(s)
    height = ratio * singlets
    window = _heights(_peak_segments(s.ppm_zf, s.raw_zf, WINDOW_PPM, True), batch)
    # where the window's tallest point lies (the water's tail: its top edge)
    sel = _window(s.ppm_zf, WINDOW_PPM)
    at = s.ppm_zf[sel[np.argmax(np.abs(_columns(s.raw_zf, sel)), axis=1)]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "near": height,
            "window": height / window,
            "singlets": ratio,
            "window_height": window,
            "singlet_height": singlets,
            "at": at,
        }


def summary(label: str, r: dict[str, np.ndarray], truth: np.ndarray | None = None) -> None:
    t = WATER_NEAR_WINDOW_RATIO
    parts = []
    for way in ("window", "singlets"):
        x = r[way]
        parts.append(
            f"{way} median {np.nanmedian(x):.2f} 99th {np.nanpercentile(x, 99):.2f} "
            f"max {np.nanmax(x):.2f} >{t:g}: {int(np.sum(x > t))}"
        )
    print(f"  {label} ({len(r['near'])}): " + "; ".join(parts))
    if truth is not None:
        flag = truth > t
        for way in ("window", "singlets"):
            x = r[way]
            wrong_on = np.flatnonzero((x > t) & ~flag)
            wrong_off = np.flatnonzero((x <= t) & flag)
            print(
                f"    {way}: true ratio (near / H) >{t:g}: {int(flag.sum())}; flagged of the "
                f"others {wrong_on.size} (their true ratio {_span(truth[wrong_on])}, measured "
                f"{_span(x[wrong_on])}); missed {wrong_off.size} (true {_span(truth[wrong_off])},"
                f" measured {_span(x[wrong_off])})"
            )
        below, above = truth <= t, truth > t
        for way in ("window", "singlets"):
            x = r[way]
            print(
                f"    {way}: measured of true <= {t:g}: max {np.nanmax(x[below]):.2f}; of true > "
                f"{t:g}: min {np.nanmin(x[above]) if above.any() else np.nan:.2f}; measured/true "
                f"median {np.nanmedian(x / truth):.2f}, 1st-99th {np.nanpercentile(x / truth, 1):.2f}"
                f"-{np.nanpercentile(x / truth, 99):.2f}"
            )


def _span(x: np.ndarray) -> str:
    return "-" if x.size == 0 else f"{np.nanmin(x):.2f}-{np.nanmax(x):.2f}"


def both(label: str, fids: np.ndarray, grid, truth_height=None) -> dict:
    out = {}
    for view, seen in (("as read", fids), ("less HLSVD", remove_water(fids, *grid, threads=2))):
        r = near_ratios(seen, *grid)
        truth = None if truth_height is None else r["near"] / truth_height
        summary(f"{label}, {view}", r, truth)
        out[view] = (r, truth)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--save", help="npz of the per-spectrum figures")
    args = p.parse_args(argv)
    basis = default_basis()
    acq = basis.acquisition
    grid = (acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)
    saved = {}
    print(f"water_near_window above {TOP:g} ppm, threshold {WATER_NEAR_WINDOW_RATIO:g}")
    for seed in args.seeds:
        sig = next(
            iter(simulate_invivo_dataset(basis, InvivoPrior(), args.n, seed, chunk_size=args.n))
        )
        out = both(f"invivo prior seed {seed}", sig.fids, grid, sig.reference_height)
        for view, (r, truth) in out.items():
            for k, v in r.items():
                saved[f"prior{seed} {view} {k}"] = v
            saved[f"prior{seed} {view} truth"] = truth
        saved[f"prior{seed} water_height"] = sig.parameters.water_height
        saved[f"prior{seed} water_centre"] = sig.parameters.water_centre_ppm
    for seed in args.seeds[:1]:
        sig = next(
            iter(simulate_dataset(basis, SimulationConfig(), args.n, seed, chunk_size=args.n))
        )
        out = both(
            f"default simulator seed {seed}", sig.fids, grid, sig.parameters.get("reference_height")
        )
        for view, (r, _) in out.items():
            for k, v in r.items():
                saved[f"default{seed} {view} {k}"] = v
    print("shared spectra (window -> singlets; as read | less HLSVD; window's tallest point ppm):")
    invivo = sorted((SHARED / "invivo").rglob("*.nii.gz"))
    challenge = sorted(
        (SHARED / "ismrm2016-challenge" / "datasets_LCModel").glob("*"),
        key=lambda q: (q.suffix, int(q.stem.removeprefix("dataset"))),
    )
    for path in invivo + challenge:
        grid_kw = {} if path.suffix == ".gz" else CHALLENGE_GRID
        try:
            fid = read_fid(path, **grid_kw)
        except Exception as err:  # noqa: BLE001 - a file this diagnostic cannot read is named
            print(f"  {path.relative_to(SHARED)}: not read ({err})")
            continue
        samples = (
            np.asarray(fid.samples).reshape(-1, fid.samples.shape[-1]).mean(axis=0, keepdims=True)
        )
        g = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        a = near_ratios(samples, *g)
        b = near_ratios(remove_water(samples, *g), *g)
        print(
            f"  {str(path.relative_to(SHARED)):78s} {a['window'][0]:9.2f} -> {a['singlets'][0]:9.2f}"
            f" | {b['window'][0]:6.2f} -> {b['singlets'][0]:6.2f}; {a['at'][0]:.2f} | {b['at'][0]:.2f}"
        )
    if args.save:
        np.savez(args.save, **saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
