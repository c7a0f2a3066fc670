"""The Cramér–Rao bound of the batched fit (:func:`scaloquant.fit.crlb.crlb`) against a
Fisher matrix formed from scratch (numpy, the ``W`` metric written out, pseudo-inverse), and its
edge cases: parameters that no data inform (zero derivative columns), a derivative column inside
the baseline's span, the amplitude prior an evaluation carries or a caller passes, and the dtypes
of the derivative columns and of the whole problem. The variances alone
(:func:`~scaloquant.fit.crlb.crlb_variances`) against the bound's diagonal, the variances with the
amplitudes' block (:func:`~scaloquant.fit.crlb.crlb_amplitude_covariance`) against the bound's, and
an evaluation and its variances in a reused :class:`~scaloquant.fit.evaluation.Workspace` against those without."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from scaloquant.fit import crlb as crlb_module
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.fit.crlb import crlb, crlb_amplitude_covariance, crlb_variances
from scaloquant.fit.evaluation import Workspace, evaluate, stack, whiten, whitened_inner
from scaloquant.fit.problem import data_window, make_problem, prepare_basis
from scaloquant.fit.start import start_theta
from scaloquant.io import default_basis
from scaloquant.models.physics_head import problem_in

NAMES = ("Mac", "Cr", "PCr", "NAA", "PCho", "Ins", "Glu")


@pytest.fixture(scope="module")
def case():
    """The ``invivo`` model (spline baseline, per-metabolite deviations with priors) of seven
    basis spectra, three noisy spectra and a start off their parameters; the amplitudes held
    fixed (the macromolecules' at 0 in the second spectrum: its group parameters are then
    informed by no data)."""
    basis = default_basis().subset(NAMES)
    config = replace(
        FIT_PRESETS["invivo"], macromolecules="basis", water_removal="none", decimate_model=False
    )
    problem = make_problem(prepare_basis(basis, config), config)
    rng = np.random.default_rng(5)
    amplitudes = rng.uniform(0.5, 1.5, (3, len(NAMES)))
    amplitudes[1, 0] = 0.0
    fids = amplitudes @ basis.fids
    fids = fids + 0.02 * (rng.normal(size=fids.shape) + 1j * rng.normal(size=fids.shape))
    y = data_window(problem, torch.as_tensor(fids))
    theta = start_theta(problem, config, y, basis.dwell_time_s, {})
    theta = theta + 0.01 * torch.as_tensor(rng.normal(size=theta.shape)) * problem.free
    noise_var = torch.tensor([0.8, 1.0, 1.3], dtype=torch.float64)
    fixed = torch.as_tensor(amplitudes)
    return problem, theta, y, noise_var, fixed


def _oracle(problem, ev, noise_var, amplitude_prior=None):
    """``sigma^2 pinv(F)`` over the identifiable parameters, ``F = J^T J - (C J)^T (C J)`` (+
    priors, the diagonal ones and the quadratic ``Q``'s) from the real-stacked ``J = [S, D]`` in numpy; rows of the others the identity's."""
    c = problem.baseline_whiten.numpy()
    m = problem.n_metabolites
    prior = (problem.prior_precision[problem.free_index] * noise_var[:, None]).numpy()
    fi = problem.free_index.numpy()
    # the quadratic priors (the invivo preset's MM shift prior), sigma^2 Q over the free ones
    quadratic = problem.kernel_penalty.numpy()[np.ix_(fi, fi)] * problem.penalty_active
    out = []
    for b in range(ev.columns.shape[0]):
        jac = np.concatenate([ev.columns[b].numpy(), ev.derivs[b].numpy()], axis=1)
        half = jac.shape[0] // 2
        cj = np.concatenate([c @ jac[:half], c @ jac[half:]])
        fisher = jac.T @ jac - cj.T @ cj
        fisher[m:, m:] += np.diag(prior[b]) + float(noise_var[b]) * quadratic
        if amplitude_prior is not None:
            fisher[:m, :m] += amplitude_prior[b].numpy()
        keep = np.concatenate([np.ones(m, bool), (np.abs(jac[:, m:]).sum(0) > 0) | (prior[b] > 0)])
        cov = np.eye(len(keep))
        cov[np.ix_(keep, keep)] = float(noise_var[b]) * np.linalg.pinv(
            fisher[np.ix_(keep, keep)], hermitian=True
        )
        out.append(cov)
    return np.stack(out)


def _assert_bound(cov, want, tol=1e-6):
    """``cov`` equals ``want`` to ``tol`` of the bound's scale: ``sqrt(want_ii want_jj)``."""
    got = np.asarray(cov)
    d = np.sqrt(np.diagonal(want, axis1=-2, axis2=-1))
    assert float((np.abs(got - want) / (d[:, :, None] * d[:, None, :])).max()) < tol


def _amplitude_sd(cov, m):
    return torch.diagonal(cov[:, :m, :m], dim1=-2, dim2=-1).sqrt()


def test_crlb_equals_the_fisher_matrix_formed_from_scratch(case):
    """The bound from the evaluation's Gram block and derivative columns is the pseudo-inverse
    of the numpy Fisher matrix; the group parameters of a group whose amplitudes are all 0 are
    left out (identity rows), the others kept; the preset's MM shift prior (a quadratic
    prior coupling the group shifts) is in both."""
    problem, theta, y, noise_var, fixed = case
    assert problem.penalty_active
    ev = evaluate(problem, theta, y, noise_var, fixed_amplitudes=fixed)
    cov, ident = crlb(problem, ev, noise_var)
    zero = torch.linalg.vector_norm(ev.derivs, dim=1) == 0
    assert bool(zero[1].any()) and not bool(zero[0].any())
    prior = problem.prior_precision[problem.free_index] > 0
    assert torch.equal(ident, ~zero | prior)
    _assert_bound(cov.numpy(), _oracle(problem, ev, noise_var))


def test_a_derivative_column_inside_the_baseline_span_is_left_out(case):
    """A derivative column that the baseline absorbs (a constant over the window: the spline's
    roughness penalty leaves it free) is not a zero column, but its whitened Fisher diagonal is
    0 to rounding, of either sign (a NaN bound before it was told apart): the parameter is left
    out as a zero column's, and the amplitudes' bound is that without it; with a prior on it,
    it stays."""
    problem, theta, y, noise_var, fixed = case
    ev = evaluate(problem, theta, y, noise_var, fixed_amplitudes=fixed)
    m = problem.n_metabolites
    j = int(problem.slices()["phase1"].start)  # a free parameter without a prior
    assert float(problem.prior_precision[problem.free_index][j]) == 0.0
    # a constant over the window: the spline baseline's span, free of its roughness penalty
    k = ev.derivs.shape[1] // 2
    flat = torch.ones(1, k, 1, dtype=torch.complex128)
    column = stack(flat).expand(ev.derivs.shape[0], -1, -1)
    column = column * torch.linalg.vector_norm(ev.derivs[:, :, j], dim=1)[:, None, None]
    dropped = replace(ev, derivs=ev.derivs.clone(), w_derivs=ev.w_derivs.clone())
    dropped.derivs[:, :, j] = 0.0
    dropped.w_derivs[:, :, j] = 0.0
    inside = replace(ev, derivs=dropped.derivs.clone(), w_derivs=dropped.w_derivs.clone())
    inside.derivs[:, :, j : j + 1] = column
    inside.w_derivs[:, :, j : j + 1] = whiten(problem, column)
    whitened = whitened_inner(
        column, inside.w_derivs[:, :, j : j + 1], column, whiten(problem, column)
    )
    assert bool((whitened[:, 0, 0].abs() < 1e-10 * (column**2).sum((1, 2))).all())
    cov, ident = crlb(problem, inside, noise_var)
    cov_dropped, ident_dropped = crlb(problem, dropped, noise_var)
    assert not bool(ident[:, j].any()) and not bool(ident_dropped[:, j].any())
    assert bool(torch.isfinite(cov).all())
    torch.testing.assert_close(
        _amplitude_sd(cov, m), _amplitude_sd(cov_dropped, m), rtol=1e-6, atol=0.0
    )
    precision = problem.prior_precision.clone()
    precision[problem.free_index[j]] = 4.0
    with_prior = replace(problem, prior_precision=precision)
    cov_prior, ident_prior = crlb(with_prior, inside, noise_var)
    assert bool(ident_prior[:, j].all()) and bool(torch.isfinite(cov_prior).all())
    # informed by its prior alone (and rounding): its variance is the prior's, 1 / 4
    torch.testing.assert_close(
        cov_prior[:, m + j, m + j], torch.full((3,), 0.25, dtype=torch.float64), rtol=1e-3, atol=0
    )


def test_the_amplitude_prior_of_the_evaluation_or_of_the_caller(case):
    """An evaluation made with an amplitude prior carries it in its Gram block, and the bound
    without one passed includes it; a prior passed replaces the evaluation's (the fit weighs its
    prior with the noise level it ends with): both equal the numpy Fisher matrix with that
    prior."""
    problem, theta, y, noise_var, fixed = case
    m = problem.n_metabolites
    rng = np.random.default_rng(9)
    g = torch.as_tensor(rng.normal(size=(3, m, m)))
    q = 50.0 * g @ g.mT / m
    ev = evaluate(problem, theta, y, noise_var, amplitude_prior=q, fixed_amplitudes=fixed)
    cov, _ = crlb(problem, ev, noise_var)
    _assert_bound(cov.numpy(), _oracle(problem, ev, noise_var, q))
    other = 0.25 * q
    cov_other, _ = crlb(problem, ev, noise_var, other)
    want = _oracle(problem, ev, noise_var, other)
    _assert_bound(cov_other.numpy(), want)
    assert bool((_amplitude_sd(cov, m) < _amplitude_sd(cov_other, m)).all())


def test_the_bound_is_formed_in_the_gram_blocks_dtype(case):
    """Single-precision derivative columns beside float64 columns give a float64 bound near the
    float64 one; a single-precision problem gives a single-precision bound near it too."""
    problem, theta, y, noise_var, fixed = case
    m = problem.n_metabolites
    ev = evaluate(problem, theta, y, noise_var, fixed_amplitudes=fixed)
    want = _amplitude_sd(crlb(problem, ev, noise_var)[0], m)
    low = evaluate(
        problem, theta, y, noise_var, fixed_amplitudes=fixed, derivative_dtype=torch.float32
    )
    assert low.derivs.dtype == torch.float32 and low.gram.dtype == torch.float64
    cov, _ = crlb(problem, low, noise_var)
    assert cov.dtype == torch.float64
    torch.testing.assert_close(_amplitude_sd(cov, m), want, rtol=1e-4, atol=0.0)
    single = problem_in(problem, torch.float32)
    ev32 = evaluate(
        single,
        theta.float(),
        y.to(torch.complex64),
        noise_var.float(),
        fixed_amplitudes=fixed.float(),
    )
    cov32, _ = crlb(single, ev32, noise_var.float())
    assert cov32.dtype == torch.float32
    torch.testing.assert_close(_amplitude_sd(cov32, m).double(), want, rtol=1e-2, atol=0.0)


def test_the_variances_alone_are_the_bounds_diagonal(case, monkeypatch):
    """:func:`crlb_variances` (the inverse's diagonal from the Cholesky factor's inverse) is the
    diagonal of :func:`crlb`'s covariance to rounding, with the same mask, on the Cholesky route
    and on the pseudo-inverse route alike (every row refused by the Cholesky route)."""
    problem, theta, y, noise_var, fixed = case
    ev = evaluate(problem, theta, y, noise_var, fixed_amplitudes=fixed)
    for route in ("cholesky", "pseudo-inverse"):
        if route == "pseudo-inverse":
            monkeypatch.setattr(crlb_module, "CHOLESKY_INVERSE_MAX", 0.0)
        cov, ident = crlb(problem, ev, noise_var)
        var, ident_var = crlb_variances(problem, ev, noise_var)
        assert torch.equal(ident_var, ident)
        want = torch.diagonal(cov, dim1=-2, dim2=-1)
        torch.testing.assert_close(var, want, rtol=1e-11, atol=0.0, msg=route)


def test_the_amplitude_block_is_the_bounds(case, monkeypatch):
    """:func:`crlb_amplitude_covariance` (a physics-head model's polish: its pair correlations)
    gives :func:`crlb_variances`' variances and mask bit for bit, and the amplitudes' block of
    :func:`crlb`'s covariance to rounding (the same inverse, formed as ``L^-T L^-1`` over the
    amplitudes' columns), on the Cholesky route and the pseudo-inverse route alike; with a
    caller's amplitude prior too."""
    problem, theta, y, noise_var, fixed = case
    m = problem.n_metabolites
    ev = evaluate(problem, theta, y, noise_var, fixed_amplitudes=fixed)
    prior = torch.diag_embed(torch.full((3, m), 0.5, dtype=torch.float64))
    for route in ("cholesky", "pseudo-inverse"):
        if route == "pseudo-inverse":
            monkeypatch.setattr(crlb_module, "CHOLESKY_INVERSE_MAX", 0.0)
        for given in (None, prior):
            cov, _ = crlb(problem, ev, noise_var, given)
            var, ident = crlb_variances(problem, ev, noise_var, given)
            got_var, got_ident, block = crlb_amplitude_covariance(problem, ev, noise_var, given)
            assert torch.equal(got_var, var) and torch.equal(got_ident, ident)
            assert block.shape == (3, m, m)
            want = cov[:, :m, :m]
            scale = torch.diagonal(want, dim1=-2, dim2=-1).sqrt()
            # in units of the SDs (the correlation coefficients' scale): 2.0e-15 apart on the
            # Cholesky route (cholesky_inverse against the triangular solve's product), 0 on the
            # pseudo-inverse's
            got = block / scale[:, :, None] / scale[:, None, :]
            torch.testing.assert_close(
                got, want / scale[:, :, None] / scale[:, None, :], rtol=0.0, atol=1e-12, msg=route
            )


def test_an_evaluation_in_a_reused_workspace_is_the_one_without(case):
    """An evaluation (the grouped ``invivo`` model with deviations: two transformed blocks)
    and its variances written into a :class:`Workspace` equal those without one bit for bit;
    a second evaluation of the same shape reuses the same arrays, and the first one's are then
    overwritten (the workspace's contract: one evaluation at a time)."""
    problem, theta, y, noise_var, _ = case
    fields = ("cost", "amplitudes", "columns", "derivs", "residual", "gram", "w_derivs")
    workspace = Workspace()
    first = evaluate(problem, theta, y, noise_var, workspace=workspace)
    columns_before = first.columns.clone()
    arrays = {name: a.data_ptr() for name, a in workspace._arrays.items()}
    assert {"columns", "data", "base", "derivatives", "window"} <= set(arrays)
    assert any(name.startswith("transform") for name in arrays)
    for shifted in (theta, theta + 1e-3 * problem.free):
        plain = evaluate(problem, shifted, y, noise_var)
        reused = evaluate(problem, shifted, y, noise_var, workspace=workspace)
        for field in fields:
            assert torch.equal(getattr(reused, field), getattr(plain, field)), field
        var, ident = crlb_variances(problem, reused, noise_var, workspace=workspace)
        want, want_ident = crlb_variances(problem, plain, noise_var)
        assert torch.equal(var, want) and torch.equal(ident, want_ident)
        assert {name: a.data_ptr() for name, a in workspace._arrays.items() if name in arrays} == (
            arrays
        )
    assert not torch.equal(first.columns, columns_before)
