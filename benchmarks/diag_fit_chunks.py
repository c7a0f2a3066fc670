"""Whether a spectrum's fit depends on the other spectra of its chunk.

Fits the same spectra of ``bench_fit_engine.py`` (default simulator, seed 1, SNR 30; or the
tissue-like ``invivo`` simulation, ``--tissue``) with ``fit_spectra`` once per chunk size
(``batched.CPU_CHUNK``, or ``batched.GPU_CHUNK`` with ``--device cuda``; one torch thread on a
CPU, so that :func:`scaloquant.fit.batched.chunk_ranges` gives the chunks asked for) and, with
``--permute``, once more in a shuffled order at the first chunk size; prints, against the first
fit, the amplitude differences in CRLB SDs (max, median, 99th percentile), how many spectra
differ by more than 1e-6 of an amplitude and by more than 0.01 and 0.1 SD, and the worst
spectra. A batched fit whose spectra are their own gives 0 everywhere (docs/history/fit-log.md
"The fit's chunk-size dependence (session 19, `chunk19`)").

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_chunks.py [--preset invivo] [--n 256]
[--chunks 128 16 256] [--permute] [--tissue] [--device cpu]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from types import SimpleNamespace

# first: it sets OpenMP's passive wait, huge pages and MKL's reproducible mode before torch loads
# and runs, as the command does
import bench_fit_engine

engine_spectra = bench_fit_engine.engine_spectra

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scaloquant.fit import batched, fit_spectra  # noqa: E402
from scaloquant.fit.config import FIT_PRESETS  # noqa: E402


def compare(name: str, reference, other) -> str:
    """One line: ``other``'s amplitudes against ``reference``'s, in ``reference``'s CRLB SDs."""
    diff = np.abs(other.amplitudes - reference.amplitudes)
    sd = diff / reference.crlb_sd
    relative = np.nanmax(diff / np.maximum(np.abs(reference.amplitudes), 1e-12), axis=1)
    worst = np.nan_to_num(np.nanmax(sd, axis=1))
    order = np.argsort(-worst)[:5]
    return (
        f"{name}: |diff|/CRLB SD max {np.nanmax(sd):.3g}, median {np.nanmedian(sd):.2g}, "
        f"p99 {np.nanpercentile(sd, 99):.2g}; spectra beyond 1e-6 relative "
        f"{int((relative > 1e-6).sum())}/{len(worst)}, beyond 0.01 SD {int((worst > 0.01).sum())}, "
        f"beyond 0.1 SD {int((worst > 0.1).sum())}; worst {order.tolist()} "
        f"{[float(f'{w:.3g}') for w in worst[order]]}"
    )


def peak_memory(device: str, chunk: int, basis, config) -> str:
    """On a GPU, ``"; peak GPU memory X GiB, Y bytes per element"``: torch's peak allocation
    since the last reset, and that over the chunk's spectra times
    :func:`scaloquant.fit.batched.spectrum_elements` of the fit's problems (what
    ``batched.GPU_BYTES_PER_ELEMENT`` should cover); ``""`` on a CPU."""
    if device != "cuda":
        return ""
    from scaloquant.fit.problem import make_problem, prepare_basis
    from scaloquant.fit.stages import stage_problem

    prepared = prepare_basis(basis, config)
    dev = torch.device("cpu")
    problems = [
        stage_problem(prepared, config, L, dev) for L in config.continuation_broadening_per_s
    ]
    problems += [make_problem(prepared, config, deviations=d, device=dev) for d in (False, True)]
    full = replace(config, decimate_model=False)
    problems.append(make_problem(prepared, full, deviations=True, device=dev))
    peak = torch.cuda.max_memory_allocated()
    per_element = peak / (chunk * batched.spectrum_elements(problems))
    return f"; peak GPU memory {peak / 2**30:.2f} GiB, {per_element:.2f} bytes per element"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="invivo", choices=sorted(FIT_PRESETS))
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--chunks", type=int, nargs="+", default=[128, 16, 256])
    parser.add_argument("--permute", action="store_true", help="also a shuffled order")
    parser.add_argument("--tissue", action="store_true", help="the tissue-like spectra")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    name = "CPU_CHUNK" if args.device == "cpu" else "GPU_CHUNK"
    basis, _, fid, tissue = engine_spectra(args.n, 30.0, 1)
    source = tissue if args.tissue else fid
    config = replace(FIT_PRESETS[args.preset], device=args.device)
    fits = {}
    for chunk in args.chunks:
        setattr(batched, name, chunk)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start, cpu = time.perf_counter(), time.process_time()
        fits[f"{name} {chunk}"] = fit_spectra(source, basis, config)
        wall = time.perf_counter() - start
        print(
            f"{name} {chunk}: {wall:.1f} s wall ({args.n / wall:.1f} spectra/s), "
            f"{time.process_time() - cpu:.1f} s CPU"
            + peak_memory(args.device, chunk, basis, config),
            flush=True,
        )
    if args.permute:
        setattr(batched, name, args.chunks[0])
        order = np.random.default_rng(3).permutation(args.n)
        shuffled = fit_spectra(source.with_samples(source.samples[order]), basis, config)
        back = np.argsort(order)
        fits["shuffled"] = SimpleNamespace(
            amplitudes=shuffled.amplitudes[back], crlb_sd=shuffled.crlb_sd[back]
        )
    first, *others = fits
    for label in others:
        print(compare(f"{first} vs {label}", fits[first], fits[label]))


if __name__ == "__main__":
    main()
