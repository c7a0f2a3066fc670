"""The scale of a basis set: its signal per proton (:mod:`scaloquant.signal.scale`, where the
measurement lives so that the fit and the simulation share it), for a :class:`BasisSet`."""

from __future__ import annotations

from ..signal import scale
from ..types import BasisSet


def signal_per_proton(basis: BasisSet) -> tuple[float, str]:
    """``u``, the basis' first-point signal per proton, and the singlet metabolite it was
    measured on (:func:`scaloquant.signal.scale.signal_per_proton`).

    Raises
    ------
    IncompatibleDataError
        The basis holds none of :data:`scaloquant.signal.scale.REFERENCE_SINGLETS`.
    """
    return scale.signal_per_proton(basis.names, basis.fids, basis.acquisition)
