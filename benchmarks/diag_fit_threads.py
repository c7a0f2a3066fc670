"""Does the fit give the same numbers on 1 and 2 threads? Stage by stage, on this tree.

For each source of ``diag_water_batched.py`` (the 128 + 128 spectra of ``bench_fit_engine.py``,
SNR 30, seed 1; the in-vivo NIfTI-MRS files of ``../shared/data/invivo``; the challenge's
datasets 1-28) it compares what ``--threads 1`` and ``--threads 2`` compute (torch's threads
and the ``threads`` argument set as the command sets them):

* ``water``: ``remove_water`` (``signal/water.py``): the largest difference of a FID, relative
  to the largest water removed from it;
* ``fit | same water``: ``fit_spectra`` (``invivo`` preset, water removal off) of the same
  water-free FIDs: the largest relative difference of an amplitude;
* ``fit``: ``fit_spectra`` with its water removal, as the command runs it.

"same" where the arrays are equal to the bit. Usage (any tree's ``src``):
``PYTHONPATH=src python benchmarks/diag_fit_threads.py [--fit-sources tissue-like ...]``
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from diag_water_batched import sources
from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io.default import default_basis
from scaloquant.signal.water import remove_water
from scaloquant.threads import prefer_command_settings, torch_threads


def relative(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> str:
    """'same' where ``a`` and ``b`` are equal to the bit, else the largest ``|a - b| / scale``
    and how many rows differ (rows: the first axis)."""
    if np.array_equal(a, b):
        return "same"
    diff = np.abs(a - b).reshape(a.shape[0], -1).max(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff > 0, diff / scale, 0.0)
    return f"{np.nanmax(rel):.2g} ({int((diff > 0).sum())} of {a.shape[0]} differ)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fit-sources", nargs="*", default=None, help="labels (prefixes) of the sources to fit"
    )
    args = parser.parse_args()
    basis = default_basis()
    invivo = FIT_PRESETS["invivo"]
    dry = dataclasses.replace(invivo, water_removal="none")
    for label, fid in sources():
        x = fid.samples.reshape(-1, fid.n_points)
        grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
        dried = {}
        for threads in (1, 2):
            with torch_threads(threads):
                dried[threads] = remove_water(x, *grid, threads=threads)
        removed = np.maximum(np.abs(x - dried[1]).max(-1), np.finfo(float).tiny)
        print(f"{label}: water {relative(dried[1], dried[2], removed)}", flush=True)
        if args.fit_sources is not None and not any(label.startswith(s) for s in args.fit_sources):
            continue
        same_water = fid.with_samples(dried[1].reshape(fid.samples.shape))
        fits = {}
        for name, data, config in (("fit | same water", same_water, dry), ("fit", fid, invivo)):
            fits = {t: _amps(data, basis, config, t) for t in (1, 2)}
            scale = np.maximum(np.abs(fits[1]), np.finfo(float).tiny)
            if np.array_equal(fits[1], fits[2]):
                print(f"  {name}: same", flush=True)
            else:
                rel = np.abs(fits[1] - fits[2]) / scale
                rows = int(np.any(rel > 0, axis=-1).sum())
                print(
                    f"  {name}: max rel {rel.max():.2g} ({rows} of {rel.shape[0]} spectra differ)"
                )


def _amps(fid, basis, config, threads: int) -> np.ndarray:
    with torch_threads(threads):
        result = fit_spectra(fid, basis, config)
    return np.asarray(result.amplitudes).reshape(-1, np.asarray(result.amplitudes).shape[-1])


if __name__ == "__main__":
    prefer_command_settings()
    main()
