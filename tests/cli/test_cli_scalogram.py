"""``scaloquant scalogram``, called in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from scaloquant.cli import main
from scaloquant.io import write_nifti_mrs
from scaloquant.io.hdf5 import read_simulation
from scaloquant.scalogram import ScalogramConfig, centre_frequencies_hz, scalogram
from scaloquant.types import FID

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "sim.h5"
    assert main(["simulate", "--n", "3", "--seed", "7", "--out", str(path)]) == 0
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["scalogram", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("scaloquant scalogram: error: ")
    for word in words:
        assert word in err


def test_npy_is_the_paper_scalogram_of_the_chosen_signal(sim_file, tmp_path, capsys):
    out = tmp_path / "s.npy"
    code, stdout, err = run(capsys, str(sim_file), "--index", "1", "--out", str(out))
    assert code == 0 and err == ""
    assert "(2, 340, 1536)" in stdout
    data = np.load(out)
    assert data.dtype == np.float32 and data.shape == (2, 340, 1536)
    fid = read_simulation(sim_file, index=1).fid
    expected = scalogram(torch.tensor(fid.samples[0]), ScalogramConfig.preset("paper"))
    np.testing.assert_array_equal(data, expected.numpy())
    info = json.loads((tmp_path / "s.json").read_text())
    assert ScalogramConfig.from_dict(info["scalogram_config"]) == ScalogramConfig.preset("paper")
    assert info["index"] == 1 and info["shape"] == [2, 340, 1536]
    assert info["dwell_time_s"] == fid.dwell_time_s
    assert info["scaloquant_version"]
    freqs = centre_frequencies_hz(ScalogramConfig.preset("paper"), fid.dwell_time_s)
    np.testing.assert_allclose(info["centre_frequency_hz"], freqs, atol=1e-6)


def test_cpu_preset_with_channel_mode_and_log(sim_file, tmp_path, capsys):
    out = tmp_path / "c.npy"
    code, _, err = run(
        capsys,
        str(sim_file),
        "--preset",
        "cpu",
        "--channels",
        "pos_neg",
        "--log",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert np.load(out).shape == (2, 128, 384)
    config = ScalogramConfig.from_dict(
        json.loads(out.with_suffix(".json").read_text())["scalogram_config"]
    )
    assert (config.channels, config.log, config.output_shape) == ("pos_neg", True, (2, 128, 384))


@pytest.mark.parametrize("channels", ["abs_re_im", "complex"])
def test_png_is_written_with_its_settings(sim_file, tmp_path, capsys, channels):
    out = tmp_path / "s.png"
    code, _, err = run(
        capsys, str(sim_file), "--preset", "cpu", "--channels", channels, "--out", str(out)
    )
    assert code == 0, err
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert not out.with_suffix(".json").exists()
    with Image.open(out) as image:
        info = json.loads(image.text["Description"])
    assert info["scalogram_config"]["channels"] == channels


def test_generic_fid_file_with_index(tmp_path, capsys):
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((2, 1600)) + 1j * rng.standard_normal((2, 1600))
    fid = FID(samples, dwell_time_s=2.5e-4, spectrometer_freq_mhz=123.2)
    source = write_nifti_mrs(tmp_path / "two.nii.gz", fid, dim_tags=["DIM_DYN"])
    out = tmp_path / "g.npy"
    code, _, err = run(capsys, str(source), "--index", "-1", "--preset", "cpu", "--out", str(out))
    assert code == 0, err
    expected = scalogram(torch.tensor(samples[1]), ScalogramConfig.preset("cpu"))
    np.testing.assert_allclose(np.load(out), expected.numpy(), rtol=1e-6, atol=1e-6)
    code, _, err = run(capsys, str(source), "--index", "2", "--out", str(tmp_path / "h.npy"))
    assert_one_line_error(code, err, "--index 2 is out of range", "holds 2 FID(s)")


def test_existing_output_is_refused_and_untouched(sim_file, tmp_path, capsys):
    out = tmp_path / "s.npy"
    out.write_bytes(b"keep me")
    code, _, err = run(capsys, str(sim_file), "--out", str(out))
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert not out.with_suffix(".json").exists()
    code, _, err = run(capsys, str(sim_file), "--preset", "cpu", "--out", str(out), "--overwrite")
    assert code == 0, err
    assert np.load(out).shape == (2, 128, 384)


def test_existing_sidecar_is_refused_before_anything_is_written(sim_file, tmp_path, capsys):
    (tmp_path / "s.json").write_text("{}")
    code, _, err = run(capsys, str(sim_file), "--out", str(tmp_path / "s.npy"))
    assert_one_line_error(code, err, "s.json already exists")
    assert not (tmp_path / "s.npy").exists()
    assert (tmp_path / "s.json").read_text() == "{}"


def test_bad_index_is_a_clear_error(sim_file, tmp_path, capsys):
    out = tmp_path / "s.npy"
    code, _, err = run(capsys, str(sim_file), "--index", "3", "--out", str(out))
    assert_one_line_error(code, err, "out of range", "3 signals", "--index")
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--out", "x.tif"], ["--out must end in .npy or .png"]),
        (["--out", "x.npy", "--dwell-time-s", "0.001"], ["--dwell-time-s applies to FID files"]),
        (
            ["--out", "x.npy", "--n-points", "4000"],
            ["has 2048 points", "--n-points 4000 takes the first 4000", "pass --n-points 2048"],
        ),
        (["--out", "missing_dir/x.npy"], ["does not exist"]),
    ],
)
def test_bad_arguments_are_one_line_errors(sim_file, tmp_path, capsys, monkeypatch, extra, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, str(sim_file), *extra)
    assert_one_line_error(code, err, *words)
    assert list(tmp_path.iterdir()) == []


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    code, _, err = run(capsys, str(tmp_path / "nope.h5"), "--out", str(tmp_path / "s.npy"))
    assert_one_line_error(code, err, "nope.h5 does not exist")


def test_the_input_is_a_path_alone_as_in_every_other_command(sim_file, tmp_path, capsys):
    """``scalogram`` took its input as ``--in FILE`` where every other command takes a path
    alone (session 31, `words31`): the path alone now, ``--in`` kept as the old spelling and
    writing the same file; both at once, or neither, is one line."""
    alone, flag = tmp_path / "alone.npy", tmp_path / "flag.npy"
    assert run(capsys, str(sim_file), "--preset", "cpu", "--out", str(alone))[0] == 0
    assert run(capsys, "--in", str(sim_file), "--preset", "cpu", "--out", str(flag))[0] == 0
    np.testing.assert_array_equal(np.load(alone), np.load(flag))
    out = tmp_path / "both.npy"
    code, _, err = run(capsys, str(sim_file), "--in", str(sim_file), "--out", str(out))
    assert_one_line_error(code, err, "give the input once", f"--in {sim_file}", "not both")
    code, _, err = run(capsys, "--out", str(out))
    assert_one_line_error(code, err, "give the input: scaloquant scalogram INPUT --out FILE")
    assert not out.exists()
