"""Which spectra a run draws fit figures of: those it flagged (worst fit first) and then those
of highest SNR of all inputs, or, in an MRSI input with a fit residual for every voxel, the
voxels at evenly spaced ranks of that residual; and the drawn spectra picked out of their
batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..types import FID
from .matching import Prepared
from .rows import flat_samples


def figure_choice(
    prepared: Sequence[Prepared],
    max_figures: int,
    skip: Sequence[bool] = (),
    *,
    flags: Sequence[Sequence[Sequence[str]]] = (),
    residual_over_noise: Sequence[np.ndarray | None] = (),
) -> list[list[int]]:
    """Per input, the spectra to draw, ``max_figures`` at most over all inputs, of those with
    something to quantify and none of the inputs whose ``skip`` is True: given the run's
    ``flags`` (per input, each spectrum's QC flags), the flagged spectra first, the worst fit
    first (per input ``(N,)`` ``residual_over_noise``, or None; those without one after), as
    the notes of ``misfit`` and ``water_near_window`` send the user to their figures; then
    those of highest SNR (results.csv's ``snr``, NAA height over the noise SD; in MRSI the
    voxels with signal rather than the corners of the field of view); then those with no SNR
    (no noise region) by RMS.

    Not by RMS alone: that counts noise as signal, and drew the noisiest of the ISMRM 2016
    challenge's SNR series (SNR 15-35, RMS 29-31) over its cleanest (SNR 126-140, RMS 27-28).
    """
    skip = list(skip) or [False] * len(prepared)
    flags = list(flags) or [[[] for _ in p.usable] for p in prepared]
    over_noise = list(residual_over_noise) or [None] * len(prepared)
    keys = []
    for i, (p, s, f, r) in enumerate(zip(prepared, skip, flags, over_noise, strict=True)):
        rms = np.sqrt(np.mean(np.abs(flat_samples(p.fid)) ** 2, axis=1))
        snr = np.nan_to_num(np.asarray(p.quality.snr, dtype=float).reshape(-1), nan=-np.inf)
        worst = np.full(rms.shape, -np.inf) if r is None else np.nan_to_num(r, nan=-np.inf)
        for j in np.flatnonzero(p.usable & (not s)):
            flagged = bool(f[j])
            keys.append((not flagged, -worst[j] if flagged else 0.0, -snr[j], -rms[j], i, int(j)))
    order = sorted(keys)[:max_figures]
    chosen: list[list[int]] = [[] for _ in prepared]
    for *_, i, j in order:
        chosen[i].append(j)
    return [sorted(c) for c in chosen]


def representative_voxels(residual: np.ndarray, usable: np.ndarray, k: int) -> list[int]:
    """The ``k`` spectra at evenly spaced ranks of the fit ``residual`` ``(N,)`` among the
    ``usable`` ``(N,)`` ones with a finite residual, best first: for ``k = 5`` the best, the
    quartiles, the median and the worst fit (fewer when fewer are usable)."""
    candidates = np.flatnonzero(usable & np.isfinite(residual))
    if k <= 0 or candidates.size == 0:
        return []
    ranked = candidates[np.argsort(residual[candidates], kind="stable")]
    ranks = np.unique(np.round(np.linspace(0, ranked.size - 1, min(k, ranked.size))).astype(int))
    return [int(i) for i in ranked[ranks]]


def spectra_subset(fid: FID, index: Sequence[int]) -> FID:
    return fid.with_samples(flat_samples(fid)[list(index)])


def fitted_spectrum(spectra, k: int):
    """Spectrum ``k`` of a batch ``(n, ...)`` of fitted spectra."""
    return type(spectra)(spectra.ppm, *(getattr(spectra, f)[k] for f in spectra._fields[1:]))
