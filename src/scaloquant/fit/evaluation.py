"""The evaluation of the batched fit's objective at ``theta``: the model columns ``S`` and
their derivatives, the inner products in the baseline-eliminated metric, the non-negative
amplitudes, and the residual and noise variance that follow (:func:`evaluate` ->
:class:`Evaluation`).

Baseline elimination. For fixed ``a`` the penalised baseline is solved in closed form, which
leaves the residual metric ``W = I - B (B^T B + lambda P)^-1 B^T``: inner products
``<u, v>_W = Re(u^H v) - Re((C u)^H (C v))`` with ``C = R^-1 B^T`` (``R R^T = B^T B + lambda
P``, the real design applied to the real and imaginary parts alike). Everything below is in
Gram form in that metric, ``G = <S, S>_W`` ``(M, M)`` and ``h = <S, y>_W`` ``(M,)``, so no
``(K, K)`` matrix is formed.

Amplitudes. ``min_{a >= 0} a^T G a - 2 h^T a`` by block principal pivoting (Kim & Park, SIAM J
Sci Comput 33:3261, 2011): batched exchanges of the passive set with a solve of the passive
block each step, exact on the final active set, finite termination guaranteed by its backup
rule, warm-started from the previous evaluation's set.

Derivatives. ``dS/dtheta`` needs two more FFTs (of ``t z`` and, with a Gaussian, ``t^2 z``; in
:data:`DERIVATIVE_DTYPE`), taken only when a step is accepted (:func:`with_derivatives`), and
kept in compact form (:class:`Jacobian`: a shift's column is ``i`` times a damping's, so about
half the columns are base columns and the normal equations follow from their products).
The measured choices (dtypes, the column layout) are documented at their constants and in
``docs/history/fit-log.md`` ("Cheaper model evaluations", "Where the fit's time goes",
"Cheaper evaluations (session 14)").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..physics.model import (
    fft,
    kernel_window_columns,
    lineshape_rates,
    modulated_fids,
    phase_factor,
    real_weighted_sum,
    times_real,
    window_columns,
)
from .problem import Problem


class Workspace:
    """Arrays that one evaluation after another reuses (an ``evaluate`` at the network's
    parameters per batch of a physics-head model at ``K = 0``, and its CRLB), taken by name:
    the same memory each time the shape and dtype are the same, so that a batch's largest
    arrays are not allocated and touched for the first time again (page by page) in every
    batch. Whoever passes one guarantees that nothing taken from it in an earlier call is
    still read: the :class:`Evaluation` whose columns and derivative columns live here is
    dropped before the next call with the same workspace (one workspace per thread). The
    fit's own iterations keep earlier evaluations and pass none."""

    def __init__(self) -> None:
        self._arrays: dict[str, torch.Tensor] = {}

    def take(
        self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """The uninitialised array ``name`` of ``shape`` and ``dtype`` (C order): the one taken
        before under that name where they match, else a new one kept in its place."""
        shape = tuple(shape)
        array = self._arrays.get(name)
        if (
            array is None
            or tuple(array.shape) != shape
            or array.dtype != dtype
            or array.device != torch.device(device)
        ):
            array = torch.empty(shape, dtype=dtype, device=device)
            self._arrays[name] = array
        return array


def workspace_array(
    workspace: Workspace | None,
    name: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """An uninitialised C-order array: ``workspace``'s ``name`` where one is given."""
    if workspace is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return workspace.take(name, shape, dtype, device)


def stack(u: torch.Tensor, workspace: Workspace | None = None, name: str = "stack") -> torch.Tensor:
    """Complex ``(B, K, ...)`` -> real ``(B, 2K, ...)``: real parts over imaginary parts.

    Stored column by column (the ``2K`` axis innermost in memory, as the transposed window
    columns of :func:`scaloquant.physics.model.window_columns` are): the copy reads and writes
    along the columns, not across them (the column-major result of the row-major stacking was
    a strided transposition), and :func:`whiten` is one product for all columns.
    ``workspace``: written into its array ``name`` (:class:`Workspace`)."""
    parts = [u.real.movedim(1, -1), u.imag.movedim(1, -1)]
    if workspace is None:
        return torch.cat(parts, dim=-1).movedim(-1, 1)
    shape = (*parts[0].shape[:-1], 2 * parts[0].shape[-1])
    out = workspace.take(name, shape, parts[0].dtype, u.device)
    return torch.cat(parts, dim=-1, out=out).movedim(-1, 1)


def whiten(
    problem: Problem, u: torch.Tensor, stiffness: torch.Tensor | None = None
) -> torch.Tensor:
    """``C u`` for real-stacked ``u`` ``(B, 2K, p)`` -> ``(B, 2 nb, p)``: the ``(nb, K)`` matrix
    ``C`` applied to the real and the imaginary half alike (the block-diagonal
    ``baseline_whiten2`` without its zero blocks). ``stiffness`` ``(B,)`` long: each spectrum's
    ``C`` is ``problem.stiffnesses.whiten[stiffness]`` (None: ``problem.baseline_whiten``)."""
    if stiffness is not None:
        return _whiten_each(problem, u, stiffness)
    c = problem.baseline_whiten.to(u.dtype)
    b, k2, p = u.shape
    if u.mT.is_contiguous():  # stored column by column (stack, _derivative_columns)
        # a (p 2, K) x (K, nb) product per spectrum (not one (B p 2, K) x (K, nb) product,
        # whose rounding depends on B: times_matrix); the result stored column by column too
        rows = u.mT.reshape(b, 2 * p, k2 // 2)
        return times_fixed(rows, c.mT).reshape(b, p, -1).mT
    return (c @ u.reshape(b, 2, k2 // 2, p)).reshape(b, 2 * c.shape[0], p)


def stiffness_rows(stiffness: torch.Tensor) -> list[tuple[int, slice | torch.Tensor]]:
    """``[(c, the spectra at stiffness c), ...]`` for the stiffnesses in use in ``stiffness``
    ``(B,)`` (:class:`~scaloquant.fit.problem.BaselineStiffnesses`): slices where
    ``stiffness`` is sorted (``batched.solve`` sorts its spectra so, and the LM's row subsets
    keep the order), so that each stiffness' rows are views, not gathered copies; else
    indices."""
    if bool((stiffness[1:] >= stiffness[:-1]).all()):
        values, counts = torch.unique_consecutive(stiffness, return_counts=True)
        stops = torch.cumsum(counts, 0).tolist()
        starts = [0, *stops[:-1]]
        return [
            (int(c), slice(a, b)) for c, a, b in zip(values.tolist(), starts, stops, strict=True)
        ]
    return [(int(c), torch.nonzero(stiffness == c)[:, 0]) for c in torch.unique(stiffness)]


def _rows_count(rows: slice | torch.Tensor) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else rows.numel()


def _whiten_each(problem: Problem, u: torch.Tensor, stiffness: torch.Tensor) -> torch.Tensor:
    """:func:`whiten` with a stiffness per spectrum: the spectra of each stiffness in use
    whitened together by its ``C`` as :func:`whiten` does (the same product per spectrum, so
    the same bits as a solve at that stiffness alone), written into one result laid out as
    :func:`whiten`'s. A gathered ``(B, nb, K)`` copy of the matrices would cost more than the
    products (``nb`` ~ 25, ``K`` ~ 400)."""
    whitens = problem.stiffnesses.whiten.to(u.dtype)
    b, k2, p = u.shape
    nb = whitens.shape[1]
    if u.mT.is_contiguous():
        out = u.new_empty(b, p, 2 * nb)  # whiten's layout: (B, 2 nb, p) column by column
        flat = u.mT
        for c, rows in stiffness_rows(stiffness):
            n = _rows_count(rows)
            part = flat[rows].reshape(n, 2 * p, k2 // 2)
            out[rows] = times_fixed(part, whitens[c].mT).reshape(n, p, -1)
        return out.mT
    out = u.new_empty(b, 2 * nb, p)
    for c, rows in stiffness_rows(stiffness):
        n = _rows_count(rows)
        out[rows] = (whitens[c] @ u[rows].reshape(n, 2, k2 // 2, p)).reshape(n, 2 * nb, p)
    return out


def whitened_inner(
    u: torch.Tensor, cu: torch.Tensor, v: torch.Tensor, cv: torch.Tensor
) -> torch.Tensor:
    """``<u, v>_W = u^T v - (C u)^T (C v)`` from vectors and their :func:`whiten` images."""
    return batched_matmul(u.mT, v) - batched_matmul(cu.mT, cv)


def w_inner(problem: Problem, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``<u, v>_W`` for real-stacked ``u`` ``(B, 2K, p)``, ``v`` ``(B, 2K, q)`` -> ``(B, p, q)``.

    The baseline part ``(C u)^T (C v)`` applies ``C`` to the real and imaginary halves alike.
    """
    out = u.mT @ v
    if problem.baseline_whiten.shape[0]:
        cu = whiten(problem, u)
        cv = cu if v is u else whiten(problem, v)
        out = out - cu.mT @ cv
    return out


def batched_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for batches ``(B, r, k)`` and ``(B, k, c)``, each spectrum's product the same
    bits whatever else its batch holds. torch (MKL) runs a batch of one matrix-vector product
    (``c = 1``) through another kernel than a batch of several, which sums in another order: a
    spectrum left alone in a batch (the last one running in a Levenberg–Marquardt run, the last
    unsolved system of :func:`nnls_gram`) got other amplitudes in the last bits than in company,
    and the stopping rule took that to other fits (docs/history/fit-log.md "The fit's
    chunk-size dependence (session 19, `chunk19`)"). A batch of one is run as a batch of two,
    both views of it (a copy, by its other strides, can take yet another kernel)."""
    if a.shape[0] != 1:
        return a @ b
    return (a.expand(2, -1, -1) @ b.expand(2, -1, -1))[:1]


def times_fixed(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w`` for a batch ``x`` ``(B, r, k)`` and a fixed matrix ``w`` ``(k, n)``, each
    spectrum's product the same bits whatever the batch: one ``(r, k) x (k, n)`` product per
    spectrum (:func:`batched_matmul`, ``w`` not copied), not ``x`` folded into one ``(B r, k)
    x (k, n)`` product, whose kernel (and so rounding) MKL picks by ``B r``."""
    return batched_matmul(x, w.expand(x.shape[0], *w.shape))


def times_matrix(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w`` for ``x`` ``(B, k)`` and a fixed matrix ``w`` ``(k, n)``, each row the same
    bits whatever the batch: as products and sums over ``k`` in order, not as one ``(B, k) x
    (k, n)`` product, whose rounding depends on ``B`` and the row's place in it (MKL's kernels
    by size; :func:`batched_matmul`)."""
    return (x[:, :, None] * w).sum(1)


def spd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^-1 b`` for symmetric positive definite ``a`` ``(B, n, n)`` and ``b`` ``(B, n, r)``:
    by Cholesky, and by LU (:func:`torch.linalg.solve`) for the matrices whose factorisation
    fails (not numerically positive definite). The fit's systems (a passive set's Gram block,
    the Levenberg–Marquardt matrix) are SPD; batched Cholesky takes 25-35 % less time than
    LU on their ``(128, 21-59, 21-59)`` shapes (1 thread), the same solution to rounding."""
    factor, info = torch.linalg.cholesky_ex(a)
    failed = info != 0
    if not bool(failed.any()):
        return torch.cholesky_solve(b, factor)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    x = torch.cholesky_solve(b, torch.where(failed[:, None, None], eye, factor))
    rows = torch.nonzero(failed)[:, 0]
    x[rows] = torch.linalg.solve(a[rows], b[rows])
    return x


def nnls_gram(
    gram: torch.Tensor, h: torch.Tensor, passive: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin_{x >= 0} x^T G x - 2 h^T x`` for a batch: ``G`` ``(B, M, M)`` SPD, ``h``
    ``(B, M)``; block principal pivoting (module docstring). ``passive`` ``(B, M)`` bool is a
    starting guess of the non-zero set. Returns ``(x (B, M), passive set (B, M))``."""
    b, m = h.shape
    eye = torch.eye(m, dtype=gram.dtype, device=gram.device)
    ridge = 1e-13 * torch.diagonal(gram, dim1=-2, dim2=-1).amax(-1).clamp_min(1e-300)
    gram = gram + ridge[:, None, None] * eye
    f = (h > 0) if passive is None else passive.clone()
    best = torch.full((b,), m + 1, device=h.device)
    backup = torch.full((b,), 3, device=h.device)
    tol = 1e-12 * h.abs().amax(-1, keepdim=True).clamp_min(1e-300)
    x = torch.zeros_like(h)
    # only the systems not yet solved on their final set are formed and solved again (each
    # system's solution is its own, whatever the batch): warm-started, most are done after
    # the first exchange (128 ``invivo`` spectra: 5.1 solves per system in all -> 1.7)
    rows = None  # all of them
    g, hh, ff, tt = gram, h, f, tol
    for _ in range(5 * m + 10):
        both = ff[:, :, None] & ff[:, None, :]
        masked = torch.where(both, g, torch.zeros_like(g)) + torch.diag_embed((~ff).to(g.dtype))
        xx = spd_solve(masked, torch.where(ff, hh, torch.zeros_like(hh))[..., None])[..., 0]
        dual = batched_matmul(g, xx[..., None])[..., 0] - hh
        xs = xx.abs().amax(-1, keepdim=True).clamp_min(1e-300)
        infeasible = (ff & (xx < -1e-12 * xs)) | (~ff & (dual < -tt))
        count = infeasible.sum(-1)
        if rows is None:
            x = xx
        else:
            x[rows] = xx
        done = count == 0
        if bool(done.all()):
            break
        bb, bk = (best, backup) if rows is None else (best[rows], backup[rows])
        better = count < bb
        bb = torch.where(better, count, bb)
        bk = torch.where(better, torch.full_like(bk, 3), bk - 1)
        full = better | (bk > 0)
        last = (m - 1) - torch.argmax(infeasible.flip(-1).to(torch.int8), dim=-1)
        single = torch.nn.functional.one_hot(last, m).bool() & infeasible
        ff = ff ^ torch.where(full[:, None], infeasible, single)
        keep = ~done
        if rows is None:
            best, backup, f = bb, bk, ff.clone()
            rows = torch.nonzero(keep)[:, 0]
        else:
            best[rows], backup[rows], f[rows] = bb, bk, ff
            rows = rows[keep]
        g, hh, tt, ff = gram[rows], h[rows], tol[rows], f[rows]
    x = torch.where(f, x, torch.zeros_like(x)).clamp_min(0.0)
    return x, f & (x > 0)


@dataclass
class Evaluation:
    """The model at ``theta`` for a batch (shapes for ``B`` spectra)."""

    cost: torch.Tensor  # (B,) Phi
    amplitudes: torch.Tensor  # (B, M)
    passive: torch.Tensor  # (B, M)
    columns: torch.Tensor  # (B, 2K, M) real-stacked
    derivs: torch.Tensor  # (B, 2K, P_free) real-stacked D = (dS/dtheta) a
    residual: torch.Tensor  # (B, 2K, 1) real-stacked y - S a (before the baseline)
    gram: torch.Tensor  # (B, M, M)
    w_columns: torch.Tensor  # (B, 2 nb, M) C S
    w_derivs: torch.Tensor  # (B, 2 nb, P_free) C D
    w_residual: torch.Tensor  # (B, 2 nb, 1) C r
    pending: tuple | None = None  # (z, edge, phase, complex columns, kernel) until derivatives
    #: the derivative columns in compact form (:class:`Jacobian`), from :func:`with_derivatives`
    jacobian: Jacobian | None = None
    #: (B,) long: each spectrum's baseline stiffness (``Problem.stiffnesses``); None: the
    #: problem's ``baseline_ed_per_ppm`` for all
    stiffness: torch.Tensor | None = None


@dataclass
class Jacobian:
    """The derivative columns ``D`` ``(B, 2K, P_free)`` in compact form: each column is a
    multiple of one of ``q`` base columns ``U_j`` or of its image ``J U_j`` under the
    multiplication by ``i`` (``J (re, im) = (-im, re)``): ``D_p = coef_p J^s U_j`` with
    ``index_p = j + s q``. ``dS/d df = 2 pi i T1`` is ``J`` of ``-dS/d alpha``'s ``T1``, and
    ``dS/d phi0 = i S a``: a grouped model's 59 columns are 32 base columns. As ``J`` commutes
    with the baseline metric (``C`` acts on both halves alike) and is orthogonal, every inner
    product of the columns follows from the base columns' real and imaginary parts
    (:func:`pair_products`): ``J^T J`` and ``E`` from about half the products of ``D``'s own.

    ``base`` ``(B, q, 2, K)`` real (each base column's real then imaginary part, ``K``
    innermost), ``w_base`` ``(B, q, 2, nb)`` its whitened image ``C U``; ``index``, ``coef``
    ``(P_free,)``."""

    base: torch.Tensor
    w_base: torch.Tensor
    index: torch.Tensor
    coef: torch.Tensor

    def take(self, idx: torch.Tensor) -> Jacobian:
        return Jacobian(self.base[idx], self.w_base[idx], self.index, self.coef)

    def full(self, base: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``D`` (or ``C D`` for ``w_base``) real-stacked ``(B, 2 rows, P_free)`` from ``base``
        ``(B, q, 2, rows)`` (stored column by column, as :func:`stack`'s); ``out``: a C-order
        ``(B, 2 P_free, rows)`` array of ``base``'s dtype to write it into."""
        b, q, _, rows = base.shape
        # one gather of the parts, scaled in place: column p's real half is part 2j (2j + 1,
        # negated, for J U_j = (-Im U_j, Re U_j)) and its imaginary half part 2j + 1 (2j);
        # x (-c) is -(x c) bit for bit. No J U, concatenation or product copies of D: 4-5
        # new (B, P_free, 2, rows) arrays were most of K = 0's new memory per batch
        imaginary = self.index >= q
        j = torch.where(imaginary, self.index - q, self.index)
        parts = torch.stack([2 * j + imaginary, 2 * j + ~imaginary], dim=-1).reshape(-1)
        coef = self.coef.to(base.dtype)
        factor = torch.stack([torch.where(imaginary, -coef, coef), coef], dim=-1).reshape(-1)
        parts_of = base.reshape(b, 2 * q, rows)
        if out is None:
            out = parts_of.index_select(1, parts)  # (B, 2 P_free, rows)
        else:
            torch.index_select(parts_of, 1, parts, out=out)
        out.mul_(factor[:, None])
        return out.view(b, self.index.numel(), 2 * rows).mT


def pair_products(x: torch.Tensor) -> torch.Tensor:
    """``[<A_m, U_j>, <A_m, J U_j>]`` ``(B, a, 2q)`` from the products ``x`` ``(B, 2a, 2q)``
    of the real and imaginary parts of complex columns ``A`` ``(a)`` and ``U`` ``(q)``,
    interleaved (row ``2m`` the real part of ``A_m``, ``2m + 1`` its imaginary part; columns
    alike): ``<A, U> = <Re A, Re U> + <Im A, Im U>``, ``<A, J U> = <Im A, Re U> - <Re A, Im U>``."""
    rr, ri = x[:, 0::2, 0::2], x[:, 0::2, 1::2]
    ir, ii = x[:, 1::2, 0::2], x[:, 1::2, 1::2]
    return torch.cat([rr + ii, ir - ri], dim=-1)


#: Complex dtype of the FFTs of the derivative columns (``t z``, ``t^2 z``). The Jacobian only
#: steers the Levenberg–Marquardt steps (every accepted step is judged by the float64 cost), and
#: single precision (relative error ~1e-7) halves the largest cost of an accepted step.
DERIVATIVE_DTYPE = torch.complex64


def _derivative_columns(
    problem: Problem,
    z: torch.Tensor,
    edge: torch.Tensor,
    phase: torch.Tensor,
    cols: torch.Tensor,
    a: torch.Tensor,
    kernel: torch.Tensor,
    dtype: torch.dtype | None = None,
    workspace: Workspace | None = None,
    stiffness: torch.Tensor | None = None,
) -> torch.Tensor:
    """``D = (dS/dtheta) a`` for the free parameters as a :class:`Jacobian` (its base columns
    in real ``dtype``, default the columns'; ``D`` itself ``(B, 2K, P_free)`` real-stacked by
    :meth:`Jacobian.full`, see :func:`stack`) in the order of
    ``problem.free_index``: ``dS_m/d alpha = -T1_m``,
    ``dS_m/d df = 2 pi i T1_m``, ``dS_m/d beta = -T2_m``, ``dS/d phi0 = i S``,
    ``dS/d phi1 = i (ppm - pivot) S`` with ``T_k = exp(i phi) DFT[t^k z]``.

    By linearity of the DFT a group's column is the DFT of the amplitude-weighted sum of its
    members' ``t^k z``: ``(B, G, N)`` FFTs instead of ``(B, M, N)`` (with one metabolite per
    group the columns of ``t^k z`` themselves, multiplied by ``a_m`` after the transform, not
    a product with the ``(G, M)`` membership); per-metabolite ``T1`` is transformed only when
    per-metabolite deviations are fitted. The FFTs run in :data:`DERIVATIVE_DTYPE`. With a
    fitted free-form kernel ``kernel`` ``(B, J + 1)`` every transform is convolved with it, and
    ``dS/dx_j = exp(i phi) (W_j - W_0) DFT[sum_m a_m z_m]`` (``W_j`` the window read ``j``
    bins off): one more FFT, the rest are reads. Each block is written once into the
    real-stacked result; the columns of fixed parameters are never formed. On a decimated
    model grid each ``t^k`` product's edge rows are formed from the full-rate samples ``edge``
    ``(B, M, S)`` (:func:`_put_edge_rows`): the derivatives of the model as it is formed. Each
    distinct block is copied once into the base columns (real and imaginary parts, cast); the
    damping's and the shift's columns of a block are one base column and its ``J`` image.
    ``workspace``: the base columns are written into its array ``"base"``; ``stiffness``: see
    :func:`whiten`."""
    sl = problem.slices()
    b, k, m = cols.shape
    free = problem.free.tolist()
    time = problem.time_s
    # z is the evaluation's own (B, M, N) array, used only here: overwritten when in that dtype
    zd = z if z.dtype == DERIVATIVE_DTYPE else z.to(DERIVATIVE_DTYPE)
    ed = edge.to(DERIVATIVE_DTYPE)
    time_d = time.to(zd.real.dtype)
    real = cols.real.dtype if dtype is None else dtype
    # the blocks' complex dtype: the result's (single precision: no complex128 pass)
    work = torch.promote_types(real, torch.complex64)
    blocks: list[torch.Tensor] = []  # the distinct base blocks (B, K, width), complex
    terms: dict[str, tuple[int, float, bool, list[bool]]] = {}

    def put(key: str, block: torch.Tensor, factor: float, imaginary: bool = False) -> None:
        """The free columns of parameter block ``key`` are ``factor`` (times ``i`` if
        ``imaginary``) times the complex ``block`` ``(B, K, width)``'s columns."""
        mask = free[sl[key]]
        if not any(mask):
            return
        number = next((n for n, u in enumerate(blocks) if u is block), None)
        if number is None:
            number = len(blocks)
            blocks.append(block)
        terms[key] = (number, factor, imaginary, mask)

    deviations = any(free[sl["damping_dev"]]) or any(free[sl["shift_dev"]])
    identity = problem.n_groups == m and bool(
        (problem.group_of == torch.arange(m, device=problem.group_of.device)).all()
    )
    if problem.kernel_active:  # before t z overwrites zd
        za = real_weighted_sum(a[:, None, :], zd)  # sum_m a_m z_m, (B, 1, N)
        spec = fft(za, overwrite=True)[:, 0]
        n = za.shape[-1]
        reads = [spec[:, torch.remainder(problem.fft_index - j, n)] for j in problem.kernel_offsets]
        kcols = torch.stack([r - reads[0] for r in reads[1:]], dim=-1).to(work)
        put("kernel", kcols * phase[..., None].to(work), 1.0)

    def transform(u: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The phased window columns of ``u`` ``(B, X, N)`` (this function's own: its FFT
        is written over it), times real ``weights`` ``(B, X)`` (the amplitudes, applied to the
        ``(B, K, X)`` columns, not to ``u``)."""
        # the factor laid out as the window's transposed columns, so that the product is too
        factor = phase[:, None, :] if weights is None else phase[:, None, :] * weights[..., None]
        window = _window(problem, u, kernel, overwrite=True)
        if workspace is None or problem.kernel_active:
            return window.to(work) * factor.to(work).mT
        # the same product in the workspace's array, laid out as window.to(work) is for the
        # window's transposed columns (the layouts, so the same kernels and bits, checked
        # without a fitted kernel only: with one, the plain product)
        batch, rows, width = window.shape
        name = f"transform{len(transformed)}"
        out = workspace.take(name, (batch, width, rows), work, window.device).mT
        transformed.append(out)
        return out.copy_(window).mul_(factor.to(work).mT)

    transformed: list[torch.Tensor] = []  # the workspace's arrays taken by transform

    g = problem.n_groups
    t2 = (time**2).to(time_d.dtype)
    # the groups' sums sum_m in g a_m z_m: one real (G, M) x (M, 2N) product per spectrum;
    # with one metabolite per group none is formed: by linearity of the DFT the columns of z
    # (t z, t^2 z) are transformed and multiplied by a_m after (a (B, K, M), not (B, M, N), pass)
    grouped = grouped_edge = None
    if not identity and (problem.gaussian or not deviations):
        weights = a[:, None, :] * problem.group_matrix.T
        grouped = real_weighted_sum(weights, zd)  # (B, G, N)
        if problem.edge_rows.numel():
            grouped_edge = real_weighted_sum(weights, ed)
    t2g = None
    if deviations:
        if problem.gaussian:  # t^2 of the groups' sums, before t z overwrites zd
            if identity:
                u = times_real(zd, t2)
                _put_edge_rows(problem, u, ed, 2)
                t2g = transform(u, a)
            else:
                times_real(grouped, t2, out=grouped)
                _put_edge_rows(problem, grouped, grouped_edge, 2)
                t2g = transform(grouped)
        times_real(zd, time_d, out=zd)  # t z, in place
        _put_edge_rows(problem, zd, ed, 1)
        t1a = transform(zd, a)
        put("damping_dev", t1a, -1.0)
        put("shift_dev", t1a, 2 * math.pi, imaginary=True)
        # the groups' sums of the (B, K, M) columns stored column by column: one real product
        # over their memory, (G, M) x (B, M, 2K)
        t1g = real_weighted_sum(problem.group_matrix.T, t1a.mT.contiguous()).mT
    else:
        # t z (and t^2 z) of the groups written into one array, transformed together
        source = zd if identity else grouped  # this function's own: t z in place
        source_edge = ed if identity else grouped_edge
        if problem.gaussian:
            both = source.new_empty(b, 2 * g, source.shape[-1])
            times_real(source, time_d, out=both[:, :g])
            times_real(source, t2, out=both[:, g:])
            _put_edge_rows(problem, both[:, :g], source_edge, 1)
            _put_edge_rows(problem, both[:, g:], source_edge, 2)
        else:
            both = times_real(source, time_d, out=source)
            _put_edge_rows(problem, both, source_edge, 1)
        scale = None
        if identity:
            scale = torch.cat([a, a], dim=-1) if problem.gaussian else a
        both = transform(both, scale)
        t1g, t2g = both[..., :g], both[..., g:]
    put("damping", t1g, -1.0)
    put("shift", t1g, 2 * math.pi, imaginary=True)
    if problem.gaussian:
        put("gauss", t2g, -1.0)
    model = batched_matmul(cols, a[..., None].to(cols.dtype))
    put("phase0", model, 1.0, imaginary=True)
    put("phase1", (problem.ppm - problem.pivot_ppm)[:, None] * model, 1.0, imaginary=True)
    # the base columns, each block's real and imaginary parts copied (cast) once into
    # (B, q, 2, K), K innermost
    starts = [0]
    for block in blocks:
        starts.append(starts[-1] + block.shape[-1])
    q = starts[-1]
    base = workspace_array(workspace, "base", (b, q, 2, k), real, cols.device)
    for block, start in zip(blocks, starts, strict=False):
        dst = base[:, start : start + block.shape[-1]]
        dst.copy_(torch.view_as_real(block).permute(0, 2, 3, 1))
    index, coef = [], []
    for key in sl:  # the free order
        if key not in terms:
            continue
        number, factor, imaginary, mask = terms[key]
        for column, is_free in enumerate(mask):
            if is_free:
                index.append(starts[number] + column + (q if imaginary else 0))
                coef.append(factor)
    w_base = whiten(problem, base.view(b, q, 2 * k).mT, stiffness).mT.reshape(b, q, 2, -1)
    device = cols.device
    return Jacobian(
        base,
        w_base,
        torch.as_tensor(index, dtype=torch.long, device=device),
        torch.as_tensor(coef, dtype=torch.float64, device=device),
    )


def _window(
    problem: Problem, z: torch.Tensor, kernel: torch.Tensor, *, overwrite: bool = False
) -> torch.Tensor:
    """Window columns ``(B, K, X)`` of ``z`` ``(B, X, N)``, convolved with ``kernel``
    ``(B, J + 1)`` where ``problem`` fits one; ``overwrite``: ``z`` may be overwritten
    (:func:`scaloquant.physics.model.fft`)."""
    if problem.kernel_active:
        return kernel_window_columns(
            z, problem.fft_index, problem.kernel_offsets, kernel, overwrite=overwrite
        )
    return window_columns(z, problem.fft_index, overwrite=overwrite)


def kernel_weights(problem: Problem, theta: torch.Tensor) -> torch.Tensor:
    """The free-form kernel ``(B, J + 1)`` at ``theta``: centre ``1 - sum x`` first, then the
    off-centre weights ``x`` in the order of ``problem.kernel_offsets[1:]``."""
    x = theta[:, problem.slices()["kernel"]]
    return torch.cat([1.0 - x.sum(-1, keepdim=True), x], dim=-1)


def _unpack(problem: Problem, theta: torch.Tensor):
    sl = problem.slices()
    damping = (
        theta[:, sl["damping"]] if problem.lorentzian else torch.zeros_like(theta[:, sl["damping"]])
    )
    rates = lineshape_rates(
        damping,
        theta[:, sl["shift"]],
        problem.group_of,
        theta[:, sl["damping_dev"]],
        theta[:, sl["shift_dev"]],
    )
    gauss = theta[:, sl["gauss"]] if problem.gaussian else None
    return rates, gauss, theta[:, sl["phase0"]][:, 0], theta[:, sl["phase1"]][:, 0]


def columns(
    problem: Problem,
    theta: torch.Tensor,
    column_dtype: torch.dtype | None = None,
    workspace: Workspace | None = None,
):
    """Model columns ``S`` ``(B, K, M)``, modulated FIDs ``z`` ``(B, M, N / D)`` on the model's
    grid, their full-rate samples at the edge rows' reads ``(B, M, S)``
    (:class:`~scaloquant.fit.problem.Problem`), phase ``(B, K)``, free-form kernel ``(B, J + 1)``
    (:func:`kernel_weights`; ``S`` convolved with it where ``problem.kernel_active``).

    ``column_dtype``: the complex dtype of ``z`` and its FFT (default: the basis'; e.g.
    :data:`~scaloquant.fit.stages.TRIAL_DTYPE`); ``S`` is returned in the basis' dtype all the
    same. ``workspace``: ``S`` is formed in its array ``"window"`` (:class:`Workspace`)."""
    rates, gauss, phi0, phi1 = _unpack(problem, theta)
    z = modulated_fids(
        problem.fids, problem.time_s, rates, gauss, problem.group_of, dtype=column_dtype
    )
    edge = z[..., :0]  # no edge rows without decimation
    if problem.edge_rows.numel():
        edge = modulated_fids(
            problem.edge_fids,
            problem.edge_time_s,
            rates,
            gauss,
            problem.group_of,
            dtype=z.dtype,
            uniform=False,
        )
        _put_edge_rows(problem, z, edge)
    phase = phase_factor(phi0, phi1, problem.ppm, problem.pivot_ppm)
    kernel = kernel_weights(problem, theta)
    # the phase product promotes single-precision columns (TRIAL_DTYPE) to the basis' dtype
    # in the same pass (no separate conversion), over the window's rows as the FFT stores
    # them (B, M, K), not over its transposed view
    window = _window(problem, z, kernel).mT
    if workspace is None or problem.kernel_active:
        cols = (window * phase[:, None, :]).to(problem.fids.dtype)
    else:  # the same product in the workspace's array, C order as the product's own (checked
        # without a fitted kernel, as in _derivative_columns)
        work = torch.promote_types(window.dtype, phase.dtype)
        cols = workspace.take("window", window.shape, work, window.device).copy_(window)
        cols = cols.mul_(phase[:, None, :]).to(problem.fids.dtype)
    return cols.mT, z, edge, phase, kernel


def _interleaved(weights: torch.Tensor) -> torch.Tensor:
    """Real weights ``(S, R)`` as the ``(2S, 2R)`` matrix that applies them to interleaved
    real and imaginary parts alike (``view_as_real`` rows), zero elsewhere."""
    s, r = weights.shape
    out = weights.new_zeros(s, 2, r, 2)
    out[:, 0, :, 0] = weights
    out[:, 1, :, 1] = weights
    return out.reshape(2 * s, 2 * r)


def _put_edge_rows(
    problem: Problem, u: torch.Tensor, edge: torch.Tensor, time_power: int = 0
) -> None:
    """Write the edge rows of ``u`` ``(B, X, N / D)`` (a decimated ``t^p z``) from the full-rate
    samples ``edge`` ``(B, X, S)`` of the ``z`` it came from, times ``t^time_power``: ``sum_s
    w[s, n] t_s^p z[s]`` (:mod:`scaloquant.signal.decimate`). Nothing without decimation."""
    if not problem.edge_rows.numel():
        return
    if time_power:
        edge = times_real(edge, problem.edge_time_s**time_power)
    # the real weights on the real and imaginary parts (a quarter of the complex product's
    # arithmetic): one real product over the interleaved parts, whose zeros leave each sum
    # as the separate products' (bit-identical), without their strided copies of the parts
    # (1.5 -> 0.8 ms for (128, 24, 157) complex64, 1 thread); written run by run as slices
    # (index_put on the last axis is a slow gather)
    pairs = _interleaved(problem.edge_weights).to(edge.real.dtype)
    flat = torch.view_as_real(edge).reshape(*edge.shape[:-1], -1)
    rows = torch.view_as_complex(times_fixed(flat, pairs).unflatten(-1, (-1, 2))).to(u.dtype)
    done = 0
    for first, stop in problem.edge_runs:
        u[..., first:stop] = rows[..., done : done + stop - first]
        done += stop - first


def evaluate(
    problem: Problem,
    theta: torch.Tensor,
    y: torch.Tensor,
    noise_var: torch.Tensor,
    passive: torch.Tensor | None = None,
    *,
    derivatives: bool = True,
    amplitude_prior: torch.Tensor | None = None,
    column_dtype: torch.dtype | None = None,
    fixed_amplitudes: torch.Tensor | None = None,
    derivative_dtype: torch.dtype | None = None,
    full_derivatives: bool = True,
    workspace: Workspace | None = None,
    stiffness: torch.Tensor | None = None,
    formed: tuple | None = None,
) -> Evaluation:
    """The variable-projection objective at ``theta`` ``(B, P)`` for data windows ``y``
    ``(B, K)``, with its amplitudes and Jacobian terms. The whitened images ``C u`` of the
    columns, data, residual and derivatives are formed once and shared by every inner
    product. With ``derivatives=False`` (a trial step, most of which are rejected) the
    derivative columns are left empty and the modulated FIDs and phase kept in ``pending`` for
    :func:`with_derivatives`. ``amplitude_prior`` ``(B, M, M)``: the quadratic ``a^T Q a``
    of amplitude-ratio priors (:func:`~scaloquant.fit.problem.amplitude_prior`), added to the Gram
    matrix and the cost. ``column_dtype``: see :func:`columns`. ``fixed_amplitudes`` ``(B, M)`` (any
    sign): the amplitudes are held at these, not solved; the passive set is then empty, so that the
    Jacobian is ``-(dS/dtheta) a`` alone (no Kaufman term: ``a`` does not depend on ``theta``)
    and the residual's degrees of freedom count no amplitude. ``derivative_dtype``: the real
    dtype of the derivative columns (:func:`with_derivatives`; default the columns').
    ``full_derivatives``: :func:`with_derivatives`' ``full``. ``workspace``: the columns, the
    data and the derivative columns are written into its arrays (:class:`Workspace`: the
    returned evaluation's arrays are valid until the next call with it). ``stiffness``
    ``(B,)`` long: each spectrum's baseline stiffness, an index into ``problem.stiffnesses``
    (:class:`~scaloquant.fit.problem.BaselineStiffnesses`), kept in the evaluation; None: the
    problem's own for all. ``formed``: :func:`columns`' return at ``theta`` (with
    ``column_dtype``, no ``workspace``) where the caller has it, of a problem of the same basis
    and lineshape model (e.g. another baseline stiffness: the columns do not depend on it), so
    that it is not formed again."""
    if formed is None:
        formed = columns(problem, theta, column_dtype, workspace)
    cols_c, z, edge, phase, kernel = formed
    cols = stack(cols_c, workspace, "columns")
    ys = stack(y[..., None], workspace, "data")
    w_cols, w_y = whiten(problem, cols, stiffness), whiten(problem, ys, stiffness)
    gram = whitened_inner(cols, w_cols, cols, w_cols)
    h = whitened_inner(cols, w_cols, ys, w_y)[..., 0]
    if amplitude_prior is not None:
        gram = gram + amplitude_prior
    if fixed_amplitudes is None:
        a, passive = nnls_gram(gram, h, passive)
    else:
        a = fixed_amplitudes.to(gram.dtype, copy=True)  # rows are written in place later
        passive = torch.zeros_like(a, dtype=torch.bool)
    residual = ys - batched_matmul(cols, a[..., None])
    w_residual = w_y - batched_matmul(w_cols, a[..., None])
    data_cost = residual_cost(residual, w_residual)
    if amplitude_prior is not None:
        # a^T Q a as sums in order (a (1, M) x (M, M) product per spectrum rounds by batch)
        data_cost = data_cost + ((a[:, :, None] * amplitude_prior).sum(1) * a).sum(-1)
    cost = objective(problem, theta, data_cost, noise_var)
    empty = cols.new_zeros(cols.shape[0], 0, 0)
    ev = Evaluation(cost, a, passive, cols, empty, residual, gram, w_cols, empty, w_residual)
    ev.pending = (z, edge, phase, cols_c, kernel)
    ev.stiffness = stiffness
    if not derivatives:
        return ev
    return with_derivatives(
        problem, ev, derivative_dtype, full=full_derivatives, workspace=workspace
    )


def residual_cost(residual: torch.Tensor, w_residual: torch.Tensor) -> torch.Tensor:
    """``|r|_W^2`` ``(B,)`` of real-stacked residuals ``r`` ``(B, 2K, 1)`` and their
    :func:`whiten` images ``(B, 2 nb, 1)``: the data's part of :attr:`Evaluation.cost`."""
    return whitened_inner(residual, w_residual, residual, w_residual)[..., 0, 0]


def objective(
    problem: Problem, theta: torch.Tensor, data_cost: torch.Tensor, noise_var: torch.Tensor
) -> torch.Tensor:
    """The objective ``(B,)`` at ``theta`` ``(B, P)``: ``data_cost`` ``(B,)`` plus the
    parameters' priors weighed by the noise variance ``(B,)`` (:attr:`Evaluation.cost`)."""
    prior = (problem.prior_precision * theta**2 * problem.free).sum(-1)
    if problem.penalty_active:
        prior = prior + _kernel_penalty(problem, theta)
    return data_cost + prior * noise_var


def _kernel_penalty(problem: Problem, theta: torch.Tensor) -> torch.Tensor:
    """The quadratic priors ``x^T Q x + 2 q^T x + c`` ``(B,)`` (the kernel's and the group
    spread priors; in units of the noise variance)."""
    quad = (times_matrix(theta, problem.kernel_penalty) * theta).sum(-1)
    return quad + 2 * (theta * problem.kernel_linear).sum(-1) + problem.kernel_constant


def with_derivatives(
    problem: Problem,
    ev: Evaluation,
    dtype: torch.dtype | None = None,
    *,
    full: bool = True,
    workspace: Workspace | None = None,
) -> Evaluation:
    """``ev`` with its derivative columns (real ``dtype``, default the columns'; e.g.
    :data:`~scaloquant.fit.lm.NORMAL_EQUATIONS_DTYPE`), from the modulated FIDs kept in
    ``ev.pending``: in compact form (``ev.jacobian``, which the normal equations read) and,
    with ``full``, as the columns ``ev.derivs`` and ``ev.w_derivs`` (the CRLBs' and the
    residual's degrees of freedom). ``workspace``: the base columns and ``D`` are written into
    its arrays (:class:`Workspace`)."""
    z, edge, phase, cols_c, kernel = ev.pending
    jac = _derivative_columns(
        problem, z, edge, phase, cols_c, ev.amplitudes, kernel, dtype, workspace, ev.stiffness
    )
    ev.jacobian = jac
    if full:
        out = None
        if workspace is not None:
            b, _, _, k = jac.base.shape
            shape = (b, 2 * jac.index.numel(), k)
            out = workspace.take("derivatives", shape, jac.base.dtype, jac.base.device)
        ev.derivs, ev.w_derivs = jac.full(jac.base, out), jac.full(jac.w_base)
    ev.pending = None
    return ev


def complex_residual(ev: Evaluation) -> torch.Tensor:
    """The real-stacked ``y - S a`` of ``ev`` as complex ``(B, K)``."""
    r = ev.residual[..., 0]
    k = r.shape[-1] // 2
    return torch.complex(r[:, :k], r[:, k:])


def baseline_coefficients(
    problem: Problem, residual: torch.Tensor, stiffness: torch.Tensor | None = None
) -> torch.Tensor:
    """Complex baseline coefficients ``(B, nb)`` for a complex residual ``y - S a`` ``(B, K)``
    (``stiffness`` ``(B,)``: each spectrum's, see :func:`whiten`)."""
    if stiffness is None:
        return times_matrix(residual, problem.baseline_solve.T.to(residual.dtype))
    solves = problem.stiffnesses.solve
    out = residual.new_empty(residual.shape[0], solves.shape[1])
    for c, rows in stiffness_rows(stiffness):
        out[rows] = times_matrix(residual[rows], solves[c].T.to(residual.dtype))
    return out


def residual_and_baseline(problem: Problem, ev: Evaluation) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y - S a - B c (B, K), c (B, nb))``, complex: the residual of evaluation ``ev`` with its
    baseline ``B c`` solved from ``y - S a`` at the stiffness its amplitudes were solved at
    (each spectrum's, ``ev.stiffness``; None: ``problem``'s one). The fit's residual, its noise
    variance (:func:`noise_var_from_residual`), its baseline and ``residual_norm``, and the
    physics-head model's ``fit_residual``: one model, whatever the stiffness."""
    r = complex_residual(ev)
    coefficients = baseline_coefficients(problem, r, ev.stiffness)
    return r - times_matrix(coefficients, problem.baseline_design.T.to(r.dtype)), coefficients


def noise_var_from_residual(problem: Problem, ev: Evaluation) -> torch.Tensor:
    """``|r|^2 / (2K - n_free)`` with the baseline solved (at each spectrum's stiffness,
    ``ev.stiffness``: :func:`residual_and_baseline`), ``(B,)``."""
    r, _ = residual_and_baseline(problem, ev)
    # the identifiable parameters, as in crlb: no (B, 2K, P) temporary of squares
    n_theta = (torch.linalg.vector_norm(ev.derivs, dim=1) > 0).sum(-1)
    if ev.stiffness is None:
        n_free = ev.passive.sum(-1) + n_theta + 2 * problem.baseline_ed
    else:  # in single precision, as the sum with a Python float above is
        eds = torch.tensor([2 * e for e in problem.stiffnesses.ed], dtype=torch.float32)
        n_free = ev.passive.sum(-1) + n_theta + eds.to(r.device)[ev.stiffness]
    dof = (2 * r.shape[-1] - n_free).clamp_min(1)
    return r.abs().square().sum(-1) / dof
