"""LCModel and scaloquant's fit on the same spectra, in one run: speed and ratios side by side.

LCModel 6.3 (built from its BSD-3 source by ``../shared/peers/lcmodel/build.sh``) runs with its
default control file plus the keys that describe the data (grid, files, water reference; see
``benchmarks/_lcmodel.py``), ``--workers`` spectra at a time. scaloquant fits the same spectra
with the same basis through :func:`fit_with_scaloquant` (``scaloquant fit``'s library path,
``--workers`` torch threads). Both are timed from their inputs on disk or in memory to their
estimates; LCModel's time includes its process start and its PostScript output, which it cannot
skip.

Sets (``--sets``, comma-separated; all by default):

* ``challenge``: the 28 spectra of the ISMRM 2016 fitting challenge (``.RAW`` + ``.H2O``, 2048
  points, 0.25 ms, 123.261703 MHz) with its basis ``press3T_30ms.BASIS``. The true values are
  not public here: ratios side by side, LCModel's mM with the challenge's water scaling.
* ``cr``: the challenge's creatine-only water-scaling spectrum, which must give 10 mM. LCModel
  runs with its water defaults (``WCONC`` 35880 mM, ``ATTH2O`` 0.7) and with the challenge's
  water scaling (``WCONC`` = [H2O]_rc x R_met = 29697 x 1.206 mM, ``ATTH2O`` 1, the
  assumptions of scaloquant's mM), each as it is and with the referencing shift limited to
  +-0.05 ppm (``SHIFMN``/``SHIFMX``): with only creatine in the spectrum, LCModel's default
  referencing can take the Cr singlet for choline.
* ``invivo``: the scanner spectra of ``../shared/data/invivo`` as spec2nii wrote them
  (NIfTI-MRS): Philips PRESS TE 30 from spant with ``3t.basis`` (checked against LCModel 6.3's
  reference table), Osprey's Philips PRESS TE 35 and TE 30 subjects with Osprey's TE 35 basis,
  Siemens PRESS TE 30 from suspect with LCModel's ``press_30ms_3T.basis``; the spant spectrum
  and the Osprey TE 30 pair also with the ISMRM 2016 TE 30 basis less its ``Mac`` (``chomit``;
  scaloquant's default basis, ``bench_invivo_ratios.py``'s ``spant-default`` and
  ``osprey-te30-*``), so that both tools add LCModel's parametric macromolecules. For LCModel
  they are written as ``.RAW`` from the NIfTI-MRS samples on disk (its orientation); scaloquant fits
  them with ``force`` (other grids and TE than the bases'), as ``scaloquant fit --force``.
* ``simulated``: ``--n-sim`` spectra of the default simulator (``scaloquant simulate``'s: the
  ISMRM 2016 basis, amplitudes U[0, 1], damping U[0, 15] 1/s, shift U[-3, 3] Hz) with noise at
  ``--snr``; the truth is known, so the errors of the ratios are printed. LCModel fits them
  with ``press3T_30ms.BASIS`` (the same metabolite FIDs; scaloquant's embedded copy lacks the
  0 ppm reference singlet).
* ``tissue``: ``--n-tissue`` tissue-like spectra of the ``invivo`` simulation prior at
  ``--snr`` (``bench_invivo_default.tissue_spectra``, the spectra of ``bench_invivo_default.py``:
  group Voigt lines, per-metabolite deviations, the basis' measured ``Mac``, lipids in a quarter
  of them, baseline, residual water, eddy-current and any phase; docs/invivo-prior.md) on the
  embedded basis, LCModel with ``press3T_30ms.BASIS`` twice: its defaults (the basis' ``Mac``
  and its own simulated MM09-MM20 and lipids, what a user gets) and with its simulated MM
  omitted (``CHOMIT``: the basis' ``Mac`` and its lipids, the model of the simulation and of
  scaloquant's ``--mm auto`` on these data; omitting ``Mac`` instead, as the ``invivo`` set's
  ISMRM row does for scanner data, would leave LCModel without the simulation's MM shape).
  scaloquant fits them once per row (two timings). The truth is the drawn
  ``concentrations_mm``: the amplitude of each basis FID, in basis units = mM of the
  simulation (:mod:`scaloquant.simulate.invivo`).

Ratios are to total creatine (Cr + PCr), of tNAA (NAA + NAAG), tCho (GPC + PCho/PCh), Glx (Glu
+ Gln), Ins, GSH and GABA, each tool's combined rows read as it prints them: LCModel's own
``NAA+NAAG``, ``Cr+PCr``, ``GPC+PCho`` (or ``GPC+PCh``), ``Glu+Gln``, which every run asks for in
the basis' spelling (``_lcmodel.combination_lines``; LCModel's defaults name ``PCh``, so with the
ISMRM 2016 basis it printed no tCho row before session 34), and scaloquant's ``tNAA``, ``tCr``,
``tCho``, ``Glx``; the truth's as the sums of its parts.
With a truth (``simulated``, ``tissue``) the errors of these ratios are printed (mean and median
absolute, median relative %), and every metabolite (the measured ``Mac`` left out) referenced to
the true tCr, ``estimate x true tCr / estimated tCr``: LCModel's unscaled concentrations carry an
unknown global scale, which this drops, and both tools are judged alike (:func:`accuracy_of`:
MAE in mM and SMAPE per tool and metabolite, the metabolites missed, estimate 0 where the truth >
0.5 mM, and the share of errors beyond 3 of the tool's own SDs: LCModel's %SD x concentration,
scaloquant's CRLB, each scaled with its estimate).

Both tools' %SD (:func:`sd_comparison`, printed by every group with LCModel results): LCModel's
table and scaloquant's ``_crlb_pct`` for the rows both report (tNAA, tCr, tCho, Glx, each tool's
SD of the sum from its own covariance of the parts, then each metabolite), their ratio, the estimates each keeps by the users' rule %SD <= 20 and, with a
truth, each tool's calibration (the RMS of its errors over the RMS of its own SDs, after its
global scale). ``--out DIR`` keeps LCModel's run folders
(control, table, PostScript) and writes ``results.json`` (LCModel's full tables, scaloquant's
amplitudes and CRLB SDs, ratios, times and the accuracy).

``--lcmodel-extra KEY=VALUE ...`` adds control-file lines to every LCModel run (e.g.
``doecc=T``: LCModel's eddy-current correction by the water reference, docs/fit.md
"Eddy-current correction").

Usage::

    PYTHONPATH=src python benchmarks/bench_lcmodel.py [--sets challenge,cr,invivo,simulated,tissue]
        [--workers 2] [--n-sim 64] [--n-tissue 64] [--snr 30] [--seed 0] [--out DIR]
        [--lcmodel EXE] [--lcmodel-extra KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

import _lcmodel as lcm
from bench_invivo_default import tissue_spectra
from scaloquant.evaluate.metrics import mae, smape
from scaloquant.fit import FitConfig
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis, read_fid, read_lcmodel_basis
from scaloquant.metabolites import COMBINATIONS, canonical
from scaloquant.quantify import Options, fit_inputs
from scaloquant.quantify.inputs import SpectraInput
from scaloquant.quantify.water import (
    WaterScaling,
    metabolite_relaxation_correction,
    relaxation_corrected_water_mM,
)
from scaloquant.simulate import InvivoPrior, SimulationConfig, simulate_batch
from scaloquant.simulate.prior import MEASURED_MM_NAMES
from scaloquant.threads import torch_threads
from scaloquant.types import FID, BasisSet

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CHALLENGE = SHARED / "data/ismrm2016-challenge"
CHALLENGE_BASIS = SHARED / "data/ismrm2016/basis/lcmodel/press3T_30ms.BASIS"
CHALLENGE_GRID = {"dwell_time_s": 2.5e-4, "spectrometer_freq_mhz": 123.261703}
INVIVO = SHARED / "data/invivo"
SPANT_REFERENCE = INVIVO / "philips-press30-spant/lcmodel_reference"
OSPREY_BASIS = (
    INVIVO / "philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS"
)
#: The challenge's own statement: this spectrum holds 10 mM creatine.
CR_TRUE_MM = 10.0

TOTAL_CREATINE = ("Cr", "PCr")
#: Groups reported as ratios to total creatine; names of every basis used here.
GROUPS: dict[str, tuple[str, ...]] = {
    "tNAA": ("NAA", "NAAG"),
    "tCho": ("GPC", "PCho", "PCh"),
    "Glx": ("Glu", "Gln"),
    "Ins": ("Ins",),
    "GSH": ("GSH",),
    "GABA": ("GABA",),
}


@dataclass(frozen=True)
class Case:
    """One spectrum, as each tool takes it.

    Attributes
    ----------
    name : label.
    lcmodel : LCModel's files and grid.
    fid : the same spectrum for scaloquant, internal orientation, samples ``(n_points,)``.
    water : its water reference for scaloquant (samples ``(n_points_w,)``), or None.
    truth : metabolite -> true amplitude (basis scale) or concentration, when known.
    """

    name: str
    lcmodel: lcm.Spectrum
    fid: FID
    water: FID | None = None
    truth: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Group:
    """Cases fitted with one basis (LCModel's file, scaloquant's reading of it)."""

    label: str
    basis: BasisSet
    cases: list[Case]
    settings: lcm.Settings = field(default_factory=lcm.Settings)
    force: bool = False


@dataclass(frozen=True)
class ScaloquantFit:
    """scaloquant's estimates: ``amplitudes`` / ``mM`` / their CRLB SDs ``crlb_sd`` (basis
    units) ``(n, M)`` by ``names``."""

    names: tuple[str, ...]
    amplitudes: np.ndarray
    mM: np.ndarray | None
    seconds: float
    warnings: tuple[str, ...] = ()
    crlb_sd: np.ndarray | None = None


def fit_with_scaloquant(
    fids: Sequence[FID],
    waters: Sequence[FID | None],
    basis: BasisSet,
    *,
    workers: int,
    force: bool,
    fit_config: FitConfig,
) -> ScaloquantFit:
    """Fit ``fids`` (each ``(n_points,)``, internal orientation) with ``basis`` the way
    ``scaloquant fit`` does; the one place to switch when the fit engine changes.

    Spectra that share a grid (and all have, or all lack, a water reference) go in one batch,
    as ``scaloquant fit`` takes a multi-spectrum file.
    """
    options = Options(force=force, max_figures=0, fit_config=fit_config)
    batches: list[list[int]] = []
    for i, fid in enumerate(fids):
        last = batches[-1][-1] if batches else None
        if last is not None and _same_batch(fids[last], waters[last], fid, waters[i]):
            batches[-1].append(i)
        else:
            batches.append([i])
    inputs = [
        _as_input(f"batch{k}", [fids[i] for i in b], [waters[i] for i in b])
        for k, b in enumerate(batches)
    ]
    t0 = time.perf_counter()
    with torch_threads(workers):
        run = fit_inputs(
            inputs, basis, basis_name=str(basis.provenance.get("source", "basis")), options=options
        )
    seconds = time.perf_counter() - t0
    amplitudes = np.concatenate([r.columns[""] for r in run.results])
    has_mM = all("_mM" in r.columns for r in run.results)
    mM = np.concatenate([r.columns["_mM"] for r in run.results]) if has_mM else None
    has_sd = all("_crlb_sd" in r.columns for r in run.results)
    sd = np.concatenate([r.columns["_crlb_sd"] for r in run.results]) if has_sd else None
    warnings = tuple(w for r in run.results for w in (*r.conversions, *r.warnings))
    return ScaloquantFit(
        tuple(run.names), amplitudes, mM, seconds, tuple(dict.fromkeys(warnings)), crlb_sd=sd
    )


def _same_batch(a: FID, wa: FID | None, b: FID, wb: FID | None) -> bool:
    same = (a.n_points, a.dwell_time_s, a.spectrometer_freq_mhz, a.ppm_reference) == (
        b.n_points,
        b.dwell_time_s,
        b.spectrometer_freq_mhz,
        b.ppm_reference,
    ) and a.provenance.get("echo_time_s") == b.provenance.get("echo_time_s")
    if (wa is None) != (wb is None):
        return False
    return same and (wa is None or wa.n_points == wb.n_points)


def _as_input(label: str, fids: Sequence[FID], waters: Sequence[FID | None]) -> SpectraInput:
    fid = fids[0].with_samples(np.stack([f.samples for f in fids]))
    water = water_path = None
    if waters[0] is not None:
        water = waters[0].with_samples(np.stack([w.samples for w in waters]))
        water_path = Path(f"{label}-water")  # named in the notes of the water checks
    return SpectraInput(Path(label), fid, water, water_path, None, ())


# ---------------------------------------------------------------------------------- the sets
def _challenge_water_settings(extra: tuple[str, ...] = ()) -> lcm.Settings:
    """LCModel's WCONC x ATTH2O set to the challenge's [H2O]_rc x R_met (scaloquant's default
    water scaling), so both tools scale with the same assumptions."""
    scaling = WaterScaling()
    wconc = relaxation_corrected_water_mM(scaling) * metabolite_relaxation_correction(scaling)
    return lcm.Settings(water_conc_mM=round(wconc, 2), water_attenuation=1.0, extra=extra)


def _raw_case(name: str, raw: Path, truth: Mapping[str, float] | None = None) -> Case:
    fid = read_fid(raw, **CHALLENGE_GRID)
    water_path = raw.with_suffix(".H2O")
    water = read_fid(water_path, **CHALLENGE_GRID) if water_path.is_file() else None
    spectrum = lcm.Spectrum(
        name,
        raw,
        CHALLENGE_BASIS,
        fid.n_points,
        CHALLENGE_GRID["dwell_time_s"],
        CHALLENGE_GRID["spectrometer_freq_mhz"],
        water=water_path if water is not None else None,
        echo_time_ms=30.0,
    )
    return Case(name, spectrum, fid, water, truth)


def challenge_set() -> list[Group]:
    folder = CHALLENGE / "datasets_LCModel"
    cases = [_raw_case(f"dataset{i}", folder / f"dataset{i}.RAW") for i in range(1, 29)]
    basis = read_lcmodel_basis(CHALLENGE_BASIS)
    return [
        Group("ISMRM 2016 challenge, press3T_30ms.BASIS", basis, cases, _challenge_water_settings())
    ]


def cr_set() -> list[Group]:
    raw = CHALLENGE / "Cr_water_scaling_LCModel/Cr_10mM_test_water_scaling.RAW"
    basis = read_lcmodel_basis(CHALLENGE_BASIS)
    truth = {"Cr": CR_TRUE_MM}
    limited = ("shifmn=-0.05,-0.05", "shifmx=0.05,0.05")
    variants = [
        ("LCModel water defaults (WCONC 35880, ATTH2O 0.7)", lcm.Settings()),
        ("LCModel water defaults, shift +-0.05 ppm", lcm.Settings(extra=limited)),
        ("challenge water scaling", _challenge_water_settings()),
        ("challenge water scaling, shift +-0.05 ppm", _challenge_water_settings(limited)),
    ]
    return [
        Group(f"Cr 10 mM, {label}", basis, [_raw_case(f"cr{k}", raw, truth)], settings)
        for k, (label, settings) in enumerate(variants)
    ]


def _nifti_samples(path: Path) -> np.ndarray:
    """The NIfTI-MRS samples as stored (LCModel's orientation), extra dims averaged: ``(N,)``."""
    import nibabel

    data = np.asarray(nibabel.load(str(path)).dataobj)
    return data.reshape(-1, data.shape[3] if data.ndim > 3 else data.shape[-1]).mean(axis=0)


def _nifti_raw(path: Path, raw: Path, name: str) -> tuple[FID, Path]:
    """scaloquant's FID of a single-voxel NIfTI-MRS file ``(N,)`` (extra dims averaged), and the
    LCModel ``.RAW`` written at ``raw`` (labelled ``name``) from the samples on disk.
    scaloquant's internal orientation is the conjugate of the NIfTI-MRS samples on disk
    (``../shared/data/invivo/README.md``); a reader that disagrees is an error here, so that
    both tools are sure to see the same spectrum."""
    disk = _nifti_samples(path)
    fid = read_fid(path)
    flat = fid.samples.reshape(-1, fid.n_points).mean(axis=0)
    if not np.allclose(flat, np.conj(disk), rtol=0, atol=1e-6 * np.abs(disk).max()):
        raise RuntimeError(
            f"scaloquant's NIfTI-MRS reader does not give conj(samples on disk) for {path}; "
            "LCModel and scaloquant would see different spectra"
        )
    written = lcm.write_raw(
        raw,
        disk,
        dwell_time_s=fid.dwell_time_s,
        spectrometer_freq_mhz=fid.spectrometer_freq_mhz,
        name=name,
    )
    return fid.with_samples(flat), written


def _invivo_case(name: str, metab: Path, water: Path | None, basis: Path, folder: Path) -> Case:
    fid, raw = _nifti_raw(metab, folder / f"{name}.RAW", name)
    water_fid, h2o = None, None
    if water is not None:
        water_fid, h2o = _nifti_raw(water, folder / f"{name}.H2O", f"{name}_water")
    echo_time_s = fid.provenance.get("echo_time_s")
    spectrum = lcm.Spectrum(
        name,
        raw,
        basis,
        fid.n_points,
        fid.dwell_time_s,
        fid.spectrometer_freq_mhz,
        water=h2o,
        echo_time_ms=None if echo_time_s is None else round(float(echo_time_s) * 1e3, 3),
    )
    return Case(name, spectrum, fid, water_fid)


def invivo_set(folder: Path) -> list[Group]:
    folder.mkdir(parents=True, exist_ok=True)
    spant = INVIVO / "philips-press30-spant/nifti_spec2nii"
    osprey = INVIVO / "philips-press-osprey/nifti"
    te30 = osprey / "UnEdited_with_MM_data"
    siemens = INVIVO / "siemens-press30-suspect"
    groups = [
        Group(
            "Philips PRESS TE30 (spant), 3t.basis",
            read_lcmodel_basis(SPANT_REFERENCE / "3t.basis"),
            [
                _invivo_case(
                    "philips_spant",
                    spant / "metab.nii.gz",
                    spant / "wref.nii.gz",
                    SPANT_REFERENCE / "3t.basis",
                    folder,
                )
            ],
            force=True,
        ),
        Group(
            "Philips PRESS TE35 and TE30 (Osprey), Osprey's TE35 basis",
            read_lcmodel_basis(OSPREY_BASIS),
            [
                *(
                    _invivo_case(
                        f"osprey_te35_sub{s}",
                        osprey / f"UnEdited/sub-0{s}_PRESS_35_act.nii.gz",
                        osprey / f"UnEdited/sub-0{s}_PRESS_35_ref.nii.gz",
                        OSPREY_BASIS,
                        folder,
                    )
                    for s in (1, 2)
                ),
                *(
                    _invivo_case(
                        f"osprey_te30_sub{s}",
                        te30 / f"sub-0{s}_ses-01_PRESS_raw-act_noID.nii.gz",
                        te30 / f"sub-0{s}_ses-01_PRESS_raw-ref_noID.nii.gz",
                        OSPREY_BASIS,
                        folder,
                    )
                    for s in (1, 2)
                ),
            ],
            force=True,
        ),
        Group(
            # bench_invivo_ratios.py's spant-default: scaloquant's embedded basis (the same
            # FIDs), its measured macromolecules left out as for the Osprey TE 30 group below
            "Philips PRESS TE30 (spant), ISMRM 2016 TE30 basis without Mac",
            read_lcmodel_basis(CHALLENGE_BASIS),
            [
                _invivo_case(
                    "philips_spant_ismrm",
                    spant / "metab.nii.gz",
                    spant / "wref.nii.gz",
                    CHALLENGE_BASIS,
                    folder,
                )
            ],
            lcm.Settings(extra=("nomit=1", "chomit(1)='Mac'")),
            force=True,
        ),
        Group(
            # the data's own echo time: the ISMRM 2016 PRESS TE 30 basis (123.2 MHz), its
            # measured macromolecules left out by both tools (LCModel adds its parametric
            # MM/lipids, as scaloquant's default does for data from another scanner type)
            "Philips PRESS TE30 (Osprey), ISMRM 2016 TE30 basis without Mac",
            read_lcmodel_basis(CHALLENGE_BASIS),
            [
                _invivo_case(
                    f"osprey_te30_sub{s}_ismrm",
                    te30 / f"sub-0{s}_ses-01_PRESS_raw-act_noID.nii.gz",
                    te30 / f"sub-0{s}_ses-01_PRESS_raw-ref_noID.nii.gz",
                    CHALLENGE_BASIS,
                    folder,
                )
                for s in (1, 2)
            ],
            lcm.Settings(extra=("nomit=1", "chomit(1)='Mac'")),
            force=True,
        ),
        Group(
            "Siemens PRESS TE30 (suspect), press_30ms_3T.basis",
            read_lcmodel_basis(siemens / "press_30ms_3T.basis"),
            [
                _invivo_case(
                    "siemens_suspect",
                    siemens / "nifti/SVS_30_rda.nii.gz",
                    None,
                    siemens / "press_30ms_3T.basis",
                    folder,
                )
            ],
            force=True,
        ),
    ]
    return groups


def simulated_spectrum(
    folder: Path, name: str, samples: np.ndarray, basis: BasisSet
) -> lcm.Spectrum:
    """One spectrum simulated on the embedded basis, ``samples`` ``(n_points,)`` in internal
    orientation, written as ``folder/NAME.RAW`` (its conjugate, LCModel's orientation) for LCModel
    with :data:`CHALLENGE_BASIS` (the same metabolite FIDs plus the 0 ppm reference singlet that
    the embedded copy lacks), TE 30 ms."""
    raw = lcm.write_raw(
        folder / f"{name}.RAW",
        np.conj(samples),
        dwell_time_s=basis.dwell_time_s,
        spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        name=name,
    )
    return lcm.Spectrum(
        name,
        raw,
        CHALLENGE_BASIS,
        basis.n_points,
        basis.dwell_time_s,
        basis.spectrometer_freq_mhz,
        echo_time_ms=30.0,
    )


def _simulated_cases(
    folder: Path, prefix: str, basis: BasisSet, fids: np.ndarray, amplitudes: np.ndarray
) -> list[Case]:
    """Spectra simulated on the embedded basis, ``fids`` ``(n, n_points)`` in internal
    orientation with true ``amplitudes`` ``(n, M)`` by ``basis.names``, as
    :func:`simulated_spectrum` writes them for LCModel."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for i, samples in enumerate(fids):
        fid = FID(samples, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
        name = f"{prefix}{i:04d}"
        spectrum = simulated_spectrum(folder, name, samples, basis)
        truth = dict(zip(basis.names, amplitudes[i].tolist(), strict=True))
        cases.append(Case(name, spectrum, fid, None, truth))
    return cases


def simulated_set(folder: Path, n: int, snr: float, seed: int) -> list[Group]:
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [snr, snr]})
    signals = simulate_batch(basis, config, n, np.random.default_rng(seed))
    cases = _simulated_cases(folder, "sim", basis, signals.fids, signals.amplitudes)
    return [
        Group(
            f"simulated SNR {snr:g}, seed {seed}, embedded basis / press3T_30ms.BASIS", basis, cases
        )
    ]


#: LCModel's own simulated macromolecules (``CHSIMU``'s MM components, manual sec. 11.7); its
#: simulated lipids (Lip09, Lip13a-b, Lip20) are not among them.
LCMODEL_SIMULATED_MM = ("MM09", "MM12", "MM14", "MM17", "MM20")


def tissue_settings() -> dict[str, lcm.Settings]:
    """LCModel's settings of the ``tissue`` set, by label: its defaults (``press3T_30ms.BASIS``'s
    measured ``Mac`` *and* LCModel's simulated MM09-MM20 and lipids, what a user gets), and
    the same with its simulated MM omitted (``CHOMIT``), which leaves the model of the
    simulation and of scaloquant's ``--mm auto`` for these data: the measured ``Mac`` plus
    parametric lipids."""
    omit = tuple(f"chomit({k})='{name}'" for k, name in enumerate(LCMODEL_SIMULATED_MM, 1))
    return {
        "LCModel defaults (basis Mac + its MM09-MM20 + lipids)": lcm.Settings(),
        "LCModel, its MM09-MM20 omitted (basis Mac + lipids)": lcm.Settings(
            extra=(f"nomit={len(LCMODEL_SIMULATED_MM)}", *omit)
        ),
    }


def tissue_set(folder: Path, n: int, snr: float, seed: int) -> list[Group]:
    """``n`` tissue-like spectra (``bench_invivo_default.tissue_spectra``: the ``invivo``
    simulation prior at a fixed SNR on the embedded basis), once per LCModel setting of
    :func:`tissue_settings`. The truth is the drawn ``concentrations_mm``: the amplitude of each
    basis FID in basis units (= mM of the simulation; ``Mac``'s a multiple of the measured
    spectrum), the units of scaloquant's amplitudes and, to a factor, of LCModel's unscaled
    concentrations."""
    basis, signals, _ = tissue_spectra(InvivoPrior(snr_range=(snr, snr)), n, seed)
    amplitudes = signals.parameters.concentrations_mm
    cases = _simulated_cases(folder, "tissue", basis, signals.fids, amplitudes)
    return [
        Group(f"tissue SNR {snr:g}, seed {seed}, {label}", basis, cases, settings)
        for label, settings in tissue_settings().items()
    ]


# ---------------------------------------------------------------------------------- ratios
def group_ratios(values: Mapping[str, float]) -> dict[str, float]:
    """Ratios to total creatine of :data:`GROUPS` from one tool's values: a combined group's
    and the creatine's own row where the tool prints one (LCModel's ``NAA+NAAG``, ``Cr+PCr``,
    ``GPC+PCho``..., scaloquant's ``tNAA``, ``tCr``...; :func:`lcmodel_row_name`), else the sum
    of its parts (the truth's); NaN where the basis lacks a group or the creatine is not
    positive."""
    tcr = _group_value(values, "tCr", TOTAL_CREATINE)
    if not tcr > 0:
        return dict.fromkeys(GROUPS, float("nan"))
    return {group: _group_value(values, group, names) / tcr for group, names in GROUPS.items()}


def _group_value(values: Mapping[str, float], group: str, parts: Sequence[str]) -> float:
    """``group``'s row of ``values`` (:func:`lcmodel_row_name`: its own name, LCModel's ``A+B``
    of the same metabolites, or the one part a basis holds), else the sum of the ``parts``
    present; NaN for none."""
    row = lcmodel_row_name(group, list(values))
    if row in values:
        return float(values[row])
    present = [n for n in parts if n in values]
    return float(sum(values[n] for n in present)) if present else float("nan")


def reference_ratios() -> dict[str, float]:
    """LCModel 6.3's published ratios for the Philips spant spectrum (its reference table)."""
    with (SPANT_REFERENCE / "out_ref_build_table.csv").open() as f:
        return {row["metabolite"]: float(row["ratio_to_CrPCr"]) for row in csv.DictReader(f)}


# ---------------------------------------------------------------------------------- accuracy
#: Tools compared, as the keys of results.json's rows name them.
TOOLS = ("lcmodel", "scaloquant")
#: A true concentration (mM) above which an estimate of 0 counts as a missed metabolite.
PRESENT_MM = 0.5
#: Metabolites of the tCr-referenced table printed per tool (all are in results.json).
SHOWN_METABOLITES = ("NAA", "Cr", "PCr", "GPC", "PCho", "Ins", "Glu", "Gln", "GSH")


def ratio_errors(rows: Sequence[Mapping], tool: str) -> dict[str, dict[str, float]]:
    """Errors of ``tool``'s ratios to tCr against the truth's over results.json's ``rows``,
    per group of :data:`GROUPS`: ``mean`` and ``median`` absolute error and ``median_rel_pct``,
    the median of ``|error| / true ratio`` in % (over true ratios > 0). A spectrum whose ratio
    or true ratio is NaN (no result, no creatine) is left out of that group. NaN where none
    is left."""
    out = {}
    for group in GROUPS:
        pairs = np.array(
            [
                (r[f"{tool}_ratios"][group], r["truth_ratios"][group])
                for r in rows
                if r[f"{tool}_ratios"] is not None and r["truth_ratios"] is not None
            ],
            dtype=np.float64,
        ).reshape(-1, 2)
        pairs = pairs[np.isfinite(pairs).all(axis=1)]
        error = np.abs(pairs[:, 0] - pairs[:, 1])
        positive = pairs[:, 1] > 0
        relative = error[positive] / pairs[positive, 1]
        out[group] = {
            "mean": float(error.mean()) if error.size else float("nan"),
            "median": float(np.median(error)) if error.size else float("nan"),
            "median_rel_pct": float(100 * np.median(relative)) if relative.size else float("nan"),
        }
    return out


def lcmodel_row_name(name: str, lcmodel_names: Sequence[str]) -> str:
    """LCModel's table row for scaloquant's column ``name``: ``name`` itself, but for a combined
    row of ``COMBINATIONS`` (``tNAA``, ``tCr``, ``tCho``, ``Glx``) LCModel's ``A+B`` row of the
    same metabolites, any spelling (``GPC+PCh`` for ``tCho``), or its single row where the
    basis holds one part only (scaloquant's ``tNAA`` of a basis without NAAG is its NAA).
    ``name`` itself (absent from LCModel's table) where LCModel has no such row."""
    parts = set(COMBINATIONS.get(name, ()))
    single = {canonical(n) for n in lcmodel_names if "+" not in n}
    wanted = parts & single
    if not wanted:
        return name
    for key in lcmodel_names:
        if {canonical(k) for k in key.split("+")} == wanted:
            return key
    return name


def tool_estimates(
    rows: Sequence[Mapping], tool: str, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``tool``'s estimates and their SDs by ``names``, each ``(n_rows, M)`` (NaN rows where
    the tool gave no result): LCModel's unscaled concentrations and SD = %SD x concentration
    / 100 (its %SD is capped at 999, and an estimate of 0 has SD 0); scaloquant's amplitudes and
    CRLB SDs (basis units). A combined name of ``COMBINATIONS`` (tNAA, tCr, tCho, Glx) is
    LCModel's row of the same metabolites (:func:`lcmodel_row_name`), scaloquant's own."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; choose from {', '.join(TOOLS)}")
    est = np.full((len(rows), len(names)), np.nan)
    sd = np.full_like(est, np.nan)
    for i, row in enumerate(rows):
        if tool == "lcmodel" and row["lcmodel"] is not None:
            conc, pct = row["lcmodel"]["concentrations"], row["lcmodel"]["percent_sd"]
            keys = [lcmodel_row_name(n, list(conc)) for n in names]
            est[i] = [conc.get(k, np.nan) for k in keys]
            sd[i] = [conc.get(k, np.nan) * pct.get(k, np.nan) / 100 for k in keys]
        elif tool == "scaloquant":
            est[i] = [row["scaloquant_amplitudes"][n] for n in names]
            if row.get("scaloquant_crlb_sd") is not None:
                sd[i] = [row["scaloquant_crlb_sd"][n] for n in names]
    return est, sd


def tcr_factor(estimates: np.ndarray, names: Sequence[str], true_tcr: np.ndarray) -> np.ndarray:
    """Per spectrum, true tCr / estimated tCr (Cr + PCr among ``names``) of ``estimates``
    ``(n, M)``: ``(n,)``, NaN where the estimated tCr is not positive. Multiplying a tool's
    estimates by it references them to the true tCr, so an unknown global scale (LCModel's
    unscaled concentrations) drops out and both tools are judged alike."""
    columns = [names.index(n) for n in TOTAL_CREATINE if n in names]
    est_tcr = estimates[:, columns].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(est_tcr > 0, true_tcr / est_tcr, np.nan)


def tcr_referenced_accuracy(
    truth: np.ndarray, estimates: Mapping[str, tuple[np.ndarray, np.ndarray]], names: Sequence[str]
) -> dict[str, object]:
    """Accuracy of each tool's estimates referenced to the true tCr (:func:`tcr_factor`).

    Parameters
    ----------
    truth : true amplitudes ``(n, M)`` by ``names`` (mM of the simulation; Cr and PCr among them).
    estimates : tool -> (estimates, SDs), each ``(n, M)`` by ``names``, NaN rows where it gave
        no result.
    names : the metabolites.

    Returns
    -------
    ``n_spectra`` (those where every tool has finite estimates and a positive tCr: the same
    spectra for all tools) of ``n_total``, and per tool: ``mae_mM`` and ``smape_pct`` (the mean
    over the metabolites of :func:`~scaloquant.evaluate.metrics.mae` and ``smape``),
    ``missed`` of ``present`` (estimate <= 0 where the truth > :data:`PRESENT_MM`),
    ``beyond_3sd`` (share of all estimates whose error exceeds 3 of the tool's own SDs, the SD
    scaled with the estimate), ``beyond_3sd_nonzero`` (the same share among the estimates > 0:
    LCModel's SD of an estimate of 0 is 0, so each of its zeros counts as beyond) and
    ``per_metabolite`` (MAE, SMAPE, missed, present per name; ``beyond_3sd`` a count). Cr + PCr
    referenced equals the true tCr by construction; Cr and PCr each do not.
    """
    true_tcr = truth[:, [names.index(n) for n in TOTAL_CREATINE if n in names]].sum(axis=1)
    factors = {tool: tcr_factor(est, names, true_tcr) for tool, (est, _) in estimates.items()}
    ok = np.ones(truth.shape[0], dtype=bool)
    for tool, (est, _) in estimates.items():
        ok &= np.isfinite(est).all(axis=1) & np.isfinite(factors[tool])
    out: dict[str, object] = {"n_spectra": int(ok.sum()), "n_total": int(truth.shape[0])}
    t = truth[ok]
    present = t > PRESENT_MM
    for tool, (est, sd) in estimates.items():
        factor = factors[tool][ok, None]
        ref, ref_sd = est[ok] * factor, sd[ok] * factor
        m, s = mae(t, ref), smape(t, ref)
        nonzero = est[ok] > 0
        missed = present & ~nonzero
        beyond = np.abs(ref - t) > 3 * ref_sd
        out[tool] = {
            "mae_mM": float(m.mean()),
            "smape_pct": float(s.mean()),
            "missed": int(missed.sum()),
            "present": int(present.sum()),
            "beyond_3sd": float(beyond.mean()) if beyond.size else float("nan"),
            "beyond_3sd_nonzero": float(beyond[nonzero].mean()) if nonzero.any() else float("nan"),
            "per_metabolite": {
                n: {
                    "mae_mM": float(m[j]),
                    "smape_pct": float(s[j]),
                    "missed": int(missed[:, j].sum()),
                    "present": int(present[:, j].sum()),
                    "beyond_3sd": int(beyond[:, j].sum()),
                }
                for j, n in enumerate(names)
            },
        }
    return out


def _has_full_truth(rows: Sequence[Mapping]) -> bool:
    """The rows' truth holds every metabolite (not only the creatine of the ``cr`` set)."""
    return bool(rows) and rows[0]["truth"] is not None and set(rows[0]["truth"]) != {"Cr"}


def accuracy_of(rows: Sequence[Mapping]) -> dict[str, object] | None:
    """:func:`tcr_referenced_accuracy` of both tools over results.json's ``rows`` (the
    metabolites of the truth, measured macromolecules left out), plus scaloquant's amplitudes
    against the truth as they are (``scaloquant_absolute``: ``bench_invivo_default.py``'s
    figure, on the same spectra); None without a full truth."""
    if not _has_full_truth(rows):
        return None
    names = [n for n in rows[0]["truth"] if n not in MEASURED_MM_NAMES]
    truth = np.array([[r["truth"][n] for n in names] for r in rows], dtype=np.float64)
    estimates = {tool: tool_estimates(rows, tool, names) for tool in TOOLS}
    out = tcr_referenced_accuracy(truth, estimates, names)
    ours = estimates["scaloquant"][0]
    ok = np.isfinite(ours).all(axis=1)
    out["scaloquant_absolute"] = {
        "mae_mM": float(mae(truth[ok], ours[ok]).mean()),
        "smape_pct": float(smape(truth[ok], ours[ok]).mean()),
    }
    return out


# ---------------------------------------------------------------------------------- %SD
#: LCModel users' common rule: an estimate whose %SD exceeds it is left out (also 50).
SD_RULE_PCT = 20.0
#: LCModel prints %SD at most 999, and 999 for an estimate of 0 (``PCERR`` in ``LCModel.f``).
LCMODEL_SD_CAP_PCT = 999.0


def percent_sd(estimates: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """``100 SD / estimate``, each ``(n, M)``; NaN where the estimate is not positive (LCModel
    prints 999 there, scaloquant's ``_crlb_pct`` is ``inf``) or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(estimates > 0, 100 * sds / estimates, np.nan)


def sd_names(rows: Sequence[Mapping]) -> list[str]:
    """The rows both tools report: scaloquant's combined rows (``COMBINATIONS``), then its
    components that LCModel's table of the first row with a result also holds; none without
    an LCModel result."""
    first = next((r for r in rows if r["lcmodel"] is not None), None)
    if first is None:
        return []
    ours = list(first["scaloquant_amplitudes"])
    theirs = first["lcmodel"]["concentrations"]
    combined = [n for n in ours if n in COMBINATIONS and lcmodel_row_name(n, list(theirs)) != n]
    return combined + [n for n in ours if n not in COMBINATIONS and n in theirs]


def true_values(rows: Sequence[Mapping], names: Sequence[str]) -> np.ndarray:
    """The truth ``(n, M)`` of ``names``: a combined row the sum of its parts (any spelling)."""
    out = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        truth = row["truth"]
        for j, name in enumerate(names):
            if name in truth:
                out[i, j] = truth[name]
            elif name in COMBINATIONS:
                out[i, j] = sum(v for k, v in truth.items() if canonical(k) in COMBINATIONS[name])
    return out


def sd_calibration(truth: np.ndarray, estimates: np.ndarray, sds: np.ndarray) -> dict[str, float]:
    """How a tool's own SDs describe its errors, over the finite entries of ``truth``,
    ``estimates`` and ``sds`` (each ``(n,)``): ``rms_error_over_sd``, the RMS of ``estimates -
    truth`` over the RMS SD (1 where the SDs describe the errors; above 1 the tool is
    over-confident, below it under-confident), ``sd_error_over_sd``, the same with the errors'
    mean taken off (what remains beside a bias, which no CRLB includes), and ``n``."""
    ok = np.isfinite(truth) & np.isfinite(estimates) & np.isfinite(sds)
    error, sd = estimates[ok] - truth[ok], sds[ok]
    if error.size < 2 or not np.any(sd > 0):
        return {"rms_error_over_sd": float("nan"), "sd_error_over_sd": float("nan"), "n": 0}
    rms_sd = float(np.sqrt(np.mean(sd**2)))
    return {
        "rms_error_over_sd": float(np.sqrt(np.mean(error**2))) / rms_sd,
        "sd_error_over_sd": float(np.std(error)) / rms_sd,
        "n": int(error.size),
    }


def sd_comparison(rows: Sequence[Mapping]) -> dict[str, object] | None:
    """Both tools' %SD on results.json's ``rows``, for the names of :func:`sd_names`.

    Returns ``names``; ``percent_sd``: tool -> ``(n, M)`` (:func:`percent_sd`; LCModel's 999 cap
    kept); ``ratio`` ``(n, M)``: scaloquant's %SD over LCModel's where both estimates are > 0 and
    LCModel's %SD is below its cap, NaN elsewhere. With a full truth also ``scale`` (tool -> its
    estimates' global scale, the median over the spectra of estimated over true tCr: LCModel's
    unscaled concentrations are in other units) and ``calibration`` (tool -> name ->
    :func:`sd_calibration` of its estimates and SDs divided by its scale, over the spectra of
    ``ratio``'s finite entries, the same for both tools). None without an LCModel result."""
    names = sd_names(rows)
    if not names:
        return None
    est = {tool: tool_estimates(rows, tool, names) for tool in TOOLS}
    pct = {tool: percent_sd(*est[tool]) for tool in TOOLS}
    lcm_pct, our_pct = pct["lcmodel"], pct["scaloquant"]
    both = np.isfinite(lcm_pct) & np.isfinite(our_pct)
    with np.errstate(invalid="ignore"):
        comparable = both & (lcm_pct < LCMODEL_SD_CAP_PCT)
    out: dict[str, object] = {
        "names": names,
        "percent_sd": pct,
        "ratio": np.where(comparable, our_pct / np.where(comparable, lcm_pct, 1.0), np.nan),
    }
    if not _has_full_truth(rows):
        return out
    truth = true_values(rows, names)
    true_tcr = truth[:, [names.index(n) for n in TOTAL_CREATINE if n in names]].sum(axis=1)
    scale, calibration = {}, {}
    for tool, (values, sds) in est.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            scale[tool] = float(1 / np.nanmedian(tcr_factor(values, names, true_tcr)))
        calibration[tool] = {
            n: sd_calibration(
                np.where(comparable[:, j], truth[:, j], np.nan),
                values[:, j] / scale[tool],
                sds[:, j] / scale[tool],
            )
            for j, n in enumerate(names)
        }
    out["scale"], out["calibration"] = scale, calibration
    return out


# ---------------------------------------------------------------------------------- running
def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (LCModel runs, the fit's worker
    processes), user + system: a busy shared machine disturbs it less than the wall clock."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def run_group(group: Group, exe: Path, folder: Path, workers: int, fit_config: FitConfig) -> dict:
    cpu0 = cpu_seconds()
    outcomes, lcm_wall = lcm.run_many(
        exe, [c.lcmodel for c in group.cases], folder, group.settings, workers=workers
    )
    lcm_cpu = cpu_seconds() - cpu0
    cpu0 = cpu_seconds()
    ours = fit_with_scaloquant(
        [c.fid for c in group.cases],
        [c.water for c in group.cases],
        group.basis,
        workers=workers,
        force=group.force,
        fit_config=fit_config,
    )
    our_cpu = cpu_seconds() - cpu0
    rows = []
    for i, (case, outcome) in enumerate(zip(group.cases, outcomes, strict=True)):
        amps = dict(zip(ours.names, ours.amplitudes[i].tolist(), strict=True))
        mM = (
            dict(zip(ours.names, ours.mM[i].tolist(), strict=True)) if ours.mM is not None else None
        )
        sd = ours.crlb_sd
        crlb_sd = dict(zip(ours.names, sd[i].tolist(), strict=True)) if sd is not None else None
        lcm_result = outcome.result
        rows.append(
            {
                "name": case.name,
                "truth": dict(case.truth) if case.truth else None,
                "lcmodel": lcm_result.to_dict() if lcm_result else None,
                "lcmodel_error": outcome.error,
                "lcmodel_seconds": outcome.seconds,
                "lcmodel_ratios": group_ratios(lcm_result.concentrations) if lcm_result else None,
                "scaloquant_amplitudes": amps,
                "scaloquant_mM": mM,
                "scaloquant_crlb_sd": crlb_sd,
                "scaloquant_ratios": group_ratios(amps),
                "truth_ratios": group_ratios(case.truth) if case.truth else None,
            }
        )
    return {
        "label": group.label,
        "n": len(group.cases),
        "lcmodel_wall_s": lcm_wall,
        "scaloquant_wall_s": ours.seconds,
        "lcmodel_cpu_s": lcm_cpu,
        "scaloquant_cpu_s": our_cpu,
        "scaloquant_warnings": list(ours.warnings),
        "lcmodel_settings": {
            "water_conc_mM": group.settings.water_conc_mM,
            "water_attenuation": group.settings.water_attenuation,
            "extra": list(group.settings.extra),
        },
        "rows": rows,
        "accuracy": accuracy_of(rows),
    }


def _fmt(x: float | None) -> str:
    return "   nan" if x is None or not np.isfinite(x) else f"{x:6.3f}"


def print_group(result: dict, workers: int, per_spectrum: int) -> None:
    n = result["n"]
    lcm_rate = n / result["lcmodel_wall_s"]
    our_rate = n / result["scaloquant_wall_s"]
    failed = [r["name"] for r in result["rows"] if r["lcmodel"] is None]
    times = [r["lcmodel_seconds"] for r in result["rows"]]
    lcm_cpu, our_cpu = result["lcmodel_cpu_s"], result["scaloquant_cpu_s"]
    print(f"\n=== {result['label']}: {n} spectra")
    print(
        f"LCModel, {workers} workers:        {lcm_rate:7.3f} spectra/s, {n / lcm_cpu:7.3f} per "
        f"CPU-s ({result['lcmodel_wall_s']:.1f} s; median {np.median(times):.2f} s per spectrum)"
        + (f"; no result for {', '.join(failed)}" if failed else "")
    )
    print(
        f"scaloquant fit, {workers} workers: {our_rate:7.3f} spectra/s, {n / our_cpu:7.3f} per "
        f"CPU-s ({result['scaloquant_wall_s']:.1f} s)"
    )
    print(
        f"speed ratio scaloquant/LCModel: {our_rate / lcm_rate:.2f}x spectra/s, "
        f"{lcm_cpu / our_cpu:.2f}x per CPU-s"
    )
    if result["scaloquant_warnings"]:
        print("scaloquant matching: " + "; ".join(result["scaloquant_warnings"])[:400])
    width = 22 if result["rows"][0]["truth_ratios"] else 16
    header = "".join(f"{g:>{width}s}" for g in GROUPS)
    print(
        f"ratios to tCr, LCModel|scaloquant{'|truth' if result['rows'][0]['truth_ratios'] else ''}"
    )
    print(f"{'spectrum':20s}{header}")
    for row in result["rows"][:per_spectrum]:
        cells = []
        for g in GROUPS:
            lcm_r = row["lcmodel_ratios"][g] if row["lcmodel_ratios"] else None
            parts = [_fmt(lcm_r), _fmt(row["scaloquant_ratios"][g])]
            if row["truth_ratios"]:
                parts.append(_fmt(row["truth_ratios"][g]))
            cells.append("|".join(p.strip() for p in parts).rjust(width))
        extra = ""
        if row["lcmodel"]:
            extra = f"  FWHM {row['lcmodel']['fwhm_ppm']:.3f} ppm, S/N {row['lcmodel']['snr']:.0f}"
        print(f"{row['name']:20s}{''.join(cells)}{extra}")
    if len(result["rows"]) > per_spectrum:
        print(f"... {len(result['rows']) - per_spectrum} more in results.json")
    if _has_full_truth(result["rows"]):
        _print_errors(result)
        _print_accuracy(result["accuracy"])
    _print_percent_sd(result, per_spectrum)


def _print_errors(result: dict) -> None:
    """Errors of the ratios to tCr against the truth (:func:`ratio_errors`), per group and tool
    (the median too because a ratio to a small true tCr is large and unstable)."""
    print(f"{'error of ratio to tCr':28s}" + "".join(f"{g:>10s}" for g in GROUPS))
    for tool in TOOLS:
        errors = ratio_errors(result["rows"], tool)
        for stat, label, fmt in (
            ("mean", "mean abs.", "10.3f"),
            ("median", "median abs.", "10.3f"),
            ("median_rel_pct", "median rel. %", "10.1f"),
        ):
            cells = "".join(format(errors[g][stat], fmt) for g in GROUPS)
            print(f"{tool + ' ' + label:28s}{cells}")


def _print_accuracy(acc: dict) -> None:
    """The tCr-referenced accuracy of :func:`accuracy_of`, both tools side by side."""
    print(
        f"referenced to the true tCr (estimate / estimated tCr x true tCr), "
        f"{len(acc['lcmodel']['per_metabolite'])} metabolites, {acc['n_spectra']} of "
        f"{acc['n_total']} spectra (both tools with a result and a positive tCr); MAE in basis "
        "units (the tissue set's: mM):"
    )
    print(
        f"{'':12s}{'MAE':>8s}{'SMAPE %':>9s}  missed (0 where truth > {PRESENT_MM:g} mM)"
        f"  error > 3 own SDs (of the estimates > 0)"
    )
    for tool in TOOLS:
        a = acc[tool]
        print(
            f"{tool:12s}{a['mae_mM']:8.3f}{a['smape_pct']:9.1f}  {a['missed']:5d} of "
            f"{a['present']:5d} ({100 * a['missed'] / max(a['present'], 1):4.1f} %)"
            f"{' ' * 14}{100 * a['beyond_3sd']:5.1f} % ({100 * a['beyond_3sd_nonzero']:4.1f} %)"
        )
    absolute = acc["scaloquant_absolute"]
    print(
        f"scaloquant's amplitudes as they are (no referencing): MAE {absolute['mae_mM']:.3f}, "
        f"SMAPE {absolute['smape_pct']:.1f} %"
    )
    shown = [n for n in SHOWN_METABOLITES if n in acc["lcmodel"]["per_metabolite"]]
    print(f"{'MAE / SMAPE %':18s}" + "".join(f"{n:>13s}" for n in shown))
    for tool in TOOLS:
        per = acc[tool]["per_metabolite"]
        cells = "".join(f"{per[n]['mae_mM']:6.2f} /{per[n]['smape_pct']:5.1f}" for n in shown)
        print(f"{tool:18s}{cells}")
    lcm_per, our_per = acc["lcmodel"]["per_metabolite"], acc["scaloquant"]["per_metabolite"]
    for tool, other, per, other_per in (
        ("LCModel", "scaloquant", lcm_per, our_per),
        ("scaloquant", "LCModel", our_per, lcm_per),
    ):
        wins = [n for n in per if per[n]["mae_mM"] < other_per[n]["mae_mM"]]
        print(f"lower MAE than {other}: {tool} on {len(wins)}: {', '.join(wins)}")


def _print_percent_sd(result: dict, per_spectrum: int) -> None:
    """Both tools' %SD of :func:`sd_comparison`: per row and spectrum where the group has a
    truth-less handful of spectra (at most ``per_spectrum``), else each tool's median and,
    with a truth, the calibration of each tool's SDs; then the ratio's median over all rows and
    how many estimates each tool keeps by the %SD rule of :data:`SD_RULE_PCT`."""
    comparison = sd_comparison(result["rows"])
    if comparison is None:
        return
    names, pct, ratio = comparison["names"], comparison["percent_sd"], comparison["ratio"]
    lcm_pct, our_pct = pct["lcmodel"], pct["scaloquant"]
    calibration = comparison.get("calibration")
    median = _nanmedian_columns
    print(
        "%SD, LCModel's | scaloquant's (_crlb_pct); ours/LCModel's over the spectra where "
        f"both estimates are > 0 and LCModel's %SD < {LCMODEL_SD_CAP_PCT:g}"
    )
    if calibration is None and len(result["rows"]) <= per_spectrum:

        def cell(value: float) -> str:
            return "-" if not np.isfinite(value) else f"{value:.0f}"

        spectra = [r["name"][:13] for r in result["rows"]]
        print(f"{'':8s}" + "".join(f"{n:>14s}" for n in spectra) + "  ours/LCModel")
        for j, name in enumerate(names):
            cells = "".join(
                f"{cell(lcm_pct[i, j]) + '|' + cell(our_pct[i, j]):>14s}"
                for i in range(len(result["rows"]))
            )
            shown = " ".join("-" if not np.isfinite(r) else f"{r:.2f}" for r in ratio[:, j])
            print(f"{name:8s}{cells}  {shown}")
    else:
        scale = comparison.get("scale", {})
        head = f"{'':8s}{'n':>4s}{'LCModel':>9s}{'ours':>7s}{'ours/LCM':>10s}"
        if calibration is not None:
            head += "   RMS error / RMS SD (bias off): LCModel, ours"
        print(head + "  (medians)")
        for j, name in enumerate(names):
            line = (
                f"{name:8s}{int(np.isfinite(ratio[:, j]).sum()):4d}{median(lcm_pct)[j]:9.1f}"
                f"{median(our_pct)[j]:7.1f}{median(ratio)[j]:10.2f}"
            )
            if calibration is not None:
                lcm_cal, our_cal = calibration["lcmodel"][name], calibration["scaloquant"][name]
                line += (
                    f"   {lcm_cal['rms_error_over_sd']:6.2f} ({lcm_cal['sd_error_over_sd']:5.2f})"
                    f"  {our_cal['rms_error_over_sd']:6.2f} ({our_cal['sd_error_over_sd']:5.2f})"
                )
            print(line)
        if scale:
            print(
                "(each tool's estimates and SDs over its global scale, median estimated / true "
                f"tCr: LCModel {scale['lcmodel']:.4g}, ours {scale['scaloquant']:.4g}; "
                "over the spectra where both estimates are > 0)"
            )
    single = [j for j, n in enumerate(names) if n not in COMBINATIONS]
    groups = [j for j, n in enumerate(names) if n in COMBINATIONS]
    parts = []
    for label, columns in (("metabolites", single), ("combined rows", groups)):
        values = ratio[:, columns]
        values = values[np.isfinite(values)]
        if values.size:
            q1, q2, q3 = np.percentile(values, [25, 50, 75])
            parts.append(f"{label} {q2:.2f} ({q1:.2f}-{q3:.2f}, {values.size})")
    if parts:
        print("ours/LCModel's %SD, median (quartiles, count): " + "; ".join(parts))
    with np.errstate(invalid="ignore"):
        kept = {t: np.nan_to_num(pct[t], nan=np.inf) <= SD_RULE_PCT for t in TOOLS}
    print(
        f"estimates kept by %SD <= {SD_RULE_PCT:g} (all {lcm_pct.size} rows x spectra): "
        f"LCModel {int(kept['lcmodel'].sum())}, ours {int(kept['scaloquant'].sum())}, both "
        f"{int((kept['lcmodel'] & kept['scaloquant']).sum())}"
    )


def _nanmedian_columns(values: np.ndarray) -> np.ndarray:
    """Median of each column ``(n, M) -> (M,)`` over its finite entries, NaN for none."""
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        finite = values[:, j][np.isfinite(values[:, j])]
        if finite.size:
            out[j] = np.median(finite)
    return out


def print_cr(results: Sequence[dict]) -> None:
    print(f"\n=== Cr water-scaling spectrum: true {CR_TRUE_MM:g} mM creatine")
    for result in results:
        row = result["rows"][0]
        lcm_row = row["lcmodel"]
        lcm_mM = lcm_row["concentrations"].get("Cr+PCr", float("nan")) if lcm_row else float("nan")
        our = row["scaloquant_mM"] or {}
        ours = sum(our.get(n, 0.0) for n in TOTAL_CREATINE) if our else float("nan")
        if lcm_row:
            # where LCModel put the signal when it is not creatine (a mis-referenced fit)
            single = {k: v for k, v in lcm_row["concentrations"].items() if "+" not in k}
            top = max(single, key=single.get)
            note = f"shift {lcm_row['shift_ppm']:.3f} ppm, largest {top} {single[top]:.3f}"
        else:
            note = row["lcmodel_error"]
        print(
            f"{result['label']:52s} LCModel Cr+PCr {lcm_mM:7.3f} mM ({note})"
            f"   scaloquant Cr+PCr {ours:7.3f} mM"
        )


def print_reference_check(results: Sequence[dict]) -> None:
    rows = [r for res in results for r in res["rows"] if r["name"] == "philips_spant"]
    if not rows or rows[0]["lcmodel"] is None:
        return
    ours = rows[0]["lcmodel"]["ratio_to_Cr+PCr"]
    ref = reference_ratios()
    common = [k for k in ref if k in ours]
    worst = max(abs(ours[k] - ref[k]) for k in common)
    print(
        f"\nLCModel on the Philips spant spectrum (NIfTI-MRS -> .RAW by this harness) vs LCModel "
        f"6.3's reference table: {len(common)} ratios, largest difference {worst:.3f} "
        f"(NAA+NAAG {ours.get('NAA+NAAG')} vs {ref['NAA+NAAG']}, Glu+Gln {ours.get('Glu+Gln')} vs "
        f"{ref['Glu+Gln']}, Ins {ours.get('Ins')} vs {ref['Ins']}, GPC+PCh {ours.get('GPC+PCh')} vs "
        f"{ref['GPC+PCh']})"
    )


#: The sets, in the order they run (all by default).
SETS = ("challenge", "cr", "invivo", "simulated", "tissue")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated sets")
    parser.add_argument("--workers", type=int, default=2, help="parallel spectra of each tool")
    parser.add_argument("--n-sim", type=int, default=64, help="simulated spectra")
    parser.add_argument("--n-tissue", type=int, default=64, help="tissue-like spectra")
    parser.add_argument(
        "--snr", type=float, default=30.0, help="SNR of the simulated and tissue-like spectra"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the simulated and tissue-like spectra"
    )
    parser.add_argument("--out", type=Path, help="folder for LCModel's runs and results.json")
    parser.add_argument("--lcmodel", type=Path, help="LCModel executable (default: build it)")
    parser.add_argument(
        "--preset",
        choices=sorted(FIT_PRESETS),
        default="invivo",
        help="scaloquant fit's preset (default: invivo, the CLI's default)",
    )
    parser.add_argument(
        "--ratio-priors",
        choices=("none", "mm", "lcmodel"),
        help="scaloquant fit: LCModel's amplitude-ratio priors (default: the preset's)",
    )
    parser.add_argument(
        "--baseline-order", type=int, help="scaloquant fit: polynomial baseline degree"
    )
    parser.add_argument("--show", type=int, default=30, help="spectra printed per set")
    parser.add_argument(
        "--lcmodel-extra",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="further control-file lines for every LCModel run, e.g. doecc=T (eddy-current "
        "correction by the water reference, for the spectra that have one)",
    )
    args = parser.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(sets) - set(SETS)
    if unknown:
        parser.error(f"unknown sets {sorted(unknown)}; choose from {', '.join(SETS)}")
    if not SHARED.is_dir():
        parser.error(f"{SHARED} is missing: this benchmark needs the shared data folder")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-lcmodel-"))
    out.mkdir(parents=True, exist_ok=True)
    exe = args.lcmodel or lcm.build()
    fit_config = FIT_PRESETS[args.preset]
    changes: dict[str, object] = {}
    if args.baseline_order is not None:
        changes |= {"baseline": "poly", "baseline_order": args.baseline_order}
    if args.ratio_priors is not None:
        changes["ratio_priors"] = args.ratio_priors
    fit_config = replace(fit_config, **changes)
    print(
        f"LCModel {exe}; scaloquant fit --preset {args.preset} {changes or ''}; "
        f"{args.workers} workers each; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; out {out}"
    )
    report: dict[str, object] = {"workers": args.workers, "lcmodel": str(exe), "sets": {}}
    for name in sets:
        if name == "challenge":
            groups = challenge_set()
        elif name == "cr":
            groups = cr_set()
        elif name == "invivo":
            groups = invivo_set(out / "invivo_raw")
        elif name == "tissue":
            groups = tissue_set(out / "tissue_raw", args.n_tissue, args.snr, args.seed)
        else:
            groups = simulated_set(out / "simulated_raw", args.n_sim, args.snr, args.seed)
        more = tuple(args.lcmodel_extra)
        groups = [
            replace(g, settings=replace(g.settings, extra=(*g.settings.extra, *more)))
            for g in groups
        ]
        results = [
            run_group(g, exe, out / "lcmodel_runs" / name / f"group{k}", args.workers, fit_config)
            for k, g in enumerate(groups)
        ]
        report["sets"][name] = results
        # after every set, so that an interrupted run keeps what it measured
        (out / "results.json").write_text(json.dumps(report, indent=1, default=float))
        if name == "cr":
            print_cr(results)
        else:
            for result in results:
                print_group(result, args.workers, args.show)
        if name == "invivo":
            print_reference_check(results)
        if len(results) > 1 and name != "cr":
            n = sum(r["n"] for r in results)
            lcm_s = sum(r["lcmodel_wall_s"] for r in results)
            our_s = sum(r["scaloquant_wall_s"] for r in results)
            print(
                f"{name} overall: LCModel {n / lcm_s:.3f} spectra/s, scaloquant "
                f"{n / our_s:.3f} spectra/s, ratio {lcm_s / our_s:.2f}x"
            )
    print(f"\nwrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
