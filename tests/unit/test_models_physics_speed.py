"""The shortcuts of the physics-head models' evaluation at the network's parameters
(:mod:`scaloquant.models.physics`), against the float64 route they replace:

* the CRLB of :func:`scaloquant.fit.crlb.crlb` (Cholesky inverse where well conditioned)
  equals the eigen-decomposition pseudo-inverse's to rounding level, on both the Cholesky and
  the fallback route, priors included (the per-metabolite model's spread priors);
* single-precision model columns (:data:`~scaloquant.models.physics.NETWORK_COLUMN_DTYPE`)
  move the ``K = 0`` amplitudes and SDs by a tiny fraction of the CRLB (measured: 4e-7 of it on
  512 default-simulator spectra at SNR 30; the bound here, 1e-4, is 4 decades below the CRLB).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scaloquant.fit import batched, crlb
from scaloquant.fit.evaluation import Workspace, evaluate, noise_var_from_residual, w_inner
from scaloquant.io import default_basis
from scaloquant.models import physics, physics_head
from scaloquant.models.physics import build_physics_quantifier
from scaloquant.models.physics_truth import default_truth
from scaloquant.simulate import SimulationConfig, drawn_parameters, simulate_dataset
from scaloquant.train.physics import default_simulation_model


@pytest.fixture(scope="module")
def noisy():
    """A per-metabolite (default simulation) model, 12 spectra at SNR 30 and a start off the
    truth (what a network predicts)."""
    simulation = SimulationConfig.from_dict({"snr": [30.0, 30.0]})
    fit_config, ranges = default_simulation_model(simulation)
    torch.manual_seed(0)
    model, on_grid, _ = build_physics_quantifier(
        "spectrum_physics",
        default_basis(),
        fit_config=fit_config,
        widths=(4, 4, 8, 8, 8, 8),
        **ranges,
    )
    problem = model.problem()
    signals = next(simulate_dataset(on_grid, simulation, 12, 5))
    theta, _ = default_truth(
        problem, drawn_parameters(signals), on_grid.names, simulation.phase1_pivot_ppm
    )
    rng = np.random.default_rng(6)
    sl = problem.slices()
    theta[:, sl["damping"]] += rng.uniform(0.0, 2.0, theta[:, sl["damping"]].shape)
    theta[:, sl["shift"]] += rng.uniform(-0.5, 0.5, theta[:, sl["shift"]].shape)
    return model.eval(), torch.as_tensor(signals.fids), torch.as_tensor(theta)


def _crlb_oracle(problem, ev, noise_var, monkeypatch):
    """The bound by the pseudo-inverse alone (every row refused by the Cholesky route)."""
    with monkeypatch.context() as patch:
        patch.setattr(crlb, "CHOLESKY_INVERSE_MAX", 0.0)
        return physics_head.crlb_sd(problem, ev, noise_var)


def test_crlb_by_cholesky_equals_the_pseudo_inverse(noisy, monkeypatch):
    """Every row takes the Cholesky route here (well conditioned) and gives the pseudo-inverse's
    bound; the model's spread priors are in both."""
    model, fids, theta = noisy
    problem = model.problem()
    assert problem.penalty_active
    y = model.data_window(fids)
    ones = torch.ones(len(fids), dtype=torch.float64)
    ev = evaluate(problem, theta, y, ones)
    noise_var = noise_var_from_residual(problem, ev)
    got = physics_head.crlb_sd(problem, ev, noise_var)
    want = _crlb_oracle(problem, ev, noise_var, monkeypatch)
    assert bool((want > 0).all())
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0.0)


def test_crlb_sd_of_an_unidentifiable_amplitude_takes_the_pseudo_inverse(noisy, monkeypatch):
    """Two identical columns make the Fisher matrix singular: the Cholesky route is refused
    and the result is the fit's pseudo-inverse bound."""
    model, fids, theta = noisy
    problem = model.problem()
    y = model.data_window(fids)
    ones = torch.ones(len(fids), dtype=torch.float64)
    ev = evaluate(problem, theta, y, ones)
    ev.columns[:, :, 1] = ev.columns[:, :, 0]
    ev.w_columns[:, :, 1] = ev.w_columns[:, :, 0]
    ev.gram = w_inner(problem, ev.columns, ev.columns)  # crlb's amplitude block
    noise_var = noise_var_from_residual(problem, ev)
    got = physics_head.crlb_sd(problem, ev, noise_var)
    want = _crlb_oracle(problem, ev, noise_var, monkeypatch)
    torch.testing.assert_close(got, want, rtol=1e-8, atol=0.0)


def test_single_precision_columns_move_the_estimates_far_below_the_crlb(noisy, monkeypatch):
    model, fids, theta = noisy
    fast = model.estimate(fids, polish_iterations=0, network_theta=theta)
    monkeypatch.setattr(physics, "NETWORK_COLUMN_DTYPE", torch.complex128)
    exact = model.estimate(fids, polish_iterations=0, network_theta=theta)
    sd = exact.sd
    assert bool((sd > 0).all())
    amplitude_change = ((fast.amplitudes - exact.amplitudes).abs() / sd).max()
    sd_change = ((fast.sd - sd).abs() / sd).max()
    assert float(amplitude_change) < 1e-4, float(amplitude_change)
    assert float(sd_change) < 1e-4, float(sd_change)
    assert float(amplitude_change) > 0  # the single-precision route did run


@pytest.mark.parametrize("k", [0, 2])
def test_batches_side_by_side_give_the_numbers_of_one_thread(noisy, k):
    """With two torch threads the batches run side by side, one per thread
    (:func:`scaloquant.threads.run_side_by_side`), at ``K = 0`` and with a polish: the same
    numbers, in the same order, as one thread running them one after the other."""
    model, fids, _ = noisy
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model.predict_estimates(fids, batch_size=5, polish_iterations=k)
        torch.set_num_threads(2)
        two = model.predict_estimates(fids, batch_size=5, polish_iterations=k)
    finally:
        torch.set_num_threads(before)
    assert one.amplitudes.shape == (12, len(model.metabolites))
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("copies", [1, 4])
def test_a_small_batch_alone_runs_on_one_thread(noisy, monkeypatch, copies):
    """Fewer spectra than ``ONE_THREAD_BELOW`` in one batch (one spectrum, a few: an SVS run;
    48, which 2 threads do not share out) are polished on one torch thread whatever the count,
    as the fit's small chunk, not with their small operations split over the threads: the
    numbers of one thread, to the bit, and the caller's count restored."""
    model, fids, _ = noisy
    fids = fids.repeat(copies, 1)
    assert len(fids) < batched.ONE_THREAD_BELOW
    seen = []
    real = type(model).estimate

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "estimate", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = model.predict_estimates(fids, polish_iterations=2)
        torch.set_num_threads(2)
        seen.clear()
        two = model.predict_estimates(fids, polish_iterations=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1], seen  # one batch, on one thread
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_batch_gives_the_numbers_of_one_thread_on_two(fresh_python):
    """64 spectra, one batch of the default size (more than ``ONE_THREAD_BELOW``), give the
    same numbers to the bit on 1 and 2 torch threads in an interpreter with the command's
    settings (``MKL_CBWR=AUTO``, read at MKL's first call): the batch is split in two, side by
    side, as the fit's chunks (:func:`scaloquant.fit.batched.chunk_parts`). Run as one batch
    with its operations split over 2 threads, the batched Cholesky and triangular solves gave
    other bits, and quantify's ``fit_residual`` moved by ~2e-14 (session 30)."""
    code = """
from scaloquant.threads import prefer_command_settings, torch_threads
prefer_command_settings()
import numpy as np
import torch
from scaloquant.io import default_basis
from scaloquant.models.physics import build_physics_quantifier
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.train.physics import default_simulation_model

simulation = SimulationConfig.from_dict({"snr": [30.0, 30.0]})
fit_config, ranges = default_simulation_model(simulation)
torch.manual_seed(0)
model, on_grid, _ = build_physics_quantifier(
    "spectrum_physics", default_basis(), fit_config=fit_config, widths=(4, 4, 8, 8, 8, 8),
    **ranges,
)
model.eval()
fids = torch.as_tensor(next(simulate_dataset(on_grid, simulation, 64, 5)).fids)
results = []
for count in (1, 2):
    with torch_threads(count):
        results.append(model.predict_estimates(fids, polish_iterations=2))
print([n for n, a, b in zip(results[0]._fields, *results) if not np.array_equal(a, b)])
"""
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_batches_in_one_workspace_give_the_numbers_without_one(noisy):
    """The estimates of batches one after another in one :class:`Workspace` (as
    :meth:`predict_estimates` runs each thread's batches; a smaller last batch takes new arrays
    and the next full one its own again) are those without one, bit for bit, at ``K = 0`` and
    with a polish (which evaluates outside the workspace; its amplitude covariance too)."""
    model, fids, _ = noisy
    for k in (0, 1):
        workspace = Workspace()
        for start, stop in ((0, 5), (5, 10), (10, 12), (0, 5)):
            x = fids[start:stop]
            got = model.estimate(x, polish_iterations=k, workspace=workspace, covariance=True)
            want = model.estimate(x, polish_iterations=k, covariance=True)
            for name, a, b in zip(want._fields, got, want, strict=True):
                # K = 0 forms no covariance (None in both)
                assert (a is None and b is None) or torch.equal(a, b), (k, start, name)


def test_the_decimated_model_predicts_as_the_full_one(noisy, monkeypatch):
    """The prediction's model on the fit's decimated band
    (:data:`~scaloquant.models.physics.NETWORK_MODEL_DECIMATED`), against all ``N`` samples:
    at ``K = 0`` (noisy spectra, a start off the truth) the amplitudes and SDs move by a small
    fraction of the CRLB (the decimated model is within ~1e-5 of a column's largest bin); and at
    the truth of noiseless spectra both give the same numbers (the near-noiseless spectra are
    evaluated on all ``N`` samples)."""
    model, fids, theta = noisy
    problem = model.predicting_problem()
    assert problem.fids.shape[-1] < model.config.n_points  # decimated: this test runs it
    fast = model.estimate(fids, polish_iterations=0, network_theta=theta)
    monkeypatch.setattr(physics, "NETWORK_MODEL_DECIMATED", False)
    full = model.estimate(fids, polish_iterations=0, network_theta=theta)
    sd = full.sd
    amplitude_change = ((fast.amplitudes - full.amplitudes).abs() / sd).max()
    assert 0 < float(amplitude_change) < 0.01, float(amplitude_change)
    assert float(((fast.sd - sd).abs() / sd).max()) < 0.01
    monkeypatch.undo()

    simulation = SimulationConfig()
    signals = next(simulate_dataset(model.basis(), simulation, 6, 8))
    truth, _ = default_truth(
        model.problem(),
        drawn_parameters(signals),
        model.basis().names,
        simulation.phase1_pivot_ppm,
    )
    clean, at = torch.as_tensor(signals.fids), torch.as_tensor(truth)
    est = model.estimate(clean, polish_iterations=0, network_theta=at)
    # single-precision columns: within ~1e-7 of the truth, as the full model's
    np.testing.assert_allclose(est.amplitudes.numpy(), signals.amplitudes, atol=1e-6)
    monkeypatch.setattr(physics, "NETWORK_MODEL_DECIMATED", False)
    on_all = model.estimate(clean, polish_iterations=0, network_theta=at)
    torch.testing.assert_close(est.amplitudes, on_all.amplitudes, rtol=0.0, atol=1e-12)


def _frozen(fids: torch.Tensor, tiles: int) -> np.ndarray:
    out = np.tile(fids.numpy(), (tiles, 1))
    out.flags.writeable = False  # as a frozen FID's samples
    return out


def test_predict_reads_a_read_only_input_without_a_copy(noisy):
    """:meth:`~scaloquant.models.physics.PhysicsQuantifier.predict_estimates` reads the
    samples batch by batch where they are (a frozen FID's are read-only): no copy of them all
    (16384 spectra: 0.5 GB of new memory), torch's warning for a read-only array silenced, the
    same numbers as from a writable copy, and the input unchanged."""
    import tracemalloc
    import warnings

    model, fids, _ = noisy
    frozen = _frozen(fids, 8)  # 96 spectra: a copy would outweigh the batches' own arrays
    want = model.predict_estimates(frozen.copy(), batch_size=8, polish_iterations=0)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = model.predict_estimates(frozen, batch_size=8, polish_iterations=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < frozen.nbytes, peak  # measured 0.76 MB here, 4.1 MB with the copy
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(frozen, _frozen(fids, 8))


def test_the_polish_does_not_write_to_a_read_only_input(noisy):
    """The polish (``K > 0``) reads the shared samples too: the same numbers as from a
    writable copy, and the input unchanged."""
    model, fids, _ = noisy
    frozen = _frozen(fids, 1)
    want = model.predict_estimates(frozen.copy(), batch_size=6, polish_iterations=1)
    got = model.predict_estimates(frozen, batch_size=6, polish_iterations=1)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(frozen, fids.numpy())
