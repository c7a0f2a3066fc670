"""A value the config classes refuse is refused in the words the user typed: the flag where it
came from a flag (``scaloquant.cli._common.declare_flag_keys``), the key where it came from a
``--config`` file. Before session 30 (flagwords30) most of these lines named the config's key
('echo_time_ms must be ...' for ``--te-ms -1``) or its words ('the number of bootstrap
resamples'); docs/history/fit-log.md, "Flag values refused in the flag's words"."""

from __future__ import annotations

import numpy as np
import pytest
from _fids import fid_on_grid

from scaloquant.cli import main
from scaloquant.io import default_basis, write_nifti_mrs


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_checkpoint):
    """A spectrum (NIfTI-MRS), a simulation file and a checkpoint, refused values aside."""
    where = tmp_path_factory.mktemp("flag_words")
    basis = default_basis()
    fid = fid_on_grid(basis, np.sum(basis.fids, axis=0))
    spectrum = write_nifti_mrs(where / "svs.nii.gz", fid)
    sim = where / "sim.h5"
    assert main(["simulate", "--n", "4", "--seed", "0", "--out", str(sim)]) == 0
    return {"SPECTRUM": str(spectrum), "SIM": str(sim), "CKPT": str(tiny_checkpoint)}


FIT = ["fit", "SPECTRUM", "--max-figures", "0"]
QUANTIFY = ["quantify", "SPECTRUM", "--model", "CKPT"]
SIMULATE = ["simulate", "--n", "4", "--seed", "0"]
TRAIN = ["train", "--model", "spectrum_cnn", "--preset", "tiny"]
PHYSICS = ["train", "--model", "spectrum_physics", "--preset", "tiny"]
EVALUATE = ["evaluate", "--model", "CKPT", "--data", "SIM"]
REPRODUCE = ["reproduce", "--preset", "tiny"]

#: (command, bad flag and value, the line's start after 'error: ').
CASES = [
    (FIT, ["--te-ms", "-1"], "--te-ms must be a positive number of ms"),
    (FIT, ["--tissue-fractions", "-1", "1", "1"], "--tissue-fractions (GM WM CSF) must be >= 0"),
    (FIT, ["--water-t2-ms", "0", "80", "200"], "--water-t2-ms (GM WM CSF) must be > 0"),
    (FIT, ["--metabolite-t2-ms", "0"], "--metabolite-t2-ms must be a positive"),
    (FIT, ["--max-figures", "-1"], "--max-figures must be >= 0"),
    (FIT, ["--ppm-range", "4", "0.5"], "--ppm-range must have low < high"),
    (FIT, ["--ppm-range", "10", "12"], "--ppm-range 10 12 holds none of the basis' lines"),
    (FIT, ["--baseline", "poly:-1"], "--baseline poly:DEGREE must be None or an integer >= 0"),
    (FIT, ["--baseline", "spline:0"], "--baseline spline:SPACING_PPM must be > 0"),
    (QUANTIFY, ["--te-ms", "-1"], "--te-ms must be a positive number of ms"),
    (QUANTIFY, ["--batch-size", "0"], "--batch-size must be >= 1"),
    (QUANTIFY, ["--polish-iterations", "-1"], "--polish-iterations must be >= 0"),
    (QUANTIFY, ["--adapt", "--adapt-steps", "-1"], "--adapt-steps must be an integer >= 0"),
    (QUANTIFY, ["--adapt", "--adapt-lr", "0"], "--adapt-lr must be > 0"),
    (QUANTIFY, ["--adapt", "--adapt-seed", "-1"], "--adapt-seed must be an integer >= 0"),
    (SIMULATE, ["--n", "0"], "--n must be a whole number >= 1"),
    (SIMULATE, ["--chunk-size", "0"], "--chunk-size must be a whole number >= 1"),
    (SIMULATE, ["--damping-range", "-1", "1"], "--damping-range must not go below 0"),
    (SIMULATE, ["--snr", "5", "1"], "--snr: min 5 > max 1"),
    (TRAIN, ["--seed", "-1"], "--seed must be an integer >= 0"),
    (TRAIN, ["--lr", "-1"], "--lr must be positive"),
    (TRAIN, ["--batch-size", "0"], "--batch-size must be a positive integer"),
    (TRAIN, ["--max-epochs", "0"], "--max-epochs must be positive"),
    (TRAIN, ["--num-nodes", "0"], "--num-nodes must be a positive integer"),
    (PHYSICS, ["--max-steps", "0"], "--max-steps must be an integer >= 1"),
    (PHYSICS, ["--lr", "0"], "--lr must be > 0"),
    (PHYSICS, ["--polish-iterations", "-1"], "--polish-iterations must be None or an integer"),
    (EVALUATE, ["--n-boot", "0"], "--n-boot (bootstrap resamples) must be at least 1"),
    (EVALUATE, ["--seed", "-1"], "--seed must be an integer >= 0"),
    (REPRODUCE, ["--n-test", "1"], "--n-test must be at least 2"),
    (REPRODUCE, ["--n-boot", "0"], "--n-boot (bootstrap resamples) must be at least 1"),
    (REPRODUCE, ["--seed", "-1"], "--seed must be an integer >= 0"),
    (REPRODUCE, ["--snr", "-1"], "--snr must be > 0"),
    (["scalogram", "SIM"], ["--n-points", "0"], "--n-points must be a whole number >= 2"),
]


def _argv(command: list[str], files: dict[str, str], out) -> list[str]:
    out_flag = ["--out", str(out)]
    return [files.get(word, word) for word in command] + out_flag


@pytest.mark.parametrize(
    ("command", "bad", "words"), CASES, ids=[f"{c[0]} {' '.join(b)}" for c, b, _ in CASES]
)
def test_a_bad_flag_value_is_refused_naming_the_flag(files, tmp_path, capsys, command, bad, words):
    out = tmp_path / ("out.npy" if command[0] == "scalogram" else "out")
    assert main([*_argv(command, files, out), *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"scaloquant {command[0]}: error: {words}"), err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("command", "text", "words"),
    [
        (FIT, "ppm_range: [4.0, 0.5]\n", "ppm_range must have low < high"),
        (TRAIN, "seed: -1\n", "seed must be an integer >= 0"),
        (SIMULATE, "snr: -1\n", "snr must be positive"),
    ],
)
def test_a_config_files_bad_value_keeps_its_key(files, tmp_path, capsys, command, text, words):
    """The user typed the key in the ``--config`` file: the line names it, not the flag."""
    config = tmp_path / "config.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    assert main([*_argv(command, files, out), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"scaloquant {command[0]}: error: {words}"), err
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--ppm-reference", "--dwell-time-s", "--spectrometer-freq-mhz"])
def test_an_acquisition_flag_takes_a_finite_number(files, tmp_path, capsys, flag):
    """``fit --ppm-reference nan`` ended in an IndexError of the quality figures."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main([*_argv(FIT, files, out), flag, "nan"])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be a finite number, got 'nan'" in capsys.readouterr().err
    assert not out.exists()
