"""The quality check's water ratio (``signal.water_peak.water_ratio``, the ``water`` flag above
``WATER_RATIO``) on spectra of the ``invivo`` prior and on the shared data's spectra, with
the metabolite height under it taken two ways, in one run:

* ``window``: the tallest point of 1.8-3.4 ppm less its local baseline (the measure until
  session 35, against its threshold then, 200): under a tall residual water the tallest point
  of that window is the water's tail at its top edge, and its height less the baseline of its
  flanks is a few hundredths of NAA's;
* ``singlets``: the tallest of the NAA, Cr and Cho singlets (1.8-2.2, 2.9-3.1, 3.1-3.3 ppm), each
  less its local baseline (``water_peak._tallest_singlet``, the measure from session 35, against
  ``WATER_RATIO``).

Per spectrum of the prior it prints those above 200 with their drawn water (heights over the
reference height H, the NAA peak of the metabolites) and the measured water peak over H; for the
shared spectra the ratio of each file both ways (the water references must stay far above 200,
the water-suppressed spectra far below).

    PYTHONPATH=src python benchmarks/diag_water_ratio.py --n 2048 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scaloquant.io import default_basis
from scaloquant.io.dispatch import read_fid
from scaloquant.signal.qc_spectra import _columns, _spectra, _window
from scaloquant.signal.snr_fwhm import _heights, _peak_segments
from scaloquant.signal.water_peak import (
    WATER_RATIO,
    WATER_WINDOW_PPM,
    _tallest_singlet,
    _water_ratio,
)
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: The threshold of the ``window`` measure until session 35.
OLD_WATER_RATIO = 200.0
#: The window of the ``window`` measure (the water ratio's until session 35, the water near
#: the fit window's until session 36: ``diag_water_near_ratio.py``).
WINDOW_PPM = (1.8, 3.4)
CHALLENGE_GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}


def ratios(fids: np.ndarray, dwell: float, sf: float, ref: float) -> dict[str, np.ndarray]:
    """The water ratio of ``fids`` ``(B, N)`` with each metabolite height, and the water peak's
    height (the numerator) itself."""
    s = _spectra(fids, dwell, sf, ref)
    batch = (s.raw.shape[0],)

    def height(window):
        return _heights(_peak_segments(s.ppm_zf, s.raw_zf, window, True), batch)

    window = height(WINDOW_PPM)
    water = np.abs(_columns(s.raw_zf, _window(s.ppm_zf, WATER_WINDOW_PPM))).max(axis=1)
    return {
        "window": _water_ratio(s, window),
        "singlets": _water_ratio(s, _tallest_singlet(s)),
        "water_peak": water,
    }


def shared_files() -> list[Path]:
    invivo = sorted((SHARED / "invivo").rglob("*.nii.gz"))
    challenge = sorted((SHARED / "ismrm2016-challenge" / "datasets_LCModel").glob("*"))
    return invivo + challenge


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    basis = default_basis()
    prior = InvivoPrior()
    sig = simulate_invivo_batch(basis, prior, args.n, np.random.default_rng(args.seed))
    acq = basis.acquisition
    r = ratios(sig.fids, acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)
    h = sig.reference_height
    print(f"prior: {args.n} spectra, seed {args.seed}, embedded basis")
    print(
        "  water peak / H: median {:.2f}, 99th percentile {:.1f}, max {:.1f}".format(
            *np.percentile(r["water_peak"] / h, [50, 99, 100])
        )
    )
    for way, threshold in (("window", OLD_WATER_RATIO), ("singlets", WATER_RATIO)):
        x = r[way]
        print(
            f"  {way:9s} ratio: median {np.nanmedian(x):.2f}, 99th {np.nanpercentile(x, 99):.1f}, "
            f"max {np.nanmax(x):.1f}; above {threshold:g}: {int(np.sum(x > threshold))}"
        )
    flagged = np.flatnonzero(r["window"] > OLD_WATER_RATIO)
    for i in flagged:
        drawn = ", ".join(f"{v:.1f}" for v in sig.parameters.water_height[i])
        print(
            f"    spectrum {i}: window {r['window'][i]:.0f}, singlets {r['singlets'][i]:.1f}; "
            f"water peak {r['water_peak'][i] / h[i]:.1f} H (drawn lines {drawn} H)"
        )
    print("shared spectra (ratio window -> singlets):")
    for path in shared_files():
        try:
            # the challenge's LCModel files record no grid: the challenge's own (its README)
            grid = {} if path.suffix == ".gz" else CHALLENGE_GRID
            fid = read_fid(path, **grid)
        except Exception as err:  # noqa: BLE001 - a file this diagnostic cannot read is named
            print(f"  {path.relative_to(SHARED)}: not read ({err})")
            continue
        samples = np.asarray(fid.samples).reshape(-1, fid.samples.shape[-1])
        samples = samples.mean(axis=0, keepdims=True)  # transients averaged, as the tests do
        x = ratios(samples, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        print(
            f"  {str(path.relative_to(SHARED)):90s} {x['window'][0]:8.2f} -> {x['singlets'][0]:8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
