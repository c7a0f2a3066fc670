"""Does fitting the real part of a zero-filled spectrum, its points counted as independent (as
LCModel does), give another amplitude SD than fitting the complex spectrum? A controlled check
for docs/fit.md "Our %SD beside LCModel's" (docs/history/fit-log.md, session 33, sdcause33).

Three singlets (5 Hz Lorentzians at -150, 0 and 120 Hz; N = 2048 complex samples at 2 kHz) with
their width and shift derivative columns (the linearised nonlinear parameters) are fitted by
linear least squares over -300..300 Hz to many noise draws, two ways: the complex N-point
spectrum (real and imaginary parts stacked), and the real part of the 2N-point zero-filled
spectrum (LCModel's rows). For each, the amplitudes' SD over the draws against the mean SD the
fit reports from its residual (``|r|^2 / (rows - columns)`` times ``(X^T X)^-1``, each point
taken as independent). Numpy only; seeded.

Usage::

    python benchmarks/diag_zero_filled_sd.py [--draws 4000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

N_POINTS = 2048
DWELL_S = 1 / 2000.0
LINES_HZ = (-150.0, 0.0, 120.0)
WIDTH_HZ = 5.0
AMPLITUDES = (1.0, 2.0, 1.5)
BAND_HZ = 300.0


def design() -> np.ndarray:
    """The FIDs' columns ``(N, 3 L)``: each line's signal, its width and its shift derivative."""
    t = np.arange(N_POINTS) * DWELL_S
    columns = []
    for f0 in LINES_HZ:
        s = np.exp(2j * np.pi * f0 * t - np.pi * WIDTH_HZ * t)
        columns += [s, -np.pi * t * s, 2j * np.pi * t * s]
    return np.array(columns).T


def rows(fid: np.ndarray, zero_filled: bool) -> np.ndarray:
    """The fitted rows of FIDs ``(N, ...)``: the real part of the 2N-point spectrum over the
    band, or the N-point spectrum's real and imaginary parts stacked."""
    n = 2 * N_POINTS if zero_filled else N_POINTS
    spectrum = np.fft.fftshift(np.fft.fft(fid, n=n, axis=0), axes=0)
    freq = np.fft.fftshift(np.fft.fftfreq(n, DWELL_S))
    band = spectrum[np.abs(freq) < BAND_HZ]
    return band.real if zero_filled else np.concatenate([band.real, band.imag])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    fids = design()
    truth = np.zeros(fids.shape[1])
    truth[::3] = AMPLITUDES
    signal = fids @ truth
    noise = (
        rng.standard_normal((N_POINTS, args.draws))
        + 1j * rng.standard_normal((N_POINTS, args.draws))
    ) / np.sqrt(2)
    print(f"amplitudes {AMPLITUDES}, complex noise SD 1, {args.draws} draws")
    for zero_filled in (False, True):
        x = rows(fids, zero_filled)
        y = rows(signal[:, None] + noise, zero_filled)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        residual_var = ((y - x @ coef) ** 2).sum(0) / (x.shape[0] - x.shape[1])
        reported = np.sqrt(np.outer(residual_var, np.diag(np.linalg.inv(x.T @ x))))
        label = "real part, zero-filled 2N" if zero_filled else "complex, N"
        amp = slice(0, None, 3)
        print(
            f"{label:26s} rows {x.shape[0]:5d}  SD over draws "
            + " ".join(f"{v:.4f}" for v in coef[amp].std(1))
            + "  mean reported SD "
            + " ".join(f"{v:.4f}" for v in reported[:, amp].mean(0))
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
