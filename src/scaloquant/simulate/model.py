"""The seed paper's Eq. (1) for the simulator, evaluated by the batched physics model.

    S[n] = sum_m A_m X_m[n] exp((-alpha_m + i 2 pi df_m) n dT) exp(-(g_m n dT)^2)

``X_m`` are the basis FIDs, ``dT`` the dwell time, ``A_m`` the amplitudes, ``alpha_m`` the
damping (1/s), ``df_m`` the frequency shift (Hz) and ``g_m`` the Gaussian damping (1/s) of the
Gaussian and Voigt lineshapes (see :mod:`scaloquant.signal.lineshapes`). This is
:func:`scaloquant.physics.model.synthesize` with one group per metabolite and the Gaussian decay
``beta_m = g_m^2``: the simulator and the fit share one model (its split-exponential ramp makes
few exponentials), and a float64 numpy rendering of the formula is the tests' oracle
(``tests/oracle.py``). The numpy entry point runs it in float64 torch on the CPU. Signals are
evaluated a few at a time, so that the ``(signals, M, N)`` working array stays small.
"""

from __future__ import annotations

import numpy as np
import torch

from ..physics import model as physics
from ..signal.axes import time_axis_s
from .parameters import SimulationParameters

#: Bytes of the (signals, M, N) working array per pass on a CPU: near the cache size (8 signals
#: of 21 x 2048 complex128, 16 of complex64; measured fastest of 4 to 64 on the embedded basis).
_CPU_PASS_BYTES = 6_000_000
#: Bytes of that array per pass on an accelerator (1 GiB): the whole batch in one pass unless
#: it would exceed it.
_ACCELERATOR_PASS_BYTES = 2**30


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
    (B, N) complex128 FIDs (float64 torch on the CPU, returned as numpy).
    """
    x = np.asarray(basis_fids, dtype=np.complex128)
    _check_shapes(x.shape, params)
    return synthesize_torch(torch.from_numpy(x.copy()), params, dwell_time_s).numpy()


def synthesize_torch(
    basis_fids: torch.Tensor,
    params: SimulationParameters,
    dwell_time_s: float,
    *,
    signals_per_pass: int | None = None,
) -> torch.Tensor:
    """Torch version of :func:`synthesize`, on the device and precision of ``basis_fids``.

    Parameters
    ----------
    basis_fids : torch.Tensor (M, N), complex64 or complex128, on any device.
    params : as for :func:`synthesize` (numpy arrays or tensors); moved to that device and the
        matching real precision (float32 for complex64).
    dwell_time_s : sampling interval in seconds.
    signals_per_pass : signals evaluated together; default as many as keep the ``(signals, M,
        N)`` working array within 6 MB on a CPU (cache-sized) and 1 GiB on an accelerator.

    Returns
    -------
    torch.Tensor (B, N) of the dtype and device of ``basis_fids``.
    """
    if not torch.is_complex(basis_fids):
        raise TypeError(f"basis_fids must be a complex tensor, got {basis_fids.dtype}")
    _check_shapes(tuple(basis_fids.shape), params)
    device, cdtype = basis_fids.device, basis_fids.dtype
    rdtype = torch.float32 if cdtype == torch.complex64 else torch.float64

    def tensor(value) -> torch.Tensor:
        return torch.as_tensor(value, dtype=rdtype, device=device)

    n_met, n_points = basis_fids.shape
    # built in float64 and then rounded once, like numpy's
    time_s = tensor(time_axis_s(n_points, float(dwell_time_s)))
    one_group_each = torch.arange(n_met, device=device)
    damping, shift = tensor(params.damping_per_s), tensor(params.shift_hz)
    amplitudes = tensor(params.amplitudes)
    gauss = params.gaussian_damping_per_s
    gauss_per_s2 = None if gauss is None else torch.square(tensor(gauss))
    n_signals = amplitudes.shape[0]
    if signals_per_pass is None:
        budget = _CPU_PASS_BYTES if device.type == "cpu" else _ACCELERATOR_PASS_BYTES
        item_bytes = basis_fids.element_size() * max(n_met * n_points, 1)
        signals_per_pass = max(1, budget // item_bytes)
    out = torch.empty(n_signals, n_points, dtype=cdtype, device=device)
    for start in range(0, n_signals, signals_per_pass):
        rows = slice(start, start + signals_per_pass)
        rates = physics.lineshape_rates(damping[rows], shift[rows], one_group_each)
        out[rows] = physics.synthesize(
            basis_fids,
            time_s,
            amplitudes[rows],
            rates,
            None if gauss_per_s2 is None else gauss_per_s2[rows],
        )
    return out
