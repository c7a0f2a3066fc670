"""LCModel's amplitude-ratio priors (``CHRATO``): their rows for a basis, the quadratic they add
to the fit, and what they do to a weakly determined metabolite."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.physics.priors import (
    LCMODEL_METABOLITE_PRIORS,
    LCMODEL_MM_PRIORS,
    RATIO_PRIOR_SETS,
    ZERO_DENOMINATOR_FRACTION,
    prior_matrix,
    ratio_rows,
)
from scaloquant.types import FID

#: LCModel's spellings (PCh, Scyllo) on purpose: the rows must find them.
NAMES = ("NAA", "NAAG", "Cr", "PCr", "GPC", "PCh", "Asp", "Scyllo", "GSH", "Gln")
NAMES += ("MM09", "MM12", "MM20", "Lip09", "Lip13", "Lip20")


def row(rows, label_start):
    (i,) = [k for k, label in enumerate(rows.labels) if label.startswith(label_start)]
    return rows.coefficients[i], rows.scale_terms[i], rows.sd[i]


def test_rows_are_lcmodels_chrato():
    rows = ratio_rows(RATIO_PRIOR_SETS["lcmodel"], NAMES, echo_time_ms=30.0)
    ix = {n: NAMES.index(n) for n in NAMES}
    # Asp/Big3 = .05 +- .05, Big3 = Cr + PCr + NAA + NAAG + 3 choline
    coef, scale, sd = row(rows, "Asp/")
    expected = np.zeros(len(NAMES))
    expected[ix["Asp"]] = 1.0
    for n in ("NAA", "NAAG", "Cr", "PCr"):
        expected[ix[n]] = -0.05
    expected[ix["GPC"]] = expected[ix["PCh"]] = -0.15
    np.testing.assert_allclose(coef, expected)
    np.testing.assert_allclose(scale, -(expected - np.eye(len(NAMES))[ix["Asp"]]) / 0.05)
    assert sd == 0.05
    # Scyllo/Big3 = .01 +- .01, found under LCModel's spelling
    coef, _, sd = row(rows, "sIns/")
    assert coef[ix["Scyllo"]] == 1.0 and sd == 0.01
    # MM20/MM09* = 1.5 +- .375 +WT= Lip09*: the width scales with MM09 + Lip09
    coef, scale, sd = row(rows, "MM20/")
    assert coef[ix["MM20"]] == 1.0 and coef[ix["MM09"]] == -1.5 and sd == 0.375
    assert np.count_nonzero(coef) == 2
    assert scale[ix["MM09"]] == 1.0 and scale[ix["Lip09"]] == 1.0 and np.count_nonzero(scale) == 2
    # GSH/Gln+GSH = .286 +- .126: the numerator is in its own denominator
    coef, _, _ = row(rows, "GSH/")
    assert coef[ix["GSH"]] == pytest.approx(1 - 0.286) and coef[ix["Gln"]] == -0.286
    # every LCModel prior whose terms the basis has (Glc, GABA and Tau are absent here)
    assert rows.n_rows == 4 + 3  # MM14 and MM17 are not in NAMES: their rows are left out


def test_priors_left_out_as_lcmodel_leaves_them():
    assert ratio_rows(RATIO_PRIOR_SETS["none"], NAMES).n_rows == 0
    # above TE 49 ms the GSH prior goes (LCModel: GSH can be larger than normal there)
    long_te = ratio_rows(LCMODEL_METABOLITE_PRIORS, NAMES, echo_time_ms=68.0)
    assert not any(label.startswith("GSH/") for label in long_te.labels)
    # a measured macromolecule spectrum: the parametric MM priors have nothing to hold
    measured = ratio_rows(LCMODEL_MM_PRIORS, ("NAA", "Cr", "Mac"))
    assert measured.n_rows == 0


def test_prior_matrix_known_answer():
    """One prior ``x1 / x2 = 0.5 +- 0.1`` at preliminary ``x2 = 2``: ``Q = sigma^2 w w^T`` with
    ``w = (1, -0.5) / (0.1 * 2)``; a zero denominator falls back to 1e-3 of the total."""
    coef = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    scale = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    sd = torch.tensor([0.1], dtype=torch.float64)
    amplitudes = torch.tensor([[3.0, 2.0], [4.0, 0.0]], dtype=torch.float64)
    noise_var = torch.tensor([2.0, 1.0], dtype=torch.float64)
    q = prior_matrix(coef, scale, sd, amplitudes, noise_var).numpy()
    w = np.array([1.0, -0.5]) / (0.1 * 2.0)
    np.testing.assert_allclose(q[0], 2.0 * np.outer(w, w))
    w0 = np.array([1.0, -0.5]) / (0.1 * ZERO_DENOMINATOR_FRACTION * 4.0)
    np.testing.assert_allclose(q[1], np.outer(w0, w0))


def test_a_weak_metabolite_is_held_near_its_prior_ratio():
    """Asp, whose multiplets hide under NAA, Glu and Ins, at SNR 8 (largest peak over the noise
    SD per real part): over 24 noise draws with Asp at exactly LCModel's expected 5 % of Big3,
    the prior brings its RMS error down and its bound below the prior's own width; the
    well-determined NAA does not move by more than a tenth of its bound."""
    names = ("NAA", "Cr", "PCr", "PCho", "GPC", "Asp", "Glu", "Ins")
    basis = default_basis().subset(names)
    amplitudes = np.array([1.0, 0.5, 0.4, 0.03, 0.05, 0.0, 1.0, 0.6])
    big3 = 1.0 + 0.5 + 0.4 + 3 * (0.03 + 0.05)
    amplitudes[names.index("Asp")] = 0.05 * big3
    t = basis.time_axis_s()
    clean = (amplitudes @ basis.fids) * np.exp(-8.0 * t)
    rng = np.random.default_rng(3)
    n = 24
    peak = np.abs(np.fft.fft(clean)).max()
    sd = peak / 8 / np.sqrt(basis.n_points)
    noise = sd * (rng.normal(size=(n, t.size)) + 1j * rng.normal(size=(n, t.size)))
    fid = FID(clean + noise, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    config = replace(FIT_PRESETS["invivo"], macromolecules="none")
    free = fit_spectra(fid, basis, config)
    held = fit_spectra(fid, basis, replace(config, ratio_priors="lcmodel"))
    asp = names.index("Asp")
    rms_free = np.sqrt(np.mean((free.amplitudes[:, asp] - amplitudes[asp]) ** 2))
    rms_held = np.sqrt(np.mean((held.amplitudes[:, asp] - amplitudes[asp]) ** 2))
    assert rms_held < 0.8 * rms_free, (rms_held, rms_free)
    assert np.all(held.crlb_sd[:, asp] < free.crlb_sd[:, asp])
    assert np.median(held.crlb_sd[:, asp]) < 1.2 * 0.05 * big3
    naa = names.index("NAA")
    shift = np.abs(held.amplitudes[:, naa] - free.amplitudes[:, naa])
    assert np.median(shift) < 0.1 * np.median(free.crlb_sd[:, naa])
