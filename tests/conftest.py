"""Fixtures shared by several test folders."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: pytest-xdist workers of ``-n auto`` (pyproject's ``addopts``) at most: each holds its own
#: torch, numpy and module fixtures (about 1-1.5 GB), so a many-core workstation with little
#: memory is not asked for one per core
MAX_TEST_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per CPU this process may run on (its affinity mask, as the
    package counts them), at most :data:`MAX_TEST_WORKERS`; CI's 2 cores run two files at once
    (``--dist loadfile``: a module's fixtures are built once, in one worker)."""
    from scaloquant.threads import available_cpus

    return min(available_cpus(), MAX_TEST_WORKERS)


def pytest_configure(config):
    """In a pytest-xdist worker, torch takes its share of the CPUs: N workers each with every
    core would make libgomp's threads wait on each other's cores. Tests that set threads
    themselves, and the fresh interpreters and worker processes tests start, are unaffected."""
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers:
        import torch

        from scaloquant.threads import available_cpus

        torch.set_num_threads(max(1, available_cpus() // int(workers)))


@pytest.fixture(scope="session")
def fresh_python():
    """Run a code string in a new interpreter on this source tree, with its own ``sys.modules``
    (to check what an import or a command loads); returns the completed process."""

    def run(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
        path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def process_running():
    """Whether a process id runs: an ended process that nobody has reaped yet (a zombie, e.g. an
    orphan whose new parent is slow to reap it) does not, though ``kill(pid, 0)`` finds it."""

    def running(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:  # no /proc here (and kill found it), or it ended just now
            return not Path("/proc/self").exists()

    return running


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A spectrum CNN trained for a few steps on the embedded basis (about 10 s), for tests
    that need a real checkpoint but not an accurate one (``quantify`` and the like)."""
    from scaloquant.io import default_basis
    from scaloquant.train import TrainConfig, train_model

    base = TrainConfig.preset("tiny", model="spectrum_cnn")
    config = dataclasses.replace(
        base,
        max_steps=6,
        max_epochs=None,
        val_check_interval=3,
        n_train=96,
        n_val=32,
        early_stopping_patience=None,
    )
    out = tmp_path_factory.mktemp("tiny_checkpoint")
    return train_model(config, default_basis(), out, progress=False).checkpoint_path
