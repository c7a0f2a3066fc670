"""How steady the ``invivo`` default's baseline-stiffness pick is under tiny changes to the data,
and how far the answers move when the pick changes, in units of their CRLB SD
(docs/history/fit-log.md "How steady the baseline's pick is (session 34, edpick34)").

Each spectrum is fitted once as it is and once per perturbation, all copies in one
``fit_spectra`` batch with ``FIT_PRESETS["invivo"]`` (the adaptive rule: the fixed 2 ED/ppm fit,
LCModel's F-test screen, the flagged spectra fitted again by the F-test over 0.2-4.0 ppm;
docs/fit.md "Options measured against the default"). Perturbations (:func:`perturbations`):
complex white noise at ``--scales`` times the spectrum's own noise SD, ``--draws`` draws each;
a frequency shift of +-``--shift-ppm``; a zero-order phase of +-``--phase-rad``. Sets:

* ``scanner``: ``bench_invivo_ratios.py``'s cases (``--cases``; default all, the ``-mm`` ones
  too) through ``scaloquant fit``'s ``main`` in this process (the same reading, referencing and
  basis as the benchmark's), the fit of each case's spectrum replaced by that of the batch of
  its copies (the unperturbed copy is what the CLI writes). The noise SD is the data's
  signal-free region's (``fit.spectra.region_noise_sd`` over ``noise_ppm_range``) over that of
  unit white noise; where the axis lacks the region (the Siemens spectrum), the SD of the FID
  from half to three quarters of its length (its last quarter rises).
* ``tissue``: ``--n`` tissue-like spectra of the ``invivo`` simulation prior at each SNR of
  ``--snr`` (``bench_invivo_default.tissue_spectra``, seed ``--seed``), their noise SD the
  simulator's; truth: the concentrations in mM.

Printed per spectrum (scanner; tissue: the spectra whose pick changed under any copy): the pick
of the unperturbed copy (effective dimensions per ppm; ``f`` after it: fitted by the F-test
over the flexible window, else the fixed fit), how many perturbed copies picked otherwise and
which, and for tNAA, tCr, tCho, Glx and Ins the move from the unperturbed answer in units of
its CRLB SD (the unperturbed fit's; sums from the full covariance): the median and largest
``|move|`` over the copies that kept the pick (the spread the perturbation itself causes) and
over those that changed it (the jump); per set, the median, 95th percentile and largest move
over every copy and the share of copies moved beyond 1 SD in any of the five. Tissue: also
the mean ``|error|`` against the truth of the copies that kept and changed the pick.
``--compare KEY=JSON`` (repeatable): every copy fitted again with those ``FitConfig`` fields
changed, its lines under the default's, split by the default's pick (session 34:
``--compare baseline_ftest_two_starts=true``, the opt-in; its ``between`` and ``blend`` rules,
not kept, were this script's ``--variants`` at commit ``36c147c``). ``--save OUT.npz``: every
copy's pick, answers and SDs.

Usage: ``PYTHONPATH=src python benchmarks/diag_baseline_pick.py [--sets scanner,tissue]
[--cases a,b] [--n 32] [--snr 30 60] [--seed 5] [--scales 0.1 0.3] [--draws 4]
[--shift-ppm 0.01] [--phase-rad 0.005] [--compare KEY=JSON ...] [--save OUT.npz]``;
session 34's: ``--draws 8 --n 64`` (3.5 min at load 7, 8 min at load 10-17).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_invivo_default import tissue_spectra  # noqa: E402
from scaloquant.errors import ConfigError  # noqa: E402
from scaloquant.fit import fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS, FitConfig  # noqa: E402
from scaloquant.fit.spectra import region_noise_sd  # noqa: E402
from scaloquant.metabolites import COMBINATIONS, indices_of  # noqa: E402
from scaloquant.simulate.effects import complex_noise  # noqa: E402
from scaloquant.simulate.invivo import InvivoPrior  # noqa: E402
from scaloquant.types import FID  # noqa: E402

INVIVO = FIT_PRESETS["invivo"]
KEYS = ("tNAA", "tCr", "tCho", "Glx", "Ins")


@dataclass(frozen=True)
class Perturbation:
    """One tiny change to a spectrum: ``kind`` noise (``value``: the scale of its noise SD,
    ``draw``: the seed's offset), shift (ppm) or phase (rad); ``none``: the spectrum as it is."""

    kind: str
    value: float
    draw: int = 0

    @property
    def label(self) -> str:
        if self.kind == "noise":
            return f"noise {self.value:g}#{self.draw}"
        return "none" if self.kind == "none" else f"{self.kind} {self.value:+g}"


def perturbations(args: argparse.Namespace) -> list[Perturbation]:
    """The unperturbed copy first, then every perturbation of the command line."""
    out = [Perturbation("none", 0.0)]
    out += [Perturbation("noise", s, d) for s in args.scales for d in range(args.draws)]
    out += [Perturbation("shift", v) for v in (args.shift_ppm, -args.shift_ppm)]
    out += [Perturbation("phase", v) for v in (args.phase_rad, -args.phase_rad)]
    return out


def copies(
    fid: FID, noise_sd: np.ndarray, changes: list[Perturbation], seed: int
) -> tuple[FID, int]:
    """The flat spectra of ``fid`` ``(B, N)`` under each change: ``(len(changes) * B, N)``,
    change-major (copy ``c`` of spectrum ``b`` at row ``c * B + b``); ``noise_sd`` ``(B,)`` the
    spectra's time-domain noise SD per real part. Each noise draw from its own seed."""
    samples = fid.samples.reshape(-1, fid.n_points)
    b = samples.shape[0]
    t = np.arange(fid.n_points) * fid.dwell_time_s
    rows = []
    for k, change in enumerate(changes):
        if change.kind == "noise":
            rng = np.random.default_rng([seed, k])
            rows.append(samples + complex_noise(change.value * noise_sd, fid.n_points, rng))
        elif change.kind == "shift":
            hz = change.value * fid.spectrometer_freq_mhz
            rows.append(samples * np.exp(2j * np.pi * hz * t))
        elif change.kind == "phase":
            rows.append(samples * np.exp(1j * change.value))
        else:
            rows.append(samples.copy())
    return fid.with_samples(np.concatenate(rows)), b


def time_noise_sd(fid: FID) -> np.ndarray:
    """``(B,)`` time-domain noise SD per real part of the flat spectra of ``fid``: the
    signal-free region's SD of their spectra over that of unit white noise (64 draws); where
    the spectral axis does not hold the region (the Siemens spectrum), the SD of the FID's
    samples from half to three quarters of its length about their mean."""
    flat = fid.samples.reshape(-1, fid.n_points)
    ppm = fid.ppm_axis()
    try:
        region = region_noise_sd(
            fid.spectrum().reshape(flat.shape[0], -1), ppm, INVIVO.noise_ppm_range
        )
    except ConfigError:
        # not the last quarter: the Siemens FID's rises there (its SD 17 times this one's)
        part = flat[:, fid.n_points // 2 : 3 * fid.n_points // 4]
        part = part - part.mean(axis=1, keepdims=True)
        return np.sqrt(np.mean(np.abs(part) ** 2, axis=1) / 2)
    unit = fid.with_samples(complex_noise(np.ones(64), fid.n_points, np.random.default_rng(0)))
    per_unit = region_noise_sd(unit.spectrum(), ppm, INVIVO.noise_ppm_range).mean()
    return region / per_unit


def answers(result) -> tuple[np.ndarray, np.ndarray]:
    """``(amplitudes, CRLB SDs)`` of :data:`KEYS`, each ``(B, 5)``, the sums' SDs from the full
    covariance."""
    amp, sd = [], []
    for key in KEYS:
        present = [result.names[i] for i in indices_of(COMBINATIONS.get(key, (key,)), result.names)]
        amp.append(result.amplitude_of_sum(present))
        sd.append(result.crlb_sd_of_sum(present))
    return np.stack(amp, axis=-1), np.stack(sd, axis=-1)


def picks(result) -> np.ndarray:
    """``(B,)`` each spectrum's pick: its effective dimensions per ppm, negative where the
    F-test fitted it over the flexible window (the adaptive rule flagged it)."""
    ed = np.asarray(result.baseline_ed_per_ppm, dtype=float).reshape(-1)
    if result.window_ppm is None:
        return ed
    flagged = np.asarray(result.window_ppm).reshape(-1, 2)[:, 1] != INVIVO.ppm_range[1]
    return np.where(flagged, -ed, ed)


def pick_text(p: float) -> str:
    return f"{abs(p):g}{'f' if p < 0 else ''}"


def moves_line(moved: np.ndarray, kept: np.ndarray) -> str:
    """``|move|`` in SDs ``(C, 5)`` of the copies that kept the default's pick (``kept``) and
    that changed it: per key the median and largest of each."""
    parts = []
    for j, key in enumerate(KEYS):
        same, other = np.abs(moved[kept, j]), np.abs(moved[~kept, j])
        text = f"{key} {np.median(same):.2f}/{same.max():.2f}" if same.size else f"{key} -"
        if other.size:
            text += f" | {np.median(other):.2f}/{other.max():.2f}"
        parts.append(text)
    return "  ".join(parts)


def report(
    label: str,
    pick: np.ndarray,
    amp: np.ndarray,
    sd: np.ndarray,
    changes: list[Perturbation],
    kept: np.ndarray | None = None,
) -> np.ndarray:
    """Print one spectrum's line: ``pick`` ``(C,)``, ``amp`` and ``sd`` ``(C, 5)`` of its
    copies in the order of ``changes`` (the unperturbed first); the moves in SDs, split by
    ``kept`` ``(C - 1,)`` (the default's copies that kept its pick; default: this pick's).
    Returns this pick's ``kept``."""
    moved = (amp[1:] - amp[0]) / sd[0]
    own = pick[1:] == pick[0]
    kept = own if kept is None else kept
    others = sorted({pick_text(p) for p in pick[1:][~own]})
    which = [c.label for c, k in zip(changes[1:], kept, strict=True) if not k]
    print(
        f"{label:20s} pick {pick_text(pick[0]):4s} changed {np.count_nonzero(~own):2d}/"
        f"{own.size} (to {','.join(others[:4]) or '-'}{',...' if len(others) > 4 else ''})  "
        f"|move|/SD kept med/max | changed med/max: {moves_line(moved, kept)}"
        + (f"  [{'; '.join(which)}]" if which else ""),
        flush=True,
    )
    return own


def spread_line(moved: np.ndarray) -> str:
    """``|move|/SD`` ``(..., 5)`` over every copy: median, 95th percentile, largest, and the
    share of copies with a move beyond 1 SD in any of :data:`KEYS`."""
    flat = np.abs(moved.reshape(-1, len(KEYS)))
    beyond = np.mean((flat > 1).any(axis=1))
    q = np.quantile(flat, [0.5, 0.95, 1.0])
    return (
        f"|move|/SD median {q[0]:.2f}, 95 % {q[1]:.2f}, largest {q[2]:.2f}; copies beyond "
        f"1 SD in any {100 * beyond:.1f} %"
    )


def scanner(args: argparse.Namespace, changes: list[Perturbation]) -> dict[str, np.ndarray]:
    """The scanner cases, each through ``scaloquant fit``'s ``main`` with its fit replaced by
    that of its perturbed copies (:func:`copies`)."""
    import bench_invivo_ratios as ratios
    from scaloquant.cli import main as cli
    from scaloquant.quantify import run

    cases = {**ratios.CASES, **ratios.MM_CASES}
    chosen = args.cases.split(",") if args.cases else list(cases)
    unknown = [name for name in chosen if name not in cases]
    if unknown:
        raise SystemExit(f"--cases: {', '.join(unknown)} unknown; choose from {', '.join(cases)}")
    saved: dict[str, np.ndarray] = {}
    original = run.fit_spectra
    got: list = []
    moves: dict[str, list[np.ndarray]] = {v: [] for v in args.variants}

    def batch_fit(fid, basis, config):
        batch, n = copies(fid, time_noise_sd(fid), changes, args.seed)
        for variant in args.variants:
            got.append(original(batch, basis, replace(config, **args.variants[variant])))
        return got[0].take(list(range(n)))

    run.fit_spectra = batch_fit
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in chosen:
                inputs = cases[name][0]
                got.clear()
                out = Path(tmp) / name
                said = io.StringIO()  # the CLI's own lines, printed only when it failed
                with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                    code = cli(["fit", *map(str, inputs), "--out", str(out), "--max-figures", "0"])
                if code or len(got) != len(args.variants):
                    print(f"{name}: fit exited {code} after {len(got)} fits\n{said.getvalue()}")
                    continue
                kept = None
                for variant, result in zip(args.variants, got, strict=True):
                    amp, sd, pick = *answers(result), picks(result)
                    label = name if variant == "default" else f"  {variant}"
                    own = report(label, pick, amp, sd, changes, kept)
                    kept = own if kept is None else kept
                    moves[variant].append((amp[1:] - amp[0]) / sd[0])
                    part = {"pick": pick, "amp": amp, "sd": sd}
                    saved.update({f"scanner/{variant}/{name}/{k}": v for k, v in part.items()})
    finally:
        run.fit_spectra = original
    for variant, moved in moves.items():
        print(f"scanner, {variant}: {spread_line(np.array(moved))}")
    return saved


def tissue(args: argparse.Namespace, changes: list[Perturbation]) -> dict[str, np.ndarray]:
    """``--n`` tissue-like spectra at each SNR, with their perturbed copies in one fit per
    variant."""
    saved: dict[str, np.ndarray] = {}
    c = len(changes)
    for snr in args.snr:
        prior = InvivoPrior(snr_range=(snr, snr))
        basis, signals, fid = tissue_spectra(prior, args.n, args.seed)
        truth = np.stack(
            [
                signals.parameters.concentrations_mm[
                    :, indices_of(COMBINATIONS.get(k, (k,)), basis.names)
                ].sum(axis=1)
                for k in KEYS
            ],
            axis=-1,
        )
        batch, n = copies(fid, signals.noise_sd, changes, args.seed + 1)
        kept = None
        for variant in args.variants:
            result = fit_spectra(batch, basis, replace(INVIVO, **args.variants[variant]))
            amp, sd = answers(result)
            pick = picks(result).reshape(c, n)
            amp, sd = amp.reshape(c, n, -1), sd.reshape(c, n, -1)
            own = pick[1:] == pick[0]
            kept = own if kept is None else kept
            moved = (amp[1:] - amp[0]) / sd[0]
            picked, counts = np.unique(pick[0], return_counts=True)
            print(
                f"tissue-like SNR {snr:g}, {variant}: {n} spectra x {c} copies; unperturbed "
                f"picks {', '.join(f'{pick_text(p)}: {k}' for p, k in zip(picked, counts, strict=True))}; "
                f"spectra whose pick changed under any copy "
                f"{np.count_nonzero(~own.all(axis=0))}, copies {np.count_nonzero(~own)}/{own.size}"
            )
            for b in np.flatnonzero(~kept.all(axis=0)):
                report(f"  spectrum {b}", pick[:, b], amp[:, b], sd[:, b], changes, kept[:, b])
                error = np.abs(amp[:, b] - truth[b]) / sd[0, b]  # (C, 5)
                print(
                    "    |error|/SD against the truth, the copies that kept / changed the "
                    "default's pick (mean): "
                    + "  ".join(
                        f"{k} {error[1:][kept[:, b], j].mean():.2f}/"
                        f"{error[1:][~kept[:, b], j].mean():.2f}"
                        for j, k in enumerate(KEYS)
                    )
                )
            print(
                "  over all spectra, kept med/max | changed med/max: "
                + moves_line(moved.reshape(-1, len(KEYS)), kept.reshape(-1))
            )
            print(f"  {spread_line(moved)}")
            key = f"tissue/{variant}/{snr:g}"
            saved.update({f"{key}/pick": pick, f"{key}/amp": amp, f"{key}/sd": sd})
        saved[f"tissue/{snr:g}/truth"] = truth
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="scanner,tissue")
    parser.add_argument("--cases", help="comma-separated bench_invivo_ratios.py cases")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--snr", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--shift-ppm", type=float, default=0.01)
    parser.add_argument("--phase-rad", type=float, default=0.005)
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="also fit every copy with these FitConfig fields changed (repeatable)",
    )
    parser.add_argument("--save", type=Path)
    args = parser.parse_args(argv)
    changed = {}
    for item in args.compare:
        key, sep, value = item.partition("=")
        if not sep or key not in FitConfig.__dataclass_fields__:
            print(f"--compare takes KEY=JSON with KEY a FitConfig field; got {item!r}")
            return 2
        changed[key] = json.loads(value)
    args.variants = {"default": {}, **({"changed": changed} if changed else {})}
    sets = args.sets.split(",")
    unknown = [s for s in sets if s not in ("scanner", "tissue")]
    if unknown:
        print(f"--sets: {', '.join(unknown)} unknown; choose from scanner, tissue")
        return 2
    torch.set_num_threads(1)
    changes = perturbations(args)
    print(f"copies per spectrum: {', '.join(c.label for c in changes)}")
    saved: dict[str, np.ndarray] = {}
    if "scanner" in sets:
        saved.update(scanner(args, changes))
    if "tissue" in sets:
        saved.update(tissue(args, changes))
    if args.save:
        np.savez(args.save, **saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
