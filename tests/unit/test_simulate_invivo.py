"""The ``invivo`` preset: draws stay in their documented ranges, the independent fraction is
independent of the literature, and rendered spectra have their lines, widths, water and SNR
where the prior puts them. Known answers for the eddy-current phase and a parametric Gaussian.
"""

import dataclasses

import numpy as np
import pytest

import oracle
from scaloquant.errors import IncompatibleDataError
from scaloquant.io import default_basis
from scaloquant.physics.macromolecules import (
    LCMODEL_COMPONENTS,
    LIPID_COMPONENTS,
    MM_COMPONENTS,
    parametric_components,
)
from scaloquant.signal import axes, lineshapes
from scaloquant.simulate.config import BaselineConfig
from scaloquant.simulate.draws import LIPIDS, MACROMOLECULES, METABOLITES, draw_invivo
from scaloquant.simulate.effects import eddy_current_phase_rad, water_fids
from scaloquant.simulate.invivo import (
    render_invivo,
    simulate_invivo_batch,
)
from scaloquant.simulate.linewidths import (
    BasisLines,
    basis_lines,
    gaussian_fwhm_for_voigt_hz,
    voigt_fwhm_hz,
)
from scaloquant.simulate.prior import InvivoPrior
from scaloquant.types import BasisSet

PRIOR = InvivoPrior()
N_DRAWS = 4000
ZERO_FILL = 8


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def draws(basis):
    return draw_invivo(PRIOR, basis.names, N_DRAWS, np.random.default_rng(1))


def column(params, name):
    return params.basis_names.index(name)


def quiet(params, *, keep=None, water=False):
    """``params`` without lipids, baseline, eddy currents and phases (and without water unless
    asked); with ``keep`` only those basis signals."""
    n = params.n_signals
    conc = params.concentrations_mm.copy()
    if keep is not None:
        conc[:, [i for i, x in enumerate(params.basis_names) if x not in keep]] = 0.0
    zeros = np.zeros(n)
    return dataclasses.replace(
        params,
        concentrations_mm=conc,
        component_amplitudes_mm=params.component_amplitudes_mm * 0.0,
        water_height=params.water_height if water else params.water_height * 0.0,
        baseline_height=params.baseline_height * 0.0,
        eddy_amplitude_rad=zeros,
        phase0_deg=zeros,
        phase1_deg_per_ppm=zeros,
    )


def zero_filled(fids, basis):
    spec = axes.spectrum(fids, ZERO_FILL * basis.n_points)
    ppm = axes.ppm_axis(
        ZERO_FILL * basis.n_points,
        basis.dwell_time_s,
        basis.spectrometer_freq_mhz,
        basis.ppm_reference,
    )
    return ppm, spec


def peak_ppm(ppm, values, window):
    inside = (ppm >= window[0]) & (ppm <= window[1])
    return ppm[inside][np.argmax(values[..., inside], axis=-1)]


def fwhm_ppm(ppm, real_spectrum, window):
    """Full width at half maximum of the highest peak in ``window``, linear interpolation."""
    inside = np.flatnonzero((ppm >= window[0]) & (ppm <= window[1]))
    return oracle.half_max_width(ppm, real_spectrum, inside[np.argmax(real_spectrum[inside])])


# --- draws -------------------------------------------------------------------------------------


def test_same_seed_same_parameters_and_signals(basis):
    a = draw_invivo(PRIOR, basis.names, 16, np.random.default_rng(5))
    b = draw_invivo(PRIOR, basis.names, 16, np.random.default_rng(5))
    c = draw_invivo(PRIOR, basis.names, 16, np.random.default_rng(6))
    for name, value in a.columns().items():
        np.testing.assert_array_equal(value, b.columns()[name], err_msg=name)
    assert not np.array_equal(a.concentrations_mm, c.concentrations_mm)
    ra = render_invivo(basis, a, np.random.default_rng(9)).fids
    rb = render_invivo(basis, b, np.random.default_rng(9)).fids
    np.testing.assert_array_equal(ra, rb)


def test_batch_equals_its_parts(basis, draws):
    params = draws.take(slice(0, 8))
    whole = render_invivo(basis, params).fids
    parts = [render_invivo(basis, params.take(slice(i, i + 1))).fids for i in (0, 5)]
    np.testing.assert_allclose(np.concatenate(parts), whole[[0, 5]], rtol=0, atol=1e-9)


def test_shared_gaussian_shortcut_equals_the_per_group_rendering(basis, draws):
    params = draws.take(slice(0, 6))
    assert params.shares_gaussian
    # a relative 1e-13 change of one group's beta takes the per-metabolite path
    beta = params.gauss_per_s2.copy()
    beta[:, LIPIDS] *= 1 + 1e-13
    other = dataclasses.replace(params, gauss_per_s2=beta)
    assert not other.shares_gaussian
    a, b = render_invivo(basis, params).fids, render_invivo(basis, other).fids
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * np.abs(a).max())


def test_concentrations_stay_in_their_ranges(draws):
    ind = draws.independent
    s_lo, s_hi = PRIOR.literature_spread
    for i, name in enumerate(draws.basis_names):
        c = draws.concentrations_mm[:, i]
        if name == "Mac":
            continue
        lo, hi = PRIOR.concentration_range_mm(name)
        lit = c[~ind]
        assert lit.min() >= s_lo * lo and lit.max() <= s_hi * hi, name
        assert c[ind].min() >= 0 and c[ind].max() <= PRIOR.independent_scale * hi, name
    mac = draws.concentrations_mm[:, column(draws, "Mac")]
    tcr = draws.concentrations_mm[:, [column(draws, "Cr"), column(draws, "PCr")]].sum(axis=1)
    ratio = mac[~ind] / tcr[~ind]
    lo, hi = PRIOR.mm_per_tcr_range
    assert ratio.min() >= lo - 1e-12 and ratio.max() <= hi + 1e-12
    # measured Mac in the basis: no parametric MM, lipids only
    assert draws.component_names == LIPID_COMPONENTS


def test_fractions_match_the_prior(draws):
    # binomial sd of a fraction over 4000 draws is <= 0.008: 0.03 is about 4 sd
    assert abs(draws.independent.mean() - PRIOR.independent_fraction) < 0.03
    assert abs(draws.lipids_present.mean() - PRIOR.lipid_fraction) < 0.03
    has_water = draws.water_height.max(axis=1) > 0
    assert abs(has_water.mean() - PRIOR.water_fraction) < 0.03
    assert abs((draws.eddy_amplitude_rad != 0).mean() - PRIOR.eddy_fraction) < 0.03
    # absent lipids are zero
    assert np.all(draws.component_amplitudes_mm[~draws.lipids_present] == 0)


def test_lineshape_shift_and_artefacts_stay_in_their_ranges(draws):
    sf = PRIOR.spectrometer_freq_mhz
    alpha = draws.damping_per_s
    t2_lo, t2_hi = PRIOR.metabolite_t2_range_s
    assert alpha[:, METABOLITES].min() >= 1 / t2_hi and alpha[:, METABOLITES].max() <= 1 / t2_lo
    assert PRIOR.mm_damping_range_per_s[0] <= alpha[:, MACROMOLECULES].min()
    assert alpha[:, MACROMOLECULES].max() <= PRIOR.mm_damping_range_per_s[1]
    assert alpha[:, LIPIDS].max() <= PRIOR.lipid_damping_range_per_s[1]
    # all groups share the Gaussian part (one B0 inhomogeneity)
    assert np.all(draws.gauss_per_s2 == draws.gauss_per_s2[:, :1])
    # the total singlet width: Voigt of the basis' own width, alpha / pi and the Gaussian part
    gauss_fwhm = lineshapes.gaussian_fwhm_hz(np.sqrt(draws.gauss_per_s2[:, METABOLITES]))
    total = voigt_fwhm_hz(PRIOR.basis_linewidth_hz + alpha[:, METABOLITES] / np.pi, gauss_fwhm)
    lo, hi = PRIOR.singlet_fwhm_range_ppm
    assert total.min() >= lo * sf * (1 - 1e-9) and total.max() <= hi * sf * (1 + 1e-9)

    shift = draws.shift_hz / sf  # ppm
    assert np.abs(shift[:, METABOLITES]).max() <= PRIOR.shift_range_ppm[1]
    mm_dev = shift[:, MACROMOLECULES] - shift[:, METABOLITES]
    lip_dev = shift[:, LIPIDS] - shift[:, METABOLITES]
    assert np.abs(mm_dev).max() <= PRIOR.mm_shift_deviation_range_ppm[1] + 1e-12
    assert np.abs(lip_dev).max() <= PRIOR.lipid_shift_deviation_range_ppm[1] + 1e-12
    mac = column(draws, "Mac")
    assert np.all(draws.shift_dev_hz[:, mac] == 0) and np.all(draws.damping_dev_per_s[:, mac] == 0)
    assert np.abs(draws.shift_dev_hz).max() / sf <= PRIOR.shift_deviation_range_ppm[1]
    assert np.abs(draws.damping_dev_per_s).max() <= PRIOR.damping_deviation_range_per_s[1]

    assert draws.water_centre_ppm.min() >= 4.65 - 0.3 and draws.water_centre_ppm.max() <= 4.95
    fwhm = draws.water_damping_per_s / np.pi
    assert fwhm.min() >= PRIOR.water_fwhm_range_hz[0] and fwhm.max() <= PRIOR.water_fwhm_range_hz[1]
    present = draws.water_height[draws.water_height > 0]
    assert present.min() >= PRIOR.water_height_range[0]
    assert present.max() <= PRIOR.water_height_range[1]
    bl = PRIOR.baseline
    for name, bounds in (
        ("baseline_centre_ppm", bl.centre_range_ppm),
        ("baseline_fwhm_ppm", bl.fwhm_range_ppm),
        ("baseline_height", bl.height_range),
        ("eddy_amplitude_rad", PRIOR.eddy_amplitude_range_rad),
        ("eddy_time_constant_s", PRIOR.eddy_time_constant_range_s),
        ("phase0_deg", PRIOR.phase0_range_deg),
        ("phase1_deg_per_ppm", PRIOR.phase1_range_deg_per_ppm),
        ("snr", PRIOR.snr_range),
    ):
        value = getattr(draws, name)
        assert bounds[0] <= value.min() and value.max() <= bounds[1], name
    # log-uniform SNR: the geometric middle splits the draws in halves
    middle = np.sqrt(PRIOR.snr_range[0] * PRIOR.snr_range[1])
    assert abs((draws.snr < middle).mean() - 0.5) < 0.03


def test_independent_fraction_ignores_the_literature(draws):
    ind = draws.independent
    naa = draws.concentrations_mm[:, column(draws, "NAA")]
    lo, hi = PRIOR.concentration_range_mm("NAA")
    scale = PRIOR.independent_scale * hi
    # uniform on [0, 2 hi]: the literature range holds only its share, the rest lies outside
    inside = (naa[ind] >= lo) & (naa[ind] <= hi)
    assert abs(inside.mean() - (hi - lo) / scale) < 0.05
    assert (naa[ind] < PRIOR.literature_spread[0] * lo).mean() > 0.05  # below any literature draw
    assert abs(naa[ind].mean() - scale / 2) < 0.05 * scale
    # the measured MM follows tCr in literature draws, not in independent ones
    mac = draws.concentrations_mm[:, column(draws, "Mac")]
    tcr = draws.concentrations_mm[:, [column(draws, "Cr"), column(draws, "PCr")]].sum(axis=1)
    assert np.corrcoef(mac[~ind], tcr[~ind])[0, 1] > 0.3
    # sd of a correlation of ~1200 independent pairs is ~0.03
    assert abs(np.corrcoef(mac[ind], tcr[ind])[0, 1]) < 0.1
    assert abs(np.corrcoef(naa[ind], tcr[ind])[0, 1]) < 0.1


def test_parametric_macromolecules_replace_the_measured_one(basis):
    prior = dataclasses.replace(PRIOR, macromolecules="parametric")
    params = draw_invivo(prior, basis.names, 200, np.random.default_rng(2))
    assert params.component_names == MM_COMPONENTS + LIPID_COMPONENTS
    assert np.all(params.concentrations_mm[:, column(params, "Mac")] == 0)
    mm = params.component_amplitudes_mm[:, : len(MM_COMPONENTS)]
    for k, name in enumerate(MM_COMPONENTS):
        lo, hi = prior.mm_parametric_range_mm[name]
        lit = mm[~params.independent, k]
        assert lit.min() >= lo and lit.max() <= hi
        assert mm[params.independent, k].max() <= prior.independent_scale * hi
    fids = render_invivo(basis, params.take(slice(0, 4))).fids
    assert np.all(np.isfinite(fids))


def test_a_metabolite_without_a_range_is_refused(basis):
    from scaloquant.errors import UnknownMetaboliteError

    with pytest.raises(UnknownMetaboliteError, match="Xyz"):
        draw_invivo(PRIOR, (*basis.names, "Xyz"), 4, np.random.default_rng(0))


# --- rendered spectra -------------------------------------------------------------------------


def line_ppm(basis, params, keep, window):
    """Peak ppm of the real spectrum of ``params`` with only ``keep``, drift removed."""
    fids = render_invivo(basis, quiet(params, keep=keep)).fids
    ppm, spec = zero_filled(fids, basis)
    sf = basis.spectrometer_freq_mhz
    first = column(params, keep[0])
    drift = (params.shift_hz[:, METABOLITES] + params.shift_dev_hz[:, first]) / sf
    return np.array(
        [peak_ppm(ppm - d, s.real, window) for d, s in zip(drift, spec, strict=True)]
    ), drift


@pytest.mark.parametrize(
    ("keep", "expected", "tolerance_all"),
    # basis peaks: NAA 2.006, Cr/PCr 3.018/3.034 (data README); with every signal present the
    # broad NAAG (2.04) and Mac (2.03) lines pull the NAA peak by up to 0.02 ppm
    [(("NAA",), 2.01, 0.025), (("Cr", "PCr"), 3.03, 0.015)],
)
def test_naa_and_cr_lines_sit_at_their_ppm(basis, draws, keep, expected, tolerance_all):
    params = draws.take(slice(0, 24))
    window = (expected - 0.1, expected + 0.1)
    alone, drift = line_ppm(basis, params, keep, window)
    # alone, only the per-metabolite shift of PCr against Cr (<= 0.01 ppm) and the bin grid
    assert np.all(np.abs(alone - expected) < 0.01), alone
    ppm, spec = zero_filled(render_invivo(basis, quiet(params)).fids, basis)
    together = np.array(
        [peak_ppm(ppm - d, s.real, window) for d, s in zip(drift, spec, strict=True)]
    )
    assert np.all(np.abs(together - expected) < tolerance_all), together


def test_residual_water_lies_within_its_window_and_height(basis, draws):
    # water at least twice NAA, so that it is the tallest line of its window
    prior_one = dataclasses.replace(
        PRIOR, water_components=1, water_fraction=1.0, water_height_range=(2.0, 20.0)
    )
    params = draw_invivo(prior_one, basis.names, 16, np.random.default_rng(4))
    params = quiet(params, water=True)
    out = render_invivo(basis, params)
    ppm, spec_zf = zero_filled(out.fids, basis)
    where = peak_ppm(ppm, np.abs(spec_zf), (3.9, 5.4))
    assert np.all(np.abs(where - params.water_centre_ppm[:, 0]) < 0.01)  # lines under it pull
    assert np.all(np.abs(where - 4.65) <= 0.3 + 0.01)
    # known answer: each line's DFT at its own frequency has magnitude height x H
    acq = basis.acquisition
    h = np.array([2.0, 0.5])
    fids = water_fids(
        acq,
        np.array([[4.5], [4.9]]),
        np.array([[np.pi * 5.0], [np.pi * 20.0]]),
        np.array([[1.0], [3.0]]),
        np.array([[30.0], [-120.0]]),
        h,
    )
    f_hz = axes.ppm_to_hz(np.array([4.5, 4.9]), acq.spectrometer_freq_mhz, acq.ppm_reference)
    t = acq.time_axis_s()
    at_line = (fids * np.exp(-2j * np.pi * f_hz[:, None] * t)).sum(axis=1)
    np.testing.assert_allclose(np.abs(at_line), [2.0, 1.5], rtol=1e-12)
    np.testing.assert_allclose(np.angle(at_line, deg=True), [30.0, -120.0], rtol=1e-12)


def test_snr_matches_the_requested_one(basis, draws):
    params = quiet(draws.take(slice(0, 48)))
    clean = render_invivo(basis, params)
    noisy = render_invivo(basis, params, np.random.default_rng(3))
    np.testing.assert_array_equal(clean.reference_height, noisy.reference_height)
    # the reference height is the NAA window's maximum of the (phase-free) spectrum
    mask = (basis.ppm_axis() >= 1.9) & (basis.ppm_axis() <= 2.1)
    np.testing.assert_allclose(
        axes.spectrum(clean.fids).real[:, mask].max(axis=1), clean.reference_height, rtol=1e-12
    )
    # SNR measured as a user would: H over the sd of the real spectrum where there is no signal
    # (8-14 ppm, ~750 bins: the sd's relative error is ~2.6 %, so 12 % is ~4.5 sd)
    ppm = basis.ppm_axis()
    empty = (ppm > 8) & (ppm < 14)
    noise_sd = axes.spectrum(noisy.fids).real[:, empty].std(axis=1)
    measured = clean.reference_height / noise_sd
    np.testing.assert_allclose(measured, params.snr, rtol=0.12)
    assert abs(np.mean(measured / params.snr) - 1) < 0.02


def test_naa_linewidth_is_within_the_prior(basis, draws):
    params = quiet(draws.take(slice(0, 24)), keep=("NAA",))
    fids = render_invivo(basis, params).fids
    ppm, spec = zero_filled(fids, basis)
    sf = basis.spectrometer_freq_mhz
    drift = params.shift_hz[:, METABOLITES] / sf
    widths = np.array(
        [fwhm_ppm(ppm, s.real, (1.95 + d, 2.07 + d)) for s, d in zip(spec, drift, strict=True)]
    )
    lo, hi = PRIOR.singlet_fwhm_range_ppm
    # tolerance: the basis' own line is not exactly Lorentzian and the per-metabolite damping
    # deviation adds up to 0.3 Hz: 0.004 ppm (0.5 Hz)
    assert widths.min() >= lo - 0.004 and widths.max() <= hi + 0.004, widths
    # and each width is the drawn one within 8 %
    naa = column(params, "NAA")
    alpha = params.damping_per_s[:, METABOLITES] + params.damping_dev_per_s[:, naa]
    gauss = lineshapes.gaussian_fwhm_hz(np.sqrt(params.gauss_per_s2[:, METABOLITES]))
    expected = voigt_fwhm_hz(PRIOR.basis_linewidth_hz + alpha / np.pi, gauss) / sf
    np.testing.assert_allclose(widths, expected, rtol=0.08)


#: A 127.75 MHz grid (Osprey's and spant's bases) long enough (2 s) not to truncate 1 Hz lines.
GRID_127 = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 127.75, "ppm_reference": 4.65}


def singlet_basis(shape: str, fwhm_hz: float):
    """NAA and Cr as singlets (2.01, 3.03 ppm) of ``fwhm_hz`` with a Lorentzian or Gaussian
    ``shape``, on :data:`GRID_127`, 8192 points."""
    t = np.arange(8192) * GRID_127["dwell_time_s"]
    if shape == "lorentzian":
        decay = np.exp(-np.pi * fwhm_hz * t)
    else:
        decay = lineshapes.gaussian_decay(lineshapes.gaussian_damping_from_fwhm_hz(fwhm_hz), t)
    sf, ref = GRID_127["spectrometer_freq_mhz"], GRID_127["ppm_reference"]
    fids = [decay * np.exp(2j * np.pi * axes.ppm_to_hz(p, sf, ref) * t) for p in (2.01, 3.03)]
    return BasisSet(("NAA", "Cr"), np.array(fids), **GRID_127)


def naa_only(prior: InvivoPrior, width_ppm: float) -> InvivoPrior:
    """``prior`` drawing NAA alone at one total singlet width, noiseless, no artefacts."""
    return dataclasses.replace(
        prior,
        concentrations_mm={"NAA": (10.0, 10.0), "Cr": (0.0, 0.0)},
        independent_fraction=0.0,
        mm_parametric_range_mm={k: (0.0, 0.0) for k in prior.mm_parametric_range_mm},
        lipid_fraction=0.0,
        water_fraction=0.0,
        eddy_fraction=0.0,
        baseline=BaselineConfig(height_range=(0.0, 0.0)),
        phase0_range_deg=(0.0, 0.0),
        phase1_range_deg_per_ppm=(0.0, 0.0),
        shift_range_ppm=(0.0, 0.0),
        shift_deviation_range_ppm=(0.0, 0.0),
        damping_deviation_range_per_s=(0.0, 0.0),
        singlet_fwhm_range_ppm=(width_ppm, width_ppm),
        snr_range=(1e9, 1e9),
    )


@pytest.mark.parametrize("shape", ["lorentzian", "gaussian"])
@pytest.mark.parametrize("width_ppm", [0.03, 0.06, 0.12])
def test_the_drawn_width_in_ppm_is_the_rendered_one_on_any_basis(shape, width_ppm):
    # a 127.75 MHz basis whose lines are 1 Hz Lorentzians (Osprey's NAA: 1.1 Hz) or 2.3 Hz
    # Gaussians (suspect's is near one): the singlet rendered at the drawn width in ppm. Before
    # session 28 the draw converted ppm at the prior's 123.26 MHz and took the basis' lines as
    # 2.1 Hz Lorentzians: 0.71-0.93 of the width on the first, 0.88-0.95 on the second
    own_hz = 1.0 if shape == "lorentzian" else 2.3
    basis = singlet_basis(shape, own_hz)
    sf = basis.spectrometer_freq_mhz
    prior = naa_only(PRIOR, width_ppm)
    signals = simulate_invivo_batch(basis, prior, 16, np.random.default_rng(3))
    params = signals.parameters
    assert params.spectrometer_freq_mhz == sf
    # known answer without the table's reading: the Voigt width (Olivero & Longbothum, 0.02 %)
    # of the basis' line under the drawn alpha and beta
    alpha = params.damping_per_s[:, METABOLITES]
    gauss = lineshapes.gaussian_fwhm_hz(np.sqrt(params.gauss_per_s2[:, METABOLITES]))
    if shape == "lorentzian":
        voigt = voigt_fwhm_hz(own_hz + alpha / np.pi, gauss)
    else:
        voigt = voigt_fwhm_hz(alpha / np.pi, np.hypot(own_hz, gauss))
    # tolerance: the table is read by linear interpolation on a 0.24 Hz grid of Gaussian widths
    np.testing.assert_allclose(voigt / sf, width_ppm, rtol=5e-3)
    # and on the rendered spectrum, read as the other width tests read it
    ppm, spec = zero_filled(signals.fids, basis)
    rendered = np.array([fwhm_ppm(ppm, s.real, (1.9, 2.1)) for s in spec])
    np.testing.assert_allclose(rendered, width_ppm, rtol=5e-3)


def test_shifts_are_drawn_in_ppm_at_the_grids_field():
    basis = singlet_basis("lorentzian", 1.0)
    sf = basis.spectrometer_freq_mhz
    params = draw_invivo(
        PRIOR, basis.names, 4000, np.random.default_rng(1), basis_lines(basis, PRIOR)
    )
    shift = params.shift_hz / sf
    lo, hi = PRIOR.shift_range_ppm
    # the drawn range is the prior's, to its ends (before: 3.5 % short at 127.75 MHz)
    assert lo <= shift[:, METABOLITES].min() < 0.99 * lo
    assert 0.99 * hi < shift[:, METABOLITES].max() <= hi
    dev = params.shift_dev_hz[:, 0] / sf
    assert 0.99 * PRIOR.shift_deviation_range_ppm[1] < dev.max()
    assert dev.max() <= PRIOR.shift_deviation_range_ppm[1]


def test_parameters_render_only_on_the_field_they_were_drawn_for(basis):
    other = singlet_basis("lorentzian", 1.0)
    params = draw_invivo(PRIOR, other.names, 2, np.random.default_rng(0))  # at 123.26 MHz
    with pytest.raises(IncompatibleDataError, match="basis_lines"):
        render_invivo(other, params)
    lines = basis_lines(other, PRIOR)
    render_invivo(other, draw_invivo(PRIOR, other.names, 2, np.random.default_rng(0), lines))


def test_the_default_draw_is_the_embedded_basis_nominal_grid(basis):
    # draw_invivo without lines: the prior's field and its 2.1 Hz Lorentzian basis lines
    nominal = BasisLines(PRIOR.spectrometer_freq_mhz, PRIOR.basis_linewidth_hz)
    a = draw_invivo(PRIOR, basis.names, 64, np.random.default_rng(2))
    b = draw_invivo(PRIOR, basis.names, 64, np.random.default_rng(2), nominal)
    for name, value in a.columns().items():
        np.testing.assert_array_equal(value, b.columns()[name], err_msg=name)
    # the embedded basis is at the prior's field: measured lines change only the Gaussian part
    measured = basis_lines(basis, PRIOR)
    assert measured.spectrometer_freq_mhz == PRIOR.spectrometer_freq_mhz
    c = draw_invivo(PRIOR, basis.names, 64, np.random.default_rng(2), measured)
    np.testing.assert_array_equal(a.shift_hz, c.shift_hz)
    # the basis' NAA (2.2 Hz) is near the nominal 2.1 Hz Lorentzian: widths within 1.5 %
    np.testing.assert_allclose(c.gauss_per_s2, a.gauss_per_s2, rtol=0.15, atol=20.0)


def test_voigt_width_inverse():
    fl = np.array([1.0, 3.0, 5.0])
    fv = np.array([4.0, 8.0, 14.0])
    np.testing.assert_allclose(voigt_fwhm_hz(fl, gaussian_fwhm_for_voigt_hz(fv, fl)), fv)
    # narrower than the Lorentzian part alone: no Gaussian part
    assert gaussian_fwhm_for_voigt_hz(2.0, 3.0) == 0.0


# --- known answers ------------------------------------------------------------------------------


def test_eddy_current_phase_known_answer(basis, draws):
    t = basis.time_axis_s()
    phase = eddy_current_phase_rad(np.array([0.8]), np.array([0.02]), t)[0]
    assert phase[0] == pytest.approx(0.8)
    k = int(round(0.02 / basis.dwell_time_s))  # t = tau
    assert phase[k] == pytest.approx(0.8 / np.e, rel=1e-12)
    params = quiet(draws.take(slice(0, 4)))
    with_eddy = dataclasses.replace(
        params,
        eddy_amplitude_rad=np.array([0.8, -0.5, 1.0, 0.3]),
        eddy_time_constant_s=np.array([0.02, 0.01, 0.05, 0.1]),
    )
    a = render_invivo(basis, params).fids
    b = render_invivo(basis, with_eddy).fids
    expected = np.exp(
        1j * eddy_current_phase_rad(with_eddy.eddy_amplitude_rad, with_eddy.eddy_time_constant_s, t)
    )
    big = np.abs(a) > 1e-6 * np.abs(a).max()
    np.testing.assert_allclose((b / np.where(big, a, 1))[big], expected[big], rtol=1e-9)


@pytest.mark.parametrize("name", ["MM09", "Lip13", "MM20"])
def test_parametric_component_area_and_position(basis, name):
    acq = basis.acquisition
    grid = (acq.n_points, acq.dwell_time_s, acq.spectrometer_freq_mhz, acq.ppm_reference)
    fid = parametric_components((name,), *grid)[0]
    lines = LCMODEL_COMPONENTS[name]
    area = sum(a for _, _, a in lines)
    spec = axes.spectrum(fid)
    # the real spectrum sums to N x the first point: its area is the sum of the relative areas
    assert spec.real.sum() / acq.n_points == pytest.approx(area, rel=1e-9)
    main_ppm, main_fwhm, _ = max(lines, key=lambda line: line[2] / line[1])
    ppm, spec_zf = zero_filled(fid[None], basis)
    assert abs(peak_ppm(ppm, spec_zf.real, (main_ppm - 0.1, main_ppm + 0.1))[0] - main_ppm) < 0.01
    if len(lines) == 1:
        width = fwhm_ppm(ppm, spec_zf[0].real, (main_ppm - 0.1, main_ppm + 0.1))
        assert width == pytest.approx(main_fwhm, rel=0.01)


@pytest.mark.parametrize("scale", [0.01, 16.0])
def test_a_scaled_basis_renders_the_scaled_signals(basis, scale):
    """Bases differ in scale (signal per proton: Osprey's 0.009, spant's 16, the embedded 1); the
    parametric MM and lipids count protons of the basis' scale as the fit's do, so a basis
    ``scale`` times taller renders, with the same draws and noise, spectra ``scale`` times taller
    (water, baseline and noise follow the reference height). Until session 27 the components
    kept the embedded basis' unit: 100x too tall beside the metabolites of a basis at 0.01."""
    plain = basis.subset([n for n in basis.names if n != "Mac"])  # parametric MM
    scaled = dataclasses.replace(plain, fids=plain.fids * scale)
    # the lines' widths read off either basis agree to the rounding of their half-maximum
    # crossings; the same ones draw both, so that the draws are the same to the last bit
    lines = basis_lines(plain, PRIOR)
    np.testing.assert_allclose(
        basis_lines(scaled, PRIOR).singlet_fwhm_hz, lines.singlet_fwhm_hz, rtol=1e-6
    )
    a = simulate_invivo_batch(plain, PRIOR, 8, np.random.default_rng(3), lines=lines)
    b = simulate_invivo_batch(scaled, PRIOR, 8, np.random.default_rng(3), lines=lines)
    assert a.parameters.component_amplitudes_mm.any()
    np.testing.assert_array_equal(b.parameters.concentrations_mm, a.parameters.concentrations_mm)
    np.testing.assert_allclose(
        b.fids, scale * a.fids, rtol=0, atol=1e-9 * scale * abs(a.fids).max()
    )
    np.testing.assert_allclose(b.reference_height, scale * a.reference_height, rtol=1e-9)


def test_baseline_config_is_the_shared_one():
    assert isinstance(PRIOR.baseline, BaselineConfig)
    assert PRIOR.to_dict()["baseline"]["height_range"] == [-0.15, 0.15]


def test_prior_refuses_bad_ranges():
    from scaloquant.errors import ConfigError

    with pytest.raises(ConfigError, match="lipid_fraction"):
        InvivoPrior(lipid_fraction=1.5)
    with pytest.raises(ConfigError, match="snr_range"):
        InvivoPrior(snr_range=(150.0, 5.0))


def test_seeded_stream_does_not_depend_on_the_chunk_size(basis):
    from scaloquant.simulate.invivo import InvivoSignals, simulate_invivo_dataset

    def run(chunk_size):
        chunks = list(simulate_invivo_dataset(basis, PRIOR, 260, 4, chunk_size=chunk_size))
        return InvivoSignals.concatenate(chunks)

    a, b = run(300), run(100)
    np.testing.assert_array_equal(a.fids, b.fids)
    for name, value in a.columns().items():
        np.testing.assert_array_equal(value, b.columns()[name], err_msg=name)
