"""Matching data to a model's grid: safe conversions, refusals and the stated sequence/TE."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from scaloquant.cli import error_message
from scaloquant.errors import IncompatibleDataError
from scaloquant.io.default import default_basis
from scaloquant.io.lcmodel import read_lcmodel_raw, write_lcmodel_raw
from scaloquant.io.nifti import read_nifti_mrs, write_nifti_mrs
from scaloquant.signal import axes
from scaloquant.signal.match import (
    basis_sequence,
    chirp_z,
    match_acquisition,
    require_same_grid,
    resample_fid,
    sequence_family,
    stated_sequence,
)
from scaloquant.signal.peaks import main_peak_ppm
from scaloquant.types import FID, Acquisition

#: The default model grid: ISMRM 2016 basis, 2048 points at 4 kHz, 3 T, 0 Hz = 4.65 ppm.
TARGET = Acquisition(2048, 2.5e-4, 123.261703, 4.65)
PEAK_PPM = 2.01
#: A 4 Hz wide line (damping pi * FWHM), well decayed within every grid below.
DAMPING_PER_S = 4 * np.pi


def lorentzian(
    n_points: int,
    dwell_time_s: float,
    freq_mhz: float,
    ppm_reference: float,
    damping_per_s: float = DAMPING_PER_S,
) -> np.ndarray:
    """Analytic FID of a unit Lorentzian at 2.01 ppm on the given grid (internal convention)."""
    time_s = axes.time_axis_s(n_points, dwell_time_s)
    freq_hz = axes.ppm_to_hz(PEAK_PPM, freq_mhz, ppm_reference)
    return np.exp((2j * np.pi * freq_hz - damping_per_s) * time_s)


def data(n_points=2048, dwell_time_s=2.5e-4, freq_mhz=123.261703, ppm_reference=4.65, **prov):
    samples = lorentzian(n_points, dwell_time_s, freq_mhz, ppm_reference)
    return FID(samples, dwell_time_s, freq_mhz, ppm_reference, provenance=prov)


# name: (grid of the data, force needed, word the conversion sentence must hold)
CONVERSIONS = {
    "zero-fill": ((1024, 2.5e-4, 123.261703, 4.65), False, "zero-filled 1024 -> 2048"),
    "truncate": ((4096, 2.5e-4, 123.261703, 4.65), False, "truncated 4096 -> 2048"),
    "reference shift": ((2048, 2.5e-4, 123.261703, 4.7), False, "0 Hz is 4.65 ppm"),
    "decimate 8000 -> 4000 Hz": ((4096, 1.25e-4, 123.261703, 4.65), True, "8000 -> 4000 Hz"),
    "upsample 2000 -> 4000 Hz": ((1024, 5e-4, 123.261703, 4.65), True, "2000 -> 4000 Hz"),
    "vendor 127.8 MHz": ((2048, 2.5e-4, 127.8, 4.65), True, "127.8 MHz -> 123.262 MHz"),
    "non-integer 5000 -> 4000 Hz": ((2048, 2e-4, 123.261703, 4.65), True, "5000 -> 4000 Hz"),
}


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_each_conversion_keeps_the_peak_at_its_ppm_and_the_area(name):
    grid, force, sentence = CONVERSIONS[name]
    matched = match_acquisition(data(*grid), TARGET, force=force)
    fid = matched.fid
    assert fid.acquisition == TARGET
    assert any(sentence in c for c in matched.conversions), matched.conversions
    assert list(fid.provenance["conversions"]) == list(matched.conversions)
    # The peak finder is exact to < 0.001 Hz on Lorentzians; 0.001 ppm (0.12 Hz, half a bin of
    # the 16x zero-filled grid) is tighter than the project's 0.005 ppm round-trip tolerance.
    peak = main_peak_ppm(fid.samples, TARGET.dwell_time_s, 123.261703, TARGET.ppm_reference)
    assert abs(peak - PEAK_PPM) < 1e-3
    # First point = spectral area; band-limiting cuts only the Lorentzian's far tails (< 0.1%).
    assert fid.samples[0].real == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_converted_spectrum_equals_the_analytic_line_sampled_on_the_target_grid(name):
    grid, force, _ = CONVERSIONS[name]
    n_points, dwell_time_s, freq_mhz, _ = grid
    matched = match_acquisition(data(*grid), TARGET, force=force)
    # The frequency conversion keeps widths in ppm: the damping scales by F0 / F.
    damping = DAMPING_PER_S * TARGET.spectrometer_freq_mhz / freq_mhz
    truth = lorentzian(*(2048, 2.5e-4, 123.261703, 4.65), damping_per_s=damping)
    duration_s = n_points * dwell_time_s * freq_mhz / TARGET.spectrometer_freq_mhz
    truth[int(duration_s / TARGET.dwell_time_s + 1e-9) :] = 0  # nothing measured after that
    window = (TARGET.ppm_axis() > 0.2) & (TARGET.ppm_axis() < 4.2)
    got, want = axes.spectrum(matched.fid.samples)[window], axes.spectrum(truth)[window]
    # Exact conversions agree to rounding; resampling differs from direct sampling only by the
    # line's tails beyond the band, which direct sampling aliases in (measured <= 6.4e-4).
    tol = 2e-3 if force else 1e-12
    assert np.abs(got - want).max() <= tol * np.abs(want).max()


def test_no_difference_returns_the_same_samples():
    fid = data()
    matched = match_acquisition(fid, TARGET)
    assert matched.fid is fid
    assert matched.conversions == () and matched.warnings == ()


def test_header_rounding_takes_the_targets_exact_values_without_converting():
    fid = data(dwell_time_s=2.5e-4 * (1 + 1e-8), ppm_reference=4.65 + 1e-8)
    matched = match_acquisition(fid, TARGET)
    assert matched.fid.acquisition == TARGET
    assert matched.conversions == ()
    np.testing.assert_array_equal(matched.fid.samples, fid.samples)


def test_frequency_within_a_tenth_of_a_percent_is_relabelled():
    fid = data(freq_mhz=123.2)
    matched = match_acquisition(fid, TARGET)
    assert matched.fid.spectrometer_freq_mhz == TARGET.spectrometer_freq_mhz
    assert "took the data's 123.2 MHz as 123.262 MHz" in matched.conversions[0]
    np.testing.assert_array_equal(matched.fid.samples, fid.samples)


def test_a_relabelled_frequency_is_written_with_the_digits_that_tell_it_apart():
    """0.4 ppm of the frequency apart: at 6 digits both read 123.262 MHz."""
    matched = match_acquisition(data(freq_mhz=123.26175), TARGET)
    assert f"{TARGET.spectrometer_freq_mhz:g}" == "123.262"
    assert "took the data's 123.2618 MHz as 123.2617 MHz" in matched.conversions[0]


@pytest.mark.parametrize("force", [False, True])
def test_batch_shape_is_kept_and_equals_item_by_item(force):
    rng = np.random.default_rng(0)
    dwell = 5e-4 if force else 2.5e-4  # resampling with force, zero-filling without
    line = lorentzian(1024, dwell, 123.261703, 4.65)
    samples = line * (1 + 0.1 * rng.standard_normal((2, 3, 1, 1)))
    matched = match_acquisition(FID(samples, dwell, 123.261703), TARGET, force=force)
    assert matched.fid.samples.shape == (2, 3, 1, 2048)
    one = match_acquisition(FID(samples[1, 2, 0], dwell, 123.261703), TARGET, force=force)
    np.testing.assert_allclose(matched.fid.samples[1, 2, 0], one.fid.samples, atol=1e-12)


def test_resampling_to_the_same_dwell_time_is_the_identity():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 512)) + 1j * rng.standard_normal((3, 512))
    # The chirp z-transform's rounding grows with length: 1e-9 at 4096 points.
    np.testing.assert_allclose(resample_fid(x, 2.5e-4, 2.5e-4), x, atol=1e-9)


@pytest.mark.parametrize(
    ("n_in", "n_out", "r"),
    [(5, 3, 0.1), (2048, 1024, 0.123456789), (1500, 4000, 0.37 / 4096), (4096, 2048, 3.3 / 16384)],
)
def test_chirp_z_is_the_sum_it_stands_for_and_scipys(n_in, n_out, r):
    """:func:`chirp_z` against the direct sum ``sum_q x_q exp(2 pi i r q m)`` and against
    ``scipy.signal.czt`` (``w = exp(2 pi i r)``, ``a = 1``), which it replaces: both to the
    direct sum's rounding (measured: 3e-16 to 1e-10 of the largest output, scipy's the same)."""
    from scipy.signal import czt

    rng = np.random.default_rng(n_in)
    x = rng.standard_normal((3, n_in)) + 1j * rng.standard_normal((3, n_in))
    direct = x @ np.exp(2j * np.pi * r * np.outer(np.arange(n_in), np.arange(n_out)))
    scale = np.abs(direct).max()
    got = chirp_z(x, n_out, r)
    assert got.shape == (3, n_out)
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-9 * scale)
    theirs = czt(x, n_out, w=np.exp(2j * np.pi * r), a=1.0, axis=-1)
    np.testing.assert_allclose(got, theirs, rtol=0, atol=1e-9 * scale)


def test_refuses_another_field_strength_even_with_force():
    with pytest.raises(IncompatibleDataError) as err:
        match_acquisition(data(freq_mhz=297.2, source="/x/scan7T.nii.gz"), TARGET, force=True)
    message = str(err.value)
    assert message.startswith("scan7T.nii.gz: acquired at 297.2 MHz (1H, 7.0 T)")
    assert "no safe conversion" in message and "basis set for 297.2 MHz" in message
    assert "\n" not in message


def test_refuses_another_nucleus_even_with_force():
    fid = replace(data(), nucleus="31P")
    with pytest.raises(IncompatibleDataError, match="31P data, but the model is for 1H"):
        match_acquisition(fid, TARGET, force=True)


def test_refuses_another_dwell_time_without_force_and_says_which_flag():
    with pytest.raises(IncompatibleDataError) as err:
        match_acquisition(data(4096, 1.25e-4), TARGET)
    message = str(err.value)
    assert "dwell time 0.125 ms (8000 Hz spectral width)" in message
    assert "0.25 ms (4000 Hz spectral width)" in message
    # the facts name the options; the CLI words them as its flags
    assert err.value.options == ("force", "override_dwell")
    assert "pass force=True to resample anyway" in message
    flags = error_message(err.value)
    assert "pass --force to resample anyway, or --dwell-time-s with --override-header" in flags
    assert (
        flags.replace("--force", "force=True").replace(
            "--dwell-time-s with --override-header",
            "the right dwell time (overriding the header's)",
        )
        == message
    )


def test_refuses_another_vendors_frequency_without_force():
    with pytest.raises(IncompatibleDataError) as err:
        match_acquisition(data(freq_mhz=127.8), TARGET)
    message = str(err.value)
    assert "127.8 MHz" in message and "3.7% apart" in message
    assert err.value.options == ("force", "override_freq")
    assert "--force" in error_message(err.value)
    assert "--spectrometer-freq-mhz with --override-header" in error_message(err.value)
    matched = match_acquisition(data(freq_mhz=127.8), TARGET, force=True)
    assert any("J-coupled multiplets" in w for w in matched.warnings)


def test_refuses_a_spectral_width_that_misses_the_window_even_with_force():
    # 1000 Hz at 123.26 MHz around 4.65 ppm covers 0.59-8.71 ppm: 0.2-0.59 ppm is missing.
    fid = data(512, 1e-3)
    with pytest.raises(IncompatibleDataError, match="0.59 to 8.71 ppm.*no conversion"):
        match_acquisition(fid, TARGET, force=True)


def test_echo_time_mismatch_is_refused_without_force_and_warned_with_it():
    fid = data(echo_time_s=0.035, sequence="PRESS")
    with pytest.raises(IncompatibleDataError) as err:
        match_acquisition(fid, TARGET, sequence="PRESS", echo_time_s=0.030)
    assert "TE 35 ms and the model's TE 30 ms" in str(err.value)
    assert str(err.value).endswith("use a model trained with a basis set for TE 35 ms")
    # the fit's basis: use another basis set (it read "the basis set trained with a basis set")
    with pytest.raises(IncompatibleDataError) as err:
        match_acquisition(
            fid, TARGET, echo_time_s=0.030, target_what="the basis set", sequence="PRESS"
        )
    assert str(err.value).endswith("or use a basis set for TE 35 ms")
    assert err.value.options == ("force",) and "--force" in error_message(err.value)
    matched = match_acquisition(fid, TARGET, sequence="PRESS", echo_time_s=0.030, force=True)
    assert len(matched.warnings) == 1 and "TE 35 ms" in matched.warnings[0]
    # Within the 0.5 ms tolerance, or unstated on either side: nothing to say.
    for te_s, target_te_s in ((0.0304, 0.030), (None, 0.030), (0.035, None)):
        fid = data(echo_time_s=te_s) if te_s else data()
        ok = match_acquisition(fid, TARGET, echo_time_s=target_te_s)
        assert ok.warnings == ()


def test_sequence_families_are_compared_not_vendor_names():
    assert sequence_family("svs_se") == "PRESS" and sequence_family("PROBE-S") == "STEAM"
    assert sequence_family("semi-LASER") == "sLASER" and sequence_family("MEGA-PRESS") == "MEGA"
    assert match_acquisition(data(sequence="svs_se"), TARGET, sequence="PRESS").warnings == ()
    with pytest.raises(IncompatibleDataError, match="sequence svs_st \\(STEAM\\)"):
        match_acquisition(data(sequence="svs_st"), TARGET, sequence="PRESS")
    # An unrecognised name cannot be compared: a warning, not a refusal.
    matched = match_acquisition(data(sequence="fid_custom"), TARGET, sequence="PRESS")
    assert "could not tell" in matched.warnings[0]


def test_all_force_differences_are_named_in_one_line():
    fid = data(4096, 1.25e-4, echo_time_s=0.144)
    with pytest.raises(IncompatibleDataError) as err:
        match_acquisition(fid, TARGET, echo_time_s=0.030)
    message = str(err.value)
    assert "dwell time" in message and "also differs: TE 144 ms" in message
    assert "\n" not in message


def test_require_same_grid_names_each_difference():
    good = TARGET
    require_same_grid(good, TARGET, what="the data", target_what="the basis set")
    cases = {
        "nucleus 31P": replace(good, nucleus="31P"),
        "1024 points": replace(good, n_points=1024),
        "dwell time 0.5 ms": replace(good, dwell_time_s=5e-4),
        "297.2 MHz": replace(good, spectrometer_freq_mhz=297.2),
        "0 Hz = 4.7 ppm": replace(good, ppm_reference=4.7),
    }
    for words, acq in cases.items():
        with pytest.raises(
            IncompatibleDataError, match=f"^the data: {re.escape(words)}.*, the basis set: "
        ):
            require_same_grid(acq, TARGET, what="the data", target_what="the basis set")
        # a command's remedy in place of the library's advice (evaluate's user cannot call
        # match_acquisition), the difference as before
        with pytest.raises(IncompatibleDataError) as err:
            require_same_grid(
                acq, TARGET, what="the data", target_what="the basis set", remedy="do this"
            )
        assert str(err.value).startswith(f"the data: {words}")
        assert str(err.value).endswith("; do this")
        assert "match_acquisition" not in str(err.value)


def test_basis_sequence_of_the_default_basis():
    assert basis_sequence(default_basis().metadata) == ("PRESS", pytest.approx(0.030))
    assert basis_sequence({}) == (None, None)
    assert basis_sequence({"sequence": " ", "echo_time_ms": -1}) == (None, None)


def test_readers_record_the_stated_sequence_and_echo_time(tmp_path):
    fid = data()
    path = write_nifti_mrs(
        tmp_path / "a.nii.gz", fid, extra_header={"EchoTime": 0.035, "SequenceName": "svs_se"}
    )
    assert stated_sequence(read_nifti_mrs(path)) == ("svs_se", pytest.approx(0.035))
    plain = write_nifti_mrs(tmp_path / "b.nii.gz", fid)
    assert stated_sequence(read_nifti_mrs(plain)) == (None, None)

    raw = write_lcmodel_raw(tmp_path / "a.RAW", fid, name="a")
    assert stated_sequence(read_lcmodel_raw(raw)) == (None, None)
    text = raw.read_text().replace(" $SEQPAR\n", " $SEQPAR\n ECHOT = 30.,\n SEQ = 'PRESS',\n")
    raw.write_text(text)
    assert stated_sequence(read_lcmodel_raw(raw)) == ("PRESS", pytest.approx(0.030))
