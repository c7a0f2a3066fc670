"""Which rows of ``quantify --model`` are far off the truth, and whether their ``qc`` says so.

Data: as :mod:`bench_physics_baseline` (``model_spectra``: ``--n`` spectra of the ``invivo``
simulation rendered on the checkpoint's grid from the basis it was trained on, with their
truth), SNR 5-150 as ``scaloquant simulate --preset invivo`` draws it (``--snr`` for one value);
with ``--default-simulator``, ``--n`` spectra of the default simulator (``SimulationConfig()``,
SNR 30 where it draws none) from the same basis on the model's grid, truth its drawn amplitudes
(0 for the model's metabolites it does not draw: macromolecules, lipids). One file, two runs
(``read_inputs``, then ``quantify_inputs``, no figures): ``--baseline-stiffness fixed`` and the
default ``adaptive``.

Prints per run: the rows with a metabolite more than 10 of its CRLB SDs (the ``_crlb_sd``
column) from the truth, how many of them carry no ``qc`` flag, and each such row (metabolite,
estimate, truth, SD, flags, ``fit_residual``, SNR, stiffness, water near the window); then the
rows more than ``--far`` basis units off in any metabolite, with their flags and the error in SDs.
``--rows I [I ...]`` prints those rows' five scored sums (NAA, Cr+PCr, GPC+PCho, Ins, Glu)
against the truth in each run, with ``--polish-iterations 0`` (the network alone, ``fixed``)
and ``fit``'s default and ``fixed`` stiffness beside them.

Usage::

    PYTHONPATH=src python benchmarks/diag_quantify_outliers.py CKPT [--basis FILE] [--n 256]
        [--seed 0] [--snr SNR] [--default-simulator] [--far 50] [--rows I [I ...]]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench_physics_baseline import SCORED, model_spectra, scored, table
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.io import write_nifti_mrs
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.quantify import Options, fit_inputs, quantify_inputs, read_inputs
from scaloquant.signal.grid import Acquisition
from scaloquant.simulate.config import SimulationConfig
from scaloquant.simulate.dataset import drawn_parameters, simulate_batch
from scaloquant.simulate.prior import InvivoPrior


def default_spectra(model, basis, fid, n: int, seed: int):
    """``(truth (n, M), fid)``: ``n`` default-simulator spectra on the model's grid."""
    q = model.quantifier
    on_grid, _, _ = prepared_on_grid(
        basis, Acquisition(**model.metadata.acquisition), q.config.fit_config
    )
    config = SimulationConfig()
    if config.snr is None:
        config = replace(config, snr=(30.0, 30.0))
    signals = simulate_batch(on_grid, config, n, np.random.default_rng(seed))
    drawn = np.asarray(drawn_parameters(signals).amplitudes)
    zero = np.zeros(n)
    truth = np.stack(
        [drawn[:, on_grid.names.index(m)] if m in on_grid.names else zero for m in q.metabolites],
        axis=-1,
    )
    return truth, replace(fid, samples=signals.fids.reshape(n, 1, 1, -1))


def add_spectra_flags(p: argparse.ArgumentParser) -> None:
    """The flags of :func:`spectra_with_truth` (this script's and ``diag_residual_over_noise``'s)."""
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--basis", type=Path, help="the basis the model was trained on")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snr", type=float, help="one SNR (default: the prior's 5-150)")
    p.add_argument("--default-simulator", action="store_true")


def spectra_with_truth(args: argparse.Namespace):
    """``(model, basis, fid, truth (n, M), names)``: the checkpoint's model and basis, ``--n``
    spectra of the ``invivo`` simulation (``model_spectra``; at ``--snr`` if given) or with
    ``--default-simulator`` of the default simulator (:func:`default_spectra`), and their truth
    in the model's metabolites ``names``."""
    prior = InvivoPrior() if args.snr is None else InvivoPrior(snr_range=(args.snr, args.snr))
    model, basis, signals, _, fid = model_spectra(
        args.checkpoint, args.basis, prior, args.n, args.seed
    )
    q = model.quantifier
    names = tuple(q.metabolites)
    if args.default_simulator:
        truth, fid = default_spectra(model, basis, fid, args.n, args.seed)
    else:
        truth = np.asarray(invivo_truth(q.problem(), signals.parameters)[1])
    return model, basis, fid, truth, names


def outliers(label: str, result, names: tuple[str, ...], truth: np.ndarray, far: float) -> None:
    """Print the rows more than 10 CRLB SDs or ``far`` units off ``truth`` ``(N, M)``."""
    res = result.results[0]
    index = [result.names.index(m) for m in names]
    amp = np.asarray(res.columns[""], float)[:, index]
    sd = np.asarray(res.columns["_crlb_sd"], float)[:, index]
    err = np.abs(amp - truth)
    z = np.where(sd > 0, err / np.where(sd > 0, sd, 1.0), 0.0)
    z = np.where(np.isfinite(z), z, 0.0)
    rows = np.flatnonzero(z.max(axis=1) > 10)
    plain = [i for i in rows if not res.qc[i]]
    print(f"{label}: rows more than 10 CRLB SDs off {rows.size}, without a qc flag {len(plain)}")
    for i in rows:
        j = int(np.argmax(z[i]))
        print(
            f"  row {i}: {names[j]} {amp[i, j]:.2f} (truth {truth[i, j]:.2f}, SD {sd[i, j]:.3f}, "
            f"{z[i, j]:.1f} SDs) qc {res.qc[i]!r} fit_residual "
            f"{float(res.quality['fit_residual'][i]):.3f} SNR {float(res.quality['snr'][i]):.1f} "
            f"ED/ppm {float(res.fit['baseline_ed_per_ppm'][i]):g} water near the window "
            f"{float(res.fit['water_near_window'][i]):.2f}"
        )
    big = np.flatnonzero(np.nan_to_num(err).max(axis=1) > far)
    print(f"  rows more than {far:g} units off: {big.size}")
    for i in big:
        j = int(np.nanargmax(err[i]))
        print(
            f"  row {i}: {names[j]} {amp[i, j]:.1f} (truth {truth[i, j]:.1f}, SD {sd[i, j]:.1f}, "
            f"{z[i, j]:.1f} SDs) qc {res.qc[i]!r}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_spectra_flags(p)
    p.add_argument("--far", type=float, default=50.0, help="basis units (default 50)")
    p.add_argument("--rows", type=int, nargs="+", default=[])
    args = p.parse_args(argv)
    model, basis, fid, truth, names = spectra_with_truth(args)
    want = scored(truth, names)
    print(
        f"{args.n} {'default-simulator' if args.default_simulator else 'invivo'} spectra, seed "
        f"{args.seed}, SNR {args.snr or 'as drawn'}, load {os.getloadavg()[0]:.1f}"
    )
    runs = {
        "fixed": Options(baseline_stiffness="fixed", max_figures=0),
        "adaptive": Options(max_figures=0),
    }
    if args.rows:
        runs["K = 0, fixed"] = Options(
            baseline_stiffness="fixed", polish_iterations=0, max_figures=0
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "sim.nii.gz", fid)
        results = {
            k: quantify_inputs(read_inputs([path]), model, options=o) for k, o in runs.items()
        }
        if args.rows:
            results["fit"] = fit_inputs(
                read_inputs([path]),
                basis,
                basis_name="diag",
                options=Options(fit_config=FIT_PRESETS["invivo"], max_figures=0),
            )
            results["fit, fixed"] = fit_inputs(
                read_inputs([path]),
                basis,
                basis_name="diag",
                options=Options(
                    fit_config=replace(FIT_PRESETS["invivo"], baseline_stiffness="fixed"),
                    max_figures=0,
                ),
            )
    for label in ("fixed", "adaptive"):
        outliers(label, results[label], names, truth, args.far)
    for i in args.rows:
        print(
            f"row {i}: truth "
            + ", ".join(f"{k} {v:.1f}" for k, v in zip(SCORED, want[i], strict=True))
        )
        for label, result in results.items():
            res = result.results[0]
            got = scored(table(result, names)[i : i + 1], names)[0]
            print(
                f"  {label:14s} "
                + ", ".join(f"{k} {v:.1f}" for k, v in zip(SCORED, got, strict=True))
                + f"  qc {res.qc[i]!r} fit_residual {float(res.quality['fit_residual'][i]):.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
