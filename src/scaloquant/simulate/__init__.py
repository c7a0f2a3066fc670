"""The seed paper's signal simulator (its Eq. 1) and seeded simulated datasets.

Building blocks, for training loops that make fresh data per batch with their own generator::

    params = draw_parameters(config, batch, rng, names=basis.names)
    fids = synthesize(basis.fids, params, basis.dwell_time_s)              # numpy, complex128
    fids = synthesize_torch(basis_tensor, params, basis.dwell_time_s)      # torch, any device

:func:`simulate_batch` adds the optional baseline, phase and noise (numpy), and
:func:`simulate_dataset` streams a seeded dataset in chunks. :mod:`.config` gives the defaults
and where they come from, :mod:`.effects` defines SNR, phase and baseline. :mod:`.invivo` is the
``invivo`` preset: a documented prior of tissue-like 3 T spectra (``docs/invivo-prior.md``).
"""

from .config import (
    BaselineConfig,
    MetaboliteRanges,
    SimulationConfig,
)
from .dataset import (
    BLOCK_SIZE,
    DEFAULT_CHUNK_SIZE,
    add_noise,
    block_generator,
    drawn_parameters,
    rebuild_fids,
    reference_heights,
    render_signals,
    signal_set,
    simulate_batch,
    simulate_dataset,
)
from .draws import InvivoParameters, draw_invivo
from .invivo import render_invivo, simulate_invivo_batch, simulate_invivo_dataset
from .linewidths import BasisLines, basis_lines
from .model import synthesize, synthesize_torch
from .parameters import PER_METABOLITE_FIELDS, SimulationParameters, draw_parameters
from .prior import InvivoPrior

__all__ = [
    "BLOCK_SIZE",
    "BasisLines",
    "DEFAULT_CHUNK_SIZE",
    "InvivoParameters",
    "InvivoPrior",
    "PER_METABOLITE_FIELDS",
    "BaselineConfig",
    "MetaboliteRanges",
    "SimulationConfig",
    "SimulationParameters",
    "add_noise",
    "basis_lines",
    "block_generator",
    "drawn_parameters",
    "rebuild_fids",
    "reference_heights",
    "signal_set",
    "draw_invivo",
    "draw_parameters",
    "render_invivo",
    "render_signals",
    "simulate_batch",
    "simulate_dataset",
    "simulate_invivo_batch",
    "simulate_invivo_dataset",
    "synthesize",
    "synthesize_torch",
]
