"""A value the config classes refuse is refused in the words the user typed: the flag where it
came from a flag (``scaloquant.cli._common.declare_flag_keys``), the key where it came from a
``--config`` file. Before session 30 (flagwords30) most of these lines named the config's key
('echo_time_ms must be ...' for ``--te-ms -1``) or its words ('the number of bootstrap
resamples'); docs/history/fit-log.md, "Flag values refused in the flag's words"."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest
from _fids import fid_on_grid

from _shared import argparse_error_line, one_error_line
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
    (FIT, ["--te-ms", "0"], "--te-ms must be a positive number of ms, got 0.0"),
    # an empty text was the option's default (session 31, `oneline31`)
    (
        FIT,
        ["--groups", ""],
        "--groups '' is neither one of metabolites_and_mm, metabolites_and_each_mm, ",
    ),
    (FIT, ["--baseline", ""], "--baseline '': give spline[:SPACING_PPM], poly:DEGREE or none"),
    (FIT, ["--device", ""], "--device '' is not a torch device; give cpu, cuda or cuda:N"),
    (FIT, ["--tissue-fractions", "-1", "1", "1"], "--tissue-fractions (GM WM CSF) must be >= 0"),
    (FIT, ["--water-t2-ms", "0", "80", "200"], "--water-t2-ms (GM WM CSF) must be > 0"),
    (FIT, ["--metabolite-t2-ms", "0"], "--metabolite-t2-ms must be a positive"),
    (FIT, ["--max-figures", "-1"], "--max-figures must be a whole number >= 0"),
    (FIT, ["--ppm-range", "4", "0.5"], "--ppm-range must have low < high"),
    (FIT, ["--ppm-range", "10", "12"], "--ppm-range 10 12 holds none of the basis' lines"),
    (FIT, ["--baseline", "poly:-1"], "--baseline poly:DEGREE must be a whole number >= 0, got -1"),
    (FIT, ["--baseline", "spline:0"], "--baseline spline:SPACING_PPM must be a positive number"),
    (QUANTIFY, ["--te-ms", "-1"], "--te-ms must be a positive number of ms"),
    (QUANTIFY, ["--te-ms", "0"], "--te-ms must be a positive number of ms, got 0.0"),
    (QUANTIFY, ["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
    (QUANTIFY, ["--polish-iterations", "-1"], "--polish-iterations must be a whole number >= 0"),
    (QUANTIFY, ["--adapt", "--adapt-steps", "-1"], "--adapt-steps must be a whole number >= 0"),
    (QUANTIFY, ["--adapt", "--adapt-lr", "0"], "--adapt-lr must be a positive number"),
    (QUANTIFY, ["--adapt", "--adapt-seed", "-1"], "--adapt-seed must be a whole number >= 0"),
    (SIMULATE, ["--n", "0"], "--n must be a whole number >= 1"),
    (SIMULATE, ["--chunk-size", "0"], "--chunk-size must be a whole number >= 1"),
    (SIMULATE, ["--damping-range", "-1", "1"], "--damping-range must not go below 0"),
    (SIMULATE, ["--snr", "5", "1"], "--snr: min 5 > max 1"),
    (TRAIN, ["--seed", "-1"], "--seed must be a whole number >= 0"),
    (TRAIN, ["--lr", "-1"], "--lr must be a positive number"),
    (TRAIN, ["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
    (TRAIN, ["--max-epochs", "0"], "--max-epochs must be a whole number >= 1, got 0"),
    (TRAIN, ["--num-nodes", "0"], "--num-nodes must be a whole number >= 1"),
    (PHYSICS, ["--max-steps", "0"], "--max-steps must be a whole number >= 1"),
    (PHYSICS, ["--lr", "0"], "--lr must be a positive number"),
    (
        PHYSICS,
        ["--polish-iterations", "-1"],
        "--polish-iterations must be a whole number >= 0, got -1",
    ),
    (EVALUATE, ["--n-boot", "0"], "--n-boot (bootstrap resamples) must be a whole number >= 1"),
    (EVALUATE, ["--seed", "-1"], "--seed must be a whole number >= 0"),
    (REPRODUCE, ["--n-test", "1"], "--n-test (the test set's signals) must be a whole number >= 2"),
    (REPRODUCE, ["--n-boot", "0"], "--n-boot (bootstrap resamples) must be a whole number >= 1"),
    (REPRODUCE, ["--seed", "-1"], "--seed must be a whole number >= 0"),
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
    one_error_line(capsys, command[0], words)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("command", "text", "words"),
    [
        (FIT, "ppm_range: [4.0, 0.5]\n", "ppm_range must have low < high"),
        (TRAIN, "seed: -1\n", "seed must be a whole number >= 0"),
        (SIMULATE, "snr: -1\n", "snr must be positive"),
        # fit.batched.usable_device's refusal named --device here too (session 31, `consist31`)
        (FIT, "device: gpu0\n", "device 'gpu0' is not a torch device; give cpu, cuda or cuda:N"),
        # counts in the file's own words: YAML's true and null, not Python's True and None
        # (session 32, `audit32`; the config classes' one check, `ints32`)
        (FIT, "max_iterations: true\n", "max_iterations must be a whole number >= 1, got true"),
        (FIT, "max_resets: 1.5\n", "max_resets must be a whole number >= 0, got 1.5"),
        (FIT, "shift_prior_sd_hz: 0\n", "shift_prior_sd_hz must be a positive number or null"),
        (SIMULATE, "baseline: {n_humps: -1}\n", "baseline.n_humps must be a whole number >= 1"),
        (TRAIN, "batch_size: true\n", "batch_size must be a whole number >= 1, got true"),
        (TRAIN, "n_train: 2.5\n", "n_train must be a whole number >= 1, got 2.5"),
        (TRAIN, "max_epochs: 0\n", "max_epochs must be a whole number >= 1 or null, got 0"),
        (TRAIN, "num_workers: -1\n", "num_workers must be a whole number >= 0, got -1"),
        (PHYSICS, "max_steps: 1.5\n", "max_steps must be a whole number >= 1, got 1.5"),
        (PHYSICS, "seed: false\n", "seed must be a whole number >= 0, got false"),
        (
            PHYSICS,
            "polish_iterations: -1\n",
            "polish_iterations must be a whole number >= 0 or null, got -1",
        ),
    ],
)
def test_a_config_files_bad_value_keeps_its_key(files, tmp_path, capsys, command, text, words):
    """The user typed the key in the ``--config`` file: the line names it, not the flag, and
    the value as the file writes it (YAML's words are the user's here, Python's are not)."""
    config = tmp_path / "config.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    assert main([*_argv(command, files, out), "--config", str(config)]) == 2
    line = one_error_line(capsys, command[0], words)
    assert not [w for w in PYTHON_WORDS if w != "null" and w in line], line
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--ppm-reference", "--dwell-time-s", "--spectrometer-freq-mhz"])
def test_an_acquisition_flag_takes_a_finite_number(files, tmp_path, capsys, flag):
    """``fit --ppm-reference nan`` ended in an IndexError of the quality figures."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main([*_argv(FIT, files, out), flag, "nan"])
    assert exit_.value.code == 2
    argparse_error_line(capsys, "fit", f"argument {flag}: must be a finite number, got 'nan'")
    assert not out.exists()


#: (argv, the command's name, the line's start after 'error: '): argparse's own refusals.
ARGPARSE_REFUSALS = [
    (["fit", "SPECTRUM", "--te-ms", "x"], "fit", "argument --te-ms: must be a number, got 'x'"),
    (["fit", "SPECTRUM", "--lineshape", "bogus"], "fit", "argument --lineshape: invalid choice"),
    (["fit", "SPECTRUM", "--te-ms"], "fit", "argument --te-ms: expected one argument"),
    (["fit", "SPECTRUM", "--out", "o", "--bogus"], "fit", "unrecognized arguments: --bogus"),
    (["fit", "SPECTRUM", "--out", "o", "--bogus", "1"], "fit", "unrecognized arguments: --bogus 1"),
    (["basis", "info", "--bogus"], "basis info", "unrecognized arguments: --bogus"),
    (["basis", "convert"], "basis convert", "the following arguments are required: PATH"),
    (["basis", "bogus"], "basis", "argument ACTION: invalid choice: 'bogus'"),
    # train's names were checked by its handler, in its own words, until session 32 (`ints32`)
    (
        ["train", "--model", "rnn", "--out", "o"],
        "train",
        "argument --model: invalid choice: 'rnn' (choose from 'scalogram_cnn', 'spectrum_cnn', "
        "'spectrum_physics', 'scalogram_physics')",
    ),
    (
        ["train", "--preset", "huge", "--out", "o"],
        "train",
        "argument --preset: invalid choice: 'huge' (choose from 'tiny', 'quick', 'cpu', 'paper')",
    ),
    (
        ["train", "--uncertainty", "ensemble", "--out", "o"],
        "train",
        "argument --uncertainty: invalid choice: 'ensemble' (choose from 'none', 'gaussian')",
    ),
    (["basis"], "basis", "the following arguments are required: ACTION"),
    ([], "", "the following arguments are required: COMMAND"),
    (["bogus"], "", "argument COMMAND: invalid choice: 'bogus'"),
    (["--bogus", "basis", "info"], "", "unrecognized arguments: --bogus"),
    # each parser's own unknown flags, the innermost command's first (session 32, `cli32`)
    (["basis", "--bogus", "info"], "basis", "unrecognized arguments: --bogus"),
    (["--bogus", "basis", "info", "--other"], "basis info", "unrecognized arguments: --other"),
    (["--bogus", "fit", "SPECTRUM", "--out", "o"], "", "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(
    ("argv", "command", "words"),
    ARGPARSE_REFUSALS,
    ids=[" ".join(a) for a, _, _ in ARGPARSE_REFUSALS],
)
def test_argparse_refuses_in_one_line(files, capsys, argv, command, words):
    """A mistyped flag or value, or a missing argument: the one line of the command that
    refused it (an unknown flag too, which argparse words as the main parser's), ending with
    where to look; argparse's usage block before it was several lines (session 31,
    `oneline31`)."""
    prog = " ".join(["scaloquant", *command.split()])
    with pytest.raises(SystemExit) as exit_:
        main([files.get(word, word) for word in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: error: {words}"), err
    assert err.endswith(f" (see {prog} --help)\n"), err


def test_parse_known_args_returns_the_unknown_words():
    """``parse_args`` refuses the words no parser knew under the command they were given to;
    ``parse_known_args`` keeps argparse's promise and returns them (before session 32 each
    command's parser refused them there, through argparse's internal call of it)."""
    from scaloquant.cli import build_parser

    argv = ["--bogus", "basis", "--zzz", "info", "--other"]
    args, unknown = build_parser(argv).parse_known_args(argv)
    assert (args.command, args.basis_command) == ("basis", "info")
    assert sorted(unknown) == ["--bogus", "--other", "--zzz"]


def test_every_parser_keeps_every_flag_its_help_lists():
    """``arguments`` (what the tests here read a command's flags from, where argparse keeps
    them in private attributes) holds every flag that ``--help`` lists, those of argument
    groups and mutually exclusive groups included, and no other."""
    from scaloquant.cli import build_parser

    main_parser = build_parser()
    parsers = [main_parser, *main_parser.subcommands[1].values(), *_sweep_parsers().values()]
    for parser in parsers:
        entries = re.findall(r"^  (-\S.*?)(?:  |$)", parser.format_help(), re.M)
        listed = {f for e in entries for f in re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", e)}
        kept = {flag for action in parser.arguments for flag in action.option_strings}
        assert kept == listed, parser.prog


def test_no_help_prints_an_unfilled_placeholder():
    """Every parser's ``--help`` (descriptions, flag helps) has its values filled in: no
    ``{NAME}`` of an f-string left a plain string (``basis convert`` printed "LCModel's
    {LCMODEL_NAME_CHARS} characters" until session 36's review)."""
    from scaloquant.cli import build_parser

    main_parser = build_parser()
    parsers = [main_parser, *main_parser.subcommands[1].values(), *_sweep_parsers().values()]
    for parser in parsers:
        text = parser.format_help()
        for action in parser.arguments:  # argparse shows a flag's choices as {a,b}
            if action.choices is not None:
                text = text.replace("{" + ",".join(map(str, action.choices)) + "}", "")
        assert not re.search(r"\{[A-Za-z_][\w.]*(?:![rsa])?(?::[^}]*)?\}", text), parser.prog


def test_a_parser_with_subcommands_takes_no_flag_with_a_value():
    """The main parser's and ``basis``' flags take no value, so that a command is the first
    word after them that is not a flag: ``build_parser`` builds that command's options alone,
    and ``parse_args`` gives each parser the unknown flags before its subcommand's name."""
    from scaloquant.cli import build_parser

    main_parser = build_parser()
    parsers = [main_parser, *main_parser.subcommands[1].values()]
    with_subcommands = [p for p in parsers if p.subcommands is not None]
    assert [p.prog for p in with_subcommands] == ["scaloquant", "scaloquant basis"]
    for parser in with_subcommands:
        valued = [a.option_strings for a in parser.arguments if a.option_strings and a.nargs != 0]
        assert valued == [], parser.prog


@pytest.mark.parametrize("command", [["fit"], ["basis", "info"], []])
def test_help_keeps_its_usage(capsys, command):
    """``--help`` prints the usage and every flag on stdout, and exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: {' '.join(['scaloquant', *command])} ") and not err
    assert "--help" in out and len(out.splitlines()) > 5


def test_train_help_lists_the_names_its_choices_take(capsys):
    """``train``'s ``--model``, ``--preset`` and ``--uncertainty`` are argparse choices (session
    32, `ints32`): ``--help`` lists them, as their metavars did when the handler checked them."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for flag, names in (
        ("--model", "scalogram_cnn,spectrum_cnn,spectrum_physics,scalogram_physics"),
        ("--preset", "tiny,quick,cpu,paper"),
        ("--uncertainty", "none,gaussian"),
    ):
        assert f"[{flag} {{{names}}}]" in usage, flag


# The sweep (session 31, `words31`): every flag of every command that takes a value, given bad
# values by its type, is refused in the user's words. The values a flag takes (``--seed 0``,
# ``--index -1``, ``--shift-range -1 -1``) are listed in SWEEP_VALID; those would run the command.

#: Each command's argv with the files it needs (OUT: the output), the flag swept added after it.
SWEEP_BASES = {
    "basis info": ["basis", "info"],
    "basis convert": ["basis", "convert", "BASIS", "OUT.npz"],
    "simulate": [*SIMULATE, "--out", "OUT.h5"],
    "scalogram": ["scalogram", "SIM", "--out", "OUT.npy"],
    "train": [*TRAIN, "--out", "OUT"],
    "evaluate": [*EVALUATE, "--out", "OUT"],
    "reproduce": [*REPRODUCE, "--out", "OUT"],
    "quantify": [*QUANTIFY, "--out", "OUT"],
    "fit": [*FIT, "--out", "OUT"],
    "convert": ["convert", "SPECTRUM", "OUT.nii.gz"],
    "export": ["export", "--model", "CKPT", "--onnx", "OUT.onnx"],
}
#: Flags whose values matter only beside another option: swept with it.
SWEEP_CONTEXT = {
    **{("train", f): PHYSICS[1:] for f in ("--max-steps", "--polish-iterations", "--simulation")},
    **{("train", f): PHYSICS[1:] for f in ("--basis", "--grid-from")},
    ("quantify", "--adapt-steps"): ["--adapt"],
    ("quantify", "--adapt-lr"): ["--adapt"],
    ("quantify", "--adapt-seed"): ["--adapt"],
}
#: Output paths (a value that is not a file to read): swept with an empty text only (read by
#: pathlib as '.', the refusal named the current folder; session 31, `consist31`); their other
#: refusals are the writers', tested where each command is.
SWEEP_OUTPUTS = {"--out", "--plot", "--onnx", "--save-adapted", "OUT.npz", "OUTPUT"}
#: (command, flag) -> the swept values the flag takes.
SWEEP_VALID = {
    ("simulate", "--seed"): {"0"},
    ("train", "--seed"): {"0"},
    ("evaluate", "--seed"): {"0"},
    ("reproduce", "--seed"): {"0"},
    ("scalogram", "--index"): {"-1", "0"},
    ("quantify", "--adapt-seed"): {"0"},
    ("quantify", "--adapt-steps"): {"0"},
    ("quantify", "--polish-iterations"): {"0"},
    ("train", "--polish-iterations"): {"0"},
    ("quantify", "--max-figures"): {"0"},
    ("quantify", "--mrsi-figures"): {"0"},
    ("fit", "--max-figures"): {"0"},
    ("fit", "--mrsi-figures"): {"0"},
    # ranges of signed quantities, or of zero width (a fixed value)
    ("simulate", "--amplitude-range"): {"0"},
    ("simulate", "--damping-range"): {"0"},
    ("simulate", "--gaussian-damping-range"): {"0"},
    ("simulate", "--shift-range"): {"-1", "0"},
    ("simulate", "--phase0-range"): {"-1", "0"},
    ("simulate", "--phase1-range"): {"-1", "0"},
    ("simulate", "--phase1-pivot"): {"-1", "0"},
    ("train", "--phase0-range"): {"-1", "0"},
    ("train", "--phase1-range"): {"-1", "0"},
    # an acquisition value of a file read: the ppm reference is a signed shift
    **{(c, "--ppm-reference"): {"-1", "0"} for c in ("basis info", "basis convert", "simulate")},
    **{(c, "--ppm-reference"): {"-1", "0"} for c in ("scalogram", "quantify", "fit", "convert")},
    ("evaluate", "--ppm-reference"): {"-1", "0"},
}
#: Words of Python or YAML, not the user's (case matters: 'holds none of' is English).
PYTHON_WORDS = (
    *("None", "null", "True", "False", "Traceback", "dict", "NoneType", "float(", "int("),
    "[Errno",  # an OSError as Python prints it
)


@functools.cache
def _sweep_parsers() -> dict[str, object]:
    """Each command's parser (``basis``'s two: ``basis info``, ``basis convert``)."""
    from scaloquant.cli import build_parser

    parsers = {}
    for name, parser in build_parser().subcommands[1].items():
        inner = parser.subcommands[1].items() if parser.subcommands else [(None, parser)]
        for sub, sub_parser in inner:
            parsers[name if sub is None else f"{name} {sub}"] = sub_parser
    return parsers


def _sweep_values(action) -> list[str]:
    """Bad values for a flag by its type: a negative, zero, not a number, empty; 'nan' for a
    number; a missing file and an empty folder for a file to read; an unknown word for a choice
    or a text."""
    kind = getattr(action.type, "__name__", None)
    if action.choices is not None:
        return ["bogus"]
    if kind in ("int", "whole_number"):
        return ["-1", "0", "x", ""]
    if kind in ("float", "number", "finite_number", "positive_number"):
        return ["-1", "0", "x", "", "nan"]
    if kind == "path_value":
        return ["", "MISSING", "FOLDER"]
    return ["", "bogus"]


def _sweep_cases() -> list[tuple[str, str, str]]:
    cases = []
    for command, parser in _sweep_parsers().items():
        for action in parser.arguments:
            if action.nargs == 0 or action.help == "==SUPPRESS==":
                continue
            flag = action.option_strings[0] if action.option_strings else action.metavar
            if flag is None:
                continue
            valid = SWEEP_VALID.get((command, flag), set())
            values = [""] if flag in SWEEP_OUTPUTS else _sweep_values(action)
            cases += [(command, flag, v) for v in values if v not in valid]
    return cases


SWEEP_CASES = _sweep_cases()


@pytest.fixture(scope="module")
def sweep_files(files, tmp_path_factory):
    """``files`` and a basis set that records its grid (.npz), for ``basis convert``."""
    from scaloquant.io.npz import write_basis_npz

    basis = write_basis_npz(tmp_path_factory.mktemp("sweep") / "basis.npz", default_basis())
    return {**files, "BASIS": str(basis)}


def _sweep_argv(command, flag, value, files, tmp_path) -> tuple[list[str], Path | None]:
    """The command line, and the path that a file value (MISSING, FOLDER) stands for."""
    path = {"MISSING": tmp_path / "missing" / "file.nii.gz", "FOLDER": tmp_path / "folder"}.get(
        value
    )
    if value == "FOLDER":
        path.mkdir()  # an empty folder where a file is wanted
    value = value if path is None else str(path)
    base = SWEEP_BASES[command] + SWEEP_CONTEXT.get((command, flag), [])
    base = [str(tmp_path / w.replace("OUT", "out")) if w.startswith("OUT") else w for w in base]
    base = [files.get(w, w) for w in base]
    parser = _sweep_parsers()[command]
    action = next(a for a in parser.arguments if flag in (*a.option_strings, a.metavar))
    if not action.option_strings:  # a positional path: the base's output, its first file, or added
        words = SWEEP_BASES[command]
        outputs = [i for i, w in enumerate(words) if w.startswith("OUT")]
        inputs = [i for i, w in enumerate(base) if w in files.values()]
        first = next(iter(outputs if flag in SWEEP_OUTPUTS else inputs), len(base))
        return [*base[:first], value, *base[first + 1 :]], path
    n = action.nargs if isinstance(action.nargs, int) else 1
    return [*base, flag, *[value] * n], path


@pytest.mark.parametrize(
    ("command", "flag", "value"), SWEEP_CASES, ids=[f"{c} {f} {v!r}" for c, f, v in SWEEP_CASES]
)
def test_every_flags_bad_value_is_refused_in_the_users_words(
    sweep_files, tmp_path, capsys, command, flag, value
):
    """Exit 2; one line, argparse's own refusals (a value not of the flag's type) as the
    handler's, with where to look instead of its usage block (session 31, `oneline31`), under
    the command's full name ('basis info'); the flag named, or the file given where the value
    is a file to read; none of Python's or YAML's words."""
    argv, path = _sweep_argv(command, flag, value, sweep_files, tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's refusal
        assert exit_.code == 2, argv
        line = argparse_error_line(capsys, command)
    else:
        assert code == 2, argv
        line = one_error_line(capsys, command)
    named = flag if path is None else str(path)
    assert named in line, line
    assert not [w for w in PYTHON_WORDS if w in line], line
    # argparse's refusal of a value its type function refuses names the function or its type
    # ('invalid int value', 'invalid finite_number value'); the package's types say what to give
    assert not re.search(r"invalid \w+ value", line), line
    folder = [path] if path is not None and path.is_dir() else []
    assert sorted(tmp_path.iterdir()) == folder, argv  # nothing written


def test_a_file_without_its_grid_asks_for_the_flag_alone(tmp_path, capsys):
    """An LCModel .RAW records no dwell time: the reader's line for a Python caller ends '(or
    dwell_time_s=... in Python)', which the command's user read too (session 31, `words31`)."""
    from scaloquant.errors import MissingMetadataError
    from scaloquant.io import read_fid

    raw = tmp_path / "bare.RAW"
    raw.write_text(" $NMID ID='x', FMTDAT='(2E16.8)' $END\n" + " 1.0 0.0\n" * 8)
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(raw), str(out), "--spectrometer-freq-mhz", "123.2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"scaloquant convert: error: {raw} does not record the dwell time; pass --dwell-time-s"
    ]
    assert not out.exists()
    with pytest.raises(
        MissingMetadataError, match=r"pass --dwell-time-s \(or dwell_time_s=\.\.\. in"
    ) as one:
        read_fid(raw, spectrometer_freq_mhz=123.2)
    assert one.value.missing == ("dwell time",)
    # both missing: both named in one line, where the first run named the dwell time alone
    # and the second, with it given, the frequency (session 34, `audit34`)
    assert main(["convert", str(raw), str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"scaloquant convert: error: {raw} does not record the dwell time or the spectrometer "
        "frequency; pass --dwell-time-s and --spectrometer-freq-mhz"
    ]
    with pytest.raises(
        MissingMetadataError,
        match=r"(or dwell_time_s=\.\.\. and spectrometer_freq_mhz=\.\.\. in Python)",
    ) as both:
        read_fid(raw)
    # what it lacks, for a caller that words its own refusal (--basis, --grid-from): it held
    # the dwell time alone (session 35, `words35`)
    assert both.value.missing == ("dwell time", "spectrometer frequency")
