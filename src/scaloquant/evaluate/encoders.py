"""Which encoder predicts the nonlinear parameters better: the scalogram CNN or the spectrum CNN
in front of the physics model (:mod:`scaloquant.models.physics`), the paper's question asked of
what the network itself predicts (issue 13).

For each test spectrum and each physics model, the network's own parameters (``K = 0``, before
the amplitudes' least squares and the polish) are compared with the truth: the absolute error of
each lineshape group's Lorentzian damping (1/s) and frequency shift (Hz), and of the zero-order
phase (degrees, wrapped to [0, 180]). The two encoders' errors on the *same* spectra are compared
by the paired bootstrap (:func:`~scaloquant.evaluate.bootstrap.paired_bootstrap`, metric MAE):
the difference ``A - B`` of the mean absolute error per group and over the groups, with its
percentile interval. Pure numpy once the parameters are predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .bootstrap import DEFAULT_N_BOOT, paired_bootstrap

#: Parameters compared and their units: the group's damping and shift, the zero-order phase.
PARAMETER_UNITS: Mapping[str, str] = {"damping": "1/s", "shift": "Hz", "phase0": "deg"}


def network_parameters(quantifier: Any, fids: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The network's own parameters ``theta`` ``(n, P)`` (float64, the fit's layout) of a
    physics-head model for FIDs ``(n, N)``, in eval mode (restored afterwards): what
    :meth:`~scaloquant.models.physics.PhysicsQuantifier.estimate` starts from."""
    import torch

    arr = quantifier.check_fids(fids)
    was_training = quantifier.training
    quantifier.eval()
    parts = []
    try:
        with torch.no_grad():
            for i in range(0, len(arr), batch_size):
                theta = quantifier.network_theta(arr[i : i + batch_size], inference=True)
                parts.append(theta.cpu().numpy())
    finally:
        quantifier.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, quantifier.problem().size))


def parameter_errors(
    slices: Mapping[str, slice], theta: np.ndarray, truth: np.ndarray, *, lorentzian: bool = True
) -> dict[str, np.ndarray]:
    """Absolute errors of predicted parameters ``theta`` ``(n, P)`` against ``truth`` ``(n, P)``
    (both in the layout ``slices`` of :meth:`scaloquant.fit.problem.Problem.slices`):
    ``{"damping": (n, G) 1/s (only for a Lorentzian model), "shift": (n, G) Hz, "phase0": (n, 1)
    degrees, the difference wrapped to [-180, 180] first}``."""
    theta = np.asarray(theta, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    if lorentzian:
        out["damping"] = np.abs(theta[:, slices["damping"]] - truth[:, slices["damping"]])
    out["shift"] = np.abs(theta[:, slices["shift"]] - truth[:, slices["shift"]])
    d = theta[:, slices["phase0"]] - truth[:, slices["phase0"]]
    out["phase0"] = np.abs(np.rad2deg(np.angle(np.exp(1j * d))))
    return out


def encoder_comparison(
    errors_a: Mapping[str, np.ndarray],
    errors_b: Mapping[str, np.ndarray],
    group_names: Sequence[str],
    *,
    a: str,
    b: str,
    bootstrap_seed: int,
    n_boot: int = DEFAULT_N_BOOT,
) -> dict[str, Any]:
    """Paired bootstrap of the mean absolute parameter errors of encoders ``a`` and ``b``
    (:func:`parameter_errors` of the same spectra), per parameter of :data:`PARAMETER_UNITS`
    both have.

    Returns the JSON-safe ``{"a", "b", "n_signals", "parameters": {NAME: {"unit", "mae_a",
    "mae_b", **PairedBootstrap.to_dict()}}}``: ``mae_a``/``mae_b`` the mean absolute error over
    spectra and groups, the bootstrap's ``per_metabolite`` keyed by group (``"phase0"`` for the
    phase), ``mean.favours`` ``"a"``, ``"b"`` or ``"none"``. Every parameter is resampled with a
    generator seeded by ``bootstrap_seed`` (the same resampled spectra for all).
    """
    parameters: dict[str, Any] = {}
    n = None
    for name, unit in PARAMETER_UNITS.items():
        if name not in errors_a or name not in errors_b:
            continue
        ea, eb = (np.asarray(e, dtype=np.float64) for e in (errors_a[name], errors_b[name]))
        n = ea.shape[0]
        names = ["phase0"] if name == "phase0" else list(group_names)
        result = paired_bootstrap(
            np.zeros_like(ea),
            ea,
            eb,
            rng=np.random.default_rng(bootstrap_seed),
            metric="mae",
            n_boot=n_boot,
            metabolites=names,
        )
        parameters[name] = {
            "unit": unit,
            "mae_a": float(ea.mean()),
            "mae_b": float(eb.mean()),
            **result.to_dict(),
        }
    return {"a": a, "b": b, "n_signals": n, "parameters": parameters}


#: The scalogram channel modes whose blindness :func:`channel_blindness` measures.
CHANNEL_MODES: tuple[str, ...] = ("abs_re_im", "pos_neg", "complex")


def channel_blindness(
    fid: np.ndarray, scalogram: Mapping[str, Any], dwell_time_s: float, *, phase_rad: float = 0.5
) -> dict[str, dict[str, float]]:
    """What each channel mode of :data:`CHANNEL_MODES` cannot see, measured on one FID ``(N,)``
    with the scalogram settings ``scalogram`` (:meth:`ScalogramConfig.to_dict`, channels
    replaced): ``{MODE: {"conjugation": d, "phase0": d}}`` with ``d`` the relative difference
    ``|S(x') - S(x)| / |S(x)|`` (Frobenius norms) between the scalograms of ``x`` and of its
    complex conjugate (the spectrum's mirror image), and of ``x exp(i phase_rad)`` (a zero-order
    phase). A mode blind to the change gives 0 (up to rounding)."""
    import torch

    from ..scalogram import ScalogramConfig
    from ..scalogram import scalogram as transform

    x = torch.as_tensor(np.asarray(fid, dtype=np.complex128))[None]
    changed = {"conjugation": x.conj().resolve_conj(), "phase0": x * np.exp(1j * phase_rad)}
    out: dict[str, dict[str, float]] = {}
    for mode in CHANNEL_MODES:
        settings = {**scalogram, "channels": mode}
        if mode == "complex":
            settings["log"] = False  # complex channels have no magnitudes to take the log of
        config = ScalogramConfig.from_dict(settings)
        base = transform(x, config, dwell_time_s=dwell_time_s)
        norm = float(torch.linalg.vector_norm(base))
        out[mode] = {
            name: float(
                torch.linalg.vector_norm(transform(y, config, dwell_time_s=dwell_time_s) - base)
            )
            / norm
            for name, y in changed.items()
        }
    return out
