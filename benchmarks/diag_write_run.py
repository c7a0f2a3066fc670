"""Where the time of writing an MRSI run's outputs goes (``report.write_run``), stage by stage.

The run: ``scaloquant fit`` of the ``--side`` x ``--side`` slice that ``bench_mrsi.py`` builds
(:func:`bench_mrsi.slice_file`: the 128 default-simulator spectra of ``bench_fit_engine.py
--mrsi``, tiled), the command's defaults. The fit is run once and its :class:`Run` kept in a
pickle (``--cache``, with the slice beside it: ``provenance.json`` hashes the input file), so
that only the writing is timed; a later call with the same ``--cache`` skips the fit.

Each call of ``write_run`` is timed with every stage's function wrapped (process CPU seconds,
each stage's own time: a nested stage's time is taken out of its caller's):

* ``results.csv``, ``results.json`` (:func:`results_json` and its text), ``summary.md``;
* ``fit figures: draw`` / ``fit figures: savefig`` (``figures.plot_fit`` / ``png_bytes`` under
  ``outputs._fit_png``), ``fit figures: numbers`` (:func:`fit_spectra_csv`);
* ``maps: draw`` / ``maps: savefig`` (``figures.plot_map``, or the map figure's making and
  drawing, / ``png_bytes`` under ``html._map_images``), ``report.html: rest`` (the page without
  its maps);
* ``NIfTI maps`` (``outputs._write_maps``), ``sha256`` (:func:`file_sha256`);
* ``rest``: the remainder of ``write_run`` (staging, the figure files' bytes, provenance.json).

``--compare SRC`` times another checkout's code on the same pickle (``SRC``: a ``src`` folder,
e.g. main's, exported by ``git archive``): child processes alternate between it and this
checkout's ``src``, ``--rounds`` times each, every child writing ``--repeats`` times (the first
call of a process pays matplotlib's import and font set-up, as the ``scaloquant`` command does);
``--keep DIR`` keeps each child's last outputs under ``DIR/<label>`` for a comparison of the
files. ``--cprofile`` (without ``--compare``): each ``write_run`` under :mod:`cProfile`, to
compare with a profile's figures (its overhead lies mostly on matplotlib's many small calls).

Usage: ``PYTHONPATH=src python benchmarks/diag_write_run.py [--side 32] [--cache
/tmp/write_run_slice] [--repeats 2] [--compare /tmp/main/src --rounds 2] [--keep DIR] [--cprofile]``
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

#: (stage, module, function): wrapped where ``write_run`` looks the function up at call time.
STAGES = (
    ("results.csv", "scaloquant.report.outputs", "results_csv"),
    ("results.json", "scaloquant.report.outputs", "results_json"),
    ("results.json", "scaloquant.report.outputs", "results_json_text"),
    ("fit figures", "scaloquant.report.outputs", "_fit_png"),
    ("fit figures: numbers", "scaloquant.report.outputs", "fit_spectra_csv"),
    ("NIfTI maps", "scaloquant.report.outputs", "_write_maps"),
    ("sha256", "scaloquant.report.outputs", "file_sha256"),
    ("summary.md", "scaloquant.report.markdown", "report_markdown"),
    ("report.html: rest", "scaloquant.report.html", "report_html"),
    ("maps", "scaloquant.report.html", "_map_images"),
    (":draw", "scaloquant.report.figures", "plot_fit"),
    (":draw", "scaloquant.report.figures", "plot_map"),
    (":draw", "scaloquant.report.figures", "_MapFigure.__init__"),
    (":draw", "scaloquant.report.figures", "_MapFigure.draw"),
    (":savefig", "scaloquant.report.figures", "png_bytes"),
    ("rest", "scaloquant.report", "write_run"),
)

#: The order of the printed table.
ROWS = (
    "results.csv",
    "results.json",
    "summary.md",
    "fit figures: draw",
    "fit figures: savefig",
    "fit figures",
    "fit figures: numbers",
    "maps: draw",
    "maps: savefig",
    "maps",
    "report.html: rest",
    "NIfTI maps",
    "sha256",
    "rest",
)


def instrument(times: dict[str, list[float]]) -> None:
    """Wrap every stage's function so that each call adds its own CPU seconds (nested stages'
    taken out) and one call to ``times[stage]``; a stage named ``:x`` is named after its caller
    (``fit figures: draw``)."""
    stack: list[list] = []  # [name, cpu of nested stages]
    for stage, module_name, name in STAGES:
        owner = importlib.import_module(module_name)
        *outer, name = name.split(".")  # a method: "Class.method"
        for attribute in outer:
            owner = getattr(owner, attribute, None)
        fn = None if owner is None else getattr(owner, name, None)
        if fn is None or getattr(fn, "__wrapped__", None) is not None:
            continue

        def wrapper(*args, __fn=fn, __stage=stage, **kwargs):
            label = f"{stack[-1][0]}{__stage}" if __stage.startswith(":") and stack else __stage
            label = label.replace(":", ": ").replace(":  ", ": ")
            frame = [label.split(": ")[0] if __stage.startswith(":") else label, 0.0]
            stack.append(frame)
            cpu = time.process_time()
            try:
                return __fn(*args, **kwargs)
            finally:
                spent = time.process_time() - cpu
                stack.pop()
                if stack:
                    stack[-1][1] += spent
                t = times[label]
                t[0] += spent - frame[1]
                t[1] += 1

        setattr(owner, name, functools.wraps(fn)(wrapper))


def build(cache: Path, side: int, snr: float, seed: int) -> None:
    """Fit the slice with ``scaloquant fit`` in-process and pickle the :class:`Run` it would
    write (and ``write_run``'s other arguments) to ``cache / "run.pickle"``."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_mrsi import slice_file
    from scaloquant import report
    from scaloquant.cli import main as cli

    cache.mkdir(parents=True, exist_ok=True)
    path = slice_file(cache, side, snr, seed)
    captured = {}

    def capture(run, out_dir, **kwargs):
        captured.update(run=run, kwargs=kwargs)
        return Path(out_dir)

    real, report.write_run = report.write_run, capture
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        assert cli(["fit", str(path), "--out", str(cache / "unused")]) == 0
        print(
            f"fitted the {side} x {side} slice: {time.perf_counter() - wall:.1f} s wall, "
            f"{time.process_time() - cpu:.1f} s CPU"
        )
    finally:
        report.write_run = real
    with open(cache / "run.pickle", "wb") as f:
        pickle.dump(captured, f)


def time_writes(cache: Path, repeats: int, keep: Path | None, profile: bool = False) -> None:
    """``repeats`` calls of ``write_run`` on the pickled run, each printed stage by stage;
    ``profile``: each under :mod:`cProfile` (its overhead on matplotlib's many small calls)."""
    from scaloquant import report

    with open(cache / "run.pickle", "rb") as f:
        captured = pickle.load(f)
    if profile:
        import cProfile

        write_run = report.write_run

        def profiled(*args, **kwargs):
            profiler = cProfile.Profile()
            try:
                return profiler.runcall(write_run, *args, **kwargs)
            finally:
                calls = sum(s[1] for s in profiler.getstats())
                print(f"under cProfile: {calls} Python calls")

        report.write_run = profiled
    cpu = time.process_time()
    importlib.import_module("scaloquant.report.figures")  # matplotlib, once a process
    print(f"the figures' import (matplotlib): {time.process_time() - cpu:.2f} s CPU")
    times: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    instrument(times)
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats):
            times.clear()
            out = keep if keep is not None and k == repeats - 1 else Path(tmp) / f"out{k}"
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            kwargs = {**captured["kwargs"], "overwrite": True}
            report.write_run(captured["run"], out, **kwargs)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            n = len(list((out / "figures").glob("*.png")))
            print(
                f"write_run {k + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU (load {load:.1f}), "
                f"{n} fit figures"
            )
            for row in ROWS:
                if row in times:
                    c, calls = times[row]
                    print(f"  {row:22s} {c:7.2f} s CPU  {calls:5d} calls")


def compare(args: argparse.Namespace) -> None:
    """Children alternating between ``--compare``'s src and this checkout's."""
    here = Path(__file__).resolve().parent
    sources = {"baseline": Path(args.compare).resolve(), "change": here.parent / "src"}
    for n in range(args.rounds):
        for label, src in sources.items():
            print(f"--- round {n + 1}, {label} ({src})", flush=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--cache", str(args.cache)]
            cmd += ["--repeats", str(args.repeats)]
            if args.keep is not None:
                cmd += ["--keep", str(Path(args.keep) / label)]
            env = dict(os.environ, PYTHONPATH=str(src))
            subprocess.run(cmd, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/write_run_slice"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compare", default=None, help="another checkout's src folder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="keep the last outputs here")
    parser.add_argument("--cprofile", action="store_true", help="each write under cProfile")
    args = parser.parse_args()
    if not (args.cache / "run.pickle").is_file():
        build(args.cache, args.side, args.snr, args.seed)
    if args.compare is not None:
        compare(args)
    else:
        time_writes(args.cache, args.repeats, args.keep, args.cprofile)


if __name__ == "__main__":
    main()
