"""What the fit's outputs read from the amplitudes' Cramér–Rao covariance bound ``(..., M, M)``:
the SDs of sums of estimates (LCModel's combined rows) and the correlation coefficients of
pairs. Pure numpy, elementwise per spectrum, so the batched fit reads them chunk by chunk
(:func:`scaloquant.fit.batched.solve`) and keeps them in place of the bound itself, and a
physics-head model's polish reads its own bound alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metabolites import COMBINATIONS, indices_of


def combined_parts(names: Sequence[str]) -> dict[str, list[int]]:
    """LCModel's combined rows (:data:`scaloquant.metabolites.COMBINATIONS`) that ``names`` (a
    basis' own spellings) have a part of: name -> the positions of its parts in ``names``."""
    return {
        name: idx for name, wanted in COMBINATIONS.items() if (idx := indices_of(wanted, names))
    }


def sd_of_sum(covariance: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """The SD ``(...)`` of the sum of the estimates ``indices`` of covariance ``covariance``
    ``(..., M, M)``: ``sqrt(w^T C w)`` with ``w`` their indicator, so the (often negative)
    covariance of overlapping metabolites counts (LCModel's combined rows)."""
    w = np.zeros(covariance.shape[-1])
    w[list(indices)] = 1.0
    return np.sqrt(np.einsum("i,...ij,j->...", w, covariance, w))


def combined_sums(amplitudes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The amplitudes ``(..., C)`` of :func:`combined_parts`' rows of ``names``: the sums of
    their parts' ``amplitudes`` ``(..., M)`` (``C = 0``: an empty column axis)."""
    amplitudes = np.asarray(amplitudes)
    parts = combined_parts(names)
    if not parts:
        return np.empty((*amplitudes.shape[:-1], 0))
    return np.stack([amplitudes[..., idx].sum(axis=-1) for idx in parts.values()], axis=-1)


def combined_sds(covariance: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The CRLB SDs ``(..., C)`` of :func:`combined_parts`' rows of ``names`` from the
    covariance ``(..., M, M)`` of their parts (:func:`sd_of_sum`; ``C = 0``: an empty column
    axis)."""
    parts = combined_parts(names)
    if not parts:
        return np.empty((*np.shape(covariance)[:-2], 0))
    return np.stack([sd_of_sum(covariance, idx) for idx in parts.values()], axis=-1)


def combined_columns(
    amplitudes: np.ndarray, covariance: np.ndarray, names: Sequence[str]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """LCModel's combined rows (:data:`scaloquant.metabolites.COMBINATIONS`, under any
    spelling of ``names``) of estimates ``amplitudes`` ``(..., M)`` of covariance
    ``covariance`` ``(..., M, M)``: their names, their amplitudes ``(..., C)``
    (:func:`combined_sums`) and SDs ``(..., C)`` (:func:`combined_sds`); parts missing from
    ``names`` are left out, a combination with none present is skipped (``C = 0``: empty
    columns). The columns of a physics-head model's polish
    (:meth:`scaloquant.models.physics.PhysicsQuantifier.predict_estimates`); the fit keeps
    the SDs it reads chunk by chunk (:attr:`scaloquant.fit.result.FitResult.combined_crlb_sd`)."""
    total = combined_sums(amplitudes, names)
    return tuple(combined_parts(names)), total, combined_sds(covariance, names)


def covariance_pairs(covariance: np.ndarray, take: np.ndarray | None = None) -> np.ndarray:
    """The correlation coefficients ``(..., P)`` of estimates of covariance ``covariance``
    ``(..., M, M)``: of each pair ``(i, j)``, ``i < j``, of the components ``take`` (indices
    into ``M``, ``-1`` for one absent: NaN; default all ``M``) in :func:`numpy.triu_indices`
    order, ``C_ij / sqrt(C_ii C_jj)`` (LCModel's table of correlation coefficients) clipped to
    ``[-1, 1]``; NaN where a variance is 0. The fit's (kept per chunk,
    :attr:`scaloquant.fit.result.FitResult.amplitude_correlations`) and a physics-head model's
    polish's (:meth:`scaloquant.models.physics.PhysicsQuantifier.predict_estimates`)."""
    cov = np.asarray(covariance, dtype=np.float64)
    m = cov.shape[-1]
    take = np.arange(m) if take is None else np.asarray(take)
    missing, at = take < 0, np.maximum(take, 0)
    # each pair a column of the flat (B, M * M) covariance: 0.2 s at 4096 spectra x 28
    # components (378 pairs; load 9 on 2 cores), against minutes for their fit
    flat = cov.reshape(-1, m * m)
    i, j = np.triu_indices(len(take), 1)
    var = np.take(flat, at * (m + 1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.take(flat, at[i] * m + at[j], axis=1) / np.sqrt(var[:, i] * var[:, j])
    r[:, missing[i] | missing[j]] = np.nan
    r = np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)
    return r.reshape(*cov.shape[:-2], len(i))


def pairs_among(correlations: np.ndarray, m: int, take: np.ndarray) -> np.ndarray:
    """:func:`covariance_pairs`' coefficients ``(..., P')`` of the components ``take`` (indices
    into ``m``, ``-1`` for one absent: NaN) read from those of all ``m`` components,
    ``correlations`` ``(..., m (m - 1) / 2)`` (:func:`covariance_pairs` with ``take=None``):
    the same numbers where the covariance is symmetric to the bit (a pair taken in the other
    order reads ``C_ji`` for ``C_ij``)."""
    r = np.asarray(correlations)
    take = np.asarray(take)
    i, j = np.triu_indices(len(take), 1)
    if r.shape[-1] == 0:  # fewer than two components: every pair asked for is absent
        return np.full((*r.shape[:-1], len(i)), np.nan)
    a, b = take[i], take[j]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # the position of (lo, hi), lo < hi, in triu_indices(m, 1) order
    at = lo * m - lo * (lo + 1) // 2 + (hi - lo - 1)
    missing = (a < 0) | (b < 0)
    out = np.take(r, np.where(missing, 0, at), axis=-1)
    out[..., missing] = np.nan
    return out
