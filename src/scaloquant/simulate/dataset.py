"""Whole simulated signals, one batch at a time or as a seeded stream of chunks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from typing import Any, TypeVar

import numpy as np

from .._config import whole_number
from ..defaults import SIMULATION_CHUNK_SIZE
from ..errors import ConfigError, IncompatibleDataError
from ..seeds import generator
from ..types import BasisSet, SignalSet
from . import effects
from .config import SimulationConfig
from .model import synthesize
from .parameters import SimulationParameters, draw_parameters

#: Signals drawn from one generator. Block ``j`` of a seeded dataset always uses the generator
#: of ``SeedSequence(seed, spawn_key=(j,))``, so the data do not depend on the chunk size, and
#: the first ``k`` signals are the same for every ``n >= k``.
BLOCK_SIZE = 256
#: Default signals per chunk of :func:`simulate_dataset`, defined in :mod:`scaloquant.defaults`
#: (where ``scaloquant simulate``'s parser reads it without importing torch).
DEFAULT_CHUNK_SIZE = SIMULATION_CHUNK_SIZE
#: Largest accepted seed (HDF5 stores it as a signed 64-bit integer).
MAX_SEED = 2**63 - 1

_Block = TypeVar("_Block", bound=Any)


def signal_set(
    basis: BasisSet,
    params: SimulationParameters,
    fids: np.ndarray,
    reference_height: np.ndarray | None = None,
    noise_sd: np.ndarray | None = None,
) -> SignalSet:
    """The :class:`~scaloquant.types.SignalSet` of signals made from ``params`` on ``basis``:
    the drawn parameters, then the derived ``reference_height`` and ``noise_sd`` when given."""
    derived = {"reference_height": reference_height, "noise_sd": noise_sd}
    arrays = params.arrays()
    return SignalSet(
        fids=fids,
        amplitudes=arrays.pop("amplitudes"),
        metabolites=basis.names,
        acquisition=basis.acquisition,
        parameters={**arrays, **{k: v for k, v in derived.items() if v is not None}},
    )


def drawn_parameters(
    signals: SignalSet, amplitudes: np.ndarray | None = None
) -> SimulationParameters:
    """The drawn parameters of ``signals`` (read from a file, say) as
    :class:`SimulationParameters`, with other ``amplitudes`` ``(n, M)`` when given."""
    names = {f.name for f in fields(SimulationParameters)} - {"amplitudes"}
    return SimulationParameters(
        amplitudes=signals.amplitudes if amplitudes is None else amplitudes,
        **{k: np.asarray(v) for k, v in signals.parameters.items() if k in names},
    )


def render_signals(
    basis: BasisSet,
    config: SimulationConfig,
    params: SimulationParameters,
    reference_height: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Noiseless signals of ``params``: Eq. 1, then the baseline, then the phase.

    ``reference_height`` (per signal) scales the baseline humps; when None and the config needs
    it, it is measured on the Eq. 1 signals (see :func:`effects.reference_peak_height`). Returns
    the ``(B, N)`` complex FIDs and the reference heights used.
    """
    fids = synthesize(basis.fids, params, basis.dwell_time_s)
    acq = basis.acquisition
    if reference_height is None and config.needs_reference_height:
        mask = effects.reference_window_mask(acq, config.reference_window_ppm)
        reference_height = effects.reference_peak_height(fids, mask)
    fids = effects.add_baseline_and_phase(
        fids, acq, params, reference_height, config.phase1_pivot_ppm
    )
    return fids, reference_height


def simulate_batch(
    basis: BasisSet, config: SimulationConfig, n: int, rng: np.random.Generator
) -> SignalSet:
    """Draw parameters and make ``n`` complete signals: Eq. 1, baseline, phase, noise.

    Parameters are drawn first, then the noise, all from ``rng``.
    """
    params = draw_parameters(config, n, rng, names=basis.names)
    fids, reference_height = render_signals(basis, config, params)
    noise_sd = None
    if params.snr is not None:
        noise_sd = effects.noise_sd_for_snr(reference_height, params.snr, basis.n_points)
        fids += effects.complex_noise(noise_sd, basis.n_points, rng)
    return signal_set(basis, params, fids, reference_height, noise_sd)


def block_generator(seed: int, block_index: int) -> np.random.Generator:
    """The generator of block ``block_index`` of the dataset with ``seed``."""
    return generator(seed, block=block_index)


def check_run(n: int, seed: int, chunk_size: int) -> None:
    """Refuse a negative or non-integer count, seed or chunk size with a clear line."""
    for what, value, low in (("n", n, 1), ("seed", seed, 0), ("chunk_size", chunk_size, 1)):
        whole_number(what, value, low)
    if seed > MAX_SEED:
        raise ConfigError(f"seed must be at most 2**63 - 1, got {seed}")


def simulate_dataset(
    basis: BasisSet,
    config: SimulationConfig,
    n: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[SignalSet]:
    """Stream ``n`` signals in chunks of ``chunk_size`` (the last may be shorter).

    The signals are made in blocks of :data:`BLOCK_SIZE` with one generator each (see
    :func:`block_generator`): the same seed gives the same signals whatever the chunk size.
    Config, names and reference window are checked before the first chunk is made.
    """
    check_run(n, seed, chunk_size)
    config.check_names(basis.names)
    if config.needs_reference_height:
        effects.reference_window_mask(basis.acquisition, config.reference_window_ppm)
    return stream_blocks(
        lambda rng: simulate_batch(basis, config, BLOCK_SIZE, rng), n, seed, chunk_size
    )


def stream_blocks(
    make_block: Callable[[np.random.Generator], _Block], n: int, seed: int, chunk_size: int
) -> Iterator[_Block]:
    """Chunks of ``chunk_size`` signals cut from blocks of :data:`BLOCK_SIZE`.

    ``make_block(rng)`` makes block ``j`` from :func:`block_generator` ``(seed, j)``; its result
    has ``take(slice)``, ``fids`` and a static ``concatenate(parts)`` (:class:`~scaloquant.types.SignalSet`
    or the ``invivo`` preset's signals).
    """
    cached: tuple[int, _Block] | None = None  # a block shared by two chunks
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        parts = []
        for j in range(start // BLOCK_SIZE, math.ceil(stop / BLOCK_SIZE)):
            if cached is None or cached[0] != j:
                cached = (j, make_block(block_generator(seed, j)))
            first = j * BLOCK_SIZE
            parts.append(cached[1].take(slice(max(start, first) - first, stop - first)))
        yield parts[0] if len(parts) == 1 else type(parts[0]).concatenate(parts)


def reference_heights(basis: BasisSet, signals: SignalSet) -> np.ndarray:
    """``(n,)`` reference peak height of each signal: the simulator's SNR reference, measured on
    its noiseless Eq. 1 signal rebuilt from the stored parameters (window of ``signals.config``)."""
    config = SimulationConfig.from_dict(signals.config)
    mask = effects.reference_window_mask(basis.acquisition, config.reference_window_ppm)
    fids = synthesize(basis.fids, drawn_parameters(signals), basis.dwell_time_s)
    return effects.reference_peak_height(fids, mask)


def add_noise(signals: SignalSet, basis: BasisSet, snr: float, seed: int | None) -> SignalSet:
    """``signals`` (noiseless) with complex white noise at ``snr`` added with a generator seeded
    by ``seed``; the same ``signals`` for ``snr = inf``. The noise SD per signal is the
    simulator's (:func:`.effects.noise_sd_for_snr`), recorded with the reference heights as the
    ``reference_height``, ``noise_sd`` and ``snr`` parameters."""
    if math.isinf(snr):
        return signals
    n, n_points = signals.fids.shape
    height = reference_heights(basis, signals)
    sd = effects.noise_sd_for_snr(height, np.full(n, float(snr)), n_points)
    noise = effects.complex_noise(sd, n_points, np.random.default_rng(seed))
    return replace(
        signals,
        fids=signals.fids + noise,
        parameters={
            **signals.parameters,
            "reference_height": height,
            "snr": np.full(n, float(snr)),
            "noise_sd": sd,
        },
    )


def rebuild_fids(
    basis: BasisSet,
    signals: SignalSet,
    amplitudes: np.ndarray,
    config: SimulationConfig | None = None,
) -> np.ndarray:
    """FIDs of ``signals`` rendered again with other ``amplitudes`` and the true signals' other
    parameters (damping, shift, Gaussian damping, and the phase and baseline when the signals
    have them; for the paper's Fig. 2); noise is not added.

    Parameters
    ----------
    basis : the basis the signals were simulated with (same names and order).
    signals : k signals with their stored parameters (``reference_height`` when a baseline was
        added).
    amplitudes : amplitudes ``(k, n_metabolites)``.
    config : the simulation config of the signals (phase pivot); default ``signals.config``.

    Returns
    -------
    Complex FIDs ``(k, n_points)``, noiseless.
    """
    amplitudes = np.atleast_2d(np.asarray(amplitudes, dtype=np.float64))
    if amplitudes.shape[1] != basis.n_metabolites:
        raise IncompatibleDataError(
            f"{amplitudes.shape[1]} amplitudes per signal for a {basis.n_metabolites}-metabolite basis"
        )
    if config is None:
        config = SimulationConfig.from_dict(signals.config)
    reference_height = signals.parameters.get("reference_height")
    if reference_height is not None:
        reference_height = np.asarray(reference_height)
    params = drawn_parameters(signals, amplitudes)
    return render_signals(basis, config, params, reference_height)[0]
