"""``scaloquant fit`` on the scanner spectra of ``../shared/data/invivo``, ratios to tCr beside
LCModel's on the same files with the same basis (LCModel 6.3, default control file, one
benchmark run of ``benchmarks/bench_lcmodel.py --sets invivo``; spant's from its reference
table). LCModel's are its own combined rows over its ``Cr+PCr`` (``NAA+NAAG``, ``GPC+PCh`` or,
for the ISMRM 2016 basis, ``GPC+PCho``, which that benchmark asks for since session 34, and
``Glu+Gln``); the sums of its printed parts, used before, gave the same figures to the digit. The Osprey TE 30 spectra are fitted with the default ISMRM 2016 PRESS TE 30 basis, and
LCModel with its ``.BASIS`` less ``Mac`` (``chomit``), so that both add LCModel's parametric
macromolecules: the data come from another scanner type. ``--with-mm`` adds the ``-mm`` cases
(:data:`MM_CASES`; or name them in ``--cases``): the Osprey TE 30 spectra fitted again with their own
metabolite-nulled spectrum as the macromolecules (``--mm-spectrum``, docs/fit.md "A measured
macromolecule spectrum"), against the same LCModel ratios; without it the count of starred
ratios is over the 24 of the cases above, as before. ``--ecc`` adds, under each case with a
water reference (:data:`WATER`; the Siemens spectrum has none), the line of the same fit with
``--water REF --ecc`` (eddy-current correction by the water's phase, docs/fit.md "Eddy-current
correction"), against the same LCModel ratios (LCModel ran with ``FILH2O`` and ``DOWS=T``,
``DOECC`` at its default ``F``), its starred ratios counted apart; every line then also gives
the data's linewidth (``fwhm_hz``). ``--lcmodel-mm`` adds, under each ``-mm`` case, LCModel
run with the basis that scaloquant's fit uses there (the embedded basis on the data's grid,
``Mac`` replaced by the cleaned ``MM_measured``, :func:`scaloquant.fit.measured_mm.with_measured_mm`,
named ``MMexp`` as LCModel keeps 6 characters), written by scaloquant's ``.BASIS`` writer
(``_lcmodel.write_basis``), LCModel's parametric MM components omitted and its lipids kept as
the fit keeps them: its ratios against the same LCModel ratios, then the fit's line against
LCModel's with that same basis (:func:`lcmodel_measured_mm`). ``--groups NAME [NAME ...]`` adds, under each case's fit
line, the line of the same fit with ``--groups NAME`` (``scaloquant fit --groups``, e.g.
``metabolites_and_each_mm``; docs/fit.md), its starred ratios counted apart.

Each case is one ``scaloquant fit`` command line (printed with ``--verbose``); extra arguments
go to every command, e.g. ``--ppm-range 0.2 4.0`` or ``--water-removal hlsvd``. A ratio off by
more than the case's tolerance (the issue's: 15 % for spant, 20 % for Osprey; none for the
Siemens spectrum, which has no reference but LCModel's) is starred.

``--physics CASE=CKPT ...`` adds, under a case's fit line, the line of ``scaloquant quantify
--model CKPT`` (a ``spectrum_physics`` checkpoint trained with ``--grid-from`` on the case's file
and ``--basis`` on its basis, see docs/history/physics-models-log.md "Scanner spectra") on the same
input, in the same format; ``--physics-polish K [K ...]``: one such line per polish ``K``
(``quantify --polish-iterations``; default the checkpoint's own); ``--physics-stiffness S
[S ...]``: one per ``quantify --baseline-stiffness`` (``adaptive``, ``fixed``; default
quantify's). The last lines count the starred ratios of each kind of line (the fit's, each
physics line's) over the cases with a tolerance, with the mean and the largest deviation from
LCModel's ratios over the same ratios (each line ends with its own mean).

Usage::

    PYTHONPATH=src python benchmarks/bench_invivo_ratios.py OUT_DIR [--cases a,b] [--with-mm] [--lcmodel-mm] [--ecc] [--groups NAME ...]
        [--verbose] [--physics CASE=CKPT ...] [--physics-polish K ...] [--physics-stiffness S ...]
        [-- scaloquant fit flags...]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

from scaloquant.fit.config import GROUPING_NAMES
from scaloquant.metabolites import COMBINATIONS, indices_of

INVIVO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "invivo"
OSP = INVIVO / "philips-press-osprey" / "nifti"
B35 = INVIVO / "philips-press-osprey/basis_philips_press35/3T_PRESS_Philips_35ms_noMM.BASIS"
S = INVIVO / "siemens-press30-suspect"
P = INVIVO / "philips-press30-spant"
SPANT = {"tNAA": 1.306, "tCho": 0.250, "Glx": 1.510, "Ins": 0.911}
#: name -> (fit arguments, LCModel's ratios to tCr, tolerance or None)
CASES = {
    "spant-3tbasis": ([P / "nifti_spec2nii/metab.nii.gz", "--basis", P / "lcmodel_reference/3t.basis"], SPANT, 0.15),
    "spant-default": ([P / "nifti_spec2nii/metab.nii.gz"], SPANT, 0.15),
    "osprey-te30-sub01": ([OSP / "UnEdited_with_MM_data/sub-01_ses-01_PRESS_raw-act_noID.nii.gz"], {"tNAA": 1.145, "tCho": 0.172, "Glx": 1.090, "Ins": 0.840}, 0.2),
    "osprey-te30-sub02": ([OSP / "UnEdited_with_MM_data/sub-02_ses-01_PRESS_raw-act_noID.nii.gz"], {"tNAA": 1.052, "tCho": 0.174, "Glx": 1.116, "Ins": 0.683}, 0.2),
    "osprey-te35-sub01": ([OSP / "UnEdited/sub-01_PRESS_35_act.nii.gz", "--basis", B35], {"tNAA": 1.276, "tCho": 0.164, "Glx": 1.298, "Ins": 0.861}, 0.2),
    "osprey-te35-sub02": ([OSP / "UnEdited/sub-02_PRESS_35_act.nii.gz", "--basis", B35], {"tNAA": 1.428, "tCho": 0.164, "Glx": 1.457, "Ins": 0.788}, 0.2),
    "siemens-te30": ([S / "nifti/SVS_30_rda.nii.gz", "--basis", S / "press_30ms_3T.basis"], {"tNAA": 1.236, "tCho": 0.218, "Glx": 1.091, "Ins": 1.005}, None),
}  # fmt: skip
_MM_DATA = OSP / "UnEdited_with_MM_data"
#: Each case's unsuppressed water reference (``--ecc``): spec2nii's NIfTI-MRS of the same scan.
WATER = {
    "spant-3tbasis": P / "nifti_spec2nii/wref.nii.gz",
    "spant-default": P / "nifti_spec2nii/wref.nii.gz",
    "osprey-te30-sub01": _MM_DATA / "sub-01_ses-01_PRESS_raw-ref_noID.nii.gz",
    "osprey-te30-sub02": _MM_DATA / "sub-02_ses-01_PRESS_raw-ref_noID.nii.gz",
    "osprey-te35-sub01": OSP / "UnEdited/sub-01_PRESS_35_ref.nii.gz",
    "osprey-te35-sub02": OSP / "UnEdited/sub-02_PRESS_35_ref.nii.gz",
}
#: The Osprey TE 30 cases again with their own metabolite-nulled spectra (``--with-mm``, or
#: named in ``--cases``): fit arguments, LCModel's ratios (the cases' above), tolerance.
MM_CASES = {
    f"{name}-mm": (
        [*args, "--mm-spectrum", _MM_DATA / f"sub-0{name[-1]}_ses-01_PRESS-Inverted_TI-600_raw-act_noID.nii.gz"],
        reference,
        tol,
    )
    for name, (args, reference, tol) in CASES.items()
    if name.startswith("osprey-te30")
}  # fmt: skip


def ratio_tcr(row: dict[str, str], key: str) -> float:
    """``key``'s ratio to tCr in a ``results.csv`` row: its own column, else (quantify writes no
    combined columns) the sum of its parts' (``COMBINATIONS``); NaN when it has no part."""
    column = f"{key}_ratio_tcr"
    if column in row:
        return float(row[column])
    names = [c[: -len("_ratio_tcr")] for c in row if c.endswith("_ratio_tcr")]
    parts = indices_of(COMBINATIONS.get(key, (key,)), names)
    if not parts:
        return float("nan")
    return sum(float(row[f"{names[i]}_ratio_tcr"]) for i in parts)


def run_case(cmd: list[str], out: Path, verbose: bool) -> dict[str, str] | str:
    """Run one scaloquant command writing ``out/results.csv``: its first row, or the tail of
    its stderr when it failed."""
    if verbose:
        print(" ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode:
        return done.stderr[-2000:]
    with open(out / "results.csv", newline="") as handle:
        return next(csv.DictReader(handle))


def ratio_line(
    label: str,
    row: dict[str, str],
    reference: dict[str, float],
    tol: float | None,
    linewidth: bool = False,
) -> tuple[str, int, list[float]]:
    """The table line of one result row against the reference ratios (``linewidth``: and the
    data's ``fwhm_hz``), its starred count and its relative deviations (ours / LCModel's - 1)."""
    line, fails, deviations = f"{label:18s}", 0, []
    for key, ref in reference.items():
        ours = ratio_tcr(row, key)
        rel = ours / ref - 1
        bad = tol is not None and not abs(rel) <= tol
        fails += bad
        deviations.append(rel)
        line += f"  {key} {ours:.3f}/{ref:.3f} ({100 * rel:+.0f}%){'*' if bad else ''}"
    line += f"  mean |diff| {100 * sum(map(abs, deviations)) / len(deviations):.1f}%"
    residual = float(row.get("fit_residual") or "nan")
    if residual == residual:  # quantify leaves it empty (NaN) for a model
        line += f"  residual {residual:.3f}"
    over_noise = float(row.get("residual_over_noise") or "nan")
    if over_noise == over_noise:
        line += f"  over noise {over_noise:.2f}"
    mm = mm_ratio(row)
    if mm == mm:
        line += f"  MM/tCr {mm:.2f}"
    if linewidth:
        line += f"  fwhm {float(row['fwhm_hz']):.2f} Hz"
    return line, fails, deviations


def mm_ratio(row: dict[str, str]) -> float:
    """The macromolecules' ratio to tCr in a ``results.csv`` row: the measured spectrum's
    (``MM_measured``), else the sum of LCModel's parametric MM components', else the basis'
    ``Mac``; NaN when there are none."""
    for names in (("MM_measured",), ("MM09", "MM12", "MM14", "MM17", "MM20"), ("Mac",)):
        columns = [f"{n}_ratio_tcr" for n in names if f"{n}_ratio_tcr" in row]
        if columns:
            return sum(float(row[c]) for c in columns)
    return float("nan")


def print_case(
    row: dict[str, str] | str,
    label: str,
    name: str,
    reference: dict[str, float],
    tol: float | None,
    linewidth: bool = False,
) -> tuple[int, list[float]]:
    """Print one case's table line (:func:`ratio_line`, under ``label``), or ``name: failed``
    and the failed command's stderr tail (a ``row`` of :func:`run_case` that is a string);
    the ratios outside tolerance (1 for a failed run) and the relative deviations (those of a
    case with a tolerance only; none for a failed run)."""
    if isinstance(row, str):
        print(f"{name}: failed\n{row}")
        return 1, []
    line, bad, deviations = ratio_line(label, row, reference, tol, linewidth)
    print(line, flush=True)
    return bad, deviations if tol is not None else []


#: LCModel's parametric macromolecules (its CHSIMU), omitted where the basis holds a measured
#: MM spectrum; its lipids stay, as the fit keeps them beside ``MM_measured``.
LCMODEL_MM_COMPONENTS = ("MM09", "MM12", "MM14", "MM17", "MM20")


def lcmodel_measured_mm(name: str, inputs: list, out: Path) -> dict[str, str] | str:
    """LCModel's ratios to tCr on a ``-mm`` case's data with the fit's basis (``--lcmodel-mm``):
    the embedded basis and the case's metabolite-nulled spectrum cleaned as ``fit
    --mm-spectrum`` cleans it (``FIT_PRESETS["invivo"]``, the fit's default), put on the data's
    grid (``Mac`` replaced), written as ``.BASIS``; LCModel (:data:`LCMODEL_MM_COMPONENTS`
    omitted) on the data's ``.RAW`` (its NIfTI-MRS samples on disk, transients averaged). Returned as a
    ``results.csv``-like row (``tNAA_ratio_tcr``..., ``MM_measured_ratio_tcr``), or the reason
    it has none."""
    import _lcmodel as lcm
    from bench_lcmodel import _invivo_case, group_ratios
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.fit.measured_mm import MEASURED_MM_NAME, clean_mm_spectrum, with_measured_mm
    from scaloquant.io import default_basis, read_fid

    data, mm_path = Path(inputs[0]), Path(inputs[inputs.index("--mm-spectrum") + 1])
    out.mkdir(parents=True, exist_ok=True)
    case = _invivo_case(name, data, None, out / f"{name}.BASIS", out)  # writes the .RAW
    mm = read_fid(mm_path)
    mm = mm.with_samples(mm.samples.reshape(-1, mm.n_points).mean(0))  # as read_mm_spectra
    basis = default_basis()
    measured = clean_mm_spectrum(mm, basis, FIT_PRESETS["invivo"])
    own, _ = with_measured_mm(basis, measured, case.fid.acquisition)
    lcm.write_basis(case.lcmodel.basis, own, renamed={MEASURED_MM_NAME: "MMexp"})
    omitted = LCMODEL_MM_COMPONENTS
    settings = lcm.Settings(
        extra=(f"nomit={len(omitted)}", *(f"chomit({k + 1})='{n}'" for k, n in enumerate(omitted)))
    )
    outcome = lcm.run_one(lcm.build(), case.lcmodel, out / "run", settings)
    if outcome.result is None:
        return str(outcome.error)
    values = outcome.result.concentrations
    row = {f"{k}_ratio_tcr": str(v) for k, v in group_ratios(values).items()}
    tcr = values[lcm.combinations(own.names)["tCr"]]
    row["MM_measured_ratio_tcr"] = str(values.get("MMexp", float("nan")) / tcr)
    return row


def summary(kind: str, outside: int, deviations: list[float]) -> str:
    """The last lines' line of one kind of line: its starred ratios, and the mean and largest
    absolute relative deviation over ``deviations`` (the ratios of the cases with a tolerance)."""
    line = f"ratios outside tolerance, {kind}: {outside}"
    if deviations:
        magnitudes = [abs(d) for d in deviations]
        line += (
            f" of {len(deviations)}, mean |diff| {100 * sum(magnitudes) / len(magnitudes):.1f}%,"
            f" largest {100 * max(magnitudes):.1f}%"
        )
    return line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    everything = {**CASES, **MM_CASES}
    parser.add_argument("--cases", help="comma-separated subset of " + ", ".join(everything))
    parser.add_argument(
        "--with-mm",
        action="store_true",
        help="add the Osprey TE 30 cases fitted with their metabolite-nulled spectra "
        f"({', '.join(MM_CASES)})",
    )
    parser.add_argument(
        "--lcmodel-mm",
        action="store_true",
        help="add, under each -mm case, LCModel with the fit's basis and MM_measured, written "
        "by scaloquant's .BASIS writer",
    )
    parser.add_argument(
        "--ecc",
        action="store_true",
        help="add, under each case with a water reference, the fit with --water REF --ecc",
    )
    parser.add_argument(
        "--groups",
        nargs="+",
        choices=GROUPING_NAMES,
        default=[],
        metavar="NAME",
        help="add, under each case's fit line, the fit with --groups NAME (one of "
        f"{', '.join(GROUPING_NAMES)})",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--physics",
        nargs="+",
        default=[],
        metavar="CASE=CKPT",
        help="physics-model checkpoint per case",
    )
    parser.add_argument(
        "--physics-polish",
        nargs="+",
        type=int,
        default=[None],
        metavar="K",
        help="the physics lines' polish iterations (default: each checkpoint's own)",
    )
    parser.add_argument(
        "--physics-stiffness",
        nargs="+",
        choices=("adaptive", "fixed"),
        default=[None],
        metavar="S",
        help="the physics lines' quantify --baseline-stiffness (default: quantify's)",
    )
    args = parser.parse_args(argv)
    physics: dict[str, Path] = {}
    for item in args.physics:
        name, sep, ckpt = item.partition("=")
        if not sep or name not in everything:
            print(f"--physics takes CASE=CKPT with CASE one of {', '.join(CASES)}; got {item!r}")
            return 2
        physics[name] = Path(ckpt)
    if not INVIVO.is_dir():
        print(f"{INVIVO} is absent")
        return 1
    chosen = args.cases.split(",") if args.cases else [*CASES, *(MM_CASES if args.with_mm else ())]
    unknown = [name for name in chosen if name not in everything]
    if unknown:
        print(f"--cases: {', '.join(unknown)} unknown; choose from {', '.join(everything)}")
        return 2
    fails: dict[str, int] = {}  # starred ratios per kind of line
    deviations: dict[str, list[float]] = {}  # their relative deviations, cases with a tolerance

    def count(kind: str, counted: tuple[int, list[float]]) -> None:
        fails[kind] = fails.get(kind, 0) + counted[0]
        deviations.setdefault(kind, []).extend(counted[1])

    for name in chosen:
        inputs, reference, tol = everything[name]
        out = args.out / name
        cmd = [sys.executable, "-m", "scaloquant", "fit", *map(str, inputs), "--out", str(out)]
        row = run_case([*cmd, "--overwrite", *extra], out, args.verbose)
        count("fit", print_case(row, name, name, reference, tol, args.ecc))
        if isinstance(row, str):
            continue
        if args.lcmodel_mm and name in MM_CASES:
            lcm_row = lcmodel_measured_mm(name, inputs, args.out / f"{name}-lcmodel")
            label = "  LCModel MMexp"
            count(label.strip(), print_case(lcm_row, label, f"{name}{label}", reference, tol))
            if not isinstance(lcm_row, str):
                mine = {
                    k.removesuffix("_ratio_tcr"): float(v)
                    for k, v in lcm_row.items()
                    if k.removesuffix("_ratio_tcr") in reference
                }
                ours = "  fit vs LCModel MMexp"
                count(ours.strip(), print_case(row, ours, f"{name}{ours}", mine, tol))
        for grouping in args.groups:
            out = args.out / f"{name}-groups-{grouping}"
            grouped = [*cmd[:-1], str(out), "--groups", grouping, "--overwrite", *extra]
            row_g = run_case(grouped, out, args.verbose)
            label = f"  --groups {grouping}"
            count(label.strip(), print_case(row_g, label, f"{name}{label}", reference, tol))
        water = WATER.get(name.removesuffix("-mm"))
        if args.ecc and water is not None:
            out = args.out / f"{name}-ecc"
            cmd = [*cmd[:-1], str(out), "--water", str(water), "--ecc", "--overwrite", *extra]
            row = run_case(cmd, out, args.verbose)
            count("fit --ecc", print_case(row, "  --ecc", f"{name} --ecc", reference, tol, True))
        lines = [(k, s) for k in args.physics_polish for s in args.physics_stiffness]
        for k, stiffness in lines if name in physics else ():
            tag = "".join([f"-k{k}" if k is not None else "", f"-{stiffness}" if stiffness else ""])
            out = args.out / f"{name}-physics{tag}"
            model = ["--model", str(physics[name]), "--out", str(out), "--overwrite"]
            if k is not None:
                model += ["--polish-iterations", str(k)]
            if stiffness is not None:
                model += ["--baseline-stiffness", stiffness]
            # one data file per case; the case's basis is in the checkpoint
            cmd = [sys.executable, "-m", "scaloquant", "quantify", str(inputs[0]), *model]
            row = run_case(cmd, out, args.verbose)
            label = "  physics" + (f" K={k}" if k is not None else "")
            label += f" {stiffness}" if stiffness else ""
            count(label.strip(), print_case(row, label, f"{name}{label}", reference, tol))
    for kind, outside in fails.items():
        print(summary(kind, outside, deviations[kind]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
