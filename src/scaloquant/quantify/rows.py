"""The bookkeeping of a run's rows: an input's spectra as one flat batch, the values of the
spectra estimated (some rows of an input) spread over all of its rows, and the values of groups
of rows (the spectra fitted on each referenced axis) merged into one set."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import FID


def flat_samples(fid: FID) -> np.ndarray:
    """The samples of ``fid`` as one batch ``(N, n_points)`` (a view where numpy can)."""
    return fid.samples.reshape(-1, fid.n_points)


def spread_rows(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``values`` ``(len(rows), ...)`` of the spectra ``rows`` as ``(n, ...)``, NaN elsewhere."""
    if len(rows) == n:  # every spectrum estimated: the values as they are
        return values
    values = np.asarray(values, dtype=np.float64)
    out = np.full((n, *values.shape[1:]), np.nan)
    out[rows] = values
    return out


def merged_rows(parts: list[tuple[np.ndarray, Any]]) -> Any:
    """One set of per-spectrum values from those of groups of spectra: ``parts`` holds each
    group's rows and its values (:func:`scaloquant.quantify.fit_run._fitted_rows`: arrays
    ``(n, ...)``, NaN outside its rows, in tuples and dicts alike across groups); each row taken
    from its group's."""
    (_, first), *others = parts
    for rows, values in others:
        _take_rows(first, values, rows)
    return first


def _take_rows(into: Any, values: Any, rows: np.ndarray) -> None:
    """``into[rows] = values[rows]`` for every array of ``into`` (fresh arrays of
    :func:`spread_rows`, nested in tuples and dicts as ``values``')."""
    if isinstance(into, dict):
        for name, whole in into.items():
            _take_rows(whole, values[name], rows)
    elif isinstance(into, tuple):
        for whole, part in zip(into, values, strict=True):
            _take_rows(whole, part, rows)
    else:
        into[rows] = values[rows]


def fitted_windows(
    groups: list[tuple[np.ndarray, dict[str, np.ndarray], tuple[float, float]]], n: int
) -> np.ndarray | None:
    """The fact ``window_ppm`` ``(n, 2)`` of the spectra of ``groups``, each a group's rows,
    its facts (``(n, ...)`` arrays, :func:`~scaloquant.quantify.checks.spread_fit_facts`) and
    the ``ppm_range`` it was fitted over: a group's own windows where its facts have them, its
    ``ppm_range`` otherwise, NaN outside the groups' rows; None where no group has the fact
    (every spectrum fitted over its ``ppm_range``: results.json then lists no window). The one
    rule of ``fit`` (:func:`windows_alike`) and a physics-head model's refit
    (:func:`scaloquant.quantify.run._physics_estimates`): a window is listed where some
    spectrum's fit had another than ``ppm_range``."""
    if not any("window_ppm" in facts for _, facts, _ in groups):
        return None
    out = np.full((n, 2), np.nan)
    for rows, facts, ppm_range in groups:
        own = facts.get("window_ppm")
        out[rows] = np.asarray(ppm_range, dtype=np.float64) if own is None else own[rows]
    return out


def windows_alike(fits: list[tuple], n: int) -> None:
    """Give every group of ``fits`` (:func:`~scaloquant.quantify.fit_run.fit_inputs`' ``(rows,
    fid, result, names, values)`` of one input's referenced axes) the fact ``window_ppm`` where
    any group has it (:func:`fitted_windows`): a fit whose adaptive rule refitted no spectrum
    has none (``FitResult.window_ppm`` None: all over its ``config.ppm_range``), so that
    :func:`merged_rows` neither drops the refitted spectra's windows nor finds the fact missing
    from a later group."""
    window = fitted_windows(
        [(rows, values[-1], result.config.ppm_range) for rows, _, result, _, values in fits], n
    )
    if window is None:
        return
    for *_, values in fits:
        facts = values[-1]
        if "window_ppm" not in facts:
            # in _fit_facts' order: after shift_ppm
            items = list(facts.items())
            at = [name for name, _ in items].index("shift_ppm") + 1
            facts.clear()
            facts.update([*items[:at], ("window_ppm", window), *items[at:]])
