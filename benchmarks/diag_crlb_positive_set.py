"""Our %SD with ingredients of the bound held (the amplitudes at 0, as LCModel forms its SDs;
the groups' widths; the lineshape; the shifts and phases; every nonlinear parameter) beside
LCModel's on the spectra of a ``benchmarks/bench_lcmodel.py`` run (docs/fit.md "Our %SD beside
LCModel's"; docs/history/fit-log.md, session 33, sdpeer33 and sdcause33).

LCModel's covariance is that of the positive set alone (``LCModel.f``: the columns ``INDCOL``
of the non-negative solver's passive set; an estimate of 0 is a constraint, held, with %SD
999). scaloquant's bound (:func:`scaloquant.fit.crlb.crlb`) keeps every amplitude's column,
those fitted at 0 too, and every identifiable nonlinear parameter's. This script refits the
scaloquant side of a ``bench_lcmodel.py`` run's set once (in-process), checks that the
amplitudes are the run's, forms at the fit's last bound the covariance with each variant's
parameters held (their rows and columns of the normed Fisher matrix those of the identity,
their covariance 0) and prints ``bench_lcmodel._print_percent_sd`` for each: the %SD ratio to
LCModel's and, on the ``tissue`` set, the calibration of each tool's SDs against the truth. A
diagnostic: the library's bound is untouched.

Usage::

    PYTHONPATH=src:benchmarks python benchmarks/diag_crlb_positive_set.py RESULTS_JSON
        [--set invivo|tissue] [--snr 30] [--seed 0] [--variants zeros,lineshape,...]

``RESULTS_JSON``: ``bench_lcmodel.py --out DIR``'s ``DIR/results.json``, with the set;
``--snr``/``--seed``: the tissue set's, as that run was given them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import bench_lcmodel as bench
import scaloquant.fit.batched as batched
from scaloquant.fit import crlb as bound
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.metabolites import COMBINATIONS, indices_of

#: the variants: which parameter kinds each holds (``"zeros"``: the amplitudes fitted at 0;
#: the others name kinds of :func:`parameter_kinds`)
VARIANTS = {
    "as it is": (),
    "zeros": ("zeros",),
    "lineshape": ("lineshape",),
    "group widths": ("damping", "gaussian"),
    "metabolites' widths": ("damping@metabolites", "gaussian@metabolites"),
    "group dampings": ("damping",),
    "group Gaussian widths": ("gaussian",),
    "damping deviations": ("deviation",),
    "kernel": ("kernel",),
    "shifts+phases": ("shift", "phase"),
    "nonlinear": ("lineshape", "shift", "phase"),
    "zeros+lineshape": ("zeros", "lineshape"),
    "zeros+nonlinear": ("zeros", "lineshape", "shift", "phase"),
}


def parameter_kinds(problem) -> np.ndarray:
    """The kind of each free parameter ``(P_free,)``: ``"damping@GROUP"`` and
    ``"gaussian@GROUP"`` (each group's Lorentzian damping and Gaussian width),
    ``"deviation"`` (the metabolites' damping deviations), ``"kernel"`` (the free-form
    kernel's weights), ``"shift"`` (shifts, shift deviations) or ``"phase"``; the layout of
    :class:`scaloquant.fit.problem.Problem`'s ``theta`` (``3 G + 2 + 2 M + J``)."""
    m, groups = problem.n_metabolites, problem.group_names
    kinds = np.array(
        [f"damping@{name}" for name in groups]
        + ["shift"] * len(groups)
        + [f"gaussian@{name}" for name in groups]
        + ["phase"] * 2
        + ["deviation"] * m
        + ["shift"] * m,
        dtype=object,
    )
    n = problem.free.shape[0]
    kinds = np.concatenate([kinds, np.array(["kernel"] * (n - kinds.size), dtype=object)])
    return kinds[problem.free_index.cpu().numpy()]


def _is_kind(kind: str, wanted: str) -> bool:
    """Whether ``kind`` (of :func:`parameter_kinds`) is ``wanted``: the same, or ``wanted``
    without a group (``"damping"``) names every group's."""
    return kind == wanted or kind.split("@")[0] == wanted


def held_covariance(problem, ev, noise_var, amplitude_prior, kinds: tuple[str, ...]):
    """The amplitudes' covariance ``(B, M, M)`` of :func:`scaloquant.fit.crlb.crlb` with the
    parameters of ``kinds`` held: their rows and columns of the normed Fisher matrix the
    identity's, their covariance 0 (``"zeros"``: LCModel's covariance of the positive set;
    ``"lineshape"``: dampings, Gaussian widths, damping deviations and kernel)."""
    normed, outer, _ = bound._normed_fisher(problem, ev, noise_var, amplitude_prior)
    m = problem.n_metabolites
    held = torch.zeros(normed.shape[:2], dtype=torch.bool, device=normed.device)
    if "zeros" in kinds:
        held[:, :m] = ~ev.passive.bool()
    free_kinds = parameter_kinds(problem)
    lineshape = ("damping", "gaussian", "deviation", "kernel") if "lineshape" in kinds else ()
    for k in (*kinds, *lineshape):
        hit = [j for j, kind in enumerate(free_kinds) if _is_kind(kind, k)]
        cols = torch.as_tensor(np.array(hit, dtype=np.int64) + m, device=normed.device)
        held[:, cols] = True
    mask = held[:, :, None] | held[:, None, :]
    normed.masked_fill_(mask, 0.0)
    torch.diagonal(normed, dim1=-2, dim2=-1).masked_fill_(held, 1.0)
    cov = bound._inverse(normed).mul_(noise_var[:, None, None]).div_(outer)
    cov.masked_fill_(mask, 0.0)
    return cov[:, :m, :m]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--set", choices=("invivo", "tissue"), default="tissue")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
        return 1
    results = json.loads(args.results.read_text())["sets"].get(args.set)
    if not results:
        print(f"{args.results} holds no {args.set!r} set")
        return 1
    folder = Path(tempfile.mkdtemp(prefix="diag-crlb-"))
    n = len(results[0]["rows"])
    groups = (
        bench.invivo_set(folder)
        if args.set == "invivo"
        else bench.tissue_set(folder, n, args.snr, args.seed)
    )
    if [g.label for g in groups] != [r["label"] for r in results]:
        print(f"the {args.set} set of {args.results} is not this script's (other groups)")
        return 1
    original = batched.crlb
    seen: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []

    def capturing_crlb(problem, ev, noise_var, amplitude_prior=None):
        """The bound as it is; each variant's amplitude covariance recorded with the SD over
        the amplitude of the bound as it is (the key: the fit's last bound of a spectrum is
        its last record with that key)."""
        cov, ident = original(problem, ev, noise_var, amplitude_prior)
        m = problem.n_metabolites
        base = torch.diagonal(cov, dim1=-2, dim2=-1)[:, :m].sqrt().cpu().numpy()
        held = {
            v: held_covariance(problem, ev, noise_var, amplitude_prior, VARIANTS[v]).cpu().numpy()
            for v in ("as it is", *variants)
        }
        amps = ev.amplitudes.detach().cpu().numpy()
        pct = base / np.where(amps != 0, np.abs(amps), np.nan)
        for i in range(amps.shape[0]):
            seen.append((pct[i], base[i], {v: c[i] for v, c in held.items()}))
        return cov, ident

    batched.crlb = capturing_crlb
    try:
        fitted = [
            bench.fit_with_scaloquant(
                [c.fid for c in group.cases],
                [c.water for c in group.cases],
                group.basis,
                workers=2,
                force=group.force,
                fit_config=FIT_PRESETS["invivo"],
            )
            for group in groups
        ]
    finally:
        batched.crlb = original
    for variant in variants:
        for result, ours in zip(results, fitted, strict=True):
            rows = []
            for i, row in enumerate(result["rows"]):
                run = np.array(list(row["scaloquant_amplitudes"].values()), dtype=np.float64)
                atol = 1e-6 * np.nanmax(np.abs(run), initial=0.0)  # a failed fit's row: NaN
                if not np.allclose(ours.amplitudes[i], run, rtol=1e-6, atol=atol, equal_nan=True):
                    print(f"{row['name']}: the refit's amplitudes are not the run's")
                    return 1
                sd = _variant_sd(seen, ours, i, variant)
                if sd is None:
                    print(f"{row['name']}: no recorded bound for its SDs")
                    return 1
                sd = dict(zip(ours.names, sd.tolist(), strict=True))
                rows.append(dict(row, scaloquant_crlb_sd=sd))
            print(f"\n=== held: {variant}: {result['label']}")
            bench._print_percent_sd(dict(result, rows=rows), per_spectrum=8)
    return 0


def _variant_sd(seen, ours, i: int, variant: str) -> np.ndarray | None:
    """Spectrum ``i``'s SDs ``(len(ours.names),)`` in the output's units under ``variant``:
    its record found by the SD over amplitude of its metabolites (unit-free), the variant's
    covariance taken to the output's units by each metabolite's SD as written over the
    recorded one, and the combined rows (names of ``COMBINATIONS`` after the metabolites) as
    the sums over their parts' block, as :meth:`scaloquant.fit.result.FitResult.
    crlb_sd_of_sum`. ``None`` where no record matches or the bound as it is, so rebuilt,
    is not the written one."""
    sd = np.asarray(ours.crlb_sd[i], dtype=np.float64)
    if not np.isfinite(sd).any():  # a failed fit: no bound to vary
        return sd
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = sd / np.abs(ours.amplitudes[i])
    for recorded, base, held in reversed(seen):
        m = recorded.shape[0]
        here = np.where(np.isfinite(pct[:m]), pct[:m], np.nan)
        if not np.allclose(recorded, here, rtol=1e-5, equal_nan=True):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = np.where(base > 0, sd[:m] / base, 0.0)
        out = {}
        for v in ("as it is", variant):
            cov = held[v] * unit[:, None] * unit[None, :]
            values = np.sqrt(np.clip(np.diagonal(cov), 0.0, None))
            extra = []
            for name in ours.names[m:]:
                parts = indices_of(COMBINATIONS[name], ours.names[:m])
                extra.append(np.sqrt(max(cov[np.ix_(parts, parts)].sum(), 0.0)))
            out[v] = np.concatenate([values, extra])
        if not np.allclose(out["as it is"], sd, rtol=1e-6, equal_nan=True):
            return None
        return out[variant]
    return None


if __name__ == "__main__":
    raise SystemExit(main())
