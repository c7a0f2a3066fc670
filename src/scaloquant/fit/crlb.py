"""Cramér–Rao bounds of the batched fit (:func:`crlb`).

The Fisher information of all parameters (amplitudes, identifiable nonlinear parameters,
baseline with its penalty as a Gaussian prior, the deviations' priors), with the baseline
eliminated exactly by the same Schur complement ``W`` as the fit's
(:mod:`scaloquant.fit.evaluation`), inverted by Cholesky where well conditioned and by the
pseudo-inverse elsewhere. The measured thresholds are documented at
:data:`BASELINE_ABSORBED_RTOL` and :data:`CHOLESKY_INVERSE_MAX`; the bounds against Monte Carlo
SDs in ``docs/history/fit-log.md`` ("SD over noise draws against the CRLB").
"""

from __future__ import annotations

import torch

from .evaluation import (
    Evaluation,
    Workspace,
    add_prior_curvature,
    whitened_inner,
    workspace_array,
)
from .problem import Problem


def crlb(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    amplitude_prior: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Covariance bound of ``(amplitudes, free theta)`` and the identifiable-parameter mask.

    Fisher information ``F / sigma^2`` with ``F = [[<S,S>_W, <S,D'>_W], [<D',S>_W,
    <D',D'>_W + sigma^2 diag(1/s^2)]]``, ``D'`` the derivative columns of the free,
    identifiable parameters; the baseline with its penalty is eliminated exactly through ``W``
    (a Schur complement), so its cost is included. Returns ``(cov (B, M + P_free, M +
    P_free), ident (B, P_free))`` in the dtype of the evaluation's Gram block (the derivative
    columns are taken to it); rows of parameters left out are those of an identity.

    The amplitudes' block is the evaluation's own Gram matrix ``ev.gram`` (with the amplitude
    prior the evaluation had, if any: a Gaussian prior is information). ``amplitude_prior``
    ``(B, M, M)`` (:func:`~scaloquant.fit.problem.amplitude_prior`, in the same ``sigma^2`` units)
    replaces it: the block is then formed again from the columns plus this prior (the fit weighs its
    prior with the noise level it ends with, which its last evaluation's prior need not have).
    """
    normed, outer, ident = _normed_fisher(problem, ev, noise_var, amplitude_prior)
    cov = _inverse(normed)
    return cov.mul_(noise_var[:, None, None]).div_(outer), ident


def crlb_variances(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    amplitude_prior: torch.Tensor | None = None,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagonal of :func:`crlb`'s covariance, ``(B, M + P_free)``, and its mask, for callers
    that read the variances alone (the physics-head models' SDs): the inverse's diagonal from
    the inverse of the Cholesky factor (the column sums of squares of ``L^-1``), not the whole
    inverse; the same choice of Cholesky or pseudo-inverse per spectrum (:func:`_inverse`).
    Equal to :func:`crlb`'s diagonal to rounding (``docs/history/physics-models-log.md``,
    session 16: within 9.3e-16 relative on the ``K = 0`` benchmark's 4096 spectra). ``workspace``:
    the Fisher matrix is formed in its array ``"fisher"`` (:class:`~scaloquant.fit.evaluation.
    Workspace`)."""
    var, ident, _ = _variances_and_block(problem, ev, noise_var, amplitude_prior, workspace, 0)
    return var, ident


def crlb_amplitude_covariance(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    amplitude_prior: torch.Tensor | None = None,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`crlb_variances`' variances ``(B, M + P_free)`` and mask, and the amplitudes' block
    ``(B, M, M)`` of :func:`crlb`'s covariance, for callers that read the amplitudes'
    covariances (a physics-head model's polish: its pair correlations, as the fit's
    :meth:`~scaloquant.fit.result.FitResult.pair_correlations`) but not the nonlinear
    parameters': the block is ``L^-T L^-1``'s over the amplitudes' columns of the same inverse
    of the Cholesky factor as the variances (one ``(B, M, n) x (B, n, M)`` product more), the
    pseudo-inverse's where :func:`_inverse` takes it; the variances are :func:`crlb_variances`'
    bit for bit. Equal to :func:`crlb`'s block to rounding."""
    m = problem.n_metabolites
    return _variances_and_block(problem, ev, noise_var, amplitude_prior, workspace, m)


def _variances_and_block(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    amplitude_prior: torch.Tensor | None,
    workspace: Workspace | None,
    m: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`crlb_variances` (``m = 0``: an empty block) and :func:`crlb_amplitude_covariance`
    (``m`` the metabolites): the variances ``(B, M + P_free)``, the mask and the leading
    ``(B, m, m)`` block of :func:`crlb`'s covariance, from :func:`_inverse_parts`."""
    normed, outer, ident = _normed_fisher(problem, ev, noise_var, amplitude_prior, workspace)
    var, block = _inverse_parts(normed, m)
    var.mul_(noise_var[:, None]).div_(torch.diagonal(outer, dim1=-2, dim2=-1))
    return var, ident, block.mul_(noise_var[:, None, None]).div_(outer[:, :m, :m])


def _normed_fisher(
    problem: Problem,
    ev: Evaluation,
    noise_var: torch.Tensor,
    amplitude_prior: torch.Tensor | None,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`crlb`'s Fisher matrix ``F`` divided by ``outer = s s^T`` (``s`` the square roots
    of its diagonal: a unit diagonal), ``outer`` ``(B, n, n)`` and the identifiable mask;
    ``F`` formed in ``workspace``'s array ``"fisher"`` where one is given."""
    m = problem.n_metabolites
    dtype = ev.gram.dtype
    d, wd = ev.derivs.to(dtype), ev.w_derivs.to(dtype)
    n = m + d.shape[-1]
    # by blocks from the evaluation's Gram matrix, columns and whitened images: no (B, 2K, M +
    # P) copy, and the lower-left block is the transpose of the upper-right one
    fisher = workspace_array(workspace, "fisher", (d.shape[0], n, n), dtype, ev.gram.device)
    if amplitude_prior is None:
        fisher[:, :m, :m] = ev.gram
    else:
        fisher[:, :m, :m] = whitened_inner(ev.columns, ev.w_columns, ev.columns, ev.w_columns)
        fisher[:, :m, :m] += amplitude_prior
    fisher[:, :m, m:] = whitened_inner(ev.columns, ev.w_columns, d, wd)
    fisher[:, m:, :m] = fisher[:, :m, m:].mT
    plain = d.mT @ d
    fisher[:, m:, m:] = plain - wd.mT @ wd
    # a derivative column that no data inform is all zeros (D = (dS/dtheta) a, a = 0) or, where
    # the baseline absorbs it, of a whitened norm 0 to rounding (its diagonal then as likely
    # negative as not: a NaN scale below): told apart by the whitened diagonal against the
    # plain one (the column's sum of squares), its rows and columns are replaced by the
    # identity's below (no masking of D needed); unless a Gaussian prior informs it (the priors'
    # curvature added as to the iterations' J^T J; the rows kept are those the data or a
    # Gaussian precision inform: a quadratic prior's Q alone, the free-form kernel's or the
    # groups' spread, does not keep a row the data leave uninformed)
    data = torch.diagonal(fisher[:, m:, m:], dim1=-2, dim2=-1)
    informed = data > BASELINE_ABSORBED_RTOL * torch.diagonal(plain, dim1=-2, dim2=-1)
    del plain
    prior = add_prior_curvature(problem, fisher[:, m:, m:], noise_var)
    ident = informed | (prior > 0)
    _identity_rows(fisher, ~ident, m)
    scale = torch.sqrt(torch.diagonal(fisher, dim1=-2, dim2=-1)).clamp_min(1e-300)
    outer = scale[:, :, None] * scale[:, None, :]
    return fisher.div_(outer), outer, ident


#: Smallest whitened Fisher diagonal of a derivative column, relative to its sum of squares, that
#: :func:`crlb` takes as information: below it the baseline absorbs the column (its whitened
#: norm is rounding: 2e-15 of the plain one for a constant over the window under the ``invivo``
#: spline baseline, whose roughness penalty leaves constants free), and the parameter is left
#: out as one whose column is zero. The columns of parameters that the data inform keep 0.3-1
#: of their norm there (``invivo``, seven metabolites).
BASELINE_ABSORBED_RTOL = 1e-10


def _identity_rows(fisher: torch.Tensor, drop: torch.Tensor, m: int) -> None:
    """Rows and columns ``m + j`` of ``fisher`` ``(B, n, n)`` where ``drop`` ``(B, n - m)``,
    in place, made those of the identity."""
    full = torch.cat([drop.new_zeros(drop.shape[0], m), drop], dim=-1)
    fisher.masked_fill_(full[:, :, None] | full[:, None, :], 0.0)
    torch.diagonal(fisher, dim1=-2, dim2=-1).masked_fill_(full, 1.0)


#: Largest diagonal element of the inverse of a unit-diagonal Fisher matrix that :func:`crlb`
#: takes from a Cholesky factorisation. Below it the smallest eigenvalue exceeds ``1 / (n
#: 1e10)`` while the largest is at most ``n`` (the trace), so the matrix is far from the ``n
#: eps`` relative cut-off of :func:`torch.linalg.pinv` (which then is the plain inverse) and
#: both give the same bound; above it (or where the factorisation fails) the pseudo-inverse is
#: taken. The batched Cholesky is several times cheaper than the eigen-decomposition of the
#: pseudo-inverse, which took most of ``quantify``'s time at ``K = 0`` (65 x 65 matrices of the
#: per-metabolite model; benchmarks/bench_physics.py ``--quantify``).
CHOLESKY_INVERSE_MAX = 1e10


def _inverse(normed: torch.Tensor) -> torch.Tensor:
    """Inverse of symmetric positive semi-definite matrices ``(B, n, n)`` with a unit diagonal:
    by Cholesky where well conditioned (:data:`CHOLESKY_INVERSE_MAX`), else the pseudo-inverse
    (rank-deficient rows: unidentifiable parameters)."""
    factor, factored = _cholesky(normed)
    inv = torch.cholesky_inverse(factor)
    bad = _not_cholesky(factored, torch.diagonal(inv, dim1=-2, dim2=-1))
    if bad is not None:
        inv[bad] = torch.linalg.pinv(normed[bad], hermitian=True)
    return inv


def _inverse_parts(normed: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagonal ``(B, n)`` of :func:`_inverse`'s result, Cholesky or pseudo-inverse chosen
    alike, and its leading ``(B, m, m)`` block (``(B, 0, 0)`` for ``m = 0``), from one
    triangular solve: ``diag(A^-1)`` is the column sums of squares of ``L^-1`` (``A = L L^T``)
    and the block ``(L^-1)^T L^-1`` over its first ``m`` columns, instead of
    ``cholesky_inverse``'s whole product (the diagonal of ``(64, 65, 65)``, 1 thread: 2.0-2.3
    against 3.7-4.0 ms, the factorisation's 0.8-1.0 included)."""
    factor, factored = _cholesky(normed)
    eye = torch.eye(normed.shape[-1], dtype=normed.dtype, device=normed.device)
    diag = torch.linalg.solve_triangular(factor, eye.expand_as(factor), upper=False)
    left = diag[:, :, :m]
    block = left.mT @ left
    diag = diag.square_().sum(-2)
    bad = _not_cholesky(factored, diag)
    if bad is not None:
        pinv = torch.linalg.pinv(normed[bad], hermitian=True)
        diag[bad] = torch.diagonal(pinv, dim1=-2, dim2=-1)
        block[bad] = pinv[:, :m, :m]
    return diag, block


def _cholesky(normed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cholesky factors ``(B, n, n)`` of ``normed`` and where the factorisation succeeded
    ``(B,)``; a failed one is replaced by the identity (its row is redone by
    :func:`_not_cholesky`'s caller)."""
    factor, info = torch.linalg.cholesky_ex(normed)
    factored = info == 0
    if not bool(factored.all()):
        eye = torch.eye(normed.shape[-1], dtype=normed.dtype, device=normed.device)
        factor = torch.where(factored[:, None, None], factor, eye)
    return factor, factored


def _not_cholesky(factored: torch.Tensor, diag: torch.Tensor) -> torch.Tensor | None:
    """Indices of the rows whose inverse is taken as the pseudo-inverse: failed factorisations
    and inverses whose diagonal ``diag`` ``(B, n)`` is not finite or reaches
    :data:`CHOLESKY_INVERSE_MAX`; ``None`` where there are none."""
    good = factored & torch.isfinite(diag).all(-1) & (diag.amax(-1) < CHOLESKY_INVERSE_MAX)
    if bool(good.all()):
        return None
    return torch.nonzero(~good)[:, 0]
