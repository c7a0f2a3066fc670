"""Where the 32 x 32 MRSI slice of ``bench_fit_engine.py --mrsi`` spends its time, end to end.

The slice (1024 default-simulator spectra at SNR 30, seed 1, tiled from ``--n``) is written
as NIfTI-MRS and fitted in-process by ``scaloquant fit`` (``--threads``), as the benchmark
does; the parts are timed by wrapping the functions the command calls (wall and process CPU
seconds; a part's time includes the parts it calls, the table says which):

* ``read``: the inputs read (``cli._spectra.inputs_from_args``);
* ``fit_inputs``: the fit of every input (``quantify.fit_inputs``), of which ``water``
  (``fit.spectra._without_water``), ``solve`` (``fit.spectra._solve``), ``result``
  (``fit.spectra._batched_result``: SNR, linewidth) and ``figure spectra``
  (``fit.spectra.fitted_spectra`` of the drawn voxels);
* ``write_run``: every output, of which ``maps`` (the report's map images,
  ``report.html._maps``), ``fit figures`` (``report.outputs._fit_png``) and ``NIfTI maps``
  (``report.outputs._write_maps``).

Usage: ``PYTHONPATH=src python benchmarks/diag_mrsi_split.py [--n 128] [--threads 1]
[--repeat 1]``
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

# first: it sets OpenMP's passive wait and huge pages before torch loads, as the command does
import bench_fit_engine

engine_spectra, mrsi_end_to_end = bench_fit_engine.engine_spectra, bench_fit_engine.mrsi_end_to_end

import torch  # noqa: E402

import scaloquant.cli._spectra as cli_spectra  # noqa: E402
import scaloquant.fit.spectra as fit_spectra_module  # noqa: E402
import scaloquant.quantify as quantify  # noqa: E402
import scaloquant.quantify.fit_run as fit_run  # noqa: E402
import scaloquant.report as report  # noqa: E402
import scaloquant.report.html as report_html  # noqa: E402
import scaloquant.report.outputs as report_outputs  # noqa: E402

PARTS = (
    ("read", cli_spectra, "inputs_from_args"),
    ("fit_inputs", quantify, "fit_inputs"),
    ("  water", fit_spectra_module, "_without_water"),
    ("  solve", fit_spectra_module, "_solve"),
    ("  result", fit_spectra_module, "_batched_result"),
    ("  figure spectra", fit_run, "fitted_spectra"),
    ("write_run", report, "write_run"),
    ("  maps", report_html, "_maps"),
    ("  fit figures", report_outputs, "_fit_png"),
    ("  NIfTI maps", report_outputs, "_write_maps"),
)


def timing_wrappers() -> dict[str, list[float]]:
    """Wrap every part of :data:`PARTS`; returns ``{part: [wall, cpu]}`` summed over calls."""
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for label, module, name in PARTS:
        original = getattr(module, name)

        def wrapped(*args, _original=original, _label=label, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label][0] += time.perf_counter() - wall
                spent[_label][1] += time.process_time() - cpu

        setattr(module, name, wrapped)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    basis, signals, _, _ = engine_spectra(args.n, 30.0, 1)
    spent = timing_wrappers()
    for _ in range(args.repeat):
        spent.clear()
        cpu = time.process_time()
        wall = mrsi_end_to_end(basis, signals, args.threads)
        cpu = time.process_time() - cpu
        print(f"slice end to end: {wall:.1f} s wall, {cpu:.1f} s CPU")
        for label, _, _ in PARTS:
            w, c = spent.get(label, (0.0, 0.0))
            print(f"  {label:22s} {w:6.2f} s wall {c:6.2f} s CPU ({100 * c / cpu:4.1f} % of CPU)")


if __name__ == "__main__":
    main()
