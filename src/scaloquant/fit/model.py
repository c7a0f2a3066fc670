"""How the fit's metabolites share their lineshape parameters (groups), and what the
per-metabolite global moves of :mod:`scaloquant.fit.search` need (twin pairs, the margins of a
lost group and of a misfit).

The signal model itself is :mod:`scaloquant.physics.model` (one torch implementation, used by
the simulator and the fit); its float64 numpy rendering, the tests' oracle, is
``tests/oracle.py``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, UnknownMetaboliteError
from ..signal import axes
from ..types import BasisSet
from .config import FitConfig, macromolecule_names

#: Least cosine similarity of the magnitude spectra of two metabolites fitted twice, with their
#: lineshapes swapped (0.94 for Cr/PCr, 0.97 for GPC/PCho; at most 0.84 for other close pairs of
#: the default basis, e.g. Gly/Ins).
TWIN_MIN_SIMILARITY = 0.9
#: The global moves (:mod:`scaloquant.fit.search`): a group is restarted as lost when its shift
#: lies within this fraction of the half-width of the shift bounds from one of them, or its
#: damping within this fraction of the damping range from the upper bound.
LOST_MARGIN = 0.2
#: Residual SD, relative to an independent noise estimate (a signal-free region), above which
#: the search is repeated from a second start.
MISFIT_RATIO = 1.5


def twin_groups(
    basis: BasisSet, config: FitConfig, group_of: np.ndarray, damped: np.ndarray
) -> tuple[tuple[int, int, float], ...]:
    """Pairs of single-metabolite groups ``(g, h, f_h - f_g)`` with near-identical spectra
    whose labels a local fit can swap (Cr/PCr, GPC/PCho): largest peaks in the window
    (``f``, Hz, 8x zero-filled) within ``config.twin_max_separation_hz``, and magnitude
    spectra with a cosine similarity of at least :data:`TWIN_MIN_SIMILARITY`.

    ``group_of`` ``(M,)`` the group of each metabolite; ``damped`` ``(M, N)`` the basis FIDs
    damped by the starting damping (:func:`scaloquant.fit.search.twins`)."""
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


def metabolite_and_each_mm_groups(
    names: tuple[str, ...], metadata=None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Groups for ``grouping="metabolites_and_each_mm"``: the metabolites in one group named
    ``"metabolites"`` (first, where the basis has any), and each macromolecule and lipid
    component in a group of its own, named after it, as LCModel gives each of its MM and lipid
    lines its own width and shift (LCModel manual, sec. 11.7, ``CHSIMU``):
    ``(group_of (M,), group names)``."""
    mm = set(macromolecule_names(names, metadata))
    metabolites = tuple(n for n in names if n not in mm)
    group_names = (("metabolites",) if metabolites else ()) + tuple(n for n in names if n in mm)
    return (
        np.array([0 if n not in mm else group_names.index(n) for n in names]),
        group_names,
    )


def named_groups(
    names: tuple[str, ...], grouping: tuple[tuple[str, ...], ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Groups given as tuples of metabolite names (``FitConfig.grouping``); names in no group
    keep a group of their own: ``(group_of (M,), group names)``."""
    group_of = np.full(len(names), -1)
    group_names: list[str] = []
    for group in grouping:
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
    return group_of, tuple(group_names)
