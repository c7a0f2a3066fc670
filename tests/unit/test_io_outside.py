"""Every reader and writer against files that *other* tools wrote (issue 10, item 2).

Nothing here reads a file that scaloquant wrote, except to check that another tool reads it:

* NIfTI-MRS written by spec2nii 0.8.15 from vendor files (``../shared/data/invivo/*/nifti*``):
  Philips SDAT/SPAR (spant's and Osprey's examples), Siemens RDA and DICOM (suspect's example);
  spec2nii is also run here, at test time, on the vendor files, and must still write the same.
* LCModel ``.RAW`` written by spant (``lcmodel_reference/data.raw``), by the ISMRM 2016 challenge
  organisers (``datasets_LCModel``), with their 4-column text and jMRUI text of the same spectra.
* LCModel ``.BASIS`` written by spant, by Osprey, by LCModel's GAMMA simulation (Siemens), and
  the ISMRM 2016 basis. (That basis equal to its ``.RAW`` FIDs is
  ``test_io_ismrm2016.py::test_basis_and_raw_readers_agree``; not repeated here.)
* NIfTI-MRS files made with the ``nifti_mrs`` package's own tools (merge, conjugate) from
  spec2nii's files.
* The other way round: what scaloquant writes, read by ``nifti_mrs`` as FSL-MRS reads it.

That the mirror check passes each of these real spectra and flags its complex conjugate is
``test_signal_quality.py::test_real_spectra_pass_and_their_mirror_images_are_flagged``; here,
that a mirrored file reaches the user as a warning of ``scaloquant fit``.

No FSL-MRS basis folder written by FSL-MRS is available (FSL-MRS is not on PyPI and
``../shared`` holds none), so FSL-MRS ``.json`` stays covered only by the synthetic
``test_io_roundtrip.py::test_fsl_json_as_fsl_mrs_writes_it``.

Where a peak must land
----------------------
Peaks are found by :func:`scaloquant.signal.peaks.main_peak_ppm` (real part); vendor spectra are
not phased, so in vivo spectra first get the zero-order phase that makes NAA absorptive (water
references: water). The challenge spectra have phase 0 by construction. Orientation is
proved by which side of the reference the signal lies on, not by one peak's position (a window
of pure noise has its maximum anywhere, so a mirrored spectrum could put noise at 2.01 ppm by
chance): the tallest *narrow* peak (magnitude minus a 0.3 ppm running median, as in
:mod:`scaloquant.signal.median`) of 0.5-4.2 ppm and of its mirror image about the reference must
lie in 0.5-4.2 ppm; for spectra with NAA it must lie in 1.8-2.2 ppm. A mirrored spectrum puts it
at about 7.3 ppm and cannot pass.

Receiver references differ between scanners (the Siemens spectrum's NAA reads 1.967 ppm at
4.65 ppm), so in vivo spectra are *referenced* first, by a rule that uses NAA only: shift the ppm
axis so that NAA is at 2.008 ppm; then creatine must land at 3.027 and choline at 3.20 ppm within
0.03 ppm. The ISMRM 2016 challenge data have an exact reference (0 Hz = 4.65 ppm) and are not
shifted.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import median_filter

from _shared import INVIVO, SHARED, one_error_line
from scaloquant.cli import main
from scaloquant.errors import InputFileError
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import (
    default_basis,
    read_basis,
    read_fid,
    read_jmrui_txt,
    read_lcmodel_raw,
    read_text_fid,
    write_basis_npz,
    write_lcmodel_basis,
    write_lcmodel_raw,
    write_nifti_mrs,
)
from scaloquant.quantify import Options, fit_inputs, read_inputs
from scaloquant.signal import axes
from scaloquant.signal.peaks import main_peak_ppm
from scaloquant.types import FID

CHALLENGE = SHARED / "data" / "ismrm2016-challenge"
SPEC2NII = shutil.which("spec2nii") or str(Path(sys.executable).parent / "spec2nii")

#: Literature chemical shifts (ppm) the peaks must land at: NAA CH3 2.008, Cr CH3 3.027,
#: choline N(CH3)3 3.20 (GPC 3.212, PCh 3.208), myo-inositol 3.52-3.61 (Govindaraju et al.,
#: NMR Biomed 2000;13:129-153, and the ISMRM 2016 basis: NAA 2.006, Cr 3.023, GPC 3.211).
NAA_PPM, CR_PPM, CHO_PPM = 2.008, 3.027, 3.20
INS_RANGE_PPM = (3.52, 3.61)
TOL_PPM = 0.03
#: Water near body temperature, on the file's reference: in vivo receiver references are off by
#: up to ~0.05 ppm (NAA reads 1.96-2.01 ppm) and water moves with temperature (-0.01 ppm/K).
WATER_PPM, WATER_TOL_PPM = 4.65, 0.1

#: The ISMRM 2016 challenge grid: 4000 Hz and the basis' HZPPPM (the .RAW/text files lack both).
CHALLENGE_GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}
#: The spant Philips spectrum's grid (the .RAW lacks it; the SPAR and spec2nii's header say so).
SPANT_GRID = {"dwell_time_s": 1 / 2000, "spectrometer_freq_mhz": 127.786142}

SPANT = "philips-press30-spant"
OSPREY = "philips-press-osprey/nifti"
SIEMENS = "siemens-press30-suspect"

#: spec2nii's NIfTI-MRS of water-suppressed in vivo spectra (paths under ../shared/data/invivo).
METABOLITE_SPECTRA = (
    f"{SPANT}/nifti_spec2nii/metab.nii.gz",
    f"{OSPREY}/UnEdited/sub-01_PRESS_35_act.nii.gz",
    f"{OSPREY}/UnEdited/sub-02_PRESS_35_act.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-01_ses-01_PRESS_raw-act_noID.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-02_ses-01_PRESS_raw-act_noID.nii.gz",
    f"{SIEMENS}/nifti/SVS_30_rda.nii.gz",
    f"{SIEMENS}/nifti/SVS_30_dicom.nii.gz",
)
#: Metabolite-nulled (inversion TI 600 ms) macromolecule spectra: no NAA/Cr/Cho to find.
MACROMOLECULE_SPECTRA = (
    f"{OSPREY}/UnEdited_with_MM_data/sub-01_ses-01_PRESS-Inverted_TI-600_raw-act_noID.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-02_ses-01_PRESS-Inverted_TI-600_raw-act_noID.nii.gz",
)
WATER_SPECTRA = (
    f"{SPANT}/nifti_spec2nii/wref.nii.gz",
    f"{OSPREY}/UnEdited/sub-01_PRESS_35_ref.nii.gz",
    f"{OSPREY}/UnEdited/sub-02_PRESS_35_ref.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-01_ses-01_PRESS_raw-ref_noID.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-02_ses-01_PRESS_raw-ref_noID.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-01_ses-01_PRESS-Inverted_TI-600_raw-ref_noID.nii.gz",
    f"{OSPREY}/UnEdited_with_MM_data/sub-02_ses-01_PRESS-Inverted_TI-600_raw-ref_noID.nii.gz",
)

CHALLENGE_NAMES = (*(f"dataset{i}" for i in range(1, 29)), "Cr_10mM_test_water_scaling")
#: Challenge spectra where NAA is the tallest narrow peak; 24-28 hold residual water, lipids or a
#: tumour-like profile, the Cr_10mM spectrum only creatine.
CHALLENGE_WITH_NAA = tuple(f"dataset{i}" for i in range(1, 24))


def file_id(relative: str) -> str:
    """A short test id: the file name without ``.nii.gz``."""
    return Path(relative).name.removesuffix(".nii.gz")


def shared(relative: str | Path, base: Path = INVIVO) -> Path:
    """``base / relative``, or skip the test naming what is missing."""
    path = base / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared data are not in this checkout)")
    return path


def spec2nii_or_skip() -> str:
    if not Path(SPEC2NII).exists():
        pytest.skip("spec2nii is not installed (pip install spec2nii; a test dependency)")
    return SPEC2NII


def run_spec2nii(*args: str | Path) -> None:
    subprocess.run(
        [spec2nii_or_skip(), *map(str, args)], check=True, capture_output=True, timeout=60
    )


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / |b|`` over all samples (2-norm)."""
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b)))


def one_fid(fid: FID) -> np.ndarray:
    """The single FID of a file, shape ``(n_points,)``."""
    assert int(np.prod(fid.batch_shape)) == 1, fid.samples.shape
    return fid.samples.reshape(-1)


# ---------------------------------------------------------------------------------------------
# peak helpers


def phased(samples: np.ndarray, fid: FID, window: tuple[float, float]) -> np.ndarray:
    """``samples`` with the zero-order phase that makes the tallest point (magnitude, 16x
    zero-fill) of ``window`` (ppm, on the file's reference) absorptive: vendor spectra are not
    phased, and the real part's maximum moves with the phase."""
    n_fft = 16 * samples.shape[-1]
    ppm = axes.ppm_axis(n_fft, fid.dwell_time_s, fid.spectrometer_freq_mhz, fid.ppm_reference)
    spec = axes.spectrum(samples, n_fft)
    inside = np.flatnonzero((ppm >= window[0]) & (ppm <= window[1]))
    return samples * np.exp(-1j * np.angle(spec[inside[np.argmax(np.abs(spec[inside]))]]))


def peak_ppm(
    samples: np.ndarray,
    fid: FID,
    window: tuple[float, float],
    ppm_reference: float | None = None,
) -> float:
    """:func:`main_peak_ppm` (real part, 16x zero-fill) in ``window``, on ``fid``'s grid with
    ``ppm_reference`` (default the file's)."""
    ref = fid.ppm_reference if ppm_reference is None else ppm_reference
    grid = (fid.dwell_time_s, fid.spectrometer_freq_mhz, ref)
    return float(main_peak_ppm(samples, *grid, ppm_range=window))


def tallest_narrow_peak_ppm(samples: np.ndarray, fid: FID) -> float:
    """Where the tallest narrow peak lies among 0.5-4.2 ppm and its mirror image about the
    reference (bin resolution): magnitude minus its 0.3 ppm running median, so that broad
    features (residual water and its tails, baseline) do not count."""
    n = samples.shape[-1]
    ref = fid.ppm_reference
    ppm = axes.ppm_axis(n, fid.dwell_time_s, fid.spectrometer_freq_mhz, ref)
    magnitude = np.abs(axes.spectrum(samples))
    width = max(3, int(round(0.3 * n * fid.dwell_time_s * fid.spectrometer_freq_mhz)) | 1)
    narrow = magnitude - median_filter(magnitude, size=width, mode="nearest")
    window = ((ppm >= 0.5) & (ppm <= 4.2)) | ((ppm >= 2 * ref - 4.2) & (ppm <= 2 * ref - 0.5))
    where = np.flatnonzero(window)
    return float(ppm[where[np.argmax(narrow[where])]])


def referenced_peaks(samples: np.ndarray, fid: FID) -> dict[str, float]:
    """NAA as found, the reference that puts it at 2.008 ppm, and Cr and Cho on that reference,
    all on the real part phased on NAA.

    Asserts first that NAA is the tallest narrow peak of the spectrum and its mirror image, which
    a mirrored spectrum cannot satisfy."""
    tallest = tallest_narrow_peak_ppm(samples, fid)
    assert 1.8 <= tallest <= 2.2, f"tallest narrow peak at {tallest:.3f} ppm, not NAA"
    samples = phased(samples, fid, (1.8, 2.2))
    naa = peak_ppm(samples, fid, (1.8, 2.2))
    reference = fid.ppm_reference + NAA_PPM - naa
    return {
        "naa": naa,
        "reference": reference,
        "cr": peak_ppm(samples, fid, (2.9, 3.1), reference),
        "cho": peak_ppm(samples, fid, (3.12, 3.3), reference),
    }


# ---------------------------------------------------------------------------------------------
# NIfTI-MRS of spec2nii's vendor converters


def test_spec2nii_philips_equals_spant_lcmodel_raw():
    """spec2nii's Philips SDAT/SPAR conversion, read as NIfTI-MRS, equals spant's LCModel .RAW
    of the same SDAT, read as .RAW: two writers, two readers, one FID. Measured: 7.8e-8 (2-norm),
    largest sample difference 1.3e-7 of the largest sample; the .RAW prints 7 significant digits
    (E15.6), so its rounding alone allows 5e-7 per value."""
    nifti = read_fid(shared(f"{SPANT}/nifti_spec2nii/metab.nii.gz"))
    raw = read_lcmodel_raw(shared(f"{SPANT}/lcmodel_reference/data.raw"), **SPANT_GRID)
    assert nifti.provenance["header"]["ConversionMethod"].startswith("spec2nii")
    assert nifti.dwell_time_s == pytest.approx(SPANT_GRID["dwell_time_s"], rel=1e-9)
    assert nifti.spectrometer_freq_mhz == pytest.approx(SPANT_GRID["spectrometer_freq_mhz"])
    assert nifti.ppm_reference == pytest.approx(4.65)
    assert relative_difference(one_fid(nifti), raw.samples) < 1e-6


def test_spec2nii_siemens_rda_equals_spec2nii_dicom():
    """suspect's Siemens example as RDA and as DICOM, both converted by spec2nii: the same
    samples. spec2nii takes the dwell time from the RDA's 0.833 ms (printed to 4 digits) and the
    DICOM's 0.8334 ms, a relative difference of 4.8e-4."""
    rda = read_fid(shared(f"{SIEMENS}/nifti/SVS_30_rda.nii.gz"))
    dicom = read_fid(shared(f"{SIEMENS}/nifti/SVS_30_dicom.nii.gz"))
    np.testing.assert_array_equal(one_fid(rda), one_fid(dicom))
    assert rda.spectrometer_freq_mhz == dicom.spectrometer_freq_mhz == pytest.approx(123.234655)
    assert rda.dwell_time_s == pytest.approx(dicom.dwell_time_s, rel=1e-3)


SPEC2NII_RUNS = {
    "philips-spant-metab": (
        [
            "philips",
            f"{SPANT}/sdat/philips_spar_sdat_WS.SDAT",
            f"{SPANT}/sdat/philips_spar_sdat_WS.SPAR",
        ],
        f"{SPANT}/nifti_spec2nii/metab.nii.gz",
    ),
    "philips-spant-water": (
        [
            "philips",
            f"{SPANT}/sdat/philips_spar_sdat_W.SDAT",
            f"{SPANT}/sdat/philips_spar_sdat_W.SPAR",
        ],
        f"{SPANT}/nifti_spec2nii/wref.nii.gz",
    ),
    "philips-osprey-te35": (
        [
            "philips",
            "philips-press-osprey/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.sdat",
            "philips-press-osprey/UnEdited/sub-01/ses-01/mrs/sub-01_ses-01_press/sub-01_PRESS_35_act.spar",
        ],
        f"{OSPREY}/UnEdited/sub-01_PRESS_35_act.nii.gz",
    ),
    "siemens-rda": (["rda", f"{SIEMENS}/SVS_30.rda"], f"{SIEMENS}/nifti/SVS_30_rda.nii.gz"),
    "siemens-dicom": (["dicom", f"{SIEMENS}/SVS_30.IMA"], f"{SIEMENS}/nifti/SVS_30_dicom.nii.gz"),
}


@pytest.mark.slow  # runs spec2nii (about 1-2 s each)
@pytest.mark.parametrize("case", list(SPEC2NII_RUNS))
def test_spec2nii_run_now_writes_what_the_shared_files_hold(tmp_path, case):
    """spec2nii, run now on the vendor file, writes a file that scaloquant reads exactly as the
    shared NIfTI-MRS (made with spec2nii 0.8.15): guards the tests above against a spec2nii
    that changed its orientation or scaling."""
    command, expected = SPEC2NII_RUNS[case]
    subcommand, *inputs = command
    run_spec2nii(subcommand, "-f", "now", "-o", tmp_path, *(shared(p) for p in inputs))
    now, before = read_fid(tmp_path / "now.nii.gz"), read_fid(shared(expected))
    np.testing.assert_array_equal(now.samples, before.samples)
    assert (now.dwell_time_s, now.spectrometer_freq_mhz, now.ppm_reference) == (
        before.dwell_time_s,
        before.spectrometer_freq_mhz,
        before.ppm_reference,
    )


#: The vendor files a user may give ``scaloquant`` directly, with the spec2nii run above that
#: converts each: the error names the command, and that command writes the shared NIfTI-MRS.
SCANNER_FILES = {
    "siemens-rda": (f"{SIEMENS}/SVS_30.rda", "Siemens RDA"),
    "siemens-dicom": (f"{SIEMENS}/SVS_30.IMA", "Siemens DICOM"),
    "philips-osprey-te35": (SPEC2NII_RUNS["philips-osprey-te35"][0][1], "Philips SDAT"),
    "philips-osprey-te35-spar": (SPEC2NII_RUNS["philips-osprey-te35"][0][2], "Philips SPAR"),
    "philips-spant-metab": (SPEC2NII_RUNS["philips-spant-metab"][0][1], "Philips SDAT"),
}


@pytest.mark.slow  # runs spec2nii
@pytest.mark.parametrize("case", list(SCANNER_FILES))
def test_scanner_file_is_refused_with_the_spec2nii_command_that_converts_it(
    tmp_path, monkeypatch, capsys, case
):
    """A vendor file given to ``scaloquant fit``: one line naming the format and the spec2nii
    command (with the partner file of a Philips pair found beside it), exit 2, no output
    folder; and that command, run as printed, writes what spec2nii wrote for the shared files."""
    relative, what = SCANNER_FILES[case]
    path = shared(relative)
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), "--max-figures", "0"]) == 2
    line = one_error_line(capsys, "fit")
    assert f"is a {what} " in line and "scaloquant does not read" in line
    command = line.split("(pip install spec2nii): ", 1)[1]
    command, given = command.split("; then give ")
    args = shlex.split(command)
    assert args[0] == "spec2nii"
    monkeypatch.chdir(tmp_path)
    run_spec2nii(*args[1:])
    case_run = case.removesuffix("-spar")
    expected = read_fid(shared(SPEC2NII_RUNS[case_run][1]))
    now = read_fid(tmp_path / given)
    np.testing.assert_array_equal(now.samples, expected.samples)
    assert not out.exists()


def test_scanner_pair_without_its_partner_says_which_file_is_missing(tmp_path):
    """A Philips SDAT copied without its SPAR: the command names the SPAR it needs, and the
    message says that file is missing (spec2nii would fail on it)."""
    sdat = shared(SCANNER_FILES["philips-osprey-te35"][0])
    alone = tmp_path / "my scan.SDAT"
    alone.write_bytes(sdat.read_bytes())
    with pytest.raises(InputFileError) as err:
        read_fid(alone)
    message = str(err.value)
    assert "spec2nii philips -f 'my scan' -o nifti" in message
    assert message.endswith(
        f"({tmp_path / 'my scan.SPAR'} is missing: spec2nii needs it beside it)"
    )
    # with the pair complete, nothing is said missing
    (tmp_path / "my scan.SPAR").write_bytes(
        shared(SCANNER_FILES["philips-osprey-te35-spar"][0]).read_bytes()
    )
    with pytest.raises(InputFileError) as err:
        read_fid(alone)
    assert "missing" not in str(err.value)


def test_text_files_under_scanner_suffixes_are_still_read(tmp_path):
    """Only binary files (or DICOM's magic word) under a scanner's suffix are refused: an
    LCModel .RAW saved as ``.dat`` reads as before; a DICOM without a suffix is named."""
    fid = FID(np.exp(-np.arange(64) / 10).astype(np.complex64), 2.5e-4, 123.2)
    raw = tmp_path / "spectrum.raw"
    write_lcmodel_raw(raw, fid, name="spectrum")
    dat = tmp_path / "spectrum.dat"
    dat.write_bytes(raw.read_bytes())
    read = read_fid(dat, dwell_time_s=2.5e-4, spectrometer_freq_mhz=123.2)
    np.testing.assert_allclose(read.samples, fid.samples, rtol=1e-6)
    dicom = tmp_path / "IM0001"
    dicom.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00" * 64)
    with pytest.raises(InputFileError, match=r"is a DICOM file .*spec2nii dicom -f IM0001"):
        read_fid(dicom)


@pytest.mark.slow  # runs spec2nii
def test_spec2nii_jmrui_equals_our_jmrui_reader(tmp_path):
    """spec2nii's jMRUI converter (which conjugates jMRUI text into the NIfTI-MRS orientation)
    on a challenge file, read as NIfTI-MRS, equals scaloquant's jMRUI reader on the same file."""
    source = shared("datasets_JMRUI/dataset1_WS.txt", CHALLENGE)
    run_spec2nii("jmrui", "-f", "now", "-o", tmp_path, source)
    nifti, jmrui = read_fid(tmp_path / "now.nii.gz"), read_jmrui_txt(source)
    np.testing.assert_array_equal(one_fid(nifti), jmrui.samples)
    assert nifti.spectrometer_freq_mhz == pytest.approx(jmrui.spectrometer_freq_mhz)
    assert nifti.dwell_time_s == pytest.approx(jmrui.dwell_time_s)


def test_dim_dyn_made_by_nifti_mrs_merge_reads_transient_by_transient(tmp_path):
    """Two of spec2nii's single-spectrum files (Osprey's two TE 35 subjects) given a DIM_DYN
    dimension and merged along it by the nifti_mrs package's own tools: scaloquant reads the
    merged file as ``(1, 1, 1, 2, n)`` with each transient equal to its single file."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    from nifti_mrs.tools import merge, reorder

    paths = [shared(f"{OSPREY}/UnEdited/sub-0{k}_PRESS_35_act.nii.gz") for k in (1, 2)]
    parts = [reorder(NIFTI_MRS(str(p)), ["DIM_DYN", None, None]) for p in paths]
    merged = tmp_path / "dyn.nii.gz"
    merge(parts, "DIM_DYN").save(str(merged))

    fid = read_fid(merged)
    assert fid.samples.shape == (1, 1, 1, 2, 2048)
    assert fid.provenance["dim_tags"] == ["DIM_DYN"]
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(fid.samples[0, 0, 0, k], one_fid(read_fid(path)))
    (inp,) = read_inputs([merged])
    assert inp.labels() == ["0,0,0,0", "0,0,0,1"] and inp.dim_tags == ("DIM_DYN",)
    assert inp.checks() == ()


# ---------------------------------------------------------------------------------------------
# where the in vivo peaks land


@pytest.mark.parametrize("relative", METABOLITE_SPECTRA, ids=file_id)
def test_spec2nii_metabolite_spectra_peaks_land_at_their_ppm_once_referenced(relative):
    """NAA is the tallest narrow peak (so the spectrum is not mirrored); with the reference set
    so that NAA is at 2.008 ppm, Cr lands at 3.027 and Cho at 3.20 ppm within 0.03 ppm: the
    spacing of three peaks proves the orientation and the frequency scale. Measured NAA before
    referencing: 1.99-2.01 ppm (Philips), 1.97 ppm (Siemens)."""
    fid = read_fid(shared(relative))
    found = referenced_peaks(one_fid(fid), fid)
    assert abs(found["naa"] - NAA_PPM) < 0.05  # the receiver reference is near 4.65 ppm
    assert found["cr"] == pytest.approx(CR_PPM, abs=TOL_PPM)
    assert found["cho"] == pytest.approx(CHO_PPM, abs=TOL_PPM)


@pytest.mark.parametrize("relative", MACROMOLECULE_SPECTRA, ids=file_id)
def test_spec2nii_macromolecule_spectra_lie_on_the_metabolite_side(relative):
    """Metabolite-nulled spectra have no NAA/Cr/Cho to place, but their tallest narrow peak
    (the MM at 0.9 or 3.9 ppm) lies in 0.5-4.2 ppm, not in its mirror image."""
    fid = read_fid(shared(relative))
    assert 0.5 <= tallest_narrow_peak_ppm(one_fid(fid), fid) <= 4.2


@pytest.mark.parametrize("relative", WATER_SPECTRA, ids=file_id)
def test_spec2nii_water_reference_peak_at_4_65(relative):
    """Water at 4.65 +- 0.1 ppm on the header's reference, phased on water (measured
    4.641-4.661 ppm)."""
    fid = read_fid(shared(relative))
    water = phased(one_fid(fid), fid, (3.9, 5.4))
    assert peak_ppm(water, fid, (3.9, 5.4)) == pytest.approx(WATER_PPM, abs=WATER_TOL_PPM)


# ---------------------------------------------------------------------------------------------
# the ISMRM 2016 fitting challenge: LCModel .RAW/.H2O, 4-column text and jMRUI of one spectrum


def challenge_files(name: str) -> dict[str, Path]:
    """The challenge's files of one dataset (the Cr_10mM set has its own folders)."""
    folder = "Cr_water_scaling_{}" if name.startswith("Cr_") else "datasets_{}"
    return {
        "raw": shared(f"{folder.format('LCModel')}/{name}.RAW", CHALLENGE),
        "h2o": shared(f"{folder.format('LCModel')}/{name}.H2O", CHALLENGE),
        "text": shared(f"{folder.format('text')}/{name}.txt", CHALLENGE),
        "jmrui_ws": shared(f"{folder.format('JMRUI')}/{name}_WS.txt", CHALLENGE),
        "jmrui_nws": shared(f"{folder.format('JMRUI')}/{name}_nWS.txt", CHALLENGE),
    }


def read_challenge(name: str) -> dict[str, FID]:
    files = challenge_files(name)
    return {
        "raw": read_fid(files["raw"], **CHALLENGE_GRID),
        "h2o": read_fid(files["h2o"], **CHALLENGE_GRID),
        "text": read_text_fid(files["text"], **CHALLENGE_GRID),
        "text_water": read_text_fid(files["text"], signal="water", **CHALLENGE_GRID),
        "jmrui_ws": read_fid(files["jmrui_ws"]),
        "jmrui_nws": read_fid(files["jmrui_nws"]),
    }


@pytest.mark.parametrize("name", CHALLENGE_NAMES)
def test_ismrm_challenge_raw_text_and_jmrui_read_to_one_fid(name):
    """.RAW = text = jMRUI, metabolite and water, after each reader's conversion (the .RAW and
    text are conjugated, jMRUI not). Tolerances from the print precision: the .RAW has 6
    significant digits (E13.5), rounding <= 5e-6 of each value (measured 2-norm <= 1.7e-6); text
    8 digits and jMRUI 8-10 (measured jMRUI vs text <= 4.5e-9, water <= 3e-12)."""
    fids = read_challenge(name)
    assert relative_difference(fids["raw"].samples, fids["text"].samples) < 5e-6
    assert relative_difference(fids["h2o"].samples, fids["text_water"].samples) < 5e-6
    assert relative_difference(fids["jmrui_ws"].samples, fids["text"].samples) < 1e-7
    assert relative_difference(fids["jmrui_nws"].samples, fids["text_water"].samples) < 1e-7
    assert fids["jmrui_ws"].dwell_time_s == pytest.approx(CHALLENGE_GRID["dwell_time_s"])
    assert fids["jmrui_ws"].spectrometer_freq_mhz == pytest.approx(123.22)


@pytest.mark.parametrize("name", CHALLENGE_NAMES)
def test_ismrm_challenge_peaks_land_at_their_ppm(name):
    """On the challenge's exact reference (0 Hz = 4.65 ppm), no shift: NAA (where it is the
    tallest narrow peak, datasets 1-23) at 2.01 +- 0.03 ppm (measured 2.001-2.017); in every spectrum the tallest narrow
    peak on the metabolite side, Cr at 3.027 and (but in the Cr-only set) Cho at 3.20 +- 0.03,
    water at 4.65 +- 0.03 ppm."""
    fids = read_challenge(name)
    for kind in ("text", "raw", "jmrui_ws"):
        fid = fids[kind]
        assert 0.5 <= tallest_narrow_peak_ppm(fid.samples, fid) <= 4.2, kind
        if name in CHALLENGE_WITH_NAA:
            naa = referenced_peaks(fid.samples, fid)["naa"]
            assert naa == pytest.approx(2.01, abs=TOL_PPM), kind
        assert peak_ppm(fid.samples, fid, (2.9, 3.1)) == pytest.approx(CR_PPM, abs=TOL_PPM)
        if not name.startswith("Cr_"):
            assert peak_ppm(fid.samples, fid, (3.12, 3.3)) == pytest.approx(CHO_PPM, abs=TOL_PPM)
    for kind in ("text_water", "h2o", "jmrui_nws"):
        fid = fids[kind]
        assert peak_ppm(fid.samples, fid, (3.9, 5.4)) == pytest.approx(WATER_PPM, abs=TOL_PPM)


# ---------------------------------------------------------------------------------------------
# LCModel .BASIS files of other tools

#: writer: (path under ../shared, chemical shift of 0 Hz in ppm). Osprey's io_writelcmBASIS
#: shifts every FID so that 0 Hz is 4.68 ppm (its shift_centerFreq; read at 4.65, its NAA sits
#: at 1.978 ppm); the .BASIS format has no field to say so, hence the reader's ppm_reference.
OUTSIDE_BASES = {
    "spant": ("data/invivo/philips-press30-spant/lcmodel_reference/3t.basis", 4.65),
    "lcmodel-test-case": ("peers/lcmodel/test_lcm/3t.basis", 4.65),
    "osprey": (
        "data/invivo/philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS",
        4.68,
    ),
    "lcmodel-gamma-siemens": ("data/invivo/siemens-press30-suspect/press_30ms_3T.basis", 4.65),
    "ismrm2016": ("data/ismrm2016/basis/lcmodel/press3T_30ms.BASIS", 4.65),
}
BASIS_PEAKS = {
    "NAA": (NAA_PPM - TOL_PPM, NAA_PPM + TOL_PPM),
    "Cr": (CR_PPM - TOL_PPM, CR_PPM + TOL_PPM),
    "PCr": (CR_PPM - TOL_PPM, CR_PPM + TOL_PPM),
    "GPC": (CHO_PPM - TOL_PPM, CHO_PPM + TOL_PPM),
    "PCh": (CHO_PPM - TOL_PPM, CHO_PPM + TOL_PPM),
    "PCho": (CHO_PPM - TOL_PPM, CHO_PPM + TOL_PPM),
    "Cho": (CHO_PPM - TOL_PPM, CHO_PPM + TOL_PPM),
    "Ins": INS_RANGE_PPM,
}


@pytest.mark.parametrize("writer", list(OUTSIDE_BASES))
def test_lcmodel_basis_of_other_tools_main_peaks_at_their_ppm(writer):
    """Main peak (0.5-4.2 ppm, real part) of NAA, Cr, PCr, the cholines and Ins of a .BASIS
    written by another tool at its literature ppm. Measured: spant NAA 2.008, Cr 3.027, GPC
    3.212, Ins 3.561; Osprey (at 4.68) NAA 2.008, Cr 3.027, GPC 3.212, Ins 3.561; GAMMA NAA
    2.010, Cr 3.029, GPC 3.214, Ins 3.559; ISMRM NAA 2.008, Cr 3.024, PCho 3.206, Ins 3.562."""
    relative, ppm_reference = OUTSIDE_BASES[writer]
    basis = read_basis(shared(relative, SHARED), ppm_reference=ppm_reference)
    present = [name for name in BASIS_PEAKS if name in basis.names]
    assert {"NAA", "Cr", "Ins"} <= set(present) and set(present) & {"GPC", "PCh", "PCho", "Cho"}
    found = main_peak_ppm(
        basis.fids[[basis.index(name) for name in present]],
        basis.dwell_time_s,
        basis.spectrometer_freq_mhz,
        basis.ppm_reference,
        ppm_range=(0.5, 4.2),
    )
    for name, ppm in zip(present, found, strict=True):
        low, high = BASIS_PEAKS[name]
        assert low <= ppm <= high, f"{writer} {name} at {ppm:.3f} ppm"


@pytest.mark.parametrize("writer", list(OUTSIDE_BASES))
def test_lcmodel_basis_of_other_tools_round_trips_through_our_writer(writer, tmp_path):
    """Each tool's .BASIS through our reader, writer and reader again: the same names, grid,
    echo time, sequence and FWHMBA, and the same FIDs. Our writer prints 9 significant digits
    (``6E16.8``): each number off by at most 5e-9 of itself, which the orthonormal DFT keeps as
    an RMS error, so 1e-7 of the largest sample holds with room (measured: <= 7e-10). A basis
    whose 0 Hz is not 4.65 ppm (Osprey's, 4.68) is written moved there, as LCModel takes a
    basis: read back at 4.65 ppm its FIDs are the original's times ``exp(2 pi i 0.03 MHz t)``
    and its NAA still sits at 2.008 ppm (read at 4.65 ppm unmoved it sat at 1.978)."""
    relative, ppm_reference = OUTSIDE_BASES[writer]
    original = read_basis(shared(relative, SHARED), ppm_reference=ppm_reference)
    written = write_lcmodel_basis(tmp_path / "ours.BASIS", original)
    back = read_basis(written)
    assert back.names == original.names
    assert (back.dwell_time_s, back.spectrometer_freq_mhz) == (
        original.dwell_time_s,
        original.spectrometer_freq_mhz,
    )
    assert back.ppm_reference == 4.65
    widths = original.metadata.get("fwhm_hz", [])  # FWHMBA in Hz: ppm x MHz and back
    assert {**back.metadata, "fwhm_hz": widths} == {**original.metadata, "fwhm_hz": widths}
    assert back.metadata.get("fwhm_hz", []) == pytest.approx(widths, rel=1e-12)
    moved_hz = (ppm_reference - 4.65) * original.spectrometer_freq_mhz
    expected = original.fids * np.exp(2j * np.pi * moved_hz * original.time_axis_s())
    np.testing.assert_allclose(back.fids, expected, rtol=0, atol=1e-7 * np.abs(expected).max())
    naa = back.fids[back.index("NAA")]
    found = main_peak_ppm(naa, back.dwell_time_s, back.spectrometer_freq_mhz, 4.65)
    assert found == pytest.approx(NAA_PPM, abs=TOL_PPM)


# ---------------------------------------------------------------------------------------------
# what scaloquant writes, read by another tool


def fsl_mrs_peak_ppm(path: Path, window: tuple[float, float] = (0.2, 4.2)) -> np.ndarray:
    """Main peak of each FID of a NIfTI-MRS file as FSL-MRS sees it: ``NIFTI_MRS(path)[:]``
    (which conjugates), spectrum ``fftshift(fft)`` on FSL-MRS's increasing axis
    ``4.65 + fftshift(fftfreq(N, dwell)) / MHz``; numpy only, none of scaloquant's axes."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS

    img = NIFTI_MRS(str(path))
    fids = np.moveaxis(np.asarray(img[:]), 3, -1).reshape(-1, img.shape[3])
    n_fft = 16 * fids.shape[-1]
    ppm = (
        4.65 + np.fft.fftshift(np.fft.fftfreq(n_fft, img.dwelltime)) / img.spectrometer_frequency[0]
    )
    real = np.fft.fftshift(np.fft.fft(fids, n=n_fft, axis=-1), axes=-1).real
    inside = np.flatnonzero((ppm >= window[0]) & (ppm <= window[1]))
    return ppm[inside[np.argmax(real[:, inside], axis=1)]]


def test_our_simulated_nifti_shows_naa_at_2_01_in_fsl_mrs(tmp_path):
    """``scaloquant simulate --format nifti`` of NAA alone (no shift), read back as FSL-MRS
    reads NIfTI-MRS: NAA at 2.01 ppm; the raw samples on disk (nibabel) are its mirror image on
    the same axis, as the standard (Levitt) wants."""
    naa = tmp_path / "naa.npz"
    write_basis_npz(naa, default_basis().subset(["NAA"]))
    out = tmp_path / "sim.nii.gz"
    args = ["simulate", "--n", "2", "--seed", "3", "--basis", naa, "--shift-range", "0", "0"]
    assert main([*map(str, args), "--format", "nifti", "--out", str(out)]) == 0
    np.testing.assert_allclose(fsl_mrs_peak_ppm(out), 2.008, atol=0.01)

    disk = np.moveaxis(np.asarray(nib.load(out).dataobj), 3, -1).reshape(-1, 2048)
    spec = np.fft.fftshift(np.fft.fft(disk, axis=-1), axes=-1)
    ppm = 4.65 + np.fft.fftshift(np.fft.fftfreq(2048, 2.5e-4)) / 123.261703
    assert np.all(np.abs(ppm[np.argmax(np.abs(spec), axis=1)] - (2 * 4.65 - 2.008)) < 0.01)


def test_our_nifti_and_lcmodel_raw_hold_the_same_samples_on_disk(tmp_path):
    """write_nifti_mrs and write_lcmodel_raw of the embedded basis' NAA: the NIfTI-MRS samples on
    disk (nibabel) equal the .RAW numbers (parsed as plain text), both in Levitt's orientation,
    to the .RAW's 9 significant digits; and FSL-MRS's view of the NIfTI-MRS has NAA at 2.01."""
    basis = default_basis()
    fid = FID(
        basis.fids[basis.index("NAA")],
        basis.dwell_time_s,
        basis.spectrometer_freq_mhz,
        basis.ppm_reference,
    )
    nii = write_nifti_mrs(tmp_path / "naa.nii.gz", fid)
    raw = write_lcmodel_raw(tmp_path / "naa.RAW", fid, name="NAA")
    body = raw.read_text().rsplit("$END", 1)[1].split()
    numbers = np.array(body, dtype=float).reshape(-1, 2)
    disk = np.asarray(nib.load(nii).dataobj).reshape(-1)
    np.testing.assert_allclose(
        disk, numbers[:, 0] + 1j * numbers[:, 1], rtol=0, atol=1e-8 * np.abs(disk).max()
    )
    np.testing.assert_allclose(fsl_mrs_peak_ppm(nii), 2.008, atol=0.01)


# ---------------------------------------------------------------------------------------------
# the fit on spec2nii's file equals the fit on spant's .RAW; the mirror guard


def test_fit_of_spec2nii_nifti_equals_fit_of_spant_raw():
    """``fit`` (library: read_inputs + fit_inputs with the ``invivo`` preset, the CLI's default
    for such data; the embedded 4000 Hz basis resampled to the 2000 Hz / 127.8 MHz grid) gives
    the same result on spec2nii's NIfTI-MRS as on spant's .RAW of the same spectrum.

    The samples as read agree to 1e-6 of the largest (measured 2.6e-10 absolute; the .RAW's
    print precision), in orientation and scale. The two fits end at the same minimum: fit
    residuals within 1e-4 relative (measured 7e-6), amplitudes within 0.05 of their CRLB SD.
    Session 9 measured 0.007 SD (2e-3 of the largest amplitude; session 8: 1e-5 SD): the LM
    stops on a relative gain of 1e-5 of the cost, and the nearly flat directions of a tissue
    spectrum's fit (metabolites that trade signal) end where the two paths left them, far
    inside their uncertainty. The per-metabolite scipy model is not the one for a tissue
    spectrum: its many local minima let the two inputs end 10 % apart with one BLAS thread."""
    nifti = read_inputs([shared(f"{SPANT}/nifti_spec2nii/metab.nii.gz")])
    raw = read_inputs([shared(f"{SPANT}/lcmodel_reference/data.raw")], overrides=SPANT_GRID)
    x_nifti, x_raw = (inputs[0].fid.samples.reshape(-1) for inputs in (nifti, raw))
    assert np.abs(x_nifti - x_raw).max() < 1e-6 * np.abs(x_raw).max()
    options = Options(max_figures=0, fit_config=FIT_PRESETS["invivo"])
    runs = [
        fit_inputs(x, default_basis(), basis_name="default", options=options) for x in (nifti, raw)
    ]
    (a_nifti, a_raw), (sd_nifti, sd_raw) = (
        [run.results[0].columns[key][0] for run in runs] for key in ("", "_crlb_sd")
    )
    assert np.all(np.abs(a_nifti - a_raw) < 0.05 * np.minimum(sd_nifti, sd_raw))
    residuals = [float(run.results[0].quality["fit_residual"][0]) for run in runs]
    assert residuals[0] == pytest.approx(residuals[1], rel=1e-4)
    for run in runs:
        assert not any("mirrored" in w for w in run.results[0].warnings)


def mirrored_spant_nifti(folder: Path) -> Path:
    """spec2nii's Philips file conjugated by the nifti_mrs package's own tool: a NIfTI-MRS file
    in the wrong orientation, as another tool could write it."""
    from nifti_mrs.nifti_mrs import NIFTI_MRS
    from nifti_mrs.tools import conjugate

    mirrored = folder / "mirrored.nii.gz"
    conjugate(NIFTI_MRS(str(shared(f"{SPANT}/nifti_spec2nii/metab.nii.gz")))).save(str(mirrored))
    return mirrored


def assert_mirror_warning_reaches_the_user(command: list[str], folder: Path, capsys) -> None:
    """``command`` on the mirrored file prints the warning and stores it in results.json; with
    ``--conjugate`` it reads the file right and the warning goes."""
    for extra, warned in (([], True), (["--conjugate"], False)):
        out = folder / f"out{len(extra)}"
        assert main([*command, *extra, "--force", "--max-figures", "0", "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert ("mirrored.nii.gz: the spectrum looks mirrored" in printed) is warned
        stored = json.loads((out / "results.json").read_text())["inputs"][0]["warnings"]
        assert any("looks mirrored" in w for w in stored) is warned


def test_mirrored_nifti_warns_in_fit_output(tmp_path, capsys):
    """``scaloquant fit`` on a mirrored copy of spec2nii's Philips file (made by nifti_mrs):
    the warning of SpectraInput.checks() is printed and in results.json; not with --conjugate.
    (``quantify`` takes the same path, ``quantify.matching.matched_inputs``; its test is
    ``tests/cli/test_cli_quantify.py::test_mirrored_nifti_is_warned_about``, where the trained
    checkpoint it needs is already paid for.)"""
    mirrored = mirrored_spant_nifti(tmp_path)
    assert_mirror_warning_reaches_the_user(["fit", str(mirrored)], tmp_path, capsys)
