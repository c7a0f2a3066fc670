"""Where ``scaloquant simulate`` puts the singlets of each shared basis, on its output file's own
ppm axis, beside the reference correction ``scaloquant fit`` makes to the same basis.

Each basis is simulated in this process (``scaloquant.cli.main``: ``simulate --basis B --n 16
--seed 1 --config C --format nifti``; the embedded basis without ``--basis``; ``C`` draws no
shift and no damping, and amplitudes in [0, 1] for NAA, Cr, PCr, GPC and PCho only, 0 for the
others, so that no neighbour (NAAG at 2.04 ppm) moves a singlet's peak), the written NIfTI-MRS
file read back (:func:`scaloquant.io.read_fid`), and on its mean spectrum (real part, 16-fold
zero-filling, a parabola through the tallest point: :func:`scaloquant.signal.peaks.main_peak_ppm`)
the NAA (2.008 ppm), creatine (3.027) and choline (GPC/PCho, 3.21) singlets located within
0.05 ppm of those places on the file's axis. Beside them: the file's ppm reference, what the fit
does to that basis' reference (:func:`scaloquant.fit.basis_grid.basis_reference_from_singlets`;
``-`` where nothing), and what ``simulate`` said on the terminal about the basis.

Usage::

    PYTHONPATH=src python benchmarks/diag_simulate_reference.py OUT_FOLDER
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import numpy as np
import yaml

from scaloquant.cli import main
from scaloquant.fit.basis_grid import basis_reference_from_singlets
from scaloquant.io import default_basis, read_basis, read_fid
from scaloquant.metabolites import canonical
from scaloquant.signal.peaks import main_peak_ppm

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "invivo"
BASES = {
    "embedded": None,
    "osprey-te35": SHARED / "philips-press-osprey/basis_philips_press35/"
    "3T_PRESS_Philips_35ms_noMM.BASIS",
    "spant-3t": SHARED / "philips-press30-spant/lcmodel_reference/3t.basis",
    "siemens-te30": SHARED / "siemens-press30-suspect/press_30ms_3T.basis",
}
#: Where the singlets belong, ppm (NAA, Cr, and the cholines' GPC 3.212 / PCho 3.208).
SINGLETS = {"NAA": 2.008, "Cr": 3.027, "Cho": 3.21}
SEARCH_PPM = 0.05
#: The basis signals simulated (canonical names); the others get amplitude 0.
SIMULATED = ("NAA", "Cr", "PCr", "GPC", "PCho")


def singlet_ppm(fids: np.ndarray, dwell_s: float, mhz: float, ref: float) -> dict[str, float]:
    """Each singlet's place (ppm) on the mean spectrum of ``fids`` ``(B, N)``
    (:func:`scaloquant.signal.peaks.main_peak_ppm` within SEARCH_PPM of it)."""
    mean = fids.mean(axis=0)
    return {
        name: float(
            main_peak_ppm(
                mean, dwell_s, mhz, ref, ppm_range=(nominal - SEARCH_PPM, nominal + SEARCH_PPM)
            )
        )
        for name, nominal in SINGLETS.items()
    }


def simulate(out: Path, basis: Path | None, names: list[str]) -> str:
    config = {
        "amplitude_range": [0.0, 0.0],
        "damping_range_per_s": [0.0, 0.0],
        "shift_range_hz": [0.0, 0.0],
        "overrides": {
            n: {"amplitude_range": [0.0, 1.0]} for n in names if canonical(n) in SIMULATED
        },
    }
    config_path = out.with_suffix(".yaml")
    config_path.write_text(yaml.safe_dump(config))
    argv = ["simulate", "--n", "16", "--seed", "1", "--out", str(out), "--format", "nifti"]
    argv += ["--overwrite", "--config", str(config_path)]
    if basis is not None:
        argv += ["--basis", str(basis)]
    terminal = io.StringIO()
    with contextlib.redirect_stdout(terminal):
        rc = main(argv)
    assert rc == 0, argv
    return terminal.getvalue()


def main_(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    header = f"{'basis':<22} {'file ref':>8} " + " ".join(f"{n:>14}" for n in SINGLETS)
    print(header + "  fit's correction")
    for name, path in BASES.items():
        basis = default_basis() if path is None else read_basis(path)
        _, corrected = basis_reference_from_singlets(basis)
        out = out_dir / f"{name}.nii.gz"
        terminal = simulate(out, path, list(basis.names))
        fid = read_fid(out)
        fids = fid.samples.reshape(-1, fid.n_points)
        found = singlet_ppm(fids, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        cells = " ".join(f"{found[n]:7.3f} {found[n] - SINGLETS[n]:+6.3f}" for n in SINGLETS)
        print(f"{name:<22} {fid.ppm_reference:8.3f} {cells}  {corrected[0] if corrected else '-'}")
        for line in terminal.splitlines()[1:]:
            print(f"{'':<22} terminal: {line}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the simulated files")
    main_(parser.parse_args().out)
