"""The ``invivo`` simulation preset: a documented prior for tissue-like 3 T brain spectra.

The paper's simulator (:mod:`.parameters`) draws every amplitude, damping and shift
independently and uniformly, which makes spectra no tissue gives: each metabolite with its own
linewidth, no lipids, no residual water. This prior draws signals that look like short-TE
brain spectra at 3 T, in the terms of the batched signal model of the fit
(``scaloquant.physics``): for spectrum ``b`` and basis signal ``m`` in group ``g(m)``::

    z_bm(t) = c_bm X_m(t) exp((-(alpha_bg + da_bm) + 2 pi i (df_bg + dd_bm)) t - beta_bg t^2)

plus parametric macromolecule/lipid Gaussians (same lineshape terms, their own groups),
residual water, a smooth baseline, an eddy-current phase ``exp(i A exp(-t / tau))``, zero- and
first-order phase and complex white noise at an SNR. ``c`` are concentrations in mM: the
embedded basis holds one FID per molecule, so the amplitude of a basis FID is the
concentration (the measured ``Mac`` is the exception: its amplitude is a multiple of the
measured spectrum, drawn relative to tCr).

The preset's modules, by job (each imports only those before it):

* :mod:`.prior`: :class:`~.prior.InvivoPrior`, every range, its units and its source (and in
  ``docs/invivo-prior.md``): what a user changes to train for another scanner;
* :mod:`.linewidths`: Voigt width conversions and the basis' own lines
  (:func:`~.linewidths.basis_lines`), which turn a drawn singlet width into a Gaussian part;
* :mod:`.draws`: the drawn parameters (:class:`~.draws.InvivoParameters`,
  :func:`~.draws.draw_invivo`);
* :mod:`.effects` (shared with the paper's simulator): residual water, eddy-current phase,
  baseline, phase, noise;
* this module: the rendering (:func:`render_invivo`) and seeded batches and datasets.

Draws and rendering are separate: the parameters are a frozen container of numpy arrays whose
terms are those of the physics model. The resonances are rendered by the physics model
(through :func:`.model.synthesize`), the water lines and the first-order phase by its ramp.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import IncompatibleDataError
from ..physics.macromolecules import LIPID_COMPONENTS, MM_COMPONENTS, parametric_components
from ..signal import lineshapes
from ..signal.scale import component_unit
from ..types import BasisSet
from . import effects
from .dataset import BLOCK_SIZE, DEFAULT_CHUNK_SIZE, check_run, stream_blocks
from .draws import InvivoParameters, draw_invivo
from .linewidths import BasisLines, basis_lines
from .model import synthesize
from .parameters import SimulationParameters
from .prior import InvivoPrior


class InvivoRendering(NamedTuple):
    """Rendered signals: (B, N) complex FIDs, the (B,) reference height ``H`` and the (B,)
    time-domain noise sd per part (None when noiseless)."""

    fids: np.ndarray
    reference_height: np.ndarray
    noise_sd: np.ndarray | None


def _check_basis(basis: BasisSet, params: InvivoParameters, prior_freq_mhz: float | None) -> None:
    if tuple(basis.names) != params.basis_names:
        raise IncompatibleDataError(
            "the parameters were drawn for the basis names "
            f"{', '.join(params.basis_names)}, not {', '.join(basis.names)}; draw them again"
        )
    if not math.isclose(basis.spectrometer_freq_mhz, params.spectrometer_freq_mhz, rel_tol=1e-9):
        raise IncompatibleDataError(
            f"the parameters were drawn for a grid at {params.spectrometer_freq_mhz:g} MHz (their "
            f"ppm ranges in Hz), the basis is at {basis.spectrometer_freq_mhz:g} MHz; draw them "
            "with lines=basis_lines(basis, prior)"
        )
    if prior_freq_mhz is not None:
        ratio = basis.spectrometer_freq_mhz / prior_freq_mhz
        if abs(ratio - 1.0) > 0.05:
            raise IncompatibleDataError(
                f"the invivo prior is for {prior_freq_mhz:g} MHz (3 T), the basis is at "
                f"{basis.spectrometer_freq_mhz:g} MHz; use a 3 T basis or adapt the prior"
            )


def render_invivo(
    basis: BasisSet,
    params: InvivoParameters,
    rng: np.random.Generator | None = None,
    *,
    prior_freq_mhz: float | None = None,
    unit_per_proton: float | None = None,
) -> InvivoRendering:
    """Render ``params`` on the basis' grid (float64 numpy); noise only when ``rng`` is given.

    Order: basis signals under their group Voigt lineshapes (:func:`.model.synthesize`) and the
    parametric macromolecules; the reference height ``H`` (:func:`.effects.reference_peak_height`
    in ``params.reference_window_ppm``) on these; then lipids, residual water, the eddy-current
    phase (a B0 effect: on all resonances), the baseline (:func:`.effects.baseline_fids`), zero-
    and first-order phase (:func:`.effects.apply_phase`) and finally noise at the SNR
    (:func:`.effects.noise_sd_for_snr`). ``prior_freq_mhz`` refuses a basis far from the
    prior's field; a basis at another field than ``params`` were drawn for is refused too.

    The parametric components are the fit's FIDs
    (:func:`scaloquant.physics.macromolecules.parametric_components`) and their amplitudes count
    protons of the basis' scale, as the fit's do (:func:`scaloquant.signal.scale.component_unit`: the basis' signal per proton ``u``, 1 for
    the embedded basis, 0.009 to 16 for scanner bases); ``unit_per_proton`` gives ``u`` (a
    caller rendering many batches on one basis measures it once), else it is measured here.
    """
    _check_basis(basis, params, prior_freq_mhz)
    acq = basis.acquisition
    if unit_per_proton is None and params.component_names:
        unit_per_proton = component_unit(basis.names, basis.fids, acq)
    dwell = basis.dwell_time_s
    # one shared Gaussian factor multiplies the sum once instead of every metabolite's term
    # (the exp of every sample is the cost of a Gaussian per metabolite): the same numbers
    shared = params.shares_gaussian
    envelope = None
    if shared and params.n_signals:
        g = np.sqrt(params.gauss_per_s2[:, :1])
        envelope = lineshapes.gaussian_decay(g, acq.time_axis_s())

    def resonances(fids_in: np.ndarray, lineshape: SimulationParameters) -> np.ndarray:
        out = synthesize(fids_in, lineshape, dwell)
        return out if envelope is None else out * envelope

    def components(names: list[str]) -> np.ndarray:
        # the fit's FIDs (one proton per unit of area) in the basis' signal per proton
        grid = (acq.n_points, dwell, acq.spectrometer_freq_mhz, acq.ppm_reference)
        return parametric_components(tuple(names), *grid) * unit_per_proton

    fids = resonances(basis.fids, params.basis_lineshape(gaussian=not shared))
    mm = [x for x in params.component_names if x in MM_COMPONENTS]
    lipids = [x for x in params.component_names if x in LIPID_COMPONENTS]
    if mm:
        fids += resonances(
            components(mm),
            params.component_lineshape(mm, gaussian=not shared),
        )
    mask = effects.reference_window_mask(acq, params.reference_window_ppm)
    reference_height = effects.reference_peak_height(fids, mask)
    if lipids:
        fids += resonances(
            components(lipids),
            params.component_lineshape(lipids, gaussian=not shared),
        )
    fids += effects.water_fids(
        acq,
        params.water_centre_ppm,
        params.water_damping_per_s,
        params.water_height,
        params.water_phase_deg,
        reference_height,
    )
    fids *= np.exp(
        1j
        * effects.eddy_current_phase_rad(
            params.eddy_amplitude_rad, params.eddy_time_constant_s, acq.time_axis_s()
        )
    )
    fids = effects.add_baseline_and_phase(
        fids, acq, params, reference_height, params.phase1_pivot_ppm
    )
    noise_sd = None
    if rng is not None:
        noise_sd = effects.noise_sd_for_snr(reference_height, params.snr, basis.n_points)
        fids = fids + effects.complex_noise(noise_sd, basis.n_points, rng)
    return InvivoRendering(fids, reference_height, noise_sd)


class InvivoSignals(NamedTuple):
    """A batch of ``invivo`` signals: parameters, (B, N) FIDs, reference height, noise sd."""

    parameters: InvivoParameters
    fids: np.ndarray
    reference_height: np.ndarray
    noise_sd: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        """Per-signal truth by name: ``amplitudes`` (= concentrations, the name the HDF5
        reader needs), every parameter, then the derived heights and noise."""
        return {
            "amplitudes": self.parameters.concentrations_mm,
            **self.parameters.columns(),
            "reference_height": self.reference_height,
            "noise_sd": self.noise_sd,
        }

    def take(self, index: slice) -> InvivoSignals:
        return InvivoSignals(
            self.parameters.take(index),
            self.fids[index],
            self.reference_height[index],
            self.noise_sd[index],
        )

    @staticmethod
    def concatenate(parts: list[InvivoSignals]) -> InvivoSignals:
        return InvivoSignals(
            InvivoParameters.concatenate([p.parameters for p in parts]),
            *(np.concatenate([getattr(p, k) for p in parts]) for k in InvivoSignals._fields[1:]),
        )


def simulate_invivo_batch(
    basis: BasisSet,
    prior: InvivoPrior,
    n: int,
    rng: np.random.Generator,
    *,
    unit_per_proton: float | None = None,
    lines: BasisLines | None = None,
) -> InvivoSignals:
    """Draw and render ``n`` noisy signals; parameters first, then the noise, from ``rng``
    (``unit_per_proton``: :func:`render_invivo`'s; ``lines``: :func:`~.draws.draw_invivo`'s,
    measured on ``basis`` by :func:`~.linewidths.basis_lines` when not given: a caller drawing
    many batches on one basis measures both once)."""
    if lines is None:
        lines = basis_lines(basis, prior)
    params = draw_invivo(prior, basis.names, n, rng, lines)
    fids, height, noise_sd = render_invivo(
        basis,
        params,
        rng,
        prior_freq_mhz=prior.spectrometer_freq_mhz,
        unit_per_proton=unit_per_proton,
    )
    return InvivoSignals(params, fids, height, noise_sd)


def simulate_invivo_dataset(
    basis: BasisSet,
    prior: InvivoPrior,
    n: int,
    seed: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
):
    """Stream ``n`` seeded signals in chunks, block by block like
    :func:`scaloquant.simulate.simulate_dataset` (the same seed gives the same signals whatever
    the chunk size). Names, field and reference window are checked before the first chunk."""
    check_run(n, seed, chunk_size)
    lines = basis_lines(basis, prior)
    names_checked = draw_invivo(prior, basis.names, 0, np.random.default_rng(0), lines)
    _check_basis(basis, names_checked, prior.spectrometer_freq_mhz)
    effects.reference_window_mask(basis.acquisition, prior.reference_window_ppm)
    unit = component_unit(basis.names, basis.fids, basis.acquisition)
    return stream_blocks(
        lambda rng: simulate_invivo_batch(
            basis, prior, BLOCK_SIZE, rng, unit_per_proton=unit, lines=lines
        ),
        n,
        seed,
        chunk_size,
    )
