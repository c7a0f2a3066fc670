"""Whether a spectrum's fit depends on its batch: its size, its place in it, torch's threads.

Fits ``--distinct`` spectra of ``bench_fit_engine.py`` (default simulator, seed ``--seed``, SNR
30; the tissue-like ones with ``--tissue``) with ``fit_spectra`` (``--preset``) each alone, then
batches of each ``--sizes`` whose row ``i`` is spectrum ``i % distinct`` (so that every place,
the last included, holds a spectrum fitted alone too), on each of ``--threads`` torch threads;
prints, per batch size and thread count, each ``FitResult`` field's largest difference from the
alone fits on one thread: amplitudes relative and in the alone fit's CRLB SDs, the other arrays
absolute, and the rows that differ. A batch that equals item-by-item prints ``0`` everywhere
(docs/history/fit-log.md "A spectrum's fit and its batch (session 36, batchinv36)").

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_batch_position.py [--preset invivo]
[--distinct 4] [--sizes 2 7 33 64 65] [--threads 1 2] [--tissue]``
"""

from __future__ import annotations

import argparse

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
# and runs, as the command does
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402


def arrays(result) -> dict[str, np.ndarray]:
    """The ``FitResult``'s numeric array fields with a row per spectrum."""
    out = {}
    for name, value in vars(result).items():
        if isinstance(value, np.ndarray) and value.dtype != object and name != "ppm":
            out[name] = value
    return out


def differences(alone: list, batch, index: np.ndarray) -> dict[str, tuple[float, list[int]]]:
    """Per field: the largest difference of ``batch``'s rows from ``alone[index[row]]``'s (the
    amplitudes' relative, ``amplitudes_sd`` in CRLB SDs) and the rows that differ at all."""
    got = arrays(batch)
    out: dict[str, tuple[float, list[int]]] = {}
    for name in got:
        worst, rows = 0.0, []
        for row, i in enumerate(index):
            a, b = arrays(alone[i])[name][0], got[name][row]
            if np.array_equal(a, b, equal_nan=True):
                continue
            rows.append(row)
            with np.errstate(invalid="ignore"):  # inf - inf: a %SD of a zero amplitude
                d = np.abs(np.asarray(b, dtype=complex) - np.asarray(a, dtype=complex))
            if name == "amplitudes":
                sd = np.nanmax(d / alone[i].crlb_sd[0])
                prev = out.get("amplitudes_sd", (0.0, []))[0]
                out["amplitudes_sd"] = (max(prev, float(sd)), rows)
                d = d / np.maximum(np.abs(a), 1e-12)
            worst = max(worst, float(np.nanmax(d)))
        out[name] = (worst, rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="invivo", choices=sorted(FIT_PRESETS))
    parser.add_argument("--distinct", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 7, 33, 64, 65])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tissue", action="store_true", help="the tissue-like spectra")
    args = parser.parse_args()
    basis, _, fid, tissue = engine_spectra(args.distinct, 30.0, args.seed)
    source = tissue if args.tissue else fid
    config = FIT_PRESETS[args.preset]
    torch.set_num_threads(1)
    alone = [fit_spectra(source.with_samples(source.samples[i : i + 1]), basis, config)
             for i in range(args.distinct)]  # fmt: skip
    for threads in args.threads:
        torch.set_num_threads(threads)
        for size in args.sizes:
            index = np.arange(size) % args.distinct
            batch = fit_spectra(source.with_samples(source.samples[index]), basis, config)
            diff = differences(alone, batch, index)
            differ = {k: v for k, v in diff.items() if v[1]}
            text = ", ".join(
                f"{k} {v[0]:.3g} (rows {v[1][:3]}{'...' if len(v[1]) > 3 else ''}, {len(v[1])})"
                for k, v in differ.items()
            )
            print(
                f"{threads} thread(s), batch {size}: {text or 'all equal to the bit'}", flush=True
            )


if __name__ == "__main__":
    main()
