"""Regenerate scaloquant's embedded default basis from the ISMRM 2016 challenge files.

    python tools/build_default_basis.py [--source ../shared/data/ismrm2016] [--overwrite]

Reads the challenge basis through scaloquant's own readers and writes
``src/scaloquant/data/ismrm2016_press3t_te30.npz`` (and copies the CC BY-SA 4.0 licence beside
it). The output is deterministic: the same source gives the same arrays and metadata.

What is derived, and why
------------------------
* Order and spectrometer frequency (``HZPPPM = 123.261703``) from ``lcmodel/press3T_30ms.BASIS``:
  the paper's 20 metabolites + macromolecules.
* Dwell time 0.25 ms exactly (the ``.BASIS`` holds it as a float32, 0.000250000012).
* Metabolites: ``text_noTMS/<name>.txt``, i.e. without the 0.1-amplitude 0 ppm reference singlet.
* Mac: ``lcmodel/Mac.RAW`` minus the singlet. The ``text_noTMS`` Mac is a different measurement
  (shifted by -6.7 Hz, 1.055x larger; shared README caveat 2). The singlet is ``text - text_noTMS``,
  the same for every metabolite up to print rounding (its mean over the 20 metabolites is used):
  ``0.1 exp(-2 pi t)`` (2 Hz wide) at 0 ppm placed with 123.261703 MHz, i.e. 4.65 * 123.261703 Hz
  below the receiver. Mac's singlet has the same amplitude and width but was placed with 123.2 MHz,
  0.287 Hz closer to the receiver (a least-squares fit of the measured singlet's frequency to the
  Mac FID gives 0.288 Hz); subtracting the unshifted singlet leaves a dispersive residue at 0 ppm
  of about 20% of the singlet, so it is shifted by ``4.65 * (123.261703 - 123.2)`` Hz first.
* Stored as complex64: the source prints 6 significant digits.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from scaloquant.io.default import DEFAULT_BASIS_FILE
from scaloquant.io.lcmodel import read_lcmodel_basis, read_lcmodel_raw
from scaloquant.io.npz import write_basis_npz
from scaloquant.io.text import read_text_fid
from scaloquant.types import BasisSet

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "ismrm2016"
DEFAULT_OUT = REPO / "src" / "scaloquant" / "data" / DEFAULT_BASIS_FILE
LICENCE = "LICENCE_CC-BY-SA-4.0.txt"
DWELL_TIME_S = 2.5e-4
MACROMOLECULES = "Mac"
#: The frequency the challenge placed Mac's reference singlet with (see the module docstring).
MAC_SINGLET_FREQ_MHZ = 123.2
#: Largest allowed spread between the per-metabolite singlets: 1.4e-5 is observed, the
#: rounding of numbers printed with 6 significant digits (values up to ~20 -> 1e-5).
SINGLET_TOLERANCE = 1e-4

PROVENANCE = {
    "dataset": "ISMRM 2016 MRS fitting challenge basis set (PRESS, 3 T, TE 30 ms)",
    "authors": "Malgorzata Marjanska, Dinesh Deelchand, Roland Kreis (ISMRM MRS Study Group)",
    "citation": (
        "Marjanska M, Deelchand DK, Kreis R, et al. Results and interpretation of a fitting "
        "challenge for MR spectroscopy set up by the MRS study group of ISMRM. "
        "Magn Reson Med 2022;87:11-32. doi:10.1002/mrm.28942"
    ),
    "mirror": "github.com/wtclarke/mrs_fitting_challenge",
    "mirror_commit": "bc9c506d3a33242b1c1356ffa27777db726d0942",
    "licence": "CC BY-SA 4.0 (this derived data keeps the same licence)",
    "files": {
        "order_and_frequency": "basis/lcmodel/press3T_30ms.BASIS",
        "metabolites": "basis/text_noTMS/<name>.txt",
        "Mac": "basis/lcmodel/Mac.RAW minus the 0 ppm reference singlet (placed at 123.2 MHz)",
    },
    "changes": [
        "0 ppm reference singlet removed from every FID",
        "conjugated to the internal orientation (FSL-MRS's: spectrum = fftshift(fft(fid)), ppm "
        "increasing; the conjugate of the NIfTI-MRS on-disk and LCModel orientation)",
        "stored as complex64 in a scaloquant .npz",
    ],
}
METADATA = {
    "sequence": "PRESS",
    "echo_time_ms": 30.0,
    "te1_ms": 11.0,
    "te2_ms": 19.0,
    "field_strength_t": 3.0,
    "macromolecules": [MACROMOLECULES],
}


def build_default_basis(source: Path) -> BasisSet:
    """The default basis from the challenge folder ``source`` (holding ``basis/``)."""
    lcm = source / "basis" / "lcmodel"
    order = read_lcmodel_basis(lcm / "press3T_30ms.BASIS", dwell_time_s=DWELL_TIME_S)
    grid = {"dwell_time_s": DWELL_TIME_S, "spectrometer_freq_mhz": order.spectrometer_freq_mhz}

    def text(folder: str, name: str) -> np.ndarray:
        return read_text_fid(source / "basis" / folder / f"{name}.txt", **grid).samples

    metabolites = [n for n in order.names if n != MACROMOLECULES]
    without = {n: text("text_noTMS", n) for n in metabolites}
    singlets = np.array([text("text", n) - without[n] for n in metabolites])
    singlet = singlets.mean(axis=0)
    spread = np.abs(singlets - singlet).max()
    if spread > SINGLET_TOLERANCE or abs(singlet[0] - 0.1) > SINGLET_TOLERANCE:
        raise SystemExit(
            f"the reference singlets differ by {spread:.2e} (first point {singlet[0]:.4f}); "
            "the source is not the expected ISMRM 2016 basis"
        )
    # The singlet sits at 0 ppm, ppm_reference ppm below the receiver: its offset scales with MHz.
    shift_hz = order.ppm_reference * (order.spectrometer_freq_mhz - MAC_SINGLET_FREQ_MHZ)
    mac_singlet = singlet * np.exp(2j * np.pi * shift_hz * order.time_axis_s())
    mac = read_lcmodel_raw(lcm / f"{MACROMOLECULES}.RAW", **grid).samples - mac_singlet
    fids = np.array([mac if n == MACROMOLECULES else without[n] for n in order.names])
    return BasisSet(
        names=order.names,
        fids=fids,
        nucleus="1H",
        ppm_reference=order.ppm_reference,
        metadata=METADATA,
        provenance=PROVENANCE,
        **grid,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    basis = build_default_basis(args.source)
    write_basis_npz(args.out, basis, dtype="complex64", overwrite=args.overwrite)
    licence = args.out.parent / LICENCE
    shutil.copyfile(args.source / LICENCE, licence)
    print(f"wrote {args.out} ({basis.n_metabolites} x {basis.n_points}) and {licence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
