"""``scaloquant train`` in-process: the output layout, --data files, and bad input -> one line, exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from _shared import one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis
from scaloquant.io.hdf5 import write_simulation
from scaloquant.models import load_model
from scaloquant.simulate import SimulationConfig, simulate_dataset
from scaloquant.train import TrainConfig


def _write_sim(path, basis, n, seed):
    config = SimulationConfig()
    chunks = simulate_dataset(basis, config, n, seed=seed)
    write_simulation(
        path,
        chunks,
        n_signals=n,
        basis=basis,
        basis_name="default",
        config=config.to_dict(),
        seed=seed,
    )
    return path


def test_train_writes_the_reproduce_layout_from_a_data_file(tmp_path, capsys):
    basis = default_basis()
    data = _write_sim(tmp_path / "sim.h5", basis, 200, seed=4)
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "max_steps: 8\nmax_epochs: null\nval_check_interval: 4\nn_val: 40\n"
        "n_train: 160\nwidths: [4, 4, 8, 8, 8, 8]\n"
    )
    out = tmp_path / "run"
    args = [
        "train",
        "--model",
        "spectrum_cnn",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--config",
        str(overrides),
        "--data",
        str(data),
        "--seed",
        "3",
        "--lr",
        "0.002",
    ]
    assert main(args) == 0
    assert "spectrum_cnn: best val loss" in capsys.readouterr().out
    ckpt = out / "models" / "spectrum_cnn.ckpt"
    assert ckpt.is_file() and (out / "logs" / "spectrum_cnn" / "metrics.csv").is_file()
    resolved = yaml.safe_load((out / "train_config.yaml").read_text())
    config = TrainConfig.from_dict(resolved["train"])
    assert config.seed == 3 and config.learning_rate == 0.002 and config.max_steps == 8
    assert config.fresh_data is False  # --data implies a fixed set
    assert resolved["data"]["train"] == str(data)
    meta = load_model(ckpt).metadata
    assert meta.data["n_train"] == 160 and meta.data["n_val"] == 40  # 80/20 of 200

    # a second run refuses to touch the outputs
    before = ckpt.read_bytes()
    assert main(args) == 2
    assert "--overwrite" in one_error_line(capsys, "train")
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "missing.h5"], "does not exist"),
        (["--config", "missing.yaml"], "does not exist"),
        (["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
        (["--data", "sim.h5", "--fresh-data"], "drop it or drop --data"),
        (["--resume"], "nothing to resume"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    _write_sim(tmp_path / "sim.h5", default_basis(), 10, seed=1)
    code = main(["train", "--preset", "tiny", "--out", str(tmp_path / "out"), *extra])
    assert code == 2
    assert message in one_error_line(capsys, "train")
    assert not (tmp_path / "out" / "models" / "scalogram_cnn.ckpt").exists()


def test_wrong_metabolite_columns_and_bad_config_file(tmp_path, capsys):
    basis = default_basis()
    fewer = basis.subset(basis.names[:20])
    data = _write_sim(tmp_path / "sim.h5", fewer, 10, seed=1)
    assert (
        main(["train", "--preset", "tiny", "--out", str(tmp_path / "o"), "--data", str(data)]) == 2
    )
    assert "amplitude columns" in one_error_line(capsys, "train")
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: [1, 2\n")
    assert (
        main(["train", "--preset", "tiny", "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    )
    assert "as YAML" in one_error_line(capsys, "train")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("learning_rte: 0.1\n")
    assert (
        main(["train", "--preset", "tiny", "--out", str(tmp_path / "o"), "--config", str(unknown)])
        == 2
    )
    assert "unknown training setting(s) learning_rte" in one_error_line(capsys, "train")
    assert np.all([not p.name.endswith(".ckpt") for p in tmp_path.rglob("*")])
