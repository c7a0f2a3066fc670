"""Band decimation of the fit's model: the window's bins from a FID of ``N / D`` samples.

The fit compares the data with the model over a window of ``K`` bins of the ``N``-point
spectrum (0.2-4.2 ppm: 252 of 2048 bins at 4000 Hz and 3 T), but forms each model column as an
``N``-sample FID and its ``N``-point FFT. Mixed so that the window sits at the centre of a band
of ``N / D`` bins, filtered by a linear-phase low-pass ``h`` and kept at every ``D``-th sample,
a signal ``x`` becomes ``y`` (``N / D`` samples) whose FFT holds the window's bins of ``x``'s:
with the filter applied circularly (the DFT's own periodic signal) this holds bin by bin,
``Y[k] = H[k] X[k] + aliases``, equal to ``X[k]`` within the filter's pass-band ripple and
stop-band attenuation (:data:`ATTENUATION_DB`).

The model's columns are ``z(t) = X_m(t) l(t)``, a basis FID times a lineshape. Their decimated
samples are formed as ``y_m[n] l(n D dt)`` from the basis' decimated ``y_m``, which is
exact where ``l`` is smooth over the filter's span: a line ``c p^j`` of ``z`` filtered about
``n D`` gives ``c p^(nD) sum_j h[j] (p r)^j`` with ``r`` the lineshape's local ratio per
sample, and ``sum_j h[j] (p r)^j`` differs from ``sum_j h[j] p^j`` by the pass band's slope
times ``log r`` (~1e-6 for 5-40 1/s dampings: the pass band is flat). It is not smooth where the
circular filter's span wraps from the FID's end to its start (the lineshape jumps from
``l(T)`` to ``l(0)``): the first and last ``~L / (2 D)`` decimated samples, the *edge rows*,
are formed exactly from the ``S ~ L`` full-rate samples they read, ``y[n] = sum_s w[s, n]
z[s]`` (``w`` real: the taps, times ``D`` and the sign that puts the band's centre at bin
``N / (2 D)``, so that the window is one run of bins in the unshifted FFT).

Measured on the default basis (20 metabolites and macromolecules, 2048 points at 4000 Hz,
window 0.2-4.2 ppm, 1 ppm of margin), against the exact ``N``-point window of ``X_m l`` over
dampings 3-40 1/s, Gaussian decays 0-600 1/s^2 and shifts of +-15 Hz: at 80 dB (79 taps, D = 4,
19 edge rows) the largest error of a column's bins 2.6e-5 of its largest bin, median 3e-6; at
60 dB 8e-4. :func:`band_decimation` checks this for the basis at hand and declines to decimate
where the error exceeds :data:`MAX_RELATIVE_ERROR` (a basis with lines in the filter's
transition band).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Stop-band attenuation (dB) of the model's decimation filter: its pass-band ripple is about
#: ``10^(-A/20)`` (1e-4 at 80 dB), below any spectrum's noise at the SNRs MRS reaches.
ATTENUATION_DB = 80.0
#: Pass band beyond each side of the window (ppm): lines just outside the window (a basis'
#: 0 ppm reference, the macromolecules at 0.9 ppm below a 1.0 ppm window) reach into it with
#: their tails, so they must pass the filter unchanged too.
MARGIN_PPM = 1.0
#: The decimated model is used only where, for the basis at hand, its window bins agree with
#: the full model's to this fraction of each column's largest bin (checked at a tissue
#: linewidth and at the basis' own, :func:`band_decimation`).
MAX_RELATIVE_ERROR = 1e-4
#: The transition band must be at least this fraction of the decimated sampling rate; a
#: narrower one needs a long filter whose edge rows cost more than the decimation saves.
MIN_TRANSITION_FRACTION = 0.15


def lowpass_taps(
    pass_hz: float,
    stop_hz: float,
    sampling_hz: float,
    attenuation_db: float,
    *,
    odd: bool = False,
) -> np.ndarray:
    """A linear-phase low-pass FIR filter ``(L,)``, unit gain at 0 Hz, flat to ``pass_hz`` and
    down by ``attenuation_db`` from ``stop_hz``: a Kaiser-windowed sinc with Kaiser's length
    and ``beta`` for that attenuation and transition (Oppenheim & Schafer, 7.5.3); one tap
    longer where ``odd`` asks for a filter centred on a sample."""
    width = 2 * np.pi * (stop_hz - pass_hz) / sampling_hz
    taps = int(np.ceil((attenuation_db - 8.0) / (2.285 * width))) + 1
    if odd and taps % 2 == 0:
        taps += 1
    cutoff = 0.5 * (pass_hz + stop_hz) / sampling_hz  # cycles per sample
    h = np.sinc(2 * cutoff * (np.arange(taps) - (taps - 1) / 2)) * np.kaiser(
        taps, 0.1102 * (attenuation_db - 8.7)
    )
    return h / h.sum()


@dataclass(frozen=True)
class BandDecimation:
    """How a ``n_points``-sample FID is decimated by ``factor`` about the window's band.

    ``centre_bin``: the signed bin of the full spectrum mixed to the band's centre; ``taps``
    ``(L,)`` odd, centred; ``window_bins`` ``(K,)``: the window's bins in the decimated FID's
    unshifted FFT (consecutive); ``edge_rows`` ``(R,)``: the decimated samples formed exactly,
    from the full-rate samples ``edge_samples`` ``(S,)`` with real weights ``edge_weights``
    ``(S, R)`` (see the module's docstring)."""

    factor: int
    n_points: int
    centre_bin: int
    taps: np.ndarray
    window_bins: np.ndarray
    edge_rows: np.ndarray
    edge_samples: np.ndarray
    edge_weights: np.ndarray

    def mixed(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(..., N)`` times ``exp(-2 pi i c n / N)``: the band's centre to 0 Hz."""
        n = np.arange(self.n_points)
        return x * np.exp(-2j * np.pi * self.centre_bin * n / self.n_points)

    def decimate(self, x: np.ndarray) -> np.ndarray:
        """The decimated samples ``(..., N / D)`` of FIDs ``x`` ``(..., N)``, exactly: the
        mixed spectrum times the circular filter's response, its ``D`` aliases summed, back
        to the time domain, times ``(-1)^n`` (whose FFT holds ``x``'s window bins at
        :attr:`window_bins`)."""
        n, d = self.n_points, self.factor
        spectrum = np.fft.fft(self.mixed(x), axis=-1) * _circular_response(self.taps, n)
        aliased = spectrum.reshape(*spectrum.shape[:-1], d, n // d).sum(-2)
        y = np.fft.ifft(aliased, axis=-1)
        return y * _alternating(n // d)

    def edge_values(self, z: np.ndarray) -> np.ndarray:
        """The edge rows ``(..., R)`` of the decimation of ``z`` ``(..., S)``, ``z`` given at
        :attr:`edge_samples` already mixed (:meth:`mixed`)."""
        return z @ self.edge_weights


def _circular_response(taps: np.ndarray, n: int) -> np.ndarray:
    """The ``n``-point DFT of the centred taps laid circularly (tap ``j`` at ``j - c mod n``)."""
    c = (taps.size - 1) // 2
    laid = np.zeros(n)
    laid[: c + 1] = taps[c:]
    laid[n - c :] = taps[:c]
    return np.fft.fft(laid)


def _alternating(n: int) -> np.ndarray:
    return np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def _edges(
    taps: np.ndarray, factor: int, n_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge rows, the samples they read and their weights (see :class:`BandDecimation`)."""
    c = (taps.size - 1) // 2
    nd = n_points // factor
    rows = np.array([r for r in range(nd) if r * factor - c < 0 or r * factor + c >= n_points])
    offsets = np.arange(-c, c + 1)
    reads = (rows[:, None] * factor + offsets[None, :]) % n_points  # (R, L)
    samples = np.unique(reads)
    weights = np.zeros((samples.size, rows.size))
    position = np.searchsorted(samples, reads)
    sign = _alternating(nd)[rows]
    for j in range(rows.size):
        np.add.at(weights[:, j], position[j], factor * taps * sign[j])
    return rows, samples, weights


def band_decimation(
    fids: np.ndarray,
    dwell_time_s: float,
    window_bins: np.ndarray,
    margin_bins: int,
    *,
    check_damping_per_s: tuple[float, ...] = (3.0, 30.0),
) -> BandDecimation | None:
    """The largest power-of-2 decimation of ``fids`` ``(M, N)`` (a basis) whose band holds the
    window's signed bins ``window_bins`` ``(K,)`` and ``margin_bins`` more on each side in
    the filter's pass band, with a transition of at least :data:`MIN_TRANSITION_FRACTION` of
    the decimated rate, and whose decimated columns of ``fids`` times ``exp(-alpha t)`` (each
    of ``check_damping_per_s``) match the full ones over the window within
    :data:`MAX_RELATIVE_ERROR` of a column's largest bin; ``None`` where none does."""
    n = fids.shape[-1]
    sampling_hz = 1.0 / dwell_time_s
    lo, hi = int(window_bins.min()), int(window_bins.max())
    centre = (lo + hi + 1) // 2
    pass_hz = (max(hi - centre, centre - lo) + margin_bins + 0.5) * sampling_hz / n
    candidates = []
    factor = 2
    while n % factor == 0 and n // factor >= 2 * (hi - lo + 1):
        stop_hz = sampling_hz / factor - pass_hz
        if stop_hz - pass_hz < MIN_TRANSITION_FRACTION * sampling_hz / factor:
            break
        taps = lowpass_taps(pass_hz, stop_hz, sampling_hz, ATTENUATION_DB, odd=True)
        if taps.size >= n // 2:
            break
        rows, samples, weights = _edges(taps, factor, n)
        nd = n // factor
        bins = (window_bins - centre + nd // 2) % nd
        candidates.append(BandDecimation(factor, n, centre, taps, bins, rows, samples, weights))
        factor *= 2
    for dec in reversed(candidates):
        if _accurate(dec, fids, dwell_time_s, window_bins, check_damping_per_s):
            return dec
    return None


def _accurate(
    dec: BandDecimation,
    fids: np.ndarray,
    dwell_time_s: float,
    window_bins: np.ndarray,
    dampings: tuple[float, ...],
) -> bool:
    """Whether the decimated window columns of ``fids exp(-alpha t)`` match the full ones."""
    n = dec.n_points
    t = np.arange(n) * dwell_time_s
    decimated = dec.decimate(fids)
    mixed = dec.mixed(fids)[..., dec.edge_samples]
    for alpha in dampings:
        shape = np.exp(-alpha * t)
        exact = np.fft.fft(fids * shape, axis=-1)[..., window_bins % n]
        z = decimated * shape[:: dec.factor]
        z[..., dec.edge_rows] = dec.edge_values(mixed * shape[dec.edge_samples])
        approx = np.fft.fft(z, axis=-1)[..., dec.window_bins]
        scale = np.abs(exact).max(-1, keepdims=True)
        scale[scale == 0] = 1.0
        if not (np.abs(approx - exact) / scale).max() <= MAX_RELATIVE_ERROR:
            return False
    return True
