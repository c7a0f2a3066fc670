"""What ``quantify``'s screen for a flexible baseline costs and changes with a physics-head
model, beside the fit's default on the same spectra, in one run.

Data: ``--n`` spectra of the ``invivo`` simulation (the model's training prior, default
``InvivoPrior()``, at SNR ``--snr``, LCModel's parametric macromolecules where the model fits
them) rendered on the
checkpoint's acquisition grid from the basis it was trained on (``--basis``, default the embedded
one), with their true amplitudes, as one multi-spectrum NIfTI-MRS file.

Lines, each from the file to the results (``read_inputs``, then ``quantify_inputs`` or
``fit_inputs``, no figures, no writing), alternating over ``--repeats`` rounds:
``quantify --baseline-stiffness fixed`` (the polish for all), ``--baseline-stiffness adaptive``
(the default: the spectra whose polish fails LCModel's F-test against a flexible baseline
fitted again as ``fit`` fits them), and ``fit`` with its default (``FIT_PRESETS["invivo"]``,
``baseline_stiffness="adaptive"``), the peer. Each prints spectra per second (best round),
the least CPU seconds of the process (all its threads: steadier than the rate on a shared
machine), the spectra fitted again, and the mean absolute error in mM-like basis units of NAA, Cr+PCr,
GPC+PCho, Ins and Glu against the truth (the simulation's amplitudes), and the mean over those
five of the absolute relative error of each spectrum's ratio to Cr+PCr.

With ``--polish-iterations K [K ...]`` the ``quantify`` lines are instead one per ``K``
(``Options(polish_iterations=K)``, the polish's reweighted trials; the default baseline
screen), beside the same ``fit`` line.

With ``--pairs`` each ``quantify`` line runs twice in every round, as ``quantify`` runs (the
polish's pair correlations from its covariance, results.json ``anticorrelated``) and ``no
pairs`` (the polish's variances alone, as before session 34: the model's
``predict_estimates`` called with ``correlations=False``, which also forms no combined rows);
each pair of lines is checked to give the same ``results.csv`` columns of the components, and
the spectra with pairs at -0.5 or below are counted.
``--no-fit`` leaves the ``fit`` line out.

Usage::

    PYTHONPATH=src python benchmarks/bench_physics_baseline.py CKPT [--basis FILE] [--n 256]
        [--snr 30] [--seed 0] [--repeats 2] [--polish-iterations K [K ...]] [--pairs] [--no-fit]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.spectra import prepared_on_grid
from scaloquant.io import default_basis, read_basis, write_nifti_mrs
from scaloquant.metabolites import COMBINATIONS
from scaloquant.models import load_model
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.physics.macromolecules import MM_COMPONENTS
from scaloquant.quantify import Options, fit_inputs, quantify_inputs, read_inputs
from scaloquant.signal.grid import Acquisition
from scaloquant.simulate.invivo import simulate_invivo_batch
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.types import FID

#: the metabolites scored (sums as LCModel's combined rows)
SCORED = {"NAA": ("NAA",), "tCr": ("Cr", "PCr"), "tCho": COMBINATIONS["tCho"], "Ins": ("Ins",), "Glu": ("Glu",)}  # fmt: skip


def scored(amplitudes: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """``(B, 5)`` the :data:`SCORED` sums of ``amplitudes`` ``(B, M)`` over ``names``."""
    return np.stack(
        [
            sum(amplitudes[:, names.index(n)] for n in parts if n in names)
            for parts in SCORED.values()
        ],
        axis=-1,
    )


def table(run, names: tuple[str, ...]) -> np.ndarray:
    """``(B, M)`` the amplitude columns of a run's one input for ``names`` (NaN: not fitted)."""
    values = np.asarray(run.results[0].columns[""], dtype=float)
    nan = np.full(values.shape[0], np.nan)
    return np.stack([values[:, run.names.index(n)] if n in run.names else nan for n in names], -1)


def model_spectra(checkpoint: Path, basis_path: Path | None, prior, n: int, seed: int):
    """``(model, basis, signals, want, fid)``: the checkpoint's model, its basis (``basis_path``,
    else the embedded one), ``n`` ``invivo`` spectra of ``prior`` (parametric macromolecules where
    the model fits them) rendered on the basis put on the model's grid from ``seed``, their
    truth :func:`scored` over the model's names, and the spectra as an MRSI-shaped :class:`FID`
    on that grid."""
    model = load_model(checkpoint)
    q = model.quantifier
    basis = default_basis() if basis_path is None else read_basis(basis_path)
    acquisition = Acquisition(**model.metadata.acquisition)
    on_grid, _, _ = prepared_on_grid(basis, acquisition, q.config.fit_config)
    if set(MM_COMPONENTS) <= set(q.metabolites):
        prior = replace(prior, macromolecules="parametric")
    signals = simulate_invivo_batch(on_grid, prior, n, np.random.default_rng(seed))
    _, truth = invivo_truth(q.problem(), signals.parameters)
    want = scored(truth, tuple(q.metabolites))
    fid = FID(
        samples=signals.fids.reshape(n, 1, 1, -1),
        dwell_time_s=acquisition.dwell_time_s,
        spectrometer_freq_mhz=acquisition.spectrometer_freq_mhz,
        ppm_reference=acquisition.ppm_reference,
    )
    return model, basis, signals, want, fid


@contextlib.contextmanager
def without_pairs(quantifier):
    """``quantifier``'s ``predict_estimates`` with ``correlations=False`` whatever its caller
    asks (the polish's variances alone: quantify before session 34), restored afterwards."""
    plain = type(quantifier).predict_estimates
    quantifier.predict_estimates = lambda *a, **k: plain(
        quantifier, *a, **{**k, "correlations": False}
    )
    try:
        yield
    finally:
        del quantifier.predict_estimates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--basis", type=Path, help="the basis the model was trained on")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--snr", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--polish-iterations",
        type=int,
        nargs="+",
        metavar="K",
        help="one quantify line per polish K (default: the fixed and adaptive lines)",
    )
    p.add_argument(
        "--pairs",
        action="store_true",
        help="each quantify line with and without the polish's pair correlations",
    )
    p.add_argument("--no-fit", action="store_true", help="leave the fit line out")
    args = p.parse_args(argv)
    model, basis, signals, want, fid = model_spectra(
        args.checkpoint, args.basis, InvivoPrior(snr_range=(args.snr, args.snr)), args.n, args.seed
    )
    names = tuple(model.quantifier.metabolites)
    if args.polish_iterations is None:
        options = {
            "quantify fixed": Options(baseline_stiffness="fixed", max_figures=0),
            "quantify adaptive": Options(baseline_stiffness="adaptive", max_figures=0),
        }
    else:
        options = {
            f"quantify K={k}": Options(polish_iterations=k, max_figures=0)
            for k in args.polish_iterations
        }
    lines = {
        label: lambda inputs, o=o: quantify_inputs(inputs, model, options=o)
        for label, o in options.items()
    }
    if args.pairs:

        def bare(inputs, o):
            with without_pairs(model.quantifier):
                return quantify_inputs(inputs, model, options=o)

        doubled = {}
        for (label, line), o in zip(lines.items(), options.values(), strict=True):
            doubled[label] = line
            doubled[f"{label} no pairs"] = lambda inputs, o=o: bare(inputs, o)
        lines = doubled
    if not args.no_fit:
        lines["fit (default)"] = lambda inputs: fit_inputs(
            inputs,
            basis,
            basis_name="bench",
            options=Options(fit_config=FIT_PRESETS["invivo"], max_figures=0),
        )
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}  # the least CPU seconds of this process (all its threads)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "sim.nii.gz", fid)
        for _ in range(args.repeats):
            for label, run in lines.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                runs[label] = run(read_inputs([path]))
                rate = args.n / (time.perf_counter() - start)
                best[label] = max(best.get(label, 0.0), rate)
                spent = time.process_time() - start_cpu
                cpu[label] = min(cpu.get(label, np.inf), spent)
    print(f"{args.n} spectra, SNR {args.snr:g}, seed {args.seed}, load {os.getloadavg()[0]:.1f}")
    for label, run in runs.items():
        if args.pairs:
            facts = run.results[0].fit
            pairs = run.results[0].anticorrelated
            with_pairs = "none" if pairs is None else sum(bool(p) for p in pairs)
            print(f"{label}: spectra with pairs at -0.5 or below: {with_pairs}", end="")
            if label.endswith(" no pairs"):
                other = runs[label[: -len(" no pairs")]].results[0].columns
                # the components' columns: with the pairs the combined rows follow them (from
                # the same covariance, session 34 combsd34), without none
                m = run.results[0].columns[""].shape[1]
                same = all(
                    np.array_equal(v[:, :m], other[k][:, :m], equal_nan=True)
                    if v.ndim == 2
                    else np.array_equal(v, other[k], equal_nan=True)
                    for k, v in run.results[0].columns.items()
                )
                print(f"; results.csv components' columns the same as with pairs: {same}", end="")
            print(f" (fit facts: {', '.join(facts)})")
        got = scored(table(run, names), names)
        mae = np.nanmean(np.abs(got - want), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_error = np.abs(got / got[:, 1:2] / (want / want[:, 1:2]) - 1)
        refits = " ".join(n for n in run.notes if n.startswith("the baseline: "))[:90]
        print(
            f"{label:18s} {best[label]:7.2f} spectra/s {cpu[label]:6.2f} CPU-s  MAE "
            + " ".join(f"{k} {v:.3f}" for k, v in zip(SCORED, mae, strict=True))
            + f"  median |ratio/tCr - 1| {100 * np.nanmedian(ratio_error[:, [0, 2, 3, 4]]):.1f} %"
            + (f"  ({refits})" if refits else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
