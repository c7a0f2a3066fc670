"""``scaloquant quantify --help`` and ``fit --help`` start without the trainer or the plotting
library (each takes seconds to import), ``train --help`` and a ``train`` with a missing path or a
flag it refuses without torch, and their runs load Lightning never and matplotlib only to draw a figure;
checked in a fresh interpreter's ``sys.modules``."""

from __future__ import annotations

import numpy as np
import pytest

HEAVY = ("lightning", "pytorch_lightning", "lightning_fabric", "matplotlib")


def _last_line(fresh_python, code: str) -> tuple[str, str]:
    """The last line ``code`` printed in a fresh interpreter (which must exit 0), and its
    stderr."""
    proc = fresh_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.rstrip().splitlines()[-1], proc.stderr


def _refused_without(fresh_python, args: list[str], module: str) -> str:
    """The one line ``scaloquant ARGS`` writes to stderr in a fresh interpreter, where it must
    exit 2 (the handler's return, argparse's SystemExit) without having imported ``module``."""
    code = (
        "import sys\n"
        "from scaloquant.cli import main\n"
        "try:\n"
        f"    code = main({args!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        f"print(code, {module!r} in sys.modules)\n"
    )
    last, stderr = _last_line(fresh_python, code)
    assert last == "2 False"
    line = stderr.strip()
    assert line.count("\n") == 0, line
    return line


@pytest.mark.parametrize(
    ("command", "heavy"),
    [
        # quantify's options need nothing numerical: not even torch or scipy
        ("quantify", (*HEAVY, "torch", "scipy")),
        ("fit", HEAVY),  # its --preset choices come from scaloquant.fit (numpy, scipy, torch)
        # its choices come from scaloquant.presets (before session 32 from scaloquant.models:
        # torch; before session 31 the trainer loaded too, 2 to 6 s)
        ("train", (*HEAVY, "torch", "numpy", "scipy")),
        # its handler imports what a run needs (before session 31 its --help loaded torch)
        ("evaluate", (*HEAVY, "torch", "scipy")),
        # their parsers' constants come from torch-free modules (before session 32: torch),
        # scalogram's from scaloquant.presets (before session 33: numpy and h5py)
        ("simulate", (*HEAVY, "torch", "numpy", "scipy")),
        ("scalogram", (*HEAVY, "torch", "numpy", "scipy", "h5py")),
    ],
)
def test_help_imports_neither_lightning_nor_matplotlib(command, heavy, fresh_python):
    code = (
        "import sys\n"
        "from scaloquant.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
    )
    assert _last_line(fresh_python, code)[0] == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["quantify", "--help"], ["convert", "--help"]])
def test_help_that_lists_the_formats_imports_no_numpy(argv, fresh_python):
    """The list of formats in these help texts is written from :mod:`scaloquant.formats` (standard
    library only), not from the readers (numpy, nibabel)."""
    code = (
        "import sys\n"
        "from scaloquant.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numpy'))\n"
    )
    assert _last_line(fresh_python, code)[0] == "[]"


@pytest.mark.parametrize(
    ("command", "figures", "expected"),
    [
        ("quantify", "0", []),
        ("fit", "0", []),
        ("fit", "1", ["matplotlib"]),  # drawing a fit figure is what loads it
    ],
)
def test_runs_import_no_lightning_and_matplotlib_only_to_draw(
    command, figures, expected, tiny_checkpoint, tmp_path, fresh_python
):
    from scaloquant.io import default_basis, write_nifti_mrs
    from scaloquant.simulate import SimulationConfig, simulate_batch
    from scaloquant.types import FID

    basis = default_basis()
    samples = simulate_batch(basis, SimulationConfig(), 1, np.random.default_rng(3)).fids[0]
    grid = {
        k: getattr(basis, k) for k in ("dwell_time_s", "spectrometer_freq_mhz", "ppm_reference")
    }
    svs = write_nifti_mrs(tmp_path / "svs.nii.gz", FID(samples=samples, **grid))
    args = [command, str(svs), "--out", str(tmp_path / "out"), "--max-figures", figures]
    if command == "quantify":
        args += ["--model", str(tiny_checkpoint)]
    code = (
        "import sys\n"
        "from scaloquant.cli import main\n"
        f"assert main({args!r}) == 0\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    assert _last_line(fresh_python, code)[0] == repr(expected)


def test_the_first_imports_run_without_the_collector_and_are_frozen(fresh_python):
    """In a new process (torch not yet imported) :func:`first_imports` imports with the cyclic
    garbage collector off and freezes what the imports made (later full collections skip it),
    the collector on again afterwards; where torch is imported already (the CLI in-process, as
    here) it changes nothing: no collector switched off, nothing of the caller's frozen."""
    code = (
        "import gc, sys\n"
        "from scaloquant.cli._common import first_imports\n"
        "assert 'torch' not in sys.modules and gc.get_freeze_count() == 0\n"
        "with first_imports():\n"
        "    off = not gc.isenabled()\n"
        "    import torch\n"
        "print(off, gc.isenabled(), gc.get_freeze_count() > 100000)\n"
    )
    assert _last_line(fresh_python, code)[0] == "True True True"

    import gc

    import torch  # noqa: F401

    from scaloquant.cli._common import first_imports

    frozen = gc.get_freeze_count()
    with first_imports():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen and gc.isenabled()


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("fit", "input"),
        ("fit", "--water"),
        ("fit", "--config"),
        ("fit", "--basis"),
        ("quantify", "input"),
        ("quantify", "--model"),
    ],
)
def test_a_missing_path_is_refused_before_torch_is_imported(
    command, missing, tmp_path, fresh_python
):
    """A mistyped path is refused in a fraction of a second (one line, exit 2, no output
    folder), not after the 3-5 s of importing numpy and torch that every run starts with."""
    existing = tmp_path / "exists.nii.gz"
    existing.write_bytes(b"not read")
    gone = tmp_path / "gone"
    args = [command, str(gone if missing == "input" else existing)]
    args += ["--out", str(tmp_path / "out")]
    if missing != "input":
        args += [missing, str(gone)]
    if command == "quantify" and missing != "--model":
        args += ["--model", str(existing)]
    line = _refused_without(fresh_python, args, "torch")
    assert f"{gone} does not exist; " in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("missing", "model"),
    [
        ("--data", "spectrum_cnn"),
        ("--val-data", "spectrum_cnn"),
        ("--config", "spectrum_cnn"),
        ("--basis", "spectrum_physics"),
        ("--grid-from", "spectrum_physics"),
    ],
)
def test_train_refuses_a_missing_path_before_the_trainer_is_imported(
    missing, model, tmp_path, fresh_python
):
    """``train`` checks its paths before it imports Lightning (which took a missing ``--basis``
    to 21 s at load 9 in session 31) and torch (session 32): one line, exit 2, no output
    folder."""
    gone = tmp_path / "gone"
    args = ["train", "--model", model, missing, str(gone), "--out", str(tmp_path / "out")]
    line = _refused_without(fresh_python, args, "torch")
    assert f"{gone} does not exist; " in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["evaluate", "--model", "GONE", "--data", "H5"], "checkpoint GONE"),
        (["evaluate", "--model", "CKPT", "--data", "GONE"], "GONE"),
        (["evaluate", "--model", "CKPT", "--data", "H5", "--basis", "GONE"], "GONE"),
        (["export", "--model", "GONE", "--onnx", "OUT.onnx"], "checkpoint GONE"),
    ],
)
def test_evaluate_and_export_refuse_a_missing_path_before_torch_is_imported(
    argv, expected, tmp_path, fresh_python
):
    """``evaluate`` and ``export`` check their input paths before they import torch (seconds;
    before session 31 they refused only after it), with the readers' words: one line, exit 2,
    nothing written. (evaluate's parser loads numpy for --n-boot's default: a tenth of that.)"""
    (tmp_path / "x.ckpt").write_bytes(b"not read")
    (tmp_path / "x.h5").write_bytes(b"not read")
    names = {
        "GONE": str(tmp_path / "gone"),
        "CKPT": str(tmp_path / "x.ckpt"),
        "H5": str(tmp_path / "x.h5"),
        "OUT.onnx": str(tmp_path / "out.onnx"),
    }
    args = [names.get(word, word) for word in argv]
    if argv[0] == "evaluate":
        args += ["--out", str(tmp_path / "out")]
    line = _refused_without(fresh_python, args, "torch")
    assert f"error: {expected.replace('GONE', names['GONE'])} does not exist; " in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt", "x.h5"]


#: (argv, the line after 'error: ') of simulate and scalogram, GONE a path that does not exist.
MISSING_SIMULATE_SCALOGRAM = [
    (["simulate", "--basis", "GONE"], "GONE does not exist; check the path"),
    (["simulate", "--config", "GONE"], "config file GONE does not exist; check the path"),
    (["simulate", "--grid-from", "GONE.nii.gz"], "GONE.nii.gz does not exist; check the path"),
    (["scalogram", "GONE.nii.gz"], "GONE.nii.gz does not exist; check the path"),
    (["scalogram", "--in", "GONE.h5"], "GONE.h5 does not exist; give a simulation file"),
]


@pytest.mark.parametrize(
    ("argv", "expected"),
    MISSING_SIMULATE_SCALOGRAM,
    ids=[" ".join(argv) for argv, _ in MISSING_SIMULATE_SCALOGRAM],
)
def test_simulate_and_scalogram_refuse_a_missing_path_before_torch_is_imported(
    argv, expected, tmp_path, fresh_python
):
    """``simulate`` checks its paths before it imports the simulator, ``scalogram`` reads its
    input before it imports the transform (torch, seconds; before session 32 both refused only
    after it): one line in the readers' words, exit 2, nothing written."""
    args = [word.replace("GONE", str(tmp_path / "gone")) for word in argv]
    if argv[0] == "simulate":
        args += ["--n", "4", "--seed", "0", "--out", str(tmp_path / "sim.h5")]
    else:
        args += ["--out", str(tmp_path / "scalogram.npy")]
    line = _refused_without(fresh_python, args, "torch")
    assert f"error: {expected.replace('GONE', str(tmp_path / 'gone'))}" in line, line
    assert list(tmp_path.iterdir()) == []


#: (scalogram's words, the line after 'error: '), refused before numpy and h5py are imported
#: (0.4 s of 0.6 s before session 33): by argparse, by the handler's first checks, a missing
#: INPUT (GONE) in its reader's words. OUT an output in the test's folder.
SCALOGRAM_WITHOUT_NUMPY = [
    (["GONE.h5", "--out", "OUT.npy", "--preset", "fast"], "argument --preset: invalid choice"),
    (["GONE.h5"], "the following arguments are required: --out"),
    (["--out", "OUT.npy"], "give the input: scaloquant scalogram INPUT --out FILE"),
    (["GONE.h5", "--out", "OUT.txt"], "--out must end in .npy or .png, got 'out.txt'"),
    (["GONE.h5", "--out", "OUT.npy"], "GONE.h5 does not exist; give a simulation file"),
    (["GONE.RAW", "--out", "OUT.png"], "GONE.RAW does not exist; check the path"),
]


@pytest.mark.parametrize(
    ("words", "expected"),
    SCALOGRAM_WITHOUT_NUMPY,
    ids=[" ".join(words) for words, _ in SCALOGRAM_WITHOUT_NUMPY],
)
def test_scalogram_refuses_before_numpy_is_imported(words, expected, tmp_path, fresh_python):
    gone, out = str(tmp_path / "gone"), str(tmp_path / "out")
    args = ["scalogram", *(w.replace("GONE", gone).replace("OUT", out) for w in words)]
    line = _refused_without(fresh_python, args, "numpy")
    assert f"error: {expected.replace('GONE', gone)}" in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("out", "existing"), [("x.npy", "x.npy"), ("x.npy", "x.json"), ("x.png", "x.png")]
)
def test_scalogram_refuses_an_existing_output_before_numpy_is_imported(
    out, existing, tmp_path, fresh_python
):
    """An output that exists (the .npy, its .json beside it, the .png) is refused without
    --overwrite before numpy and h5py are imported, as the refusals above: the check is
    ``scaloquant.io.atomic``'s, and until session 35 importing it imported every reader of the
    ``scaloquant.io`` package (numpy, nibabel, h5py), which now imports each on first use."""
    (tmp_path / "in.h5").write_bytes(b"not read")
    (tmp_path / existing).write_bytes(b"kept")
    args = ["scalogram", str(tmp_path / "in.h5"), "--out", str(tmp_path / out)]
    line = _refused_without(fresh_python, args, "numpy")
    assert f"error: {tmp_path / existing} already exists; pass --overwrite" in line, line
    assert (tmp_path / existing).read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.h5", existing])


def test_the_io_package_imports_its_readers_on_first_use(fresh_python):
    """``scaloquant.io``'s light modules (``atomic``, ``config``) import no numpy, and every
    name of the package (``__all__``) is its module's, imported when first asked for."""
    code = (
        "import importlib, sys\n"
        "import scaloquant.io.atomic, scaloquant.io.config\n"
        "light = 'numpy' not in sys.modules\n"
        "import scaloquant.io as io\n"
        "same = all(getattr(io, n) is getattr(importlib.import_module(\n"
        "    getattr(io, n).__module__), n) for n in io.__all__)\n"
        "print(light, same, sorted(io.__all__) == sorted(set(dir(io)) & set(io.__all__)))\n"
    )
    assert _last_line(fresh_python, code)[0] == "True True True"


#: (train's flags, the line after 'error: ') that train refuses before it imports torch; OUT the
#: output folder, FILE a file, CONFIG a --config file that names the model scalogram_cnn.
REFUSED_TRAIN_FLAGS = [
    (
        ["--simulation", "paper"],
        "argument --simulation: invalid choice: 'paper' (choose from 'invivo', 'default')",
    ),
    (["--model", "spectrum_cnn", "--basis", "FILE"], "--basis is for the physics-head models"),
    (
        ["--model", "spectrum_physics", "--data", "FILE"],
        "--data does not apply to spectrum_physics",
    ),
    (
        ["--model", "spectrum_cnn", "--config", "CONFIG"],
        "CONFIG sets model 'scalogram_cnn' but --model is 'spectrum_cnn'; make them agree",
    ),
    (["--model", "spectrum_cnn", "--out", "FILE"], "FILE is a file; give a folder for the outputs"),
]


@pytest.mark.parametrize(
    ("flags", "expected"),
    REFUSED_TRAIN_FLAGS,
    ids=[" ".join(flags) for flags, _ in REFUSED_TRAIN_FLAGS],
)
def test_train_refuses_its_flags_before_torch_is_imported(flags, expected, tmp_path, fresh_python):
    """``train``'s refusals of a flag value, a flag of the other kind of model, ``--config``'s
    model and an output that is a file come before torch is imported (seconds; before session
    32 after it): one line in the same words, exit 2, nothing written."""
    names = {
        "FILE": tmp_path / "file.txt",
        "CONFIG": tmp_path / "config.yaml",
        "OUT": tmp_path / "out",
    }
    names["FILE"].write_text("not read\n", encoding="utf-8")
    names["CONFIG"].write_text("model: scalogram_cnn\n", encoding="utf-8")
    argv = ["train", *flags] + ([] if "--out" in flags else ["--out", "OUT"])
    args = [str(names.get(word, word)) for word in argv]
    line = _refused_without(fresh_python, args, "torch")
    for name, path in names.items():
        expected = expected.replace(name, str(path))
    assert f"error: {expected}" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "file.txt"]
