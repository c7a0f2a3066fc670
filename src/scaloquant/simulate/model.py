"""The signal model of the seed paper's Eq. (1), in numpy and in torch.

    S[n] = sum_m A_m X_m[n] exp((-alpha_m + i 2 pi df_m) n dT)

``X_m`` are the basis FIDs, ``dT`` the dwell time, ``A_m`` the amplitudes, ``alpha_m`` the
damping (1/s) and ``df_m`` the frequency shift (Hz). The Gaussian and Voigt lineshapes multiply
each term by ``exp(-(g_m n dT)^2)`` as well (see :mod:`scaloquant.signal.lineshapes`).

How it is computed fast and in little memory
--------------------------------------------
The direct evaluation needs ``B * M * N`` complex exponentials and, vectorised, a ``(B, M, N)``
array. Instead the time index is split as ``n = Q p + q`` (``0 <= q < Q``), so that
``exp(c n dT) = exp(c Q p dT) * exp(c q dT)``: only ``B * M * (N/Q + Q)`` exponentials are
evaluated, and the ``(B, N)`` signal is accumulated one metabolite at a time from products of a
``(P, 1)`` and a ``(1, Q)`` factor. Signals are processed a few at a time so that the working
arrays stay in the CPU cache. The Gaussian factor does not split this way and is evaluated
directly, which makes the Gaussian and Voigt lineshapes slower.
"""

from __future__ import annotations

import math

import numpy as np

from ..signal import lineshapes
from ..signal.axes import time_axis_s
from .parameters import SimulationParameters

#: Length ``Q`` of the inner time block; about sqrt(N) for N = 2048 minimises exponentials.
_INNER_POINTS = 64
#: Signals per pass on a CPU: keeps the (signals, N) working arrays (~2 MB) in cache.
_CPU_SIGNALS_PER_PASS = 64


def _grid(n_points: int) -> tuple[int, int]:
    """(P, Q) with ``P * Q >= n_points``: outer and inner lengths of the split time index."""
    inner = min(_INNER_POINTS, n_points)
    return math.ceil(n_points / inner), inner


def split_exponentials(rate: np.ndarray, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Factors of ``exp(rate * k)``, ``k = 0 .. n_points - 1``, split as ``k = Q p + q``.

    Returns ``outer`` (..., P) = ``exp(rate * Q p)`` and ``inner`` (..., Q) = ``exp(rate * q)``;
    ``outer[..., p, None] * inner[..., None, :]`` reshaped to (..., P * Q) is the ramp, padded
    past ``n_points``. ``rate`` is complex, per index step, of any shape (...).
    """
    n_outer, n_inner = _grid(n_points)
    r = np.asarray(rate)[..., None]
    return np.exp(r * (np.arange(n_outer) * n_inner)), np.exp(r * np.arange(n_inner))


def _check_shapes(basis_shape: tuple[int, ...], params: SimulationParameters) -> None:
    if len(basis_shape) != 2:
        raise ValueError(f"basis FIDs must be (M, N), got shape {basis_shape}")
    if params.n_metabolites != basis_shape[0]:
        raise ValueError(
            f"parameters are for {params.n_metabolites} metabolites, basis has {basis_shape[0]}"
        )


def synthesize(
    basis_fids: np.ndarray, params: SimulationParameters, dwell_time_s: float
) -> np.ndarray:
    """Evaluate Eq. 1 (with the Gaussian factor where ``params`` has one) for a batch.

    Parameters
    ----------
    basis_fids : (M, N) complex basis FIDs ``X_m``, internal convention.
    params : amplitudes, damping, shift (and Gaussian damping), (B, M) each.
    dwell_time_s : sampling interval ``dT`` in seconds.

    Returns
    -------
    (B, N) complex128 FIDs.
    """
    x = np.asarray(basis_fids, dtype=np.complex128)
    _check_shapes(x.shape, params)
    n_met, n_points = x.shape
    n_outer, n_inner = _grid(n_points)
    x_split = np.zeros((n_met, n_outer * n_inner), dtype=np.complex128)
    x_split[:, :n_points] = x
    x_split = x_split.reshape(n_met, n_outer, n_inner)
    t_grid = time_axis_s(n_outer * n_inner, dwell_time_s).reshape(n_outer, n_inner)

    rate = -np.asarray(params.damping_per_s, dtype=np.float64) + 2j * np.pi * np.asarray(
        params.shift_hz, dtype=np.float64
    )
    step = rate * float(dwell_time_s)  # per sample
    amplitudes = np.asarray(params.amplitudes, dtype=np.float64)
    gaussian = params.gaussian_damping_per_s
    n_signals = amplitudes.shape[0]
    out = np.empty((n_signals, n_outer, n_inner), dtype=np.complex128)
    for start in range(0, n_signals, _CPU_SIGNALS_PER_PASS):
        rows = slice(start, start + _CPU_SIGNALS_PER_PASS)
        outer, inner = split_exponentials(step[rows], n_points)  # (b, M, P), (b, M, Q)
        outer *= amplitudes[rows, :, None]
        acc = np.zeros((inner.shape[0], n_outer, n_inner), dtype=np.complex128)
        term = np.empty_like(acc)
        for m in range(n_met):
            np.multiply(outer[:, m, :, None], inner[:, m, None, :], out=term)
            term *= x_split[m]
            if gaussian is not None:
                term *= lineshapes.gaussian_decay(gaussian[rows, m, None, None], t_grid)
            acc += term
        out[rows] = acc
    return out.reshape(n_signals, -1)[:, :n_points]


def synthesize_torch(
    basis_fids,
    params: SimulationParameters,
    dwell_time_s: float,
    *,
    signals_per_pass: int | None = None,
):
    """Torch version of :func:`synthesize`, on the device and precision of ``basis_fids``.

    Parameters
    ----------
    basis_fids : torch.Tensor (M, N), complex64 or complex128, on any device.
    params : as for :func:`synthesize` (numpy arrays or tensors); moved to that device and the
        matching real precision (float32 for complex64).
    dwell_time_s : sampling interval in seconds.
    signals_per_pass : signals evaluated together; default 64 on CPU (cache-sized), all of the
        batch on an accelerator.

    Returns
    -------
    torch.Tensor (B, N) of the dtype and device of ``basis_fids``.
    """
    import torch

    if not torch.is_complex(basis_fids):
        raise TypeError(f"basis_fids must be a complex tensor, got {basis_fids.dtype}")
    _check_shapes(tuple(basis_fids.shape), params)
    device, cdtype = basis_fids.device, basis_fids.dtype
    rdtype = torch.float32 if cdtype == torch.complex64 else torch.float64

    def tensor(value):
        return torch.as_tensor(value, dtype=rdtype, device=device)

    n_met, n_points = basis_fids.shape
    n_outer, n_inner = _grid(n_points)
    x_split = torch.zeros(n_met, n_outer * n_inner, dtype=cdtype, device=device)
    x_split[:, :n_points] = basis_fids
    x_split = x_split.reshape(n_met, n_outer, n_inner)
    # the time axes are built in float64 and then rounded once, like numpy's
    t_inner = tensor(np.arange(n_inner) * float(dwell_time_s))
    t_outer = tensor(np.arange(n_outer) * (n_inner * float(dwell_time_s)))
    t_grid = t_outer[:, None] + t_inner[None, :]

    rate = torch.complex(-tensor(params.damping_per_s), 2 * math.pi * tensor(params.shift_hz))
    amplitudes = tensor(params.amplitudes)
    gaussian = (
        None if params.gaussian_damping_per_s is None else tensor(params.gaussian_damping_per_s)
    )
    n_signals = amplitudes.shape[0]
    if signals_per_pass is None:
        signals_per_pass = _CPU_SIGNALS_PER_PASS if device.type == "cpu" else max(n_signals, 1)
    out = torch.empty(n_signals, n_outer, n_inner, dtype=cdtype, device=device)
    for start in range(0, n_signals, signals_per_pass):
        rows = slice(start, start + signals_per_pass)
        r = rate[rows, :, None]
        inner = torch.exp(r * t_inner)
        outer = torch.exp(r * t_outer) * amplitudes[rows, :, None]
        acc = torch.zeros(inner.shape[0], n_outer, n_inner, dtype=cdtype, device=device)
        for m in range(n_met):
            term = outer[:, m, :, None] * inner[:, m, None, :] * x_split[m]
            if gaussian is not None:
                term = term * torch.exp(-torch.square(gaussian[rows, m, None, None] * t_grid))
            acc += term
        out[rows] = acc
    return out.reshape(n_signals, -1)[:, :n_points]
