"""The lines of a spectrum: its magnitude less its running median, and that running median.

:func:`_line_peaks` takes from the magnitude spectrum its running median over
:data:`PEAK_WINDOW_PPM`, so that broad features (residual water and its tails, baseline) go and
only peaks narrower than that remain: what the mirror test (:func:`~.mirror.mirror_ratio`)
and the search for the data's own singlets (:func:`~.singlets.singlet_shift`) read.
:func:`_running_median_rows` forms the running median of many rows at once, bit for bit scipy's
``median_filter``, by a comparator network (:func:`_median_network`) whose ``np.minimum`` /
``np.maximum`` calls release the GIL, in each thread's scratch memory (:func:`_scratch`);
:data:`NETWORK_MAX_WIDTH` and :data:`NETWORK_ROWS` bound it. The spectra it reads are
:mod:`.qc_spectra`'s; the map of the quality checks' modules is :mod:`.quality`'s.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
from scipy.ndimage import median_filter

from .qc_spectra import _columns

#: Width of the running median that removes broad features before peaks are summed, ppm.
PEAK_WINDOW_PPM = 0.3


def _running_median_width(n_points: int, dwell_time_s: float, freq_mhz: float) -> int:
    bin_ppm = 1.0 / (n_points * dwell_time_s * freq_mhz)
    return max(3, int(round(PEAK_WINDOW_PPM / bin_ppm)) | 1)


def _read_range(
    used: np.ndarray, n_points: int, dwell_time_s: float, freq_mhz: float
) -> tuple[int, int]:
    """The bins ``lo..hi`` whose running median (:func:`_line_peaks`) the bins ``used``
    ``(n_points,)`` need: theirs and half its width either side (the same numbers as over the
    whole spectrum, the array's edges included; half the work at 2048 points, 4096 spectra 6.5
    -> 3 s on a loaded core)."""
    width = _running_median_width(n_points, dwell_time_s, freq_mhz)
    index = np.nonzero(used)[0]
    return max(0, int(index[0]) - width // 2), min(n_points, int(index[-1]) + width // 2 + 1)


def _line_peaks(
    raw: np.ndarray, lo: int, hi: int, n_points: int, dwell_time_s: float, freq_mhz: float
) -> np.ndarray:
    """The magnitude of the (shifted) spectrum's bins ``lo..hi`` less its running median over
    :data:`PEAK_WINDOW_PPM`, clipped at 0: its lines, broad features removed, ``(B, hi -
    lo)`` float64. ``raw``: the unshifted FFT ``(B, n_points)``, read without an fftshift
    copy."""
    width = _running_median_width(n_points, dwell_time_s, freq_mhz)
    # the median in the magnitude's own precision (an order statistic: the same number), half
    # the memory traffic of its network for the figures' single-precision spectra
    magnitude = np.abs(_columns(raw, np.arange(lo, hi)))
    median = _running_median_rows(magnitude, width).astype(np.float64, copy=False)
    return np.clip(magnitude.astype(np.float64, copy=False) - median, 0.0, None)


def _running_median_rows(values: np.ndarray, width: int) -> np.ndarray:
    """The running median of each row of ``values`` ``(B, L)`` over ``width`` (odd) points, the
    rows' edges extended by their end values (``mode="nearest"``), ``(B, L)``: bit for bit
    ``scipy.ndimage.median_filter(row, size=width, mode="nearest")`` of each row, in the
    dtype of ``values``.

    The rows, each extended by ``width // 2`` copies of its end values (what ``mode="nearest"``
    reads beyond a row's ends), are laid end to end (session 19's layout for scipy's 1-D
    filter), and the ``width`` shifted views of that line, one per place in the window, go
    through a comparator network that selects the middle of ``width`` values
    (:func:`_median_network`): every output is the window's ``width // 2``-th order statistic,
    the same number as scipy's running heap gives, found by ``np.minimum`` / ``np.maximum``
    over the whole block at once (140 calls at ``width`` 19). Those release the GIL, where
    scipy's filter held it for its whole call, so the quality checks' blocks run side by side
    on the run's threads (:func:`~.qc_spectra._side_by_side`); and on one thread the network is
    cheaper (128 x 545 points, width 19: 5.3 -> 4.4 ms of CPU; docs/history/benchmarks-log.md "The
    quality checks off the GIL (session 21, `qc21`)"). Medians of windows that straddle two
    rows are formed too and dropped. A NaN in a window makes its median NaN (scipy's depends
    on where it falls). Wider than :data:`NETWORK_MAX_WIDTH`, scipy's 1-D filter of the same
    line forms them (bit for bit the same; it holds the GIL)."""
    half = width // 2
    n_rows, length = values.shape
    if values.size == 0:
        return np.empty_like(values)
    if width <= NETWORK_MAX_WIDTH and n_rows > NETWORK_ROWS:
        # each row's medians its own: the same numbers by parts
        parts = range(0, n_rows, NETWORK_ROWS)
        return np.concatenate(
            [_running_median_rows(values[i : i + NETWORK_ROWS], width) for i in parts]
        )
    padded = np.pad(values, ((0, 0), (half, half)), mode="edge")
    if width > NETWORK_MAX_WIDTH:
        filtered = median_filter(padded.reshape(-1), size=width, mode="nearest")
        return filtered.reshape(padded.shape)[:, half : half + length]
    line = padded.reshape(-1)
    span = line.size - 2 * half  # windows that start at each point of the line
    wires = [line[k : k + span] for k in range(width)]  # views, never written
    owned = [False] * width
    network = _median_network(width)
    # the arrays the wires are written to: one per wire written and one for a comparator's
    # minimum while its maximum is formed, in this thread's scratch array
    written = {i for i, _, low, _ in network if low} | {j for _, j, _, high in network if high}
    spare = list(_scratch(len(written) + 1, span, values.dtype))

    def target(wire: int) -> np.ndarray:
        # in place where the wire already holds an array of its own, else a spare one
        if owned[wire]:
            return wires[wire]
        owned[wire] = True
        return spare.pop()

    for i, j, low, high in network:
        a, b = wires[i], wires[j]
        if low and high:
            smaller = spare.pop()
            np.minimum(a, b, out=smaller)
            wires[j] = np.maximum(a, b, out=target(j))
            if owned[i]:
                spare.append(a)
            wires[i], owned[i] = smaller, True
        elif low:
            wires[i] = np.minimum(a, b, out=target(i))
        else:
            wires[j] = np.maximum(a, b, out=target(j))
    middle = np.pad(wires[half], (0, 2 * half))  # the line's last windows, never read
    return middle.reshape(n_rows, length + 2 * half)[:, :length]


#: The widest running median formed by :func:`_median_network`'s comparators; wider ones by
#: scipy's filter (which holds the GIL). The network's work grows as ``width log^2 width`` per
#: point, the filter's as ``log width``: measured (128 rows of ``28 width`` points, one thread)
#: 1.2 against 2.5 ms at width 11, 4.4 against 4.7-5.2 at 19, 10 against 6.3 at 25, 18
#: against 8 at 31. 19 is the width of 2048 points at 4 kHz and 3 T (the default basis's grid,
#: the ISMRM 2016 challenge's); 21 that of 1024 points at 2 kHz (the spant spectrum's); the
#: Osprey (39) and suspect (33) spectra of the shared data get scipy's filter.
NETWORK_MAX_WIDTH = 21


#: Rows the network takes at a time: its scratch holds ``width + 1`` arrays of them (~7 MB at
#: 128 rows of the default grid in single precision, 14 MB in double; :func:`~.mirror.mirror_ratio`
#: of 16384 spectra in one call, double precision, would take 1.5 GB in one piece).
NETWORK_ROWS = 128


#: Each thread's scratch array for :func:`_running_median_rows` (a fresh one per block was
#: mapped and unmapped by the allocator at each call: 2100 page faults per block of 128
#: spectra, 0.17 s of the system's CPU at 4096 spectra).
_SCRATCH = threading.local()


def _scratch(count: int, size: int, dtype: np.dtype) -> np.ndarray:
    """An uninitialised ``(count, size)`` array of ``dtype`` in this thread's scratch memory
    (kept for the thread's next call: ~7 MB at :data:`NETWORK_MAX_WIDTH`, 128 spectra)."""
    need = count * size
    buffer = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.dtype != dtype or buffer.size < need:
        buffer = _SCRATCH.buffer = np.empty(need, dtype)
    return buffer[:need].reshape(count, size)


@functools.cache
def _median_network(width: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators ``(i, j, low, high)`` (``i < j``) of a network that leaves the median of
    ``width`` (odd) values on wire ``width // 2``: ``low``, wire ``i`` takes the smaller of
    the two; ``high``, wire ``j`` the larger; where only one of them is read later, only it is
    formed.

    Batcher's odd-even merge sort (K. E. Batcher, "Sorting networks and their applications",
    AFIPS 1968) of the next power of two of wires, cut to ``width``: the wires beyond it stand for
    +inf, which no comparator moves, so every comparator that touches them is dropped; then, from
    the last comparator back, only those whose outputs reach the middle wire are kept (19 wires: 79
    comparators of Batcher's 191, 140 of the 158 minima and maxima)."""
    size = 1 << (width - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < width:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    needed = {width // 2}
    kept = []
    for i, j in reversed(pairs):
        low, high = i in needed, j in needed
        if low or high:
            kept.append((i, j, low, high))
            needed |= {i, j}
    return tuple(reversed(kept))
