"""The spectra the quality checks read, and the blocks a batch is read in.

:func:`_spectra` forms a batch's FFT and its FFT zero-filled :data:`ZERO_FILL` x once
(:class:`_Spectra`, single precision, unshifted), :func:`_columns` reads its columns in ppm
order without an fftshift copy, and :func:`_quality_blocks` cuts a batch into
:data:`QUALITY_BLOCK` spectra at a time, run side by side on the run's threads
(:func:`_side_by_side`). What reads them: every measure of the quality checks, gathered into
the quality figures and flags by :mod:`.quality`, whose docstring maps the modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.fft

from ..threads import map_on_threads
from . import axes

#: Zero-filling factor for peak heights and widths: the FWHM is interpolated between points
#: of a spectrum zero-filled 4x, so a 0.08 ppm line spans 10 or more points at 1 Hz/point.
ZERO_FILL = 4


def _window(ppm: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    return np.flatnonzero((ppm >= window[0]) & (ppm <= window[1]))


class _Spectra(NamedTuple):
    """A batch's spectra ``(B, N)`` and, zero-filled :data:`ZERO_FILL` x, ``(B, ZERO_FILL N)``,
    with their ppm axes: computed once for every figure, single precision (plenty for
    quality figures, half the time and memory), unshifted (see :func:`_columns`)."""

    ppm: np.ndarray
    raw: np.ndarray
    ppm_zf: np.ndarray
    raw_zf: np.ndarray


def _columns(raw: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Columns ``index`` of ``fftshift(raw)`` without shifting the whole batch. A run of
    consecutive columns (every window of an axis) is read as one or two slices of ``raw``
    (a view, or one copy where the run wraps round), not gathered column by column (the
    quality figures of 4096 spectra: 0.29 -> 0.03 s)."""
    n = raw.shape[-1]
    index = np.asarray(index)
    size = index.size
    if size and index[-1] - index[0] == size - 1 and np.all(np.diff(index) == 1):
        start = int(index[0] - n // 2) % n
        if start + size <= n:
            return raw[:, start : start + size]
        return np.concatenate([raw[:, start:], raw[:, : start + size - n]], axis=1)
    return raw[:, (index - n // 2) % n]


def _spectra(fids: np.ndarray, dwell_time_s, freq_mhz, ppm_reference) -> _Spectra:
    n = fids.shape[-1]
    flat = fids.reshape(-1, n).astype(np.complex64)
    return _Spectra(
        axes.ppm_axis(n, dwell_time_s, freq_mhz, ppm_reference),
        scipy.fft.fft(flat, axis=-1),
        axes.ppm_axis(ZERO_FILL * n, dwell_time_s, freq_mhz, ppm_reference),
        scipy.fft.fft(flat, ZERO_FILL * n, axis=-1),
    )


def _side_by_side(block_fn: Callable[[np.ndarray], Any], blocks: list[np.ndarray]) -> list[Any]:
    """``[block_fn(b) for b in blocks]``, the blocks side by side on as many threads as
    ``scipy.fft`` has workers (the caller's ``scipy.fft.set_workers``; 1 by default): each
    block's FFTs on its thread alone (:func:`~.quality.quality_figures`,
    :func:`~.water_peak.water_near_window`;
    scipy's workers are a thread's own setting: 1 on the pool's threads)."""
    return map_on_threads(block_fn, blocks, scipy.fft.get_workers(), "scaloquant-quality")


#: Spectra whose quality figures are formed together. Their spectra zero-filled 4x are
#: ``QUALITY_BLOCK x 4 n_points`` complex64 (8 MB at 2048 points), so the blocks' working arrays
#: are the same few allocations over again rather than one pass's ~0.5 GB per 4096 spectra,
#: touched for the first time page by page (with transparent huge pages, compacted for): 4096
#: spectra, the first call in a process, 1.5-1.9 s of CPU (1.2-1.4 of it the system's) in one
#: pass, 0.39-0.41 s in blocks of 128 (256: 0.39, 512: 0.38 with 3.5x the page faults;
#: docs/history/physics-models-log.md, session 15).
QUALITY_BLOCK = 128


def _quality_blocks(fids: np.ndarray) -> list[np.ndarray]:
    """FIDs ``(..., n_points)`` flattened and cut into :data:`QUALITY_BLOCK` spectra at a time
    (views), the batches every per-spectrum figure here is formed in."""
    flat = fids.reshape(-1, fids.shape[-1])
    return [flat[i : i + QUALITY_BLOCK] for i in range(0, flat.shape[0], QUALITY_BLOCK)]
