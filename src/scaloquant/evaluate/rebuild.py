"""Signals rebuilt from estimated amplitudes, for the paper's Fig. 2.

The networks estimate amplitudes only. To draw "the estimated signal" as the paper does, Eq. (1)
is evaluated with the estimated amplitudes and every other parameter of the true signal (damping,
shift, Gaussian damping, and the phase and baseline when the test set has them); noise is not
added, so the residual ``truth - estimate`` holds the amplitude errors plus the noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

import numpy as np

from ..errors import IncompatibleDataError
from ..simulate import SimulationConfig, SimulationParameters, render_signals
from ..types import BasisSet


def rebuild_fids(
    basis: BasisSet,
    true_parameters: Mapping[str, np.ndarray],
    amplitudes: np.ndarray,
    config: SimulationConfig,
) -> np.ndarray:
    """FIDs of Eq. (1) with ``amplitudes`` and the true signals' other parameters.

    Parameters
    ----------
    basis : the basis the test signals were simulated with (same names and order).
    true_parameters : per-signal parameters as stored in a simulation file (``damping_per_s``,
        ``shift_hz``, ... and ``reference_height`` when a baseline was added), ``k`` rows each.
    amplitudes : estimated amplitudes ``(k, n_metabolites)``.
    config : the simulation config of the test set (phase pivot).

    Returns
    -------
    Complex FIDs ``(k, n_points)``, noiseless.
    """
    amplitudes = np.atleast_2d(np.asarray(amplitudes, dtype=np.float64))
    if amplitudes.shape[1] != basis.n_metabolites:
        raise IncompatibleDataError(
            f"{amplitudes.shape[1]} amplitudes per signal for a {basis.n_metabolites}-metabolite basis"
        )
    names = {f.name for f in fields(SimulationParameters)} - {"amplitudes"}
    params = SimulationParameters(
        amplitudes=amplitudes,
        **{k: np.asarray(v) for k, v in true_parameters.items() if k in names},
    )
    reference_height = true_parameters.get("reference_height")
    if reference_height is not None:
        reference_height = np.asarray(reference_height)
    return render_signals(basis, config, params, reference_height)[0]
