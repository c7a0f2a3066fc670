"""Issue 11, "no silent wrong answers", through the CLI: every refusal is exit code 2 and exactly
one line on stderr (no traceback), leaves no partial output and no existing file changed; what
is accepted is reported in the outputs.

Cases: header values against the acquisition flags (1), truncated numeric files (3), ``--out``
checked before the work (5), one line for every error including ``OSError`` and a full disk,
with no half-written file (6), unique input labels (7), ``--overwrite`` replacing the whole set
of outputs (8), and the smaller messages (10).
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import os
import re
import shutil
from pathlib import Path

import lightning  # noqa: F401 - imported here, its log handler keeps pytest's stderr, not capsys'
import numpy as np
import pytest
import torch
from _fids import fid_on_grid

from _shared import CHALLENGE, ISMRM2016_BASIS, argparse_error_line, one_error_line
from scaloquant.cli import main
from scaloquant.io import default_basis, write_lcmodel_raw, write_nifti_mrs
from scaloquant.simulate import SimulationConfig, simulate_batch
from scaloquant.types import FID

JMRUI_NAA = ISMRM2016_BASIS / "jmrui" / "NAA.txt"
BASIS_FILE = ISMRM2016_BASIS / "lcmodel" / "press3T_30ms.BASIS"
TEXT_DATASET = CHALLENGE / "datasets_text" / "dataset1.txt"
#: A place not even root can write (tests run as root here, which ignores chmod 0o555): sysfs
#: refuses new folders (EPERM as root, EROFS when mounted read-only, EACCES for other users).
READ_ONLY = Path("/sys/scaloquant-out")


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def signals(basis):
    """4 noiseless simulated FIDs on the embedded basis' grid, (4, 2048)."""
    return simulate_batch(basis, SimulationConfig(), 4, np.random.default_rng(11)).fids


_fid = fid_on_grid


def _sys_is_read_only() -> bool:
    try:
        READ_ONLY.mkdir()
    except OSError:
        return True
    READ_ONLY.rmdir()
    return False


needs_read_only = pytest.mark.skipif(
    not _sys_is_read_only(), reason=f"{READ_ONLY.parent} can be written here"
)


def _quantify(ckpt, out, *inputs, extra=()):
    return main(["quantify", *map(str, inputs), "--model", str(ckpt), "--out", str(out), *extra])


def _bare_raw(path: Path, fid: FID) -> Path:
    """An LCModel .RAW that records no dwell time nor frequency (only $NMID), as most do."""
    write_lcmodel_raw(path, fid, name=path.stem)
    text = path.read_text()
    path.write_text(text[text.index(" $NMID") :])
    return path


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _no_staging_left(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if ".partial-" in p.name or "probe" in p.name]


# 1. Recorded header values against the acquisition flags -------------------------------------


GRID_FLAGS = ["--dwell-time-s", "0.00025", "--spectrometer-freq-mhz", "123.261703"]


def test_flag_contradicting_a_nifti_header_is_refused(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    raw = _bare_raw(tmp_path / "a.RAW", _fid(basis, signals[0]))
    f7t = write_nifti_mrs(
        tmp_path / "f7t.nii.gz", _fid(basis, signals[1], spectrometer_freq_mhz=297.2)
    )
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, raw, f7t, extra=GRID_FLAGS) == 2
    line = one_error_line(capsys, "quantify")
    assert "f7t.nii.gz records a spectrometer frequency of 297.2 MHz" in line
    assert "--spectrometer-freq-mhz gives 123.261703 MHz" in line
    assert "--override-header" in line
    assert not out.exists()


def test_a_refused_match_names_the_flags_that_accept_or_correct_it(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    # another vendor's 3 T frequency: signal.match states the facts and names the options; the
    # CLI words those as its flags (scaloquant.cli.OPTION_FLAGS)
    other = write_nifti_mrs(
        tmp_path / "vendor.nii.gz", _fid(basis, signals[0], spectrometer_freq_mhz=127.8)
    )
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, other) == 2
    line = one_error_line(capsys, "quantify")
    assert "vendor.nii.gz: acquired at 127.8 MHz" in line
    assert "pass --force to convert keeping every chemical shift" in line
    assert "or --spectrometer-freq-mhz with --override-header if the header is wrong" in line
    assert "force=True" not in line
    assert not out.exists()


def test_flag_equal_to_the_header_and_for_a_bare_raw_is_accepted(
    tiny_checkpoint, basis, signals, tmp_path
):
    raw = _bare_raw(tmp_path / "a.RAW", _fid(basis, signals[0]))
    f3t = write_nifti_mrs(tmp_path / "f3t.nii.gz", _fid(basis, signals[1]))
    out = tmp_path / "out"
    extra = [*GRID_FLAGS, "--max-figures", "0"]
    assert _quantify(tiny_checkpoint, out, raw, f3t, extra=extra) == 0
    doc = json.loads((out / "results.json").read_text())
    assert [i["header_overrides"] for i in doc["inputs"]] == [{}, {}]
    assert not any("override" in w for i in doc["inputs"] for w in i["warnings"])


def test_override_header_replaces_a_wrong_header_and_says_so(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    # a 3 T acquisition whose header wrongly says 7 T
    wrong = write_nifti_mrs(
        tmp_path / "wrong.nii.gz", _fid(basis, signals[0], spectrometer_freq_mhz=297.2)
    )
    out = tmp_path / "out"
    extra = [*GRID_FLAGS, "--override-header", "--max-figures", "0"]
    assert _quantify(tiny_checkpoint, out, wrong, extra=extra) == 0
    assert "--override-header" in capsys.readouterr().out
    want = {"spectrometer_freq_mhz": {"recorded": 297.2, "used": 123.261703}}
    doc = json.loads((out / "results.json").read_text())
    assert doc["inputs"][0]["header_overrides"] == want
    assert doc["inputs"][0]["acquisition"].count("123.26") == 1
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"][0]["header_overrides"] == want
    summary = (out / "summary.md").read_text()
    assert "--override-header: spectrometer frequency 123.261703 MHz used instead of the " in (
        summary
    )


def test_ppm_reference_flag_against_a_recorded_one(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    path = write_nifti_mrs(tmp_path / "ref.nii.gz", _fid(basis, signals[0], ppm_reference=4.7))
    assert (
        _quantify(tiny_checkpoint, tmp_path / "out", path, extra=["--ppm-reference", "4.65"]) == 2
    )
    assert "records a ppm reference of 4.7 ppm but --ppm-reference gives 4.65 ppm" in (
        one_error_line(capsys, "quantify")
    )


@pytest.mark.skipif(not BASIS_FILE.is_file(), reason="needs the shared ISMRM 2016 .BASIS")
def test_basis_files_follow_the_same_rule(tmp_path, capsys):
    info = ["basis", "info", str(BASIS_FILE)]
    assert main([*info, "--spectrometer-freq-mhz", "297.2"]) == 2
    line = one_error_line(capsys, "basis info")
    assert "records a spectrometer frequency of 123.261703 MHz but --spectrometer-freq-mhz " in (
        line
    )
    assert main([*info, "--spectrometer-freq-mhz", "123.261703"]) == 0
    assert main([*info, "--spectrometer-freq-mhz", "297.2", "--override-header"]) == 0
    assert "297.2" in capsys.readouterr().out


def test_fit_refuses_a_contradicting_flag_too(basis, signals, tmp_path, capsys):
    f7t = write_nifti_mrs(
        tmp_path / "f7t.nii.gz", _fid(basis, signals[1], spectrometer_freq_mhz=297.2)
    )
    assert main(["fit", str(f7t), "--out", str(tmp_path / "o"), *GRID_FLAGS]) == 2
    assert "records a spectrometer frequency of 297.2 MHz" in one_error_line(capsys, "fit")


# 3. Truncated numeric files --------------------------------------------------------------------


def _cut(path: Path, n_chars: int) -> Path:
    path.write_text(path.read_text()[:-n_chars])
    return path


def test_raw_cut_mid_number_is_refused(tiny_checkpoint, basis, signals, tmp_path, capsys):
    raw = write_lcmodel_raw(tmp_path / "cut.RAW", _fid(basis, signals[0]), name="cut")
    _cut(raw, 6)  # inside the imaginary part of the last point: still an even count
    assert _quantify(tiny_checkpoint, tmp_path / "out", raw) == 2
    line = one_error_line(capsys, "quantify")
    assert "cut.RAW is truncated: its last line ends in" in line and "(2E16.8)" in line
    assert not (tmp_path / "out").exists()


def test_raw_with_8_numbers_a_line_cut_to_1023_points_is_refused(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    # the ISMRM 2016 layout: FMTDAT (8E13.5); cut after 5 numbers of the last line and part of a
    # sixth, the file held an even 2046 numbers: 1023 points, zero-filled before
    values = np.conj(signals[0][:1024]).view(np.float64)
    lines = ["".join(f"{v:13.5E}" for v in values[i : i + 8]) for i in range(0, values.size, 8)]
    text = " $NMID ID='x', FMTDAT='(8E13.5)' $END\n" + "\n".join(lines) + "\n"
    raw = tmp_path / "x.RAW"
    raw.write_text(text[: text.rstrip().rfind("E") - 3])
    assert _quantify(tiny_checkpoint, tmp_path / "out", raw, extra=GRID_FLAGS) == 2
    assert "x.RAW is truncated" in one_error_line(capsys, "quantify")


def test_raw_shorter_than_its_h2o_is_refused(tiny_checkpoint, basis, signals, tmp_path, capsys):
    raw = write_lcmodel_raw(tmp_path / "d.RAW", _fid(basis, signals[0]), name="d")
    write_lcmodel_raw(tmp_path / "d.H2O", _fid(basis, signals[1]), name="w")
    text = raw.read_text()
    raw.write_text(text[: text.rstrip("\n").rfind("\n") + 1])  # the last line dropped whole
    assert _quantify(tiny_checkpoint, tmp_path / "out", raw) == 2
    line = one_error_line(capsys, "quantify")
    assert "d.RAW holds 2047 points but its water reference d.H2O 2048" in line


def test_raw_count_against_its_nunfil(tiny_checkpoint, basis, signals, tmp_path, capsys):
    raw = write_lcmodel_raw(tmp_path / "n.RAW", _fid(basis, signals[0]), name="n")
    raw.write_text(raw.read_text().replace(" TRAMP = 1.\n", " TRAMP = 1.,\n NUNFIL = 4096\n"))
    assert _quantify(tiny_checkpoint, tmp_path / "out", raw) == 2
    assert "header says 4096 points (NUNFIL) but it holds 2048" in one_error_line(
        capsys, "quantify"
    )


def test_raw_with_an_odd_token_is_refused(tiny_checkpoint, basis, signals, tmp_path, capsys):
    raw = write_lcmodel_raw(tmp_path / "o.RAW", _fid(basis, signals[0]), name="o")
    header, data = raw.read_text().rsplit(" $END\n", 1)
    lines = data.splitlines()
    lines[5] = f"{'1.2.3E+00':>16}" + lines[5][16:]  # one garbled number, in its column
    raw.write_text(header + " $END\n" + "\n".join(lines) + "\n")
    assert _quantify(tiny_checkpoint, tmp_path / "out", raw) == 2
    assert "'1.2.3E+00', which is not a number" in one_error_line(capsys, "quantify")


@pytest.mark.skipif(not JMRUI_NAA.is_file(), reason="needs the shared ISMRM 2016 jMRUI basis")
def test_jmrui_cut_mid_number_or_short_of_points_is_refused(tiny_checkpoint, tmp_path, capsys):
    cut = tmp_path / "cut.txt"
    shutil.copy(JMRUI_NAA, cut)
    _cut(cut, 4)
    assert _quantify(tiny_checkpoint, tmp_path / "o1", cut) == 2
    assert "cut.txt is truncated: its last row ends in" in one_error_line(capsys, "quantify")
    short = tmp_path / "short.txt"
    text = JMRUI_NAA.read_text().rstrip("\n")
    short.write_text(text[: text.rfind("\n")] + "\n")  # one row fewer than PointsInDataset
    assert _quantify(tiny_checkpoint, tmp_path / "o2", short) == 2
    assert (
        "short.txt is truncated: its header says 2048 points but it holds 2047"
        in one_error_line(capsys, "quantify")
    )


@pytest.mark.skipif(not TEXT_DATASET.is_file(), reason="needs the shared ISMRM 2016 challenge")
def test_text_cut_mid_number_is_refused(tiny_checkpoint, tmp_path, capsys):
    cut = _cut(Path(shutil.copy(TEXT_DATASET, tmp_path / "cut.txt")), 5)
    assert _quantify(tiny_checkpoint, tmp_path / "out", cut, extra=GRID_FLAGS) == 2
    assert "cut.txt is truncated: its last row ends in" in one_error_line(capsys, "quantify")


def test_basis_cut_mid_number_is_refused(basis, tmp_path, capsys):
    from scaloquant.io.lcmodel import read_lcmodel_basis  # noqa: F401 - the reader under test

    src = ISMRM2016_BASIS / "lcmodel"
    found = sorted(src.glob("*.BASIS")) if src.is_dir() else []
    if not found:
        pytest.skip("needs the shared ISMRM 2016 .BASIS file")
    cut = _cut(Path(shutil.copy(found[0], tmp_path / "cut.BASIS")), 4)
    assert main(["basis", "info", str(cut)]) == 2
    assert "cut.BASIS" in one_error_line(capsys, "basis info")


# 5. --out checked before any work --------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Make the computing of quantify and fit fail loudly, to show it is never reached."""

    def boom(*args, **kwargs):
        raise AssertionError("computed before --out was checked")

    monkeypatch.setattr("scaloquant.quantify.quantify_inputs", boom)
    monkeypatch.setattr("scaloquant.quantify.fit_inputs", boom)
    monkeypatch.setattr("scaloquant.models.checkpoint.load_model", boom)


@needs_read_only
@pytest.mark.parametrize("command", ["quantify", "fit"])
def test_out_refused_before_any_work(
    command, tiny_checkpoint, basis, signals, tmp_path, capsys, no_work
):
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    model = ["--model", str(tiny_checkpoint)] if command == "quantify" else []
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = {
        full: "is not empty; pass --overwrite",
        a_file / "out": "is a file",
        READ_ONLY: "choose a place you can write to",
    }
    for out, words in cases.items():
        assert main([command, str(path), *model, "--out", str(out)]) == 2
        assert words in one_error_line(capsys, command)
    assert _snapshot(full) == {"mine.txt": b"keep"} and a_file.read_text() == "x"
    _no_staging_left(tmp_path)


# 6. One line for every error, no half-written file --------------------------------------------


def test_non_checkpoint_files_get_one_line(tiny_checkpoint, basis, signals, tmp_path, capsys):
    data = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    text = tmp_path / "notes.ckpt"
    text.write_text("eeny meeny\n")
    pickled = tmp_path / "pickled.ckpt"
    torch.save(argparse.Namespace(a=1), pickled)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(Path(tiny_checkpoint).read_bytes()[:5000])
    for ckpt, words in (
        (text, "notes.ckpt is not a PyTorch checkpoint"),
        (pickled, "holds Python objects that a scaloquant checkpoint does not"),
        (cut, "cut.ckpt is damaged or cut short"),
    ):
        assert _quantify(ckpt, tmp_path / "out", data) == 2
        line = one_error_line(capsys, "quantify")
        assert words in line and "Weights only" not in line and "KeyError" not in line


TRAIN_YAML = (
    "n_train: 96\nn_val: 32\nmax_steps: 6\nmax_epochs: 3\nval_check_interval: 3\n"
    "early_stopping_patience: 10\n"
)


def _train(out: Path, *extra: str, config_dir: Path | None = None) -> int:
    config = (config_dir or out.parent) / "tiny.yaml"
    config.write_text(TRAIN_YAML)
    argv = ["train", "--model", "spectrum_cnn", "--preset", "tiny", "--config", str(config)]
    return main([*argv, "--out", str(out), *extra])


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--accelerator", "gpu"], "--accelerator gpu"),
        (["--devices", "0"], "--devices 0 is not valid"),
        (["--strategy", "nonsense"], "--strategy 'nonsense' is not a strategy"),
    ],
)
def test_train_hardware_settings_get_one_line_before_any_output(tmp_path, capsys, flags, words):
    if flags[0] == "--accelerator" and torch.cuda.is_available():
        pytest.skip("a GPU is available here")
    out = tmp_path / "run"
    assert _train(out, *flags) == 2
    assert words in one_error_line(capsys, "train")
    assert not out.exists()


@needs_read_only
def test_train_refusal_after_the_folders_were_made_leaves_none(tmp_path, capsys):
    # a file that exists (a missing one is refused by require_paths, before any folder is
    # made) but is no simulation: read, and refused, after the output folder is made
    bad = tmp_path / "not_a_simulation.h5"
    bad.write_text("not HDF5\n")
    data = ["--data", str(bad)]
    out = tmp_path / "new" / "run"
    assert _train(out, *data, config_dir=tmp_path) == 2
    assert "not_a_simulation.h5" in one_error_line(capsys, "train")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    (kept / "mine").mkdir(parents=True)
    assert _train(kept, *data, config_dir=tmp_path) == 2
    capsys.readouterr()
    assert sorted(p.name for p in kept.rglob("*")) == ["mine"]


@needs_read_only
def test_read_only_out_is_one_line_for_every_writer(
    tiny_checkpoint, basis, signals, tmp_path, capsys
):
    data = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    runs = {
        "simulate": [
            "simulate",
            "--n",
            "4",
            "--seed",
            "1",
            "--out",
            str(READ_ONLY.parent / "s.h5"),
        ],
        "train": ["train", "--preset", "tiny", "--out", str(READ_ONLY)],
        "quantify": [
            "quantify",
            str(data),
            "--model",
            str(tiny_checkpoint),
            "--out",
            str(READ_ONLY),
        ],
        "fit": ["fit", str(data), "--out", str(READ_ONLY)],
    }
    for command, argv in runs.items():
        assert main(argv) == 2, command
        line = one_error_line(capsys, command)
        assert re.search(r"not permitted|[Rr]ead-only|[Pp]ermission denied", line), line
        assert "choose a" in line, line


def _disk_full(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_quantify_full_disk_leaves_no_output(
    tiny_checkpoint, basis, signals, tmp_path, capsys, monkeypatch
):
    import scaloquant.report.outputs as outputs

    data = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, data, extra=["--max-figures", "1"]) == 0
    before = _snapshot(out)
    write = outputs.write_text_atomic

    def full_at_provenance(path, text, **kw):
        if Path(path).name == "provenance.json":
            with open(path, "w") as f:  # a cut-off file, as a full disk leaves one
                f.write(text[:10])
            raise _disk_full(path)
        return write(path, text, **kw)

    monkeypatch.setattr(outputs, "write_text_atomic", full_at_provenance)
    fresh = tmp_path / "fresh"
    assert _quantify(tiny_checkpoint, fresh, data) == 2
    assert "no space left on the device" in one_error_line(capsys, "quantify")
    assert not fresh.exists()
    assert _quantify(tiny_checkpoint, out, data, extra=["--overwrite"]) == 2
    line = one_error_line(capsys, "quantify")
    assert "no space left on the device" in line and ".partial-" not in line
    assert _snapshot(out) == before
    _no_staging_left(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is available here")
def test_a_cuda_device_without_a_gpu_is_one_line(tiny_checkpoint, basis, signals, tmp_path, capsys):
    """``--device cuda`` where torch sees no GPU: ``fit`` and ``quantify`` refuse it in one line
    that says what to do, exit 2, no output (``fit`` failed deep in torch with a traceback);
    ``device: cuda`` in ``fit``'s ``--config`` file, in the key's words."""
    data = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    runs = {
        "fit": ["fit", str(data), "--device", "cuda", "--out", str(tmp_path / "fit")],
        "quantify": [
            "quantify", str(data), "--model", str(tiny_checkpoint), "--device", "cuda",
            "--out", str(tmp_path / "quantify"),
        ],
    }  # fmt: skip
    for command, argv in runs.items():
        assert main(argv) == 2, command
        line = one_error_line(capsys, command)
        assert "--device 'cuda': no CUDA GPU is available here; give cpu" in line, line
        assert not (tmp_path / command).exists()
    # from a --config file: its key, not the flag the user did not type (session 31)
    config = tmp_path / "fit.yaml"
    config.write_text("device: cuda\n")
    out = tmp_path / "config"
    assert main(["fit", str(data), "--config", str(config), "--out", str(out)]) == 2
    one_error_line(capsys, "fit", "device 'cuda': no CUDA GPU is available here; give cpu")
    assert not out.exists()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                "7.79 GiB of which 1.20 GiB is free.\nIf reserved but unallocated memory ..."
            ),
            "the GPU ran out of memory (CUDA out of memory); no partial output was left",
        ),
        (
            MemoryError("Unable to allocate 4.00 GiB for an array with shape (65536, 8192)"),
            "out of memory (Unable to allocate 4.00 GiB for an array with shape (65536, 8192))",
        ),
    ],
)
def test_running_out_of_memory_is_one_line_and_leaves_no_output(
    tiny_checkpoint, basis, signals, tmp_path, capsys, monkeypatch, error, said
):
    """A GPU's or the machine's memory running out mid-run (torch's ``OutOfMemoryError``, a
    ``RuntimeError``; numpy's ``MemoryError``): one line saying so and what to do, exit 2, no
    output folder, nothing staged left."""
    import scaloquant.quantify.matching as matching

    def out_of_memory(*args, **kwargs):
        raise error

    data = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    monkeypatch.setattr(matching, "quality_figures", out_of_memory)
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, data) == 2
    line = one_error_line(capsys, "quantify")
    assert said in line, line
    assert "--device cpu" in line or "split the input" in line, line
    assert not out.exists()
    _no_staging_left(tmp_path)


def _failing_saves(monkeypatch, fail_from: int) -> None:
    """Lightning's checkpoint writes: the ``fail_from``-th and later write half the file and
    then fail with ENOSPC, as on a disk that fills up."""
    import lightning.fabric.plugins.io.torch_io as torch_io

    calls = {"n": 0}
    save = torch_io._atomic_save

    def save_or_fill(checkpoint, path):
        calls["n"] += 1
        if calls["n"] < fail_from:
            return save(checkpoint, path)
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04" + b"\0" * 1000)
        raise _disk_full(path)

    monkeypatch.setattr(torch_io, "_atomic_save", save_or_fill)


def test_train_full_disk_leaves_no_cut_off_checkpoint(tmp_path, capsys, monkeypatch):
    _failing_saves(monkeypatch, fail_from=1)
    out = tmp_path / "run"
    assert _train(out) == 2
    line = one_error_line(capsys, "train")
    assert "no space left on the device" in line and "--resume" not in line
    assert not [p for p in out.rglob("*") if p.is_file() and ".ckpt" in p.name]


def test_train_full_disk_later_keeps_the_whole_checkpoints(tmp_path, capsys, monkeypatch):
    _failing_saves(monkeypatch, fail_from=2)  # the first validation: best.ckpt, then last fails
    out = tmp_path / "run"
    assert _train(out) == 2
    assert "no space left on the device" in one_error_line(capsys, "train")
    ckpts = [p for p in out.rglob("*") if p.is_file() and ".ckpt" in p.name]
    assert [p.name for p in ckpts] == ["best.ckpt"]  # no cut-off last.ckpt, no temporary file
    torch.load(ckpts[0], map_location="cpu", weights_only=True)  # whole


# 7. Unique input labels ------------------------------------------------------------------------


def test_same_file_names_in_two_folders_are_told_apart(tiny_checkpoint, basis, signals, tmp_path):
    paths = []
    for k, folder in enumerate(("s1", "s2")):
        (tmp_path / folder).mkdir()
        paths.append(write_nifti_mrs(tmp_path / folder / "metab.nii.gz", _fid(basis, signals[k])))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, *paths, extra=["--max-figures", "2"]) == 0
    assert [r["file"] for r in _rows(out)] == ["s1/metab.nii.gz", "s2/metab.nii.gz"]
    doc = json.loads((out / "results.json").read_text())
    assert [i["label"] for i in doc["inputs"]] == ["s1/metab.nii.gz", "s2/metab.nii.gz"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "s1_metab_0-0-0.csv",  # each figure's curves as numbers beside it
        "s1_metab_0-0-0.png",
        "s2_metab_0-0-0.csv",
        "s2_metab_0-0-0.png",
    ]
    for page in ("summary.md", "report.html"):
        text = (out / page).read_text()
        assert "fit of s1/metab.nii.gz" in text and "fit of s2/metab.nii.gz" in text, page


# 8. --overwrite replaces the whole set of outputs ---------------------------------------------


def test_overwrite_replaces_every_earlier_output_and_keeps_user_files(
    tiny_checkpoint, basis, signals, tmp_path
):
    mrsi = write_nifti_mrs(tmp_path / "mrsi.nii.gz", _fid(basis, signals.reshape(2, 2, 1, -1)))
    svs = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    out = tmp_path / "out"
    assert _quantify(tiny_checkpoint, out, mrsi, svs, extra=["--max-figures", "3"]) == 0
    assert len(list((out / "figures").glob("*.png"))) == 3 and (out / "maps" / "mrsi").is_dir()
    (out / "my_notes.txt").write_text("mine")
    (out / "figures" / "my_sketch.png").write_bytes(b"mine")
    assert _quantify(tiny_checkpoint, out, svs, extra=["--overwrite", "--max-figures", "0"]) == 0
    assert sorted(_snapshot(out)) == [
        "figures/my_sketch.png",
        "my_notes.txt",
        "provenance.json",
        "report.html",
        "results.csv",
        "results.json",
        "summary.md",
    ]
    assert [r["file"] for r in _rows(out)] == ["svs.nii.gz"]


# 10. Smaller messages --------------------------------------------------------------------------


def test_empty_txt_says_it_is_empty(tiny_checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert _quantify(tiny_checkpoint, tmp_path / "out", empty) == 2
    line = one_error_line(capsys, "quantify")
    assert "empty.txt is empty" in line and "dwell" not in line


def test_truncated_nifti_is_one_line(tiny_checkpoint, basis, signals, tmp_path, capsys):
    path = write_nifti_mrs(tmp_path / "cut.nii.gz", _fid(basis, signals[0]))
    path.write_bytes(path.read_bytes()[:-200])
    assert _quantify(tiny_checkpoint, tmp_path / "out", path) == 2
    assert "cut.nii.gz" in one_error_line(capsys, "quantify")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be a whole number >= 1, got 0"),
        (["--max-figures", "-1"], "--max-figures must be a whole number >= 0, got -1"),
    ],
)
def test_count_options_name_only_the_bad_one(
    tiny_checkpoint, basis, signals, tmp_path, capsys, flags, message
):
    path = write_nifti_mrs(tmp_path / "svs.nii.gz", _fid(basis, signals[0]))
    assert _quantify(tiny_checkpoint, tmp_path / "out", path, extra=flags) == 2
    assert one_error_line(capsys, "quantify").endswith(f"error: {message}")


def test_fit_mismatch_speaks_of_the_basis_set(basis, signals, tmp_path, capsys):
    path = write_nifti_mrs(
        tmp_path / "d.nii.gz", _fid(basis, signals[0], spectrometer_freq_mhz=297.2)
    )
    # the fit resamples the basis to the data's grid, but not across field strengths
    out = tmp_path / "out"
    assert main(["fit", str(path), "--preset", "simulated", "--out", str(out)]) == 2
    line = one_error_line(capsys, "fit")
    assert "the basis set" in line and "the model" not in line


def test_fit_names_what_replaced_the_scipy_solver(basis, signals, tmp_path, capsys):
    """The retired scipy solver, named as a preset or in a config file: one line each, saying
    what to use instead, and no output."""
    path = write_nifti_mrs(tmp_path / "d.nii.gz", _fid(basis, signals[0]))
    out = tmp_path / "out"
    assert main(["fit", str(path), "--preset", "simulated-scipy", "--out", str(out)]) == 2
    assert "use --preset simulated" in one_error_line(capsys, "fit")
    settings = tmp_path / "fit.yaml"
    settings.write_text("solver: scipy\n")
    assert main(["fit", str(path), "--config", str(settings), "--out", str(out)]) == 2
    assert "one solver" in one_error_line(capsys, "fit")
    assert not out.exists()


def test_train_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("scaloquant.train.train_model", interrupted)
    out = tmp_path / "run"
    assert _train(out) == 130
    assert one_error_line(capsys, "train", kind="interrupted;").endswith(
        "interrupted; no output was written (no checkpoint had been saved yet)"
    )
    last = out / "models" / ".spectrum_cnn.partial" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    assert _train(out, "--resume") == 130
    line = one_error_line(capsys, "train", kind="interrupted;")
    assert f"the last checkpoint {last} is kept" in line and "with --resume" in line


@pytest.mark.parametrize("argv", [["--snr", "-5,10"], ["--snr=-5,10"], ["--sn", "-5,10"]])
def test_reproduce_negative_snr_gets_scaloquants_message(tmp_path, capsys, argv):
    """A value that starts with a dash and a digit is --snr's (argparse took it for a flag
    and answered "expected one argument"), also after an abbreviation of the flag."""
    assert main(["reproduce", "--preset", "tiny", "--out", str(tmp_path / "r"), *argv]) == 2
    line = one_error_line(capsys, "reproduce")
    assert re.search(r"--snr must be > 0 .*got -5$", line)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--overwrite", "-5x"], "unrecognized arguments: -5x"),
        (["--s", "-5,10"], "ambiguous option: --s could match --seed, --snr"),
        (["--", "--snr", "-5,10"], "unrecognized arguments: -- --snr -5,10"),
        (["--seed", "-5x"], "argument --seed: must be a whole number, got '-5x'"),
    ],
)
def test_reproduce_dash_digit_words_elsewhere_keep_argparses_refusal(tmp_path, capsys, argv, words):
    """Such a word after a flag of no value, an ambiguous abbreviation or ``--`` is left as
    argparse reads it: its refusal names the words as they were typed."""
    with pytest.raises(SystemExit):
        main(["reproduce", "--preset", "tiny", "--out", str(tmp_path / "r"), *argv])
    assert words in argparse_error_line(capsys, "reproduce")
    assert not (tmp_path / "r").exists()


# 11. Session 23's sweep of the CLI with users' files (docs/history/benchmarks-log.md) ----------


def _few_points(path: Path, basis, signals) -> Path:
    """A NIfTI-MRS whose spectral axis holds 2 points (spectra along another axis)."""
    return write_nifti_mrs(path, _fid(basis, signals[:2, :2].copy()))


def _coil_water(path: Path, basis, signals) -> Path:
    """A water reference of 4 uncombined coils (DIM_COIL), each with its own phase."""
    coils = np.stack([signals[0] * np.exp(1.5j * k) for k in range(4)]).reshape(1, 1, 1, 4, -1)
    return write_nifti_mrs(path, _fid(basis, coils), dim_tags=["DIM_COIL"])


#: (case, fit's flags after the data file (``{tmp}`` the test's folder), files to make, words)
FIT_REFUSALS = [
    ("device unknown to torch", ["--device", "tpu9"], {}, "--device 'tpu9' is not a torch device"),
    (
        "device in a config file",
        ["--config", "{tmp}/fit.yaml"],
        {"fit.yaml": "device: gpu0\n"},
        "error: device 'gpu0' is not a torch device",  # the key typed there, not the flag
    ),
    (
        "empty groups file",
        ["--groups", "{tmp}/groups.txt"],
        {"groups.txt": "\n  \n"},
        "names no metabolites",
    ),
    (
        "frequency in Hz",
        ["--spectrometer-freq-mhz", "123261703", "--override-header"],
        {},
        "is it in Hz",
    ),
    ("water of uncombined coils", ["--water", "{tmp}/coils.nii.gz"], {}, "coils not combined"),
    (
        "free-form kernel wider than the window",  # 1e6 was text to YAML 1.1 (session 36)
        ["--config", "{tmp}/ff.yaml"],
        {"ff.yaml": "lineshape: freeform\nfreeform_halfwidth_hz: 1e6\n"},
        "too few for the free-form kernel's",
    ),
]


@pytest.mark.parametrize(
    ("flags", "files", "words"), [c[1:] for c in FIT_REFUSALS], ids=[c[0] for c in FIT_REFUSALS]
)
def test_fit_refuses_with_one_line_and_no_output(
    basis, signals, tmp_path, capsys, flags, files, words
):
    """Each was a traceback (device), a silently different model (empty groups: every
    metabolite its own lineshape), a refusal 30 s later that named another cause (Hz), or mM
    inflated 2.6x in an unflagged table (the coils' mean of the water)."""
    data = write_nifti_mrs(tmp_path / "d.nii.gz", _fid(basis, signals[0]))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    _coil_water(tmp_path / "coils.nii.gz", basis, signals)
    out = tmp_path / "out"
    argv = [f.format(tmp=tmp_path) for f in flags]
    assert main(["fit", str(data), *argv, "--out", str(out)]) == 2
    assert words in one_error_line(capsys, "fit")
    assert not out.exists()
    _no_staging_left(tmp_path)


@pytest.mark.parametrize("command", ["fit", "quantify", "convert"])
def test_a_spectral_axis_of_two_points_is_one_line(
    command, tiny_checkpoint, basis, signals, tmp_path, capsys
):
    """fit and quantify failed with a traceback in the quality figures; convert wrote it."""
    path = _few_points(tmp_path / "few.nii.gz", basis, signals)
    out = tmp_path / ("out.RAW" if command == "convert" else "out")
    argv = {
        "fit": ["fit", str(path), "--out", str(out)],
        "quantify": ["quantify", str(path), "--model", str(tiny_checkpoint), "--out", str(out)],
        "convert": ["convert", str(path), str(out)],
    }[command]
    assert main(argv) == 2
    assert "few.nii.gz holds 2 point(s) per FID" in one_error_line(capsys, command)
    assert not out.exists()


def test_train_out_that_is_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert _train(a_file) == 2
    assert one_error_line(capsys, "train").endswith(
        f"{a_file} is a file; give a folder for the outputs"
    )
    assert a_file.read_text() == "x"


def test_data_of_uncombined_coils_are_fitted_per_coil_and_say_so(basis, signals, tmp_path):
    coils = np.stack([signals[0] * (1 + k) * np.exp(1.5j * k) for k in range(2)])
    data = write_nifti_mrs(
        tmp_path / "c.nii.gz", _fid(basis, coils.reshape(1, 1, 1, 2, -1)), dim_tags=["DIM_COIL"]
    )
    out = tmp_path / "out"
    assert main(["fit", str(data), "--preset", "simulated", "--out", str(out)]) == 0
    assert len(_rows(out)) == 2
    assert "2 receive coils not combined (DIM_COIL)" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ("DIM_EDIT", "2 edited subspectra (DIM_EDIT: MEGA, HERMES) quantified one by one"),
        ("DIM_ISIS", "2 ISIS steps (DIM_ISIS) quantified one by one, though none is localised"),
        ("DIM_INDIRECT_0", "2 rows of a 2-D acquisition (DIM_INDIRECT_0: J-resolved, multi-TE"),
    ],
)
def test_subspectra_to_combine_first_are_fitted_one_by_one_and_say_so(
    basis, signals, tmp_path, tag, words
):
    """Before: an edit-ON/OFF pair, two ISIS steps or two rows of a 2-D acquisition were each
    fitted as a spectrum of the basis' sequence, exit 0, nothing said (session 36, audit36;
    uncombined coils said so already)."""
    parts = np.stack([signals[0], signals[0] * 0.5]).reshape(1, 1, 1, 2, -1)
    data = write_nifti_mrs(tmp_path / "e.nii.gz", _fid(basis, parts), dim_tags=[tag])
    out = tmp_path / "out"
    assert main(["fit", str(data), "--preset", "simulated", "--out", str(out)]) == 0
    assert len(_rows(out)) == 2  # still fitted: an edit-OFF spectrum alone is a fair question
    assert words in (out / "summary.md").read_text()


def _two_voxel_fit(basis, signals, tmp_path, second_water_scale: float) -> Path:
    """``fit`` of a 2-voxel MRSI of ``signals[:2]`` with a water reference whose second voxel is
    the first's times ``second_water_scale``; the output folder."""
    t = basis.acquisition.time_axis_s()
    line = 1e3 * np.exp(-t / 0.05)
    water = np.stack([line, second_water_scale * line]).reshape(2, 1, 1, -1)
    data = write_nifti_mrs(tmp_path / "m.nii.gz", _fid(basis, signals[:2].reshape(2, 1, 1, -1)))
    wref = write_nifti_mrs(tmp_path / "w.nii.gz", _fid(basis, water))
    out = tmp_path / "out"
    argv = ["fit", str(data), "--water", str(wref), "--preset", "simulated", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_an_mrsi_water_voxel_without_signal_is_named_beside_its_nan_mm(basis, signals, tmp_path):
    """A 2-voxel MRSI whose water reference holds zeros in its second voxel: that voxel's mM
    were NaN, qc empty, and nothing said why (session 36, audit36)."""
    out = _two_voxel_fit(basis, signals, tmp_path, 0.0)
    rows = _rows(out)
    assert np.isfinite(float(rows[0]["NAA_mM"])) and np.isnan(float(rows[1]["NAA_mM"]))
    summary = (out / "summary.md").read_text()
    assert "w.nii.gz gives no water area in 1 of its 2 spectra (1,0,0; a zero sample" in summary


def test_unaveraged_transients_too_weak_one_by_one_say_to_average_them(basis, signals, tmp_path):
    """8 transients of one spectrum, each buried in noise (session 23's sweep: each flagged
    no_signal, with no word of why): the table's rows stay unquantified and the summary says
    that they are transients to average first, with their average's SNR."""
    rng = np.random.default_rng(4)
    clean = signals[0] / np.abs(signals[0][0])
    noise = rng.normal(size=(8, clean.size)) + 1j * rng.normal(size=(8, clean.size))
    transients = (clean + 0.1 * noise).reshape(1, 1, 1, 8, -1)
    data = write_nifti_mrs(tmp_path / "t.nii.gz", _fid(basis, transients), dim_tags=["DIM_DYN"])
    out = tmp_path / "out"
    assert main(["fit", str(data), "--preset", "simulated", "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 8 and all("no_signal" in r["qc"] for r in rows)
    summary = (out / "summary.md").read_text()
    assert "8 transients not averaged (DIM_DYN): 8 of 8 spectra" in summary
    assert "align and average them first" in summary
    assert int(re.search(r"plain average has SNR (\d+)", summary).group(1)) >= 8  # measurable


def test_an_mrsi_water_voxel_scaled_wrong_is_flagged_water_scale_off(basis, signals, tmp_path):
    """Session 36's audit: the same 2-voxel MRSI with its second water voxel scaled by 1e-6 (a
    wrong scale, another voxel's water) passed the scale-free water checks and gave NAA of
    millions of mM with ``qc`` empty; now flagged ``water_scale_off`` (the first voxel, whose
    _mM columns add up to within the limits, is not)."""
    rows = _rows(_two_voxel_fit(basis, signals, tmp_path, 1e-6))
    naa = [float(r["NAA_mM"]) for r in rows]
    assert naa[1] > 1e6 > naa[0]  # still given, now flagged
    assert "water_scale_off" not in rows[0]["qc"].split(";")
    assert "water_scale_off" in rows[1]["qc"].split(";")
