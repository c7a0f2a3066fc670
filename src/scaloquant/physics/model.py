"""The signal model, batched: basis FIDs under group lineshapes, phased, over a ppm window.

For spectrum ``b`` and metabolite ``m`` in group ``g(m)``::

    z_bm(t) = X_m(t) exp((-(alpha_bg + da_bm) + 2 pi i (df_bg + dd_bm)) t - beta_bg t^2)
    S_bm(f) = exp(i (phi0_b + phi1_b (ppm(f) - pivot))) DFT[z_bm](f)

``X_m`` are the basis FIDs (``t = n dwell_time_s``), ``alpha`` the Lorentzian damping (1/s),
``df`` the shift (Hz) and ``beta`` the Gaussian decay (1/s^2) a group shares (FSL-MRS's
metabolite groups; a Voigt lineshape with ``alpha, beta > 0``); ``da``, ``dd`` optional small
per-metabolite deviations (LCModel's, held by soft priors in the fit). The Gaussian FWHM is
``2 sqrt(beta ln 2) / pi`` Hz, the Lorentzian one ``alpha / pi`` Hz. DFT bins follow
:func:`scaloquant.signal.axes.spectrum` (``fftshift(fft(.))``, ppm increasing with the index).

This is the paper's Eq. 1 (one group per metabolite, ``beta = 0``) and the model of
:mod:`scaloquant.fit`; a float64 numpy rendering of the same formula is the test oracle
(``tests/unit/test_physics_model.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import scipy.fft
import torch


def lineshape_rates(
    damping_per_s: torch.Tensor,
    shift_hz: torch.Tensor,
    group_of: torch.Tensor,
    damping_dev_per_s: torch.Tensor | None = None,
    shift_dev_hz: torch.Tensor | None = None,
) -> torch.Tensor:
    """Complex rates ``-(alpha + da) + 2 pi i (df + dd)`` per metabolite, 1/s.

    ``damping_per_s``, ``shift_hz`` ``(B, G)``; ``group_of`` ``(M,)`` long; deviations ``(B, M)``
    or ``None``. Returns ``(B, M)`` complex.
    """
    damping = damping_per_s[:, group_of]
    shift = shift_hz[:, group_of]
    if damping_dev_per_s is not None:
        damping = damping + damping_dev_per_s
    if shift_dev_hz is not None:
        shift = shift + shift_dev_hz
    return torch.complex(-damping, 2 * math.pi * shift)


#: Up to this many contiguous runs of groups the Gaussian factor is applied run by run.
MAX_GAUSS_RUNS = 8


#: Elements that torch's elementwise CPU kernels take at a time: two SIMD vectors (of 512 bits
#: of float32 at most). The elements past a tensor's last whole block are computed one by one
#: by the scalar code (libm's ``exp``, ``sin``, ``atan2``; the complex product with its fused
#: multiply-adds), which rounds otherwise than the vector code (SLEEF): see
#: :func:`in_whole_blocks`.
SIMD_BLOCK = 32


def in_whole_blocks(fn: Callable[..., torch.Tensor], *xs: torch.Tensor) -> torch.Tensor:
    """The elementwise ``fn(*xs)`` of same-shaped tensors, each element the same bits whatever
    else the tensors hold. torch's CPU kernels compute a tensor's elements
    :data:`SIMD_BLOCK` at a time in vectors and the last ``numel % SIMD_BLOCK`` one by one,
    which round otherwise: a ``(B,)`` or ``(B, M, 13)`` argument gave its last spectra another
    ``exp``, ``phi0`` start... than the same spectra in a batch of another size, and the fit's
    result for a spectrum depended on its chunk (docs/history/fit-log.md "The fit's chunk-size
    dependence (session 19, `chunk19`)"). Computed on copies padded with zeros to whole
    blocks where they are not (every element then by the vector code); as is where they are."""
    n = xs[0].numel()
    pad = -n % SIMD_BLOCK
    if pad == 0 or xs[0].device.type != "cpu":
        return fn(*xs)
    flat = [torch.cat([x.reshape(-1), x.new_zeros(pad)]) for x in xs]
    return fn(*flat)[:n].reshape(xs[0].shape)


def _ramp_split(n: int) -> int:
    """The inner length ``Q`` of :func:`_exp_ramp` for ``n`` samples: a divisor of ``n`` near
    ``sqrt(n)`` when one lies within a factor 2 (no padding to cut off), else ``ceil(sqrt(n))``."""
    root = max(1, int(math.ceil(math.sqrt(n))))
    for q in range(root, min(n, 2 * root) + 1):
        if n % q == 0:
            return q
    return root


def _exp(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)``; for a complex ``x`` as ``exp(Re x) (cos Im x + i sin Im x)`` from real
    exponentials and sines, which torch vectorises where its complex ``exp`` is not (the same
    to rounding, 3e-16 relative in float64; 30 % less time for the ramps' ``(128, 24, 32)``
    complex128 arguments, 1 thread)."""
    if not x.is_complex():
        return in_whole_blocks(torch.exp, x)
    return in_whole_blocks(lambda re, im: torch.polar(torch.exp(re), im), x.real, x.imag)


def _exp_ramp(
    rate: torch.Tensor, time_s: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``exp(rate t)`` for ``rate`` ``(..., R)`` and a uniform ``time_s`` ``(N,)``: ``(..., R, N)``.

    The time index is split as ``n = Q p + q`` (``Q ~ sqrt(N)``), so only ``N/Q + Q``
    exponentials per rate are evaluated and the rest are products: exact to rounding and several
    times faster than ``exp`` of every sample, which otherwise dominates a model evaluation.
    ``dtype``: the complex dtype of the products (default: that of ``rate t``); the
    exponentials are evaluated in the arguments' precision and rounded to it once.
    """
    n = time_s.shape[0]
    inner = _ramp_split(n)
    outer = -(-n // inner)
    dt = time_s[1] - time_s[0] if n > 1 else time_s.new_tensor(0.0)
    q = torch.arange(inner, dtype=time_s.dtype, device=time_s.device) * dt
    p = torch.arange(outer, dtype=time_s.dtype, device=time_s.device) * (inner * dt)
    r = rate[..., None]
    coarse, fine = _exp(r * p), _exp(r * q)
    if dtype is not None:
        coarse, fine = coarse.to(dtype), fine.to(dtype)
    ramp = coarse[..., :, None] * fine[..., None, :]
    ramp = ramp.reshape(*rate.shape, outer * inner)
    return ramp if outer * inner == n else ramp[..., :n]


def _exp_runs(
    rate: torch.Tensor, time_s: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``exp(rate t)`` ``(..., R, N)`` for sample times ``time_s`` ``(N,)`` made of a few
    uniform runs (the edge samples of a decimated model: the FID's first and last samples):
    :func:`_exp_ramp` over each run from its start, times ``exp(rate t_0)``."""
    n = time_s.shape[0]
    if n < 2:
        out = _exp(rate[..., None] * time_s)
        return out if dtype is None else out.to(dtype)
    step = time_s[1:] - time_s[:-1]
    breaks = (torch.nonzero(~torch.isclose(step, step[0]))[:, 0] + 1).tolist()
    runs = list(zip([0, *breaks], [*breaks, n], strict=True))
    # one ramp from 0 over the longest run serves every run (same step), each times
    # exp(rate t_0) of its start, written into place: half the exponentials of a ramp per run
    lo, hi = max(runs, key=lambda run: run[1] - run[0])
    ramp = _exp_ramp(rate, time_s[lo:hi] - time_s[lo], dtype)
    out = ramp.new_empty(*ramp.shape[:-1], n)
    for lo, hi in runs:
        start = _exp(rate * time_s[lo])
        start = start if dtype is None else start.to(dtype)
        torch.mul(ramp[..., : hi - lo], start[..., None], out=out[..., lo:hi])
    return out


def exp_ramp(rate: torch.Tensor, time_s: torch.Tensor) -> torch.Tensor:
    """``exp(rate t)``, ``(..., R)`` rates over a uniform ``time_s`` ``(N,)`` -> ``(..., R, N)``,
    by the split exponentials of the model (few ``exp`` calls, exact to rounding): the one ramp
    for every geometric series of the package (lineshapes, residual water, first-order phase)."""
    return _exp_ramp(rate, time_s)


def times_real(
    z: torch.Tensor, real: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``z * real`` for complex ``z`` ``(..., N)`` and a real factor ``(..., N)`` (or ``(...,
    1)``) broadcast against it, without promoting the factor to complex (half the arithmetic
    and no complex temporary), into ``out`` where given (``z`` itself: in place, also under
    autograd). The real and imaginary parts are multiplied as one flat ``(..., 2N)`` row by the
    interleaved factor: the same products as ``view_as_real(z) * real[..., None]``, whose
    innermost broadcast dimension of 2 TensorIterator does not vectorise (2.5-3x slower:
    ``(32, 21, 2048)`` complex64, 1 thread, 5.5 -> 2.1 ms; the in-vivo model's Gaussian factor
    ``(128, 20, 2048)``, 70 -> 23 ms)."""
    real = real.to(z.real.dtype)
    flat = z.stride(-1) == 1 and (out is None or out is z or out.stride(-1) == 1)
    if not flat:  # a row that is not contiguous: pairs of floats are not one flat row
        if out is z:
            torch.view_as_real(z).mul_(real[..., None])
            return z
        product = torch.view_as_complex(torch.view_as_real(z) * real[..., None])
        return product if out is None else out.copy_(product)
    pairs = real if real.shape[-1] == 1 else real.repeat_interleave(2, dim=-1)
    rows = torch.view_as_real(z).flatten(-2)
    if out is z:
        rows.mul_(pairs)
        return z
    if out is None:
        product = rows * pairs
        return torch.view_as_complex(product.unflatten(-1, (-1, 2)))
    torch.mul(rows, pairs, out=torch.view_as_real(out).flatten(-2))
    return out


def real_weighted_sum(weights: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``weights @ z`` for real ``weights`` ``(..., G, M)`` and complex ``z`` ``(..., M, N)`` ->
    ``(..., G, N)`` complex: one real product over the interleaved real and imaginary parts
    of ``z`` (a quarter of the arithmetic of the complex product with the weights promoted:
    ``(128, 3, 24) x (128, 24, 2048)`` complex64, 1 thread, 26 -> 15 ms)."""
    rows = torch.view_as_real(z).flatten(-2)
    return torch.view_as_complex((weights.to(rows.dtype) @ rows).unflatten(-1, (-1, 2)))


def modulated_fids(
    basis_fids: torch.Tensor,
    time_s: torch.Tensor,
    rates: torch.Tensor,
    gauss_per_s2: torch.Tensor | None = None,
    group_of: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    *,
    uniform: bool = True,
) -> torch.Tensor:
    """``z_bm(t) = X_m(t) exp(rate_bm t - beta_bg(m) t^2)``, ``(B, M, N)``.

    ``basis_fids`` ``(M, N)`` complex; ``time_s`` ``(N,)``; ``rates`` ``(B, M)`` from
    :func:`lineshape_rates`; ``gauss_per_s2`` ``(B, G)`` (with ``group_of`` ``(M,)``) or ``None``
    for a Lorentzian lineshape. The Gaussian factor is evaluated once per group (``(B, G, N)``
    exponentials, not ``(B, M, N)``) and applied in place, slice by slice where the groups are
    few contiguous runs of metabolites (the usual layout), else gathered. ``dtype``: the
    complex dtype of ``z`` (default: that of the plain product of the arguments); with
    ``torch.complex64`` the exponentials are still evaluated in the arguments' precision and
    rounded once, and the basis is rounded to it (the fit's trial steps, see
    :data:`scaloquant.fit.stages.TRIAL_DTYPE`). ``uniform=False``: ``time_s`` is any set of
    sample times (the edge samples of a decimated model), not a uniform grid, and every
    exponential is evaluated (:func:`_exp_ramp` needs the uniform grid).
    """
    if dtype is None:  # the dtype of the plain product
        dtype = torch.promote_types(basis_fids.dtype, rates.dtype)
        dtype = torch.promote_types(dtype, time_s.dtype)
        if gauss_per_s2 is not None:
            dtype = torch.promote_types(dtype, gauss_per_s2.dtype)
    if uniform:
        ramp = _exp_ramp(rates, time_s, dtype)
    else:
        ramp = _exp_runs(rates, time_s, dtype)
    z = ramp.to(dtype).mul_(basis_fids.to(dtype))
    if gauss_per_s2 is None:
        return z
    gauss = in_whole_blocks(torch.exp, -gauss_per_s2[..., None] * time_s**2)  # (B, G, N)
    if group_of is None:
        return times_real(z, gauss, out=z)
    groups, counts = torch.unique_consecutive(group_of, return_counts=True)
    if groups.numel() > MAX_GAUSS_RUNS:
        return times_real(z, gauss[:, group_of], out=z)
    start = 0
    for g, count in zip(groups.tolist(), counts.tolist(), strict=True):
        run = z[:, start : start + count]
        times_real(run, gauss[:, g, None], out=run)
        start += count
    return z


def fft(z: torch.Tensor, *, overwrite: bool = False) -> torch.Tensor:
    """``torch.fft.fft(z, dim=-1)`` for complex ``z`` ``(..., N)``, in ``z``'s dtype; on a CPU
    outside autograd by scipy's pocketfft on ``torch.get_num_threads()`` workers, sharing
    memory with numpy (the model's batches of 1024-2048-point transforms, 1 thread: ``(2688,
    2048)`` complex64 82 against 175 ms with torch's MKL transform, complex128 120 against 242
    ms; ``(3072, 1024)`` complex64 33 against 37 ms). Same transform, other rounding (~1e-7
    relative in single precision). ``overwrite``: ``z`` is not needed again, and scipy's
    transform may write its result into ``z``'s memory (no new array, whose first writes fault
    its pages in: ``(3072, 2048)`` complex64, 1 thread, 57 -> 33 ms)."""
    if z.device.type != "cpu" or (z.requires_grad and torch.is_grad_enabled()):
        return torch.fft.fft(z, dim=-1)
    x = z.detach().resolve_conj().resolve_neg().numpy()
    workers = torch.get_num_threads()
    return torch.from_numpy(scipy.fft.fft(x, axis=-1, workers=workers, overwrite_x=overwrite))


def window_columns(
    z: torch.Tensor, fft_index: torch.Tensor, *, overwrite: bool = False
) -> torch.Tensor:
    """Spectrum bins of the window for time signals ``z`` ``(B, M, N)`` -> ``(B, K, M)``.

    ``fft_index`` ``(K,)`` holds the window's bins in the unshifted order of ``fft`` (equal to
    ``fftshift(fft(z))[..., window]`` without shifting the whole spectrum). A window of
    consecutive bins (one that does not wrap around bin 0) is returned as a view, not gathered.
    ``overwrite``: see :func:`fft`.
    """
    spectrum = fft(z, overwrite=overwrite)
    k = fft_index.numel()
    if k > 1 and bool((fft_index.diff() == 1).all()):
        return spectrum.narrow(-1, int(fft_index[0]), k).transpose(-1, -2)
    return spectrum[..., fft_index].transpose(-1, -2)


def kernel_window_columns(
    z: torch.Tensor,
    fft_index: torch.Tensor,
    offsets: torch.Tensor,
    kernel: torch.Tensor,
    *,
    overwrite: bool = False,
) -> torch.Tensor:
    """Window bins of ``DFT[z]`` convolved with a kernel on whole bins, ``(B, X, N)`` -> ``(B,
    K, X)``: ``sum_j s_bj DFT[z](f_k - j)`` for ``offsets`` ``j`` ``(J,)`` long and ``kernel``
    ``s`` ``(B, J)`` (LCModel's free-form lineshape; each term is the spectrum read ``j`` bins
    off, so a kernel costs one FFT like :func:`window_columns`, which a delta kernel equals).
    The bins wrap around the ``N``-point spectrum as the DFT does. ``overwrite``: see
    :func:`fft`."""
    spectrum = fft(z, overwrite=overwrite)
    n = z.shape[-1]
    out = None
    for j in range(offsets.numel()):
        idx = torch.remainder(fft_index - offsets[j], n)
        term = spectrum[..., idx] * kernel[:, j, None, None].to(spectrum.dtype)
        out = term if out is None else out.add_(term)
    return out.transpose(-1, -2)


def phase_factor(
    phase0_rad: torch.Tensor,
    phase1_rad_per_ppm: torch.Tensor,
    ppm: torch.Tensor,
    pivot_ppm: float,
) -> torch.Tensor:
    """``exp(i (phi0 + phi1 (ppm - pivot)))``: ``(B,)``, ``(B,)``, ``(K,)`` -> ``(B, K)``."""
    angle = phase0_rad[:, None] + phase1_rad_per_ppm[:, None] * (ppm - pivot_ppm)
    return in_whole_blocks(torch.polar, torch.ones_like(angle), angle)


def synthesize(
    basis_fids: torch.Tensor,
    time_s: torch.Tensor,
    amplitudes: torch.Tensor,
    rates: torch.Tensor,
    gauss_per_s2: torch.Tensor | None = None,
    group_of: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noiseless FIDs ``sum_m a_bm z_bm(t)``, ``(B, N)``; arguments as :func:`modulated_fids`,
    ``amplitudes`` ``(B, M)`` real."""
    z = modulated_fids(basis_fids, time_s, rates, gauss_per_s2, group_of)
    return torch.einsum("bm,bmn->bn", amplitudes.to(z.dtype), z)
