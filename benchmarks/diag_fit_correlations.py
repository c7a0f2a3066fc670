"""Whether the fit's anticorrelated pairs (``spectra[].fit.anticorrelated``) tell which rows are
far off the truth.

Data: the spectra of :mod:`diag_quantify_outliers` (``--n`` ``invivo`` spectra on the
checkpoint's grid, SNR 5-150 as the prior draws it, or ``--snr`` one value; with
``--default-simulator`` the default simulator's, SNR 30), in one file, fitted by ``fit``'s
default (the ``invivo`` preset, ``fit_inputs``, no figures). The checkpoint gives the grid and
the names of the truth only.

Prints, for thresholds on the correlation coefficient: the share of all pairs of the fitted
components at or below it (over spectra), the share of all rows (spectrum x metabolite the
truth draws) whose metabolite belongs to such a pair, and the same share among the rows more
than 3 and more than 10 of their CRLB SDs (the ``_crlb_sd`` column) off the truth, beside the
share expected from their metabolites alone (the mean, over those rows, of their metabolite's
share over all spectra); then the
pairs the rows more than 10 SDs off belong to at ``ANTICORRELATION_MAX``, and for the commonest
pairs at it how far their sum is off against its parts: in the SD of the sum, from the
covariance (``sqrt(s_a^2 + s_b^2 + 2 r s_a s_b)``), relative to the truth, and the CRLB as a % of
the truth (the rows where the truth is 0, the default simulator's undrawn metabolites, give no
relative figure), and the part's relative error and CRLB % in the spectra where the pair is
not flagged.

Usage::

    PYTHONPATH=src:benchmarks python benchmarks/diag_fit_correlations.py CKPT [--n 256]
        [--seed 0] [--snr SNR] [--default-simulator]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from diag_quantify_outliers import add_spectra_flags, spectra_with_truth
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.result import ANTICORRELATION_MAX, correlated_names, pair_names
from scaloquant.io import write_nifti_mrs
from scaloquant.quantify import Options, fit_inputs, read_inputs

#: Thresholds on the correlation coefficient whose shares are printed.
THRESHOLDS = (-0.3, -0.4, -0.5, -0.6, -0.7, -0.8, -0.9)
#: Rows this many CRLB SDs off the truth are counted.
FAR_SDS = (3.0, 10.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_spectra_flags(p)
    args = p.parse_args(argv)
    _, basis, fid, truth, names = spectra_with_truth(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nifti_mrs(Path(tmp) / "sim.nii.gz", fid)
        start = time.perf_counter()
        run = fit_inputs(
            read_inputs([path]),
            basis,
            basis_name="diag",
            options=Options(fit_config=FIT_PRESETS["invivo"], max_figures=0),
        )
        wall = time.perf_counter() - start
    res = run.results[0]
    r = np.asarray(res.fit["anticorrelated"], dtype=np.float64)  # (N, P)
    fitted = list(run.names[: correlated_names(r.shape[1])])
    pairs = pair_names(fitted)
    print(
        f"{args.n} {'default-simulator' if args.default_simulator else 'invivo'} spectra, seed "
        f"{args.seed}, SNR {args.snr or 'as drawn'}: fit {wall:.0f} s, load "
        f"{os.getloadavg()[0]:.1f}; {len(fitted)} components, {len(pairs)} pairs"
    )
    # the rows: metabolites the truth draws (the default simulator draws no MM or lipids)
    drawn = [m for j, m in enumerate(names) if np.any(truth[:, j] != 0) and m in fitted]
    t = truth[:, [names.index(m) for m in drawn]]
    col = [run.names.index(m) for m in drawn]
    amp = np.asarray(res.columns[""], float)[:, col]
    sd = np.asarray(res.columns["_crlb_sd"], float)[:, col]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, np.abs(amp - t) / sd, 0.0)
    z = np.where(np.isfinite(z), z, 0.0)
    ok = ~np.isnan(r).all(axis=1)  # spectra fitted
    z, r_ok = z[ok], r[ok]
    # member[k, j, m]: metabolite m of the rows is one of pair j
    member = np.zeros((len(pairs), len(drawn)), dtype=bool)
    for j, (a, b) in enumerate(pairs):
        for m, name in enumerate(drawn):
            member[j, m] = name in (a, b)
    far = {s: z > s for s in FAR_SDS}
    print(
        "rows: "
        + ", ".join(f"{int(v.sum())} more than {s:g} SDs off" for s, v in far.items())
        + f" of {z.size}"
    )
    print(
        "threshold | pairs at or below | rows in such a pair | of the rows > 3 SDs off | "
        "of the rows > 10 SDs off"
    )
    for threshold in THRESHOLDS:
        hit = r_ok <= threshold  # (N, P)
        in_pair = (hit.astype(np.int64) @ member.astype(np.int64)) > 0  # (N, M)
        # expected: each far row's metabolite's own share over all spectra (the mix of
        # metabolites controlled for: Cr is in a pair in most spectra, sIns in few)
        own = in_pair.mean(axis=0)
        shares = [
            f"{int(in_pair[v].sum())}/{int(v.sum())}"
            + (
                f" = {in_pair[v].mean():.2f} (expected {own[np.nonzero(v)[1]].mean():.2f})"
                if v.any()
                else ""
            )
            for v in far.values()
        ]
        print(f"{threshold:5.1f} | {hit.mean():.3f} | {in_pair.mean():.2f} | " + " | ".join(shares))
    hit = r_ok <= ANTICORRELATION_MAX
    worst = far[FAR_SDS[-1]]
    counts: Counter[str] = Counter()
    free: Counter[str] = Counter()
    for i, m in zip(*np.nonzero(worst), strict=True):
        js = [j for j in np.flatnonzero(hit[i]) if member[j, m]]
        if js:
            j = min(js, key=lambda k: r_ok[i, k])
            counts[f"{pairs[j][0]}+{pairs[j][1]}"] += 1
        else:
            free[drawn[m]] += 1
    print(
        f"rows > {FAR_SDS[-1]:g} SDs off in a pair at or below {ANTICORRELATION_MAX:g}: {dict(counts)}"
    )
    print(f"  and in none (by metabolite): {dict(free)}")
    # the flagged pairs' sums against their parts
    print(
        "pair | spectra flagged | parts > 3 SDs off | sum > 3 SDs off | median |z| of a part, "
        "of the sum | median error / truth of a part, of the sum | median CRLB % of a part, "
        "of the sum | the same two of a part in the spectra not flagged"
    )
    ao, to, so = amp[ok], t[ok], sd[ok]
    for pair, _ in Counter(f"{pairs[j][0]}+{pairs[j][1]}" for j in np.nonzero(hit)[1]).most_common(
        12
    ):
        a, b = pair.split("+")
        j = pairs.index((a, b))
        rows = np.flatnonzero(hit[:, j])
        if a not in drawn or b not in drawn:
            print(f"{pair} | {rows.size} | (not both drawn)")
            continue
        ia, ib = drawn.index(a), drawn.index(b)
        sa, sb = so[rows, ia], so[rows, ib]
        s_sum = np.sqrt(sa**2 + sb**2 + 2 * r_ok[rows, j] * sa * sb)
        t_sum = to[rows, ia] + to[rows, ib]
        e_sum = np.abs(ao[rows, ia] + ao[rows, ib] - t_sum)
        z_sum = e_sum / s_sum
        z_parts = np.concatenate([z[rows, ia], z[rows, ib]])
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_parts = np.concatenate(
                [np.abs(ao[rows, k] - to[rows, k]) / to[rows, k] for k in (ia, ib)]
            )
            pct_parts = np.concatenate([100 * so[rows, k] / to[rows, k] for k in (ia, ib)])
            rel_sum, pct_sum = e_sum / t_sum, 100 * s_sum / t_sum
            other = np.flatnonzero(~hit[:, j])
            rel_other = np.concatenate(
                [np.abs(ao[other, k] - to[other, k]) / to[other, k] for k in (ia, ib)]
            )
            pct_other = np.concatenate([100 * so[other, k] / to[other, k] for k in (ia, ib)])
        print(
            f"{pair} | {rows.size} | {int((z_parts > 3).sum())} | {int((z_sum > 3).sum())} | "
            f"{np.median(z_parts):.2f}, {np.median(z_sum):.2f} | "
            f"{np.nanmedian(rel_parts):.3f}, {np.nanmedian(rel_sum):.3f} | "
            f"{np.nanmedian(pct_parts):.0f}, {np.nanmedian(pct_sum):.0f} | "
            + (
                f"{np.nanmedian(rel_other):.3f}, {np.nanmedian(pct_other):.0f} ({other.size})"
                if other.size
                else "none"
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
