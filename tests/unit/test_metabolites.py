"""Metabolite names under the spellings of other tools' bases (LCModel, spant, Osprey)."""

from __future__ import annotations

import numpy as np
import pytest

from _shared import INVIVO
from scaloquant.metabolites import COMBINATIONS, canonical, has_all, indices_of
from scaloquant.quantify.results import tcr_ratios

BASES = [
    "philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS",
    "siemens-press30-suspect/press_30ms_3T.basis",
    "philips-press30-spant/lcmodel_reference/3t.basis",
]


def test_aliases_and_combinations():
    assert (
        canonical("PCh") == "PCho" and canonical("Scyllo") == "sIns" and canonical("NAA") == "NAA"
    )
    names = ("Cr", "GPC", "PCh", "PCr", "NAA")
    assert indices_of(COMBINATIONS["tCho"], names) == [1, 2]
    assert has_all(COMBINATIONS["tCho"], names) and not has_all(COMBINATIONS["tNAA"], names)
    ratios, note = tcr_ratios(names, np.array([2.0, 0.5, 0.5, 2.0, 6.0]))
    np.testing.assert_allclose(ratios, [0.5, 0.125, 0.125, 0.5, 1.5])
    assert "Cr + PCr" in note


@pytest.mark.skipif(not INVIVO.is_dir(), reason="../shared/data/invivo is absent")
@pytest.mark.parametrize("path", BASES)
def test_every_combination_is_complete_in_other_tools_bases(path):
    """tNAA, tCr, tCho and Glx find all their parts in the LCModel/spant/Osprey bases, whose
    phosphocholine is 'PCh' (a tCho of GPC alone read 0 when the fit put choline in PCh)."""
    from scaloquant.io import read_basis

    names = read_basis(INVIVO / path).names
    for combination, parts in COMBINATIONS.items():
        assert has_all(parts, names), (combination, names)
