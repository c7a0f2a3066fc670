"""Metabolite names: the spellings of common basis sets, and LCModel's combined metabolites.

Basis sets from different tools name the same molecule differently (LCModel and Osprey ``PCh``
for phosphocholine, ``mI`` or ``Ins`` for myo-inositol, ``Scyllo`` or ``sI`` for
scyllo-inositol...). Everything that looks a metabolite up by meaning (combined metabolites, the
creatine denominator of ratios, literature concentrations) goes through :func:`canonical`, so
that a user's basis keeps its own names in every output while ``tCho`` still finds its choline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

#: Other spellings -> the name used here (the ISMRM 2016 basis' names). Seen in the LCModel,
#: spant and Osprey bases of ``../shared/data/invivo`` (``PCh``, ``Scyllo``) and in common
#: LCModel/FSL-MRS/Osprey basis sets (``mI``, ``sI``, ``Cho``, ``Cre``, ``Act``).
NAME_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "PCh": "PCho",
        "Cho": "PCho",
        "mI": "Ins",
        "mIns": "Ins",
        "myo": "Ins",
        "sI": "sIns",
        "Scyllo": "sIns",
        "Scy": "sIns",
        "Cre": "Cr",
        "Act": "Ace",
    }
)

#: LCModel's combined rows: name -> the metabolites summed (canonical names).
COMBINATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "tNAA": ("NAA", "NAAG"),
        "tCr": ("Cr", "PCr"),
        "tCho": ("GPC", "PCho"),
        "Glx": ("Glu", "Gln"),
    }
)

#: The singlets a 1H brain spectrum is referenced by, canonical name -> chemical shift (ppm;
#: Govindaraju et al., NMR Biomed 2000;13:129): NAA's acetyl, the creatines' and the cholines'
#: methyls, the landmarks of LCModel's referencing (its PPMREF 2.01, 3.03, 3.22) and of
#: Osprey's (Cr and Cho).
REFERENCE_SINGLETS: Mapping[str, float] = MappingProxyType(
    {"NAA": 2.008, "Cr": 3.027, "PCr": 3.029, "GPC": 3.212, "PCho": 3.208}
)


def canonical(name: str) -> str:
    """The name used here for a basis name (itself when it has no other spelling)."""
    return NAME_ALIASES.get(name, name)


def indices_of(parts: Sequence[str], names: Sequence[str]) -> list[int]:
    """Positions in ``names`` (a basis' own spellings) of the metabolites ``parts`` (canonical
    names), in ``names`` order; parts the basis lacks are left out."""
    wanted = set(parts)
    return [i for i, n in enumerate(names) if canonical(n) in wanted]


def has_all(parts: Sequence[str], names: Sequence[str]) -> bool:
    """Whether ``names`` holds every one of ``parts`` (under any spelling)."""
    return {canonical(n) for n in names} >= set(parts)
