"""What the batched fit's chunks hold for each spectrum until they are joined, and what its result
keeps of the amplitudes' covariance bound, of another checkout's ``src`` beside this one's.

``fit_spectra`` (the ``invivo`` preset, as ``scaloquant fit``) of ``--n`` default-simulator spectra
at SNR 30, in a child process per source; :func:`scaloquant.fit.batched.chunk_parts` is wrapped to
keep the chunks of each ``solve`` (its :class:`~scaloquant.fit.batched.BatchedFit` parts), and
each array's storage is counted once (an array that is a view of a torch tensor keeps the whole
tensor's storage alive: before session 35 the chunks' ``covariance``, a view of the
``(B, M + P_free, M + P_free)`` bound). Printed, per ``solve``: the kB a spectrum its chunks
hold, and the largest fields; then the kB a spectrum of the result's covariance fields. Bytes,
not time: the figures do not move with the machine's load.

Usage: ``PYTHONPATH=src python benchmarks/diag_fit_held_memory.py [--n 16] [--compare SRC]``
(session 35: docs/history/fit-log.md "The fit's covariance at MRSI scale (session 35,
`covmem35`)").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"


def storages(a) -> dict[tuple[str, int], int]:
    """The storage ``a`` keeps alive, ``{(kind, address): bytes}``: its base array's, or the
    torch tensor's whose view it is."""
    import numpy as np
    import torch

    b = a
    while isinstance(getattr(b, "base", None), np.ndarray):
        b = b.base
    if isinstance(getattr(b, "base", None), torch.Tensor):
        s = b.base.untyped_storage()
        return {("torch", s.data_ptr()): s.nbytes()}
    return {("numpy", b.__array_interface__["data"][0]): b.nbytes}


def measure(n: int) -> None:
    """This process' source: the chunks' bytes of each solve and the result's covariance fields."""
    import numpy as np

    from scaloquant.fit import batched, fit_spectra
    from scaloquant.fit.config import FIT_PRESETS
    from scaloquant.io import default_basis
    from scaloquant.simulate import SimulationConfig, simulate_batch
    from scaloquant.types import FID

    solves = []
    chunk_parts = batched.chunk_parts

    def kept(part, count, device, chunk):
        parts = chunk_parts(part, count, device, chunk)
        if parts and isinstance(parts[0], batched.BatchedFit):
            solves.append((count, parts))
        return parts

    batched.chunk_parts = kept
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [30.0, 30.0]})
    fids = simulate_batch(basis, config, n, np.random.default_rng(1)).fids
    fid = FID(fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    result = fit_spectra(fid, basis, FIT_PRESETS["invivo"])
    for count, parts in solves:
        fields: dict[str, int] = {}
        every: dict[tuple[str, int], int] = {}
        for p in parts:
            for name in p.__dataclass_fields__:
                held = storages(getattr(p, name))
                fields[name] = fields.get(name, 0) + sum(held.values())
                every.update(held)
        largest = sorted(fields.items(), key=lambda kv: -kv[1])[:3]
        print(
            f"  solve of {count} spectra: its chunks hold {sum(every.values()) / count / 1024:.1f} "
            "kB a spectrum (largest: "
            + ", ".join(f"{k} {v / count / 1024:.1f}" for k, v in largest)
            + ")"
        )
    names = ("amplitude_covariance", "combined_crlb_sd", "amplitude_correlations")
    held = {k: v for k in names if (v := getattr(result, k, None)) is not None}
    print(
        "  the result keeps "
        + ", ".join(f"{k} {v.nbytes / n / 1024:.2f} kB" for k, v in held.items())
        + " a spectrum"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="spectra fitted")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout's src")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.n)
        return
    sources = {"src": HERE_SRC}
    if args.compare is not None:
        sources = {"baseline": args.compare.resolve(), "change": HERE_SRC}
    for name, src in sources.items():
        print(f"{name} ({src}):", flush=True)
        env = {**os.environ, "PYTHONPATH": str(src)}
        cmd = [sys.executable, __file__, "--measure", "--n", str(args.n)]
        subprocess.run(cmd, env=env, check=True)


if __name__ == "__main__":
    main()
