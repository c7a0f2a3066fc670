"""``scaloquant evaluate``: bad input is refused with one line and exit code 2.

The evaluation of real checkpoints is tested with the tiny reproduction in
``tests/integration/test_reproduce.py`` (it trains the checkpoints once for both tests).
"""

import pytest

from _shared import argparse_error_line, one_error_line
from scaloquant.cli import main


@pytest.fixture
def files(tmp_path):
    garbage = tmp_path / "model.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    not_h5 = tmp_path / "test.h5"
    not_h5.write_text("not hdf5")
    return garbage, not_h5


def test_missing_checkpoint(tmp_path, files, capsys):
    _, data = files
    code = main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "nope.ckpt"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ev"),
        ]
    )
    assert code == 2
    assert "nope.ckpt does not exist" in one_error_line(capsys, "evaluate")
    assert not (tmp_path / "ev").exists()


def test_missing_data_file(tmp_path, files, capsys):
    ckpt, _ = files
    code = main(
        [
            "evaluate",
            "--model",
            str(ckpt),
            "--data",
            str(tmp_path / "none.h5"),
            "--out",
            str(tmp_path / "ev"),
        ]
    )
    assert code == 2
    assert "none.h5" in one_error_line(capsys, "evaluate")
    assert not (tmp_path / "ev").exists()


def test_data_that_is_not_a_simulation_file(tmp_path, files, capsys):
    ckpt, data = files
    code = main(
        ["evaluate", "--model", str(ckpt), "--data", str(data), "--out", str(tmp_path / "ev")]
    )
    assert code == 2
    assert "test.h5" in one_error_line(capsys, "evaluate")
    assert not (tmp_path / "ev").exists()


def test_existing_output_without_overwrite(tmp_path, files, capsys):
    ckpt, data = files
    out = tmp_path / "ev"
    out.mkdir()
    (out / "metrics.json").write_text("old")
    code = main(["evaluate", "--model", str(ckpt), "--data", str(data), "--out", str(out)])
    assert code == 2
    assert "--overwrite" in one_error_line(capsys, "evaluate")
    assert (out / "metrics.json").read_text() == "old"


def test_model_flag_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--data", "x.h5", "--out", str(tmp_path / "ev")])
    assert exc.value.code == 2
    argparse_error_line(capsys, "evaluate", "the following arguments are required: --model")


def test_corrupt_checkpoint(tmp_path, files, capsys):
    from scaloquant.io import default_basis
    from scaloquant.io.hdf5 import write_simulation
    from scaloquant.simulate import SimulationConfig, simulate_dataset

    ckpt, _ = files
    basis, config = default_basis(), SimulationConfig()
    data = write_simulation(
        tmp_path / "sim.h5",
        simulate_dataset(basis, config, 4, 0),
        n_signals=4,
        basis=basis,
        basis_name="default",
        config=config.to_dict(),
        seed=0,
    )
    code = main(
        ["evaluate", "--model", str(ckpt), "--data", str(data), "--out", str(tmp_path / "ev")]
    )
    assert code == 2
    assert "model.ckpt" in one_error_line(capsys, "evaluate")
    assert not (tmp_path / "ev").exists()
