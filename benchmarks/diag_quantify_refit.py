"""Which spectra ``quantify --model``'s flexible-baseline screen fits again, and whether each
refitted row is ``fit``'s row of that spectrum (same window, same stiffness, same numbers).

Data: as :mod:`bench_physics_baseline` (``model_spectra``: ``--n`` spectra of the ``invivo``
simulation rendered on the checkpoint's grid from the basis it was trained on, with their
truth), default SNR 5-150 as ``scaloquant simulate --preset invivo`` draws it (``--snr`` for one
value). Three runs on the same file (``read_inputs``, then ``quantify_inputs`` / ``fit_inputs``,
no figures): ``quantify`` with ``--baseline-stiffness adaptive`` (the default) and ``fixed``,
and ``fit`` with its default (``FIT_PRESETS["invivo"]``, which a physics-head checkpoint's fit
model is). ``quantify``'s refitted rows are read with a hook on
``quantify.run._physics_estimates`` and ``estimated_rows`` that change nothing; ``fit``'s from its results'
``window_ppm`` (the rows fitted over ``baseline_flexible_ppm_range``).

Prints: the rows each screen flags and their overlap; for ``quantify``'s refitted rows, how
many have ``fit``'s window and stiffness, and the largest ``|quantify - fit|`` of their
amplitudes relative to the row's largest; and the mean absolute error (basis units) of NAA,
Cr+PCr, GPC+PCho, Ins and Glu against the truth, over all rows and over ``quantify``'s
refitted rows, for the three runs.

Usage::

    PYTHONPATH=src python benchmarks/diag_quantify_refit.py CKPT [--basis FILE] [--n 256]
        [--seed 5] [--snr SNR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from bench_physics_baseline import SCORED, model_spectra, scored, table
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import write_nifti_mrs
from scaloquant.quantify import Options, fit_inputs, quantify_inputs, read_inputs, run
from scaloquant.simulate.prior import InvivoPrior


def quantify_refitted(path: Path, model) -> tuple[object, np.ndarray]:
    """``quantify``'s default run of ``path`` and its refitted rows (indices), read by a hook."""
    estimated: list[np.ndarray] = []  # the file's rows run through the model
    rows: list[np.ndarray] = []  # the refitted among them
    own, own_rows = run._physics_estimates, run.estimated_rows

    def estimates(*args, **kwargs):
        out = own(*args, **kwargs)
        rows.append(np.array([] if out.refit_rows is None else out.refit_rows, dtype=int))
        return out

    def estimated_rows(prep):
        estimated.append(own_rows(prep))
        return estimated[-1]

    run._physics_estimates, run.estimated_rows = estimates, estimated_rows
    try:
        result = quantify_inputs(read_inputs([path]), model, options=Options(max_figures=0))
    finally:
        run._physics_estimates, run.estimated_rows = own, own_rows
    return result, estimated[0][rows[0]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--basis", type=Path, help="the basis the model was trained on")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--snr", type=float, help="one SNR (default: the prior's 5-150)")
    args = p.parse_args(argv)
    prior = InvivoPrior() if args.snr is None else InvivoPrior(snr_range=(args.snr, args.snr))
    model, basis, _, want, fid = model_spectra(
        args.checkpoint, args.basis, prior, args.n, args.seed
    )
    names = tuple(model.quantifier.metabolites)
    flexible = FIT_PRESETS["invivo"].baseline_flexible_ppm_range
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "sim.nii.gz", fid)
        adaptive, q_rows = quantify_refitted(path, model)
        fixed = quantify_inputs(
            read_inputs([path]), model, options=Options(baseline_stiffness="fixed", max_figures=0)
        )
        fit = fit_inputs(
            read_inputs([path]),
            basis,
            basis_name="diag",
            options=Options(fit_config=FIT_PRESETS["invivo"], max_figures=0),
        )
    q_facts, f_facts = adaptive.results[0].fit, fit.results[0].fit
    f_window = f_facts.get("window_ppm", np.tile(FIT_PRESETS["invivo"].ppm_range, (args.n, 1)))
    f_rows = np.flatnonzero(np.all(np.isclose(f_window, flexible), axis=1))
    both = np.intersect1d(q_rows, f_rows)
    print(
        f"{args.n} spectra, seed {args.seed}, SNR {args.snr or '5-150'}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"refitted: quantify {q_rows.size}, fit {f_rows.size}, both {both.size}, "
        f"quantify only {np.setdiff1d(q_rows, f_rows).size}, "
        f"fit only {np.setdiff1d(f_rows, q_rows).size}"
    )
    q_amp, f_amp = table(adaptive, names), table(fit, names)
    if q_rows.size:
        q_window = q_facts.get("window_ppm", np.tile(FIT_PRESETS["invivo"].ppm_range, (args.n, 1)))
        same_window = np.all(np.isclose(q_window[q_rows], f_window[q_rows]), axis=1)
        same_ed = np.isclose(
            q_facts["baseline_ed_per_ppm"][q_rows], f_facts["baseline_ed_per_ppm"][q_rows]
        )
        fitted = ~np.isnan(f_amp[q_rows])
        diff = np.where(fitted, np.abs(q_amp[q_rows] - f_amp[q_rows]), 0.0)
        scale = np.nanmax(np.abs(f_amp[q_rows]), axis=1)
        relative = diff.max(axis=1) / scale
        print(
            f"quantify's refitted rows: fit's window {same_window.sum()}/{q_rows.size}, fit's "
            f"stiffness {same_ed.sum()}/{q_rows.size}, max |quantify - fit| / row's largest "
            f"{relative.max():.2e} (rows within 1e-6: {(relative <= 1e-6).sum()})"
        )
        ed = q_facts["baseline_ed_per_ppm"][q_rows]
        print(
            "  their stiffness (ED/ppm) in quantify: "
            + ", ".join(f"{v:g}: {(ed == v).sum()}" for v in np.unique(ed))
            + "; window 0.2-4.0 in quantify: "
            + f"{np.all(np.isclose(q_window[q_rows], flexible), axis=1).sum()}"
        )
    for label, result in (("quantify adaptive", adaptive), ("quantify fixed", fixed), ("fit", fit)):
        got = scored(table(result, names), names)
        for subset, rows in (("all", np.arange(args.n)), ("q-refit", q_rows)):
            if not rows.size:
                continue
            mae = np.nanmean(np.abs(got[rows] - want[rows]), axis=0)
            print(
                f"{label:18s} {subset:8s} ({rows.size:3d}) MAE "
                + " ".join(f"{k} {v:.3f}" for k, v in zip(SCORED, mae, strict=True))
                + f"  mean {np.mean(mae):.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
