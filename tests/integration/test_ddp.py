"""DDP through the CLI: two CPU processes (gloo) train one model; each rank draws its own data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scaloquant.models import load_model

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_ddp_two_cpu_processes(tmp_path):
    overrides = tmp_path / "short.yaml"
    # 2 ranks x 2 batches of 20 per epoch; fresh data so that each rank draws its own stream
    overrides.write_text(
        "max_steps: 6\nmax_epochs: null\nval_check_interval: 3\nn_train: 80\n"
        "n_val: 40\nbatch_size: 20\nfresh_data: true\n"
        "widths: [4, 4, 8, 8, 8, 8]\nearly_stopping_patience: null\n"
    )
    out = tmp_path / "ddp"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "scaloquant",
        "train",
        "--model",
        "spectrum_cnn",
        "--preset",
        "tiny",
        "--config",
        str(overrides),
        "--out",
        str(out),
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = out / "models" / "spectrum_cnn.ckpt"
    loaded = load_model(ckpt)
    assert loaded.metadata.training["steps"] == 6
    streams = json.loads((out / "logs" / "spectrum_cnn" / "data_streams.json").read_text())
    assert streams["world_size"] == 2
    ranks = {r["rank"]: r for r in streams["ranks"]}
    assert set(ranks) == {0, 1}
    assert ranks[0]["seed_key"] != ranks[1]["seed_key"]
    epochs = ranks[0]["first_batch_fingerprint"].keys() & ranks[1]["first_batch_fingerprint"].keys()
    assert epochs
    for epoch in epochs:  # the two ranks drew different signals in every epoch
        assert (
            ranks[0]["first_batch_fingerprint"][epoch] != ranks[1]["first_batch_fingerprint"][epoch]
        )
    assert (out / "train_config.yaml").is_file()
    assert not (out / "models" / ".spectrum_cnn.partial").exists()
