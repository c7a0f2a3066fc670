"""The true parameters of the physics-head models' training simulations in the fit's layout:
``theta`` ``(B, P)`` and amplitudes ``(B, M)`` of the ``invivo`` simulation's draws
(:func:`invivo_truth`) and of the paper's default simulator's (:func:`default_truth`), for the
supervised training loss, the network SD's calibration and the known-answer tests."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..fit.problem import Problem

#: The ``invivo`` simulation's lineshape group of each of the fit's group names
#: (:func:`scaloquant.fit.model.metabolite_and_mm_groups`).
_INVIVO_GROUP = {"metabolites": 0, "macromolecules": 1, "lipids": 2}


def invivo_truth(problem: Problem, params) -> tuple[np.ndarray, np.ndarray]:
    """The true ``theta`` ``(B, P)`` and amplitudes ``(B, M)`` of ``invivo`` parameters
    (:class:`scaloquant.simulate.draws.InvivoParameters`) in ``problem``'s layout.

    Groups map by name (metabolites, macromolecules, lipids: the same three in both; the fit's
    ``metabolites_and_mm`` grouping); deviations and amplitudes by basis or component name
    (names the draw lacks get 0). Phases: degrees to radians, the first-order phase moved from
    the simulation's pivot to ``problem.pivot_ppm``. Not representable by the fit's model, and
    so absent from this truth: residual water, the eddy-current phase and the baseline humps
    (the fit's baseline absorbs the smooth part).
    """
    from ..simulate.draws import GROUPS

    g_sim = [_INVIVO_GROUP.get(name, 0) for name in problem.group_names]
    if any(GROUPS[i] != name for i, name in zip(g_sim, problem.group_names, strict=True)):
        raise ConfigError(
            f"the fit's groups {problem.group_names} do not map onto the invivo simulation's "
            f"{GROUPS}; use grouping='metabolites_and_mm'"
        )
    n, m = params.n_signals, problem.n_metabolites
    sl = problem.slices()
    theta = np.zeros((n, problem.size))
    theta[:, sl["damping"]] = params.damping_per_s[:, g_sim] * problem.lorentzian
    theta[:, sl["shift"]] = params.shift_hz[:, g_sim]
    theta[:, sl["gauss"]] = params.gauss_per_s2[:, g_sim] * problem.gaussian
    phase1 = np.deg2rad(params.phase1_deg_per_ppm)
    theta[:, sl["phase0"]] = (
        np.deg2rad(params.phase0_deg) + phase1 * (problem.pivot_ppm - params.phase1_pivot_ppm)
    )[:, None]
    theta[:, sl["phase1"]] = phase1[:, None]
    amplitudes = np.zeros((n, m))
    basis_col = {name: i for i, name in enumerate(params.basis_names)}
    comp_col = {name: i for i, name in enumerate(params.component_names)}
    dev_d, dev_s = sl["damping_dev"].start, sl["shift_dev"].start
    for j, name in enumerate(problem.names):
        if name in basis_col:
            amplitudes[:, j] = params.concentrations_mm[:, basis_col[name]]
            theta[:, dev_d + j] = params.damping_dev_per_s[:, basis_col[name]]
            theta[:, dev_s + j] = params.shift_dev_hz[:, basis_col[name]]
        elif name in comp_col:
            amplitudes[:, j] = params.component_amplitudes_mm[:, comp_col[name]]
    return theta, amplitudes


def default_truth(
    problem: Problem,
    params,
    names: tuple[str, ...],
    phase1_pivot_ppm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The true ``theta`` ``(B, P)`` and amplitudes ``(B, M)`` of the default simulator's
    parameters (:class:`scaloquant.simulate.SimulationParameters` over the basis ``names``,
    the paper's Eq. 1) in ``problem``'s layout.

    Per metabolite: the damping and shift of a group are the means of its members', the
    members' differences from them go to the deviations (exact with the per-metabolite model
    of ``FIT_PRESETS["simulated"]``, whose groups have one member each); the Gaussian
    ``exp(-(g t)^2)`` is the fit's ``beta = g^2`` (mean per group; the fit has no Gaussian
    deviations). Phases (0 where the simulation draws none): degrees to radians, the
    first-order phase moved from the simulation's pivot ``phase1_pivot_ppm`` to
    ``problem.pivot_ppm``. Amplitudes by name (names the draw lacks get 0). Not representable
    and so absent: the simulator's baseline humps (the fit's baseline, where it has one,
    absorbs them).
    """
    n, m = params.n_signals, problem.n_metabolites
    col = {name: i for i, name in enumerate(names)}
    index = np.array([col.get(name, -1) for name in problem.names])
    have = index >= 0

    def per_metabolite(values: np.ndarray | None) -> np.ndarray:
        out = np.zeros((n, m))
        if values is not None:
            out[:, have] = np.asarray(values)[:, index[have]]
        return out

    group = problem.group_matrix.cpu().numpy()  # (M, G)
    members = np.maximum((group * have[:, None]).sum(0), 1)
    group_of = problem.group_of.cpu().numpy()

    def group_mean(values: np.ndarray) -> np.ndarray:
        return (values * have) @ group / members

    sl = problem.slices()
    theta = np.zeros((n, problem.size))
    damping = per_metabolite(params.damping_per_s) * problem.lorentzian
    shift = per_metabolite(params.shift_hz)
    theta[:, sl["damping"]] = group_mean(damping)
    theta[:, sl["shift"]] = group_mean(shift)
    theta[:, sl["damping_dev"]] = (damping - theta[:, sl["damping"]][:, group_of]) * have
    theta[:, sl["shift_dev"]] = (shift - theta[:, sl["shift"]][:, group_of]) * have
    if params.gaussian_damping_per_s is not None and problem.gaussian:
        theta[:, sl["gauss"]] = group_mean(per_metabolite(params.gaussian_damping_per_s) ** 2)
    phase0 = np.zeros(n) if params.phase0_deg is None else np.deg2rad(params.phase0_deg)
    phase1 = (
        np.zeros(n) if params.phase1_deg_per_ppm is None else np.deg2rad(params.phase1_deg_per_ppm)
    )
    theta[:, sl["phase0"]] = (phase0 + phase1 * (problem.pivot_ppm - phase1_pivot_ppm))[:, None]
    theta[:, sl["phase1"]] = phase1[:, None]
    return theta, per_metabolite(params.amplitudes)
