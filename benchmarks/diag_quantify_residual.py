"""Which model's residual ``scaloquant quantify --model`` writes as a physics-head model's
``fit_residual``, against ``scaloquant fit``'s on the same spectra.

Each case runs ``quantify --model CKPT FILE`` in this process (``scaloquant.cli.main``,
``--max-figures 0``, quantify's default ``--baseline-stiffness adaptive``) with hooks that read,
without changing anything: every evaluation the ``fit_residual`` is formed from
(:func:`scaloquant.models.physics_head.fit_residual_checks`: whether it carries a baseline
stiffness per spectrum, ``Evaluation.stiffness``, or the problem's fixed one), each polished
spectrum's own residual before the rows the F-test screen flags are replaced by their refit's
(``PhysicsQuantifier.predict_estimates``), and which rows were refitted. Then ``scaloquant fit``
on the same file (the case's ``fit`` arguments). Per case it prints:

- ``stiffness``: evaluations with a per-spectrum stiffness among those the residual read (0:
  the polish solves at its fixed stiffness, and so does the residual);
- ``kept``: rows left with the polish (not flagged), the largest ``|written - polish's own|``
  (0: the written residual is the polished model's, at the stiffness its amplitudes were solved);
- ``refit``: rows fitted again with a flexible baseline, their written residual against the
  polish's fixed-stiffness one (what a residual of the wrong model would have written) and
  against ``fit``'s (the same F-test refit where the spectrum and basis are the same);
- ``vs fit``: every row's written residual against ``fit``'s, and the rows whose ``qc`` flags
  differ between the two runs (``residual_large`` is the flag the residual decides).

Cases: ``--physics CASE=CKPT`` for the scanner spectra of ``benchmarks/bench_invivo_ratios.py``
(its ``CASES``: the file and the ``fit`` arguments), ``--data FILE=CKPT`` for any other file
(``fit`` with its defaults, the embedded basis).

Usage::

    PYTHONPATH=src python benchmarks/diag_quantify_residual.py OUT [--physics CASE=CKPT ...]
        [--data FILE=CKPT ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench_invivo_ratios import CASES
from scaloquant.cli import main as cli
from scaloquant.models import physics
from scaloquant.quantify import run


def quantify_hooked(file: Path, ckpt: Path, out: Path) -> dict:
    """Run ``quantify`` on ``file`` with ``ckpt`` into ``out``, hooked (module docstring):
    ``{"per_spectrum_stiffness": evaluations with one, "evaluations": all, "polish": (n,) each
    row's polished residual (NaN where not estimated), "refit": (n,) bool}``."""
    seen = {"per_spectrum_stiffness": 0, "evaluations": 0}
    polished: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    refit: list[np.ndarray] = []
    own_residual = physics.fit_residual_checks
    own_predict = physics.PhysicsQuantifier.predict_estimates
    own_estimates = run._physics_estimates
    own_rows = run.estimated_rows

    def residual(problem, ev, y):
        seen["evaluations"] += 1
        seen["per_spectrum_stiffness"] += ev.stiffness is not None
        return own_residual(problem, ev, y)

    def predict(self, *args, **kwargs):
        p = own_predict(self, *args, **kwargs)
        polished.append(np.array(p.fit_residual))  # a copy: flagged rows are replaced in place
        return p

    def estimates(*args, **kwargs):
        out = own_estimates(*args, **kwargs)
        n = len(out.columns[0])
        flagged = np.zeros(n, dtype=bool)
        if out.refit_rows is not None:
            flagged[out.refit_rows] = True
        refit.append(flagged)
        return out

    def estimated(prep):
        r = own_rows(prep)
        rows.append((np.asarray(r), prep.input.n_spectra))
        return r

    physics.fit_residual_checks = residual
    physics.PhysicsQuantifier.predict_estimates = predict
    run._physics_estimates = estimates
    run.estimated_rows = estimated
    try:
        argv = ["quantify", str(file), "--model", str(ckpt), "--out", str(out)]
        code = cli([*argv, "--max-figures", "0", "--overwrite"])
    finally:
        physics.fit_residual_checks = own_residual
        physics.PhysicsQuantifier.predict_estimates = own_predict
        run._physics_estimates = own_estimates
        run.estimated_rows = own_rows
    if code:
        raise SystemExit(f"quantify failed on {file}")
    ((r, n),) = rows
    polish = np.full(n, np.nan)
    polish[r] = polished[0]
    flagged = np.zeros(n, dtype=bool)
    flagged[r] = refit[0]
    return seen | {"polish": polish, "refit": flagged}


def spectra(out: Path) -> list[dict]:
    """``results.json``'s per-spectrum entries in ``out``."""
    return json.loads((out / "results.json").read_text())["spectra"]


def report(name: str, hooked: dict, q: list[dict], f: list[dict]) -> None:
    """Print one case's lines (module docstring)."""
    written = np.array([s["fit_residual"] for s in q], dtype=float)
    fitted = np.array([s["fit_residual"] for s in f], dtype=float)
    polish, flagged = hooked["polish"], hooked["refit"]
    print(f"{name}: {len(q)} spectra")
    print(
        f"  stiffness: {hooked['per_spectrum_stiffness']} of {hooked['evaluations']} "
        "evaluations with a per-spectrum stiffness"
    )
    kept = ~flagged & np.isfinite(polish)
    print(
        f"  kept: {int(kept.sum())} rows, max |written - polish's own| "
        f"{np.max(np.abs(written[kept] - polish[kept]), initial=0.0):.3g}"
    )
    if flagged.any():
        ratio = written[flagged] / polish[flagged]
        gap = np.abs(written[flagged] - fitted[flagged])
        same = int(np.sum(gap <= 1e-9 * fitted[flagged]))
        print(
            f"  refit: {int(flagged.sum())} rows, written / polish's fixed-stiffness residual "
            f"median {np.median(ratio):.3f} (range {ratio.min():.3f}-{ratio.max():.3f}); "
            f"the same as fit's (1e-9) in {same}, max |written - fit| {gap.max():.3g}"
        )
    ok = np.isfinite(written) & np.isfinite(fitted)
    rel = written[ok] / fitted[ok] - 1
    if ok.any():
        print(
            f"  vs fit: written / fit's residual - 1: median {np.median(rel):+.3f}, "
            f"range {rel.min():+.3f} to {rel.max():+.3f} ({int(ok.sum())} rows)"
        )
    differ = [
        (i, sorted(set(a["qc"]) - set(b["qc"])), sorted(set(b["qc"]) - set(a["qc"])))
        for i, (a, b) in enumerate(zip(q, f, strict=True))
        if set(a["qc"]) != set(b["qc"])
    ]
    large = sum(
        ("residual_large" in a["qc"]) != ("residual_large" in b["qc"])
        for a, b in zip(q, f, strict=True)
    )
    print(f"  flags: residual_large differs in {large} rows; any qc flag in {len(differ)}")
    for i, only_q, only_f in differ[:10]:
        print(f"    row {i}: quantify only {only_q}, fit only {only_f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--physics", nargs="+", default=[], metavar="CASE=CKPT")
    parser.add_argument("--data", nargs="+", default=[], metavar="FILE=CKPT")
    args = parser.parse_args(argv)
    cases = []
    for item in args.physics:
        name, _, ckpt = item.partition("=")
        inputs = [str(x) for x in CASES[name][0]]
        cases.append((name, Path(inputs[0]), inputs[1:], Path(ckpt)))
    for item in args.data:
        file, _, ckpt = item.partition("=")
        cases.append((Path(file).name.split(".")[0], Path(file), [], Path(ckpt)))
    for name, file, fit_args, ckpt in cases:
        q, f = args.out / f"{name}-quantify", args.out / f"{name}-fit"
        hooked = quantify_hooked(file, ckpt, q)
        if cli(["fit", str(file), *fit_args, "--out", str(f), "--max-figures", "0", "--overwrite"]):
            raise SystemExit(f"fit failed on {file}")
        report(name, hooked, spectra(q), spectra(f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
