"""The linear-combination model of the fit, in the frequency domain over a ppm window.

For one spectrum, with basis FIDs ``X_m(t)`` (``t = n * dwell_time_s``), the model is the family of
the paper's Eq. 1 with a global phase, an optional Gaussian and an optional baseline::

    S_m(f; theta) = exp(i phi(f)) DFT[ X_m(t) exp((-alpha_g(m) + 2 pi i df_g(m)) t - beta t^2) ](f)
    phi(f)        = phi0 + phi1 (ppm(f) - pivot)
    model(f)      = sum_m a_m S_m(f; theta) + sum_k c_k L_k(x(f))

with amplitudes ``a_m >= 0``, complex baseline coefficients ``c_k`` (Legendre polynomials ``L_k``
of the window's ppm scaled to [-1, 1]) and the nonlinear parameters ``theta`` (damping ``alpha``
and shift ``df`` per group ``g``, ``phi0``, ``phi1``, ``beta``). DFT bins follow
:func:`scaloquant.signal.axes.spectrum`. Complex vectors enter the least-squares problems as
real vectors ``[Re; Im]``, so noise of variance ``sigma^2`` in each of them is white and real.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..errors import ConfigError, UnknownMetaboliteError
from ..signal import axes
from ..signal.match import require_same_grid
from ..types import FID, BasisSet
from .config import FitConfig, macromolecule_names


def check_compatible(fid: FID, basis: BasisSet) -> None:
    """Refuse data whose grid differs from the basis set's (one clear line each); see
    :func:`scaloquant.signal.match.require_same_grid`."""
    require_same_grid(
        fid.acquisition, basis.acquisition, what="the data", target_what="the basis set"
    )


#: Least cosine similarity of the magnitude spectra of two metabolites fitted twice, with their
#: lineshapes swapped (0.94 for Cr/PCr, 0.97 for GPC/PCho; at most 0.84 for other close pairs of
#: the default basis, e.g. Gly/Ins).
TWIN_MIN_SIMILARITY = 0.9
#: The global moves of both solvers (:mod:`scaloquant.fit.varpro`, :mod:`scaloquant.fit.search`):
#: a group is restarted as lost when its shift lies within this fraction of the half-width of the
#: shift bounds from one of them, or its damping within this fraction of the damping range from
#: the upper bound.
LOST_MARGIN = 0.2
#: Residual SD, relative to an independent noise estimate (a signal-free region), above which
#: the search is repeated from a second start (both solvers).
MISFIT_RATIO = 1.5


def twin_groups(
    basis: BasisSet, config: FitConfig, group_of: np.ndarray, damped: np.ndarray
) -> tuple[tuple[int, int, float], ...]:
    """Pairs of single-metabolite groups ``(g, h, f_h - f_g)`` with near-identical spectra
    whose labels a local fit can swap (Cr/PCr, GPC/PCho): largest peaks in the window
    (``f``, Hz, 8x zero-filled) within ``config.twin_max_separation_hz``, and magnitude
    spectra with a cosine similarity of at least :data:`TWIN_MIN_SIMILARITY`.

    ``group_of`` ``(M,)`` the group of each metabolite; ``damped`` ``(M, N)`` the basis FIDs
    damped by the starting damping. Used by both solvers (:mod:`.varpro`, :mod:`.search`)."""
    n_groups = int(group_of.max()) + 1
    n_fft = 8 * damped.shape[1]
    ppm = axes.ppm_axis(n_fft, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    lo, hi = config.ppm_range
    inside = (ppm >= lo) & (ppm <= hi)
    magnitude = np.abs(axes.spectrum(damped, n_fft)[:, inside])
    main_hz = ppm[inside][np.argmax(magnitude, axis=1)] * basis.spectrometer_freq_mhz
    unit = magnitude / np.linalg.norm(magnitude, axis=1, keepdims=True)
    sizes = np.bincount(group_of, minlength=n_groups)
    member = [np.flatnonzero(group_of == g)[0] for g in range(n_groups)]
    pairs = []
    for g in range(n_groups):
        for h in range(g + 1, n_groups):
            m, n = member[g], member[h]
            offset = main_hz[n] - main_hz[m]
            if (
                sizes[g] == sizes[h] == 1
                and abs(offset) <= config.twin_max_separation_hz
                and unit[m] @ unit[n] >= TWIN_MIN_SIMILARITY
            ):
                pairs.append((g, h, float(offset)))
    return tuple(pairs)


def stack_complex(z: np.ndarray) -> np.ndarray:
    """``(K, ...)`` complex -> ``(2K, ...)`` real: real parts over imaginary parts."""
    return np.concatenate([z.real, z.imag], axis=0)


def exp_time_series(rate: np.ndarray, dwell_time_s: float, n_points: int) -> np.ndarray:
    """``exp(rate * n * dwell_time_s)`` for ``n = 0 .. n_points - 1``.

    ``rate`` has shape ``(R,)`` (complex, 1/s); returns ``(R, n_points)``. Computed as the outer
    product of a coarse and a fine grid (``n = q L + r``, ``L ~ sqrt(n_points)``): exact to
    rounding, and about ten times faster than ``exp`` of every sample, which otherwise dominates
    the cost of a model evaluation.
    """
    block = int(np.ceil(np.sqrt(n_points)))
    n_blocks = -(-n_points // block)
    step = rate[:, None] * dwell_time_s
    coarse = np.exp(step * (block * np.arange(n_blocks)))
    fine = np.exp(step * np.arange(block))
    return (coarse[:, :, None] * fine[:, None, :]).reshape(len(rate), -1)[:, :n_points]


@dataclass(frozen=True)
class Layout:
    """Where each nonlinear parameter sits in the optimiser's vector ``x``.

    ``group_of`` maps metabolites to groups ``(n_metabolites,)``; slices index ``x``; a slice is
    empty for a parameter that is not fitted (its value then comes from the start).
    """

    group_of: np.ndarray
    group_names: tuple[str, ...]
    damping: slice
    shift: slice
    phase0: slice
    phase1: slice
    gauss: slice

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def size(self) -> int:
        return self.gauss.stop


def metabolite_and_mm_groups(
    names: tuple[str, ...], metadata=None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Groups for ``grouping="metabolites_and_mm"``: the metabolites, the macromolecules, and
    the lipids (names beginning with Lip), each present kind one group:
    ``(group_of (M,), group names)``."""
    mm = set(macromolecule_names(names, metadata))
    kinds = [
        "lipids" if n.lower().startswith("lip") else "macromolecules" if n in mm else "metabolites"
        for n in names
    ]
    group_names = tuple(k for k in ("metabolites", "macromolecules", "lipids") if k in kinds)
    return np.array([group_names.index(k) for k in kinds]), group_names


def make_layout(names: tuple[str, ...], config: FitConfig) -> Layout:
    """The parameter layout for metabolites ``names`` under ``config.grouping``."""
    n = len(names)
    if config.grouping == "per_metabolite":
        group_of, group_names = np.arange(n), names
    elif config.grouping == "global":
        group_of, group_names = np.zeros(n, dtype=int), ("all",)
    elif config.grouping == "metabolites_and_mm":
        group_of, group_names = metabolite_and_mm_groups(names)
    else:
        group_of = np.full(n, -1)
        group_names = []
        for group in config.grouping:
            for name in group:
                if name not in names:
                    raise UnknownMetaboliteError(
                        f"grouping names {name!r}, which is not in the basis set; "
                        f"it has: {', '.join(names)}"
                    )
                if group_of[names.index(name)] >= 0:
                    raise ConfigError(f"grouping puts {name!r} in more than one group")
                group_of[names.index(name)] = len(group_names)
            if group:
                group_names.append("+".join(group))
        for i, name in enumerate(names):
            if group_of[i] < 0:
                group_of[i] = len(group_names)
                group_names.append(name)
        group_names = tuple(group_names)
    g = len(group_names)
    p0 = 2 * g + int(config.fit_phase0)
    p1 = p0 + int(config.fit_phase1)
    return Layout(
        group_of=group_of,
        group_names=tuple(group_names),
        damping=slice(0, g),
        shift=slice(g, 2 * g),
        phase0=slice(2 * g, p0),
        phase1=slice(p0, p1),
        gauss=slice(p1, p1 + int(config.gaussian)),
    )


@dataclass(frozen=True)
class NonlinearParameters:
    """Nonlinear parameters of one spectrum: ``damping_per_s`` and ``shift_hz`` per group
    ``(n_groups,)``, the global phases and Gaussian as floats."""

    damping_per_s: np.ndarray
    shift_hz: np.ndarray
    phase0_rad: float = 0.0
    phase1_rad_per_ppm: float = 0.0
    gauss_per_s2: float = 0.0

    def to_vector(self, layout: Layout) -> np.ndarray:
        x = np.empty(layout.size)
        x[layout.damping] = self.damping_per_s
        x[layout.shift] = self.shift_hz
        x[layout.phase0] = self.phase0_rad
        x[layout.phase1] = self.phase1_rad_per_ppm
        x[layout.gauss] = self.gauss_per_s2
        return x

    def with_vector(self, layout: Layout, x: np.ndarray) -> NonlinearParameters:
        """New parameters: the fitted ones from ``x``, the others kept from ``self``."""

        def pick(sl: slice, old: float) -> float:
            return float(x[sl][0]) if sl.stop > sl.start else old

        return NonlinearParameters(
            damping_per_s=np.array(x[layout.damping]),
            shift_hz=np.array(x[layout.shift]),
            phase0_rad=pick(layout.phase0, self.phase0_rad),
            phase1_rad_per_ppm=pick(layout.phase1, self.phase1_rad_per_ppm),
            gauss_per_s2=pick(layout.gauss, self.gauss_per_s2),
        )


class Design:
    """Everything about the model that does not depend on the spectrum: built once per batch.

    Parameters
    ----------
    basis : the basis set, already checked against the data's acquisition grid.
    config : the fit options.
    broadening_per_s : extra Lorentzian broadening ``exp(-L t)`` applied to basis and data in a
        continuation stage (0 for the final fit, see :mod:`scaloquant.fit.varpro`).
    n_points : points kept (the first ones) in such a stage; ``None`` keeps all.

    Attributes
    ----------
    fids : ``(n_metabolites, n_points)`` basis FIDs (broadened, truncated).
    window : ``(K,)`` indices of the window's bins in :func:`~scaloquant.signal.axes.spectrum`.
    fft_index : ``(K,)`` the same bins in the unshifted order of ``fft``.
    ppm : ``(K,)`` their chemical shifts.
    baseline_design : ``(K, order + 1)`` complex Legendre design, ``L_k(x(f))``.
    baseline_real : ``(2K, 2 (order + 1))`` the same as real columns: real coefficients, then
        imaginary ones (no columns without a baseline).
    baseline : ``(2K, 2 (order + 1))`` an orthonormal basis of the span of ``baseline_real``.
    """

    def __init__(
        self,
        basis: BasisSet,
        config: FitConfig,
        *,
        broadening_per_s: float = 0.0,
        n_points: int | None = None,
    ) -> None:
        if n_points is not None and n_points < basis.n_points:
            basis = basis.truncated(n_points)
        self.names = basis.names
        self.config = config
        self.broadening_per_s = float(broadening_per_s)
        self.time_s = basis.time_axis_s()
        self.apodisation = np.exp(-self.broadening_per_s * self.time_s)
        self.fids = basis.fids * self.apodisation
        self.dwell_time_s = basis.dwell_time_s
        self.n_points = basis.n_points
        self.layout = make_layout(basis.names, config)
        self.group_matrix = np.zeros((basis.n_metabolites, self.layout.n_groups))
        self.group_matrix[np.arange(basis.n_metabolites), self.layout.group_of] = 1.0
        ppm_all = basis.ppm_axis()
        lo, hi = config.ppm_range
        if lo < ppm_all[0] or hi > ppm_all[-1]:
            raise ConfigError(
                f"ppm_range ({lo:g}, {hi:g}) is not inside the data's ppm axis "
                f"({ppm_all[0]:.2f}, {ppm_all[-1]:.2f}); narrow it"
            )
        self.window = np.flatnonzero((ppm_all >= lo) & (ppm_all <= hi))
        self.fft_index = np.fft.fftshift(np.arange(self.n_points))[self.window]
        self.ppm = ppm_all[self.window]
        self.pivot_ppm = (
            basis.ppm_reference if config.phase1_pivot_ppm is None else config.phase1_pivot_ppm
        )
        x = (2 * self.ppm - (lo + hi)) / (hi - lo)
        if config.baseline_order is None:
            self.baseline_design = np.zeros((self.ppm.size, 0), dtype=np.complex128)
        else:
            legendre = np.polynomial.legendre.legvander(x, config.baseline_order)
            self.baseline_design = legendre.astype(np.complex128)
        self.baseline_real = np.concatenate(
            [stack_complex(self.baseline_design), stack_complex(1j * self.baseline_design)], axis=1
        )
        self.baseline = np.linalg.qr(self.baseline_real)[0]
        self.n_parameters = basis.n_metabolites + self.layout.size + self.baseline.shape[1]
        if 2 * len(self.window) <= self.n_parameters:
            raise ConfigError(
                f"ppm_range ({lo:g}, {hi:g}) holds {len(self.window)} spectral points, too few "
                f"for {self.n_parameters} parameters; widen it or fit fewer parameters"
            )
        # Magnitude of the basis sum over the whole spectrum, for the cross-correlation start.
        damped = self.fids * np.exp(-config.initial_damping_per_s * self.time_s)
        self.reference_magnitude = np.abs(scipy.fft.fft(damped.sum(axis=0)))
        self.twin_groups = twin_groups(basis, config, self.layout.group_of, damped)

    def data_window(self, fids: np.ndarray) -> np.ndarray:
        """The window of the spectra of data ``fids`` ``(..., n_points of the data)`` as this
        stage sees them (truncated, broadened): ``(..., K)``."""
        return scipy.fft.fft(fids[..., : self.n_points] * self.apodisation, axis=-1)[
            ..., self.fft_index
        ]

    def window_dft(self, z: np.ndarray) -> np.ndarray:
        """Spectrum bins of the window for time signals ``z`` ``(R, n_points)`` -> ``(K, R)``.

        Equal to ``axes.spectrum(z)[:, window].T``, without the shift of the full spectrum.
        """
        return scipy.fft.fft(z, axis=-1)[:, self.fft_index].T

    def phase_factor(self, p: NonlinearParameters) -> np.ndarray:
        """``exp(i phi(f))`` over the window, ``(K,)``."""
        return np.exp(1j * (p.phase0_rad + p.phase1_rad_per_ppm * (self.ppm - self.pivot_ppm)))

    def modulated_fids(self, p: NonlinearParameters) -> np.ndarray:
        """``X_m(t) exp((-alpha + 2 pi i df) t - beta t^2)``, ``(n_metabolites, n_points)``."""
        rate = -p.damping_per_s + 2j * np.pi * p.shift_hz
        z = (
            self.fids
            * exp_time_series(rate, self.dwell_time_s, self.n_points)[self.layout.group_of]
        )
        if p.gauss_per_s2 != 0.0:
            z = z * np.exp(-p.gauss_per_s2 * self.time_s**2)
        return z

    def columns(self, p: NonlinearParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model columns ``S_m(f)`` ``(K, n_metabolites)``, the modulated FIDs and the phase
        factor ``(K,)``."""
        z = self.modulated_fids(p)
        phase = self.phase_factor(p)
        return self.window_dft(z) * phase[:, None], z, phase

    def time_weighted_columns(
        self, z: np.ndarray, phase: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``exp(i phi) DFT[t z_m]`` and, with a Gaussian, ``exp(i phi) DFT[t^2 z_m]``, each
        ``(K, n_metabolites)`` (``None`` without a Gaussian): the derivatives of the columns by
        the damping, shift and Gaussian up to constant factors, shared by
        :meth:`model_derivatives` and :meth:`column_gradients`."""
        t_cols = self.window_dft(z * self.time_s) * phase[:, None]
        if self.layout.gauss.stop == self.layout.gauss.start:
            return t_cols, None
        return t_cols, self.window_dft(z * self.time_s**2) * phase[:, None]

    def model_derivatives(
        self,
        amplitudes: np.ndarray,
        z: np.ndarray,
        phase: np.ndarray,
        cols: np.ndarray,
        t_cols: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """Derivatives of the metabolite model ``sum_m a_m S_m(f)`` by each fitted nonlinear
        parameter, ``(K, P)``, from the modulated FIDs ``z``, the phase factor, the columns
        ``S`` and (optionally, else computed) :meth:`time_weighted_columns`.

        By linearity of the DFT, ``d/d alpha_g = -exp(i phi) DFT[t sum_{m in g} a_m z_m]`` and
        ``d/d df_g = 2 pi i exp(i phi) DFT[t sum_{m in g} a_m z_m]``: both are sums over the
        group of ``a_m`` times a time-weighted column; ``d/d beta = -exp(i phi) DFT[t^2 sum_m
        a_m z_m]``; the phases multiply the model by ``i`` and ``i (ppm - pivot)``.
        """
        lay = self.layout
        t_z, t2_z = self.time_weighted_columns(z, phase) if t_cols is None else t_cols
        out = np.empty((len(self.window), lay.size), dtype=np.complex128)
        t_weighted = t_z * amplitudes
        if lay.n_groups < len(self.names):  # per metabolite, the group sum is the identity
            t_weighted = t_weighted @ self.group_matrix
        out[:, lay.damping] = -t_weighted
        out[:, lay.shift] = 2j * np.pi * t_weighted
        model = cols @ amplitudes
        out[:, lay.phase0] = 1j * model[:, None]
        out[:, lay.phase1] = (1j * (self.ppm - self.pivot_ppm) * model)[:, None]
        if t2_z is not None:
            out[:, lay.gauss] = -(t2_z @ amplitudes)[:, None]
        return out

    def column_gradients(
        self,
        t_cols: tuple[np.ndarray, np.ndarray | None],
        cols: np.ndarray,
        residual: np.ndarray,
    ) -> np.ndarray:
        """``(dA/dtheta_j)^T r`` ``(n_metabolites, P)`` for the real-stacked columns ``A`` and
        the real-stacked residual ``r`` ``(2K,)``: the second term of the Golub–Pereyra
        Jacobian, from :meth:`time_weighted_columns` and the columns. The real-stacked inner
        product of complex ``c X`` with ``r`` is ``Re(c X . conj(r))``."""
        lay = self.layout
        t_z, t2_z = t_cols
        k = len(self.window)
        r = residual[:k] - 1j * residual[k:]
        out = np.zeros((len(self.names), lay.size))
        t1 = t_z.T @ r
        out[:, lay.damping] = np.real(-t1)[:, None] * self.group_matrix
        out[:, lay.shift] = np.real(2j * np.pi * t1)[:, None] * self.group_matrix
        out[:, lay.phase0] = np.real(1j * (cols.T @ r))[:, None]
        out[:, lay.phase1] = np.real(1j * (((self.ppm - self.pivot_ppm) * r) @ cols))[:, None]
        if t2_z is not None:
            out[:, lay.gauss] = np.real(-(t2_z.T @ r))[:, None]
        return out

    def parameter_scale(self) -> np.ndarray:
        """Typical size of each parameter, ``(P,)``: damping 5/s, shift 1 Hz, phase0 0.1 rad,
        phase1 0.01 rad/ppm, Gaussian 100/s^2."""
        lay = self.layout
        scale = np.empty(lay.size)
        scale[lay.damping], scale[lay.shift] = 5.0, 1.0
        scale[lay.phase0], scale[lay.phase1], scale[lay.gauss] = 0.1, 0.01, 100.0
        return scale

    def bounds(self, centre_shift_hz: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of ``x``: shifts within ``shift_bounds_hz`` of
        ``centre_shift_hz`` (the spectrum's common starting shift); phases are free."""
        lay, c = self.layout, self.config
        lo = np.full(lay.size, -np.inf)
        hi = np.full(lay.size, np.inf)
        lo[lay.damping], hi[lay.damping] = c.damping_bounds_per_s
        lo[lay.shift], hi[lay.shift] = np.add(c.shift_bounds_hz, centre_shift_hz)
        lo[lay.gauss], hi[lay.gauss] = c.gauss_bounds_per_s2
        return lo, hi
