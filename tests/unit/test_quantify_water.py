"""Water scaling (ISMRM 2016 challenge formula): its constants, a known answer, the basis
calibration, and its refusals."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from scaloquant.errors import ConfigError, IncompatibleDataError
from scaloquant.io import default_basis
from scaloquant.quantify import (
    WaterScaling,
    concentrations_mM,
    metabolite_relaxation_correction,
    relaxation_corrected_water_mM,
    signal_per_proton,
    tcr_ratios,
    water_area,
)


def test_challenge_constants_follow_from_its_parameters():
    s = WaterScaling()
    # the README prints 29697 mM and 1.206 (rounded): we compute them from its parameters
    assert relaxation_corrected_water_mM(s) == pytest.approx(29697, abs=0.5)
    assert metabolite_relaxation_correction(s) == pytest.approx(1.206, abs=5e-4)


def test_known_answer_10_mM_creatine():
    """A voxel of 10 mM Cr and the challenge's water, built with one signal scale ``k`` per
    proton: Cr contributes ``10 mM * exp(-TE/T2) * k`` per proton (the basis has no decay),
    water ``2 protons * [H2O]_rc * k``. The formula must give back 10 mM."""
    basis = default_basis()
    s = WaterScaling()
    k = 3.7e-3
    t = basis.acquisition.time_axis_s()
    water = 2 * relaxation_corrected_water_mM(s) * k * np.exp(-t / 0.04 + 2j * np.pi * 3.0 * t)
    amplitude = 10.0 * k / metabolite_relaxation_correction(s)  # on the basis scale (u = 1)
    unit, ref = signal_per_proton(basis)
    assert ref == "Cr" and unit == pytest.approx(1.0, abs=1e-6)
    mM = concentrations_mM(np.array([[amplitude]]), water_area(water[None]), unit, s)
    assert mM[0, 0] == pytest.approx(10.0, rel=1e-9)


def test_singlets_start_at_their_proton_count_in_the_default_basis():
    basis = default_basis()
    for name, protons in (("Cr", 5), ("PCr", 5), ("sIns", 6), ("Gly", 2)):
        assert abs(basis.fids[basis.index(name), 0]) == pytest.approx(protons, abs=1e-5)


def test_basis_scale_follows_the_basis():
    basis = default_basis()
    scaled = basis.subset(["PCr", "NAA"])
    scaled = dataclasses.replace(scaled, fids=4.0 * scaled.fids)
    unit, ref = signal_per_proton(scaled)
    assert ref == "PCr" and unit == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(IncompatibleDataError, match="mM cannot be computed"):
        signal_per_proton(basis.subset(["NAA", "Glu"]))


def test_csf_adds_its_water_and_removes_its_volume():
    s = WaterScaling(tissue_fractions=(0.5, 0.3, 0.2))
    te = 30.0
    water = (
        1000
        / 18.015
        * (
            0.5 * 0.78 * math.exp(-te / 110)
            + 0.3 * 0.65 * math.exp(-te / 80)
            + 0.2 * 0.97 * math.exp(-te / 2030)
        )
    )
    assert relaxation_corrected_water_mM(s) == pytest.approx(1000 * water, rel=1e-12)
    base = concentrations_mM(np.ones((1, 1)), np.ones(1), 1.0, s)
    expected = 1000 * water * math.exp(te / 160) * 2 / 0.8
    assert base[0, 0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tissue_fractions": (0.6, 0.6, 0.0)},
        {"tissue_fractions": (0.0, 0.0, 1.0)},
        {"tissue_fractions": (0.6, 0.4)},
        {"water_t2_ms": (110, 0, 80)},
        {"metabolite_t2_ms": 0},
        {"echo_time_ms": -1},
    ],
)
def test_bad_assumptions_are_refused(kwargs):
    with pytest.raises(ConfigError):
        WaterScaling(**kwargs)


def test_zero_water_area_gives_nan():
    out = concentrations_mM(np.ones((2, 3)), np.array([0.0, 2.0]), 1.0, WaterScaling())
    assert np.all(np.isnan(out[0])) and np.all(np.isfinite(out[1]))


def test_ratios_to_total_creatine():
    names = ("NAA", "Cr", "PCr")
    ratios, note = tcr_ratios(names, np.array([[2.0, 1.0, 3.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(ratios[0], [0.5, 0.25, 0.75])
    assert np.all(np.isnan(ratios[1])) and "Cr + PCr" in note
    ratios, note = tcr_ratios(("NAA", "Cr"), np.array([[2.0, 4.0]]))
    np.testing.assert_allclose(ratios[0], [0.5, 1.0])
    assert "no PCr" in note
    ratios, note = tcr_ratios(("NAA",), np.array([[2.0]]))
    assert np.all(np.isnan(ratios)) and "neither" in note
