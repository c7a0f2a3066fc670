"""The GPU paths against the CPU's, on a CUDA device (skipped without one: CI has none; they
passed on an H200 in sessions 18 and 20).

Both paths compute in float64 (the networks in float32), so a GPU run may differ from the CPU's
only by the order of its sums: the fit's and the physics polish's amplitudes must agree within a
small fraction of their own Cramér–Rao SD, and the network's parameters within float32 rounding.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from scaloquant.fit import fit_spectra
from scaloquant.fit.config import FIT_PRESETS
from scaloquant.io import default_basis
from scaloquant.models.physics import build_physics_quantifier
from scaloquant.models.physics_truth import invivo_truth
from scaloquant.simulate import InvivoPrior, SimulationConfig, simulate_batch
from scaloquant.simulate.draws import draw_invivo
from scaloquant.simulate.invivo import render_invivo
from scaloquant.types import FID

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

#: Largest difference GPU - CPU allowed, in units of the CPU fit's CRLB SD: far below the
#: noise (1 SD), above what a different order of float64 sums moves a converged fit.
CRLB_FRACTION = 0.01


@pytest.mark.parametrize("preset", ["invivo", "simulated"])
def test_fit_on_cuda_gives_the_cpus_amplitudes(preset):
    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [30, 30]})
    signals = simulate_batch(basis, config, 24, np.random.default_rng(3))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    cpu = fit_spectra(fid, basis, FIT_PRESETS[preset])
    gpu = fit_spectra(fid, basis, replace(FIT_PRESETS[preset], device="cuda"))
    ratio = np.abs(gpu.amplitudes - cpu.amplitudes) / cpu.crlb_sd
    worst = np.unravel_index(np.nanargmax(ratio), ratio.shape)
    assert np.nanmax(ratio) < CRLB_FRACTION, (
        f"spectrum {worst[0]}, {cpu.names[worst[1]]}: GPU {gpu.amplitudes[worst]:.6g}, "
        f"CPU {cpu.amplitudes[worst]:.6g}, CRLB SD {cpu.crlb_sd[worst]:.3g}"
    )


def test_physics_quantifier_on_cuda_gives_the_cpus_estimates():
    torch.manual_seed(0)
    model, on_grid, _ = build_physics_quantifier(
        "spectrum_physics", default_basis(), widths=(4, 4, 8, 8, 8, 8)
    )
    model = model.eval()
    prior = InvivoPrior(snr_range=(30.0, 30.0))
    rng = np.random.default_rng(5)
    params = draw_invivo(prior, on_grid.names, 16, rng)
    fids = torch.as_tensor(render_invivo(on_grid, params, rng).fids)
    theta, _ = invivo_truth(model.problem(), params)
    start = torch.as_tensor(theta)
    cpu = model.estimate(fids, polish_iterations=10, network_theta=start)
    network_cpu = model.network_theta(fids, inference=True)
    model = model.to("cuda")
    gpu = model.estimate(fids.to("cuda"), polish_iterations=10, network_theta=start.to("cuda"))
    network_gpu = model.network_theta(fids.to("cuda"), inference=True)
    assert gpu.amplitudes.device.type == "cuda"
    ratio = (gpu.amplitudes.cpu() - cpu.amplitudes).abs() / cpu.sd
    assert float(ratio.nan_to_num(0.0).max()) < CRLB_FRACTION
    # the encoder in float32: parameters within float32 rounding of the same weights
    torch.testing.assert_close(network_gpu.cpu(), network_cpu, rtol=1e-4, atol=1e-4)


def test_gpu_chunk_fits_in_the_free_memory():
    """On a GPU a chunk holds as many spectra as ``GPU_MEMORY_SHARE`` of the free memory takes
    at ``GPU_BYTES_PER_ELEMENT`` per element of its largest problem, within its bounds; a fit
    of one such chunk's worth of the in-vivo problem's spectra then peaks within that share."""
    from scaloquant.fit import batched
    from scaloquant.fit.problem import make_problem, prepare_basis

    config = replace(FIT_PRESETS["invivo"], device="cuda")
    basis = prepare_basis(default_basis(), config)
    cuda = torch.device("cuda")
    problem = make_problem(basis, config, device=cuda)
    full = batched.full_grid_twin(problem, basis, config, deviations=True, device=cuda)
    chunk = batched.chunk_size(cuda, [problem, full])
    assert batched.GPU_CHUNK_MIN <= chunk <= batched.GPU_CHUNK
    free_bytes, _ = torch.cuda.mem_get_info(cuda)
    needed = batched.GPU_BYTES_PER_ELEMENT * batched.spectrum_elements([problem, full])
    assert chunk == batched.GPU_CHUNK or chunk * needed <= batched.GPU_MEMORY_SHARE * free_bytes


def test_derived_spectra_on_cuda_give_the_cpus():
    """The outputs derived from the fitted spectra (SNR, linewidth, residual; their transforms
    on the fit's device since session 21) from one result: the same on the GPU as on the CPU,
    to float64 rounding."""
    from scaloquant.fit.problem import make_problem
    from scaloquant.fit.spectra import _derived_spectra, _prepared, _without_water

    basis = default_basis()
    config = SimulationConfig.from_dict({"snr": [30, 30]})
    signals = simulate_batch(basis, config, 24, np.random.default_rng(4))
    fid = FID(signals.fids, basis.dwell_time_s, basis.spectrometer_freq_mhz, basis.ppm_reference)
    for lineshape in ("voigt", "freeform"):
        fit = replace(FIT_PRESETS["invivo"], lineshape=lineshape)
        result = fit_spectra(fid, basis, fit).flat()
        prepared, _ = _prepared(basis, fid, fit)
        problem = make_problem(prepared, fit, device="cpu")
        fids = _without_water(fid, fit)
        cpu_spectra, cpu_width = _derived_spectra(result, fids, prepared, problem, "cpu")
        gpu_spectra, gpu_width = _derived_spectra(result, fids, prepared, problem, "cuda")
        np.testing.assert_allclose(gpu_width, cpu_width, rtol=1e-9)
        for name in ("data", "model", "baseline", "metabolites"):
            got, want = getattr(gpu_spectra, name), getattr(cpu_spectra, name)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
