"""``reproduce --preset quick`` trains by steps, not by the clock: the same seed gives the same
networks (and so the same numbers) on an idle machine and a loaded one (issue 13, the quick
preset's 5-minute budget; its time is measured by benchmarks/bench_reproduce.py)."""

from types import SimpleNamespace

import torch

from scaloquant.io.default import default_basis
from scaloquant.reproduce import (
    CNN_STEPS_ONLY,
    MODELS,
    PHYSICS_MODELS,
    PHYSICS_TRAIN_STEPS,
    _configs,
    _physics_configs,
)
from scaloquant.simulate import SimulationConfig
from scaloquant.train import physics as physics_training
from scaloquant.train.config import TrainConfig
from scaloquant.train.physics import PhysicsTrainConfig, train_physics


def test_the_quick_runs_trainings_have_step_caps_and_no_time_caps():
    assert "quick" in CNN_STEPS_ONLY
    cnn = _configs("quick", None, None, None, None)
    for model in MODELS:
        preset = TrainConfig.preset("quick", model=model)
        assert preset.max_time_s is not None  # `train --preset quick` keeps its cap
        assert cnn[model].max_time_s is None
        assert cnn[model].max_epochs == preset.max_epochs
    steps = PHYSICS_TRAIN_STEPS["quick"]
    physics = _physics_configs("quick", 3)
    for model in PHYSICS_MODELS:
        assert physics[model].max_time_s is None
        assert physics[model].max_steps == steps[model] > 0
        assert physics[model].seed == 3 and physics[model].simulation == "default"


def test_the_cpu_preset_keeps_its_time_caps():
    assert PHYSICS_TRAIN_STEPS["cpu"] is None
    assert all(c.max_time_s == 240.0 for c in _physics_configs("cpu", 0).values())
    assert all(c.max_time_s is not None for c in _configs("cpu", None, None, None, None).values())


class _SlowClock:
    """A clock that advances 1000 s at every reading (a machine under heavy load)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1000.0
        return self.now


def _train(tmp_path, name, monkeypatch, clock=None):
    if clock is not None:
        monkeypatch.setattr(physics_training, "time", SimpleNamespace(perf_counter=clock))
    config = PhysicsTrainConfig.preset(
        "tiny", model="spectrum_physics", simulation="default", max_steps=4, max_time_s=None
    )
    result = train_physics(
        config,
        default_basis(),
        tmp_path / f"{name}.ckpt",
        simulation_config=SimulationConfig(),
        log=lambda _line: None,
    )
    monkeypatch.undo()
    state = torch.load(result.checkpoint_path, weights_only=True)["state_dict"]
    return result, state


def test_a_step_cap_gives_the_same_network_whatever_the_clock(tmp_path, monkeypatch):
    fast, fast_state = _train(tmp_path, "fast", monkeypatch)
    slow, slow_state = _train(tmp_path, "slow", monkeypatch, _SlowClock().perf_counter)
    assert fast.steps == slow.steps == 4
    assert slow.wall_time_s > 1000  # the slow clock was read
    assert fast.best_val_loss == slow.best_val_loss
    assert fast_state.keys() == slow_state.keys()
    for key in fast_state:
        assert torch.equal(fast_state[key], slow_state[key]), key


def test_two_models_trained_side_by_side_get_the_weights_of_their_seeds(tmp_path):
    from scaloquant.threads import run_side_by_side, torch_threads

    basis = default_basis()

    def job(model, folder):
        config = PhysicsTrainConfig.preset(
            "tiny", model=model, simulation="default", max_steps=2, max_time_s=None, seed=11
        )
        return lambda: train_physics(
            config,
            basis,
            tmp_path / folder / f"{model}.ckpt",
            simulation_config=SimulationConfig(),
            log=lambda _line: None,
        )

    models = ("scalogram_physics", "spectrum_physics")
    with torch_threads(1):  # the same threads per operation both ways
        alone = run_side_by_side({m: job(m, "alone") for m in models}, workers=1)
    together = run_side_by_side({m: job(m, "together") for m in models}, workers=2)
    for model in models:
        a = torch.load(alone[model][0].checkpoint_path, weights_only=True)["state_dict"]
        b = torch.load(together[model][0].checkpoint_path, weights_only=True)["state_dict"]
        for key in a:
            assert torch.equal(a[key], b[key]), (model, key)


def test_the_trainings_that_go_to_processes(monkeypatch):
    """quick and tiny (steps cap every training) train all four models side by side in
    processes on 2 CPUs; cpu and paper (time caps), a GPU, one CPU or the switches off keep
    the CNNs in this process, one after the other."""
    from scaloquant import reproduce as module

    def layout(preset, gpu=False):
        return module._training_layout(
            _configs(preset, None, None, None, None), _physics_configs(preset, 0), gpu=gpu
        )

    monkeypatch.setattr(module, "available_cpus", lambda: 2)
    assert layout("quick") == layout("tiny") == (True, True)
    assert layout("cpu") == (False, False)  # time caps: each model alone
    assert layout("paper") == (False, False)
    assert layout("quick", gpu=True) == (True, False)
    monkeypatch.setattr(module, "TRAIN_IN_PROCESSES", False)
    assert layout("quick") == (True, False)
    monkeypatch.setattr(module, "TRAIN_IN_PROCESSES", True)
    monkeypatch.setattr(module, "SIDE_BY_SIDE", False)
    assert layout("quick") == (False, False)
    monkeypatch.setattr(module, "SIDE_BY_SIDE", True)
    monkeypatch.setattr(module, "available_cpus", lambda: 1)
    assert layout("quick") == (True, False)
