"""Every ``scaloquant …`` command that ``README.md``, ``CONTRIBUTING.md`` and ``docs/*.md`` show
parses with the CLI's own parser, so that a renamed flag or choice fails here rather than in a
user's copy and paste.

``docs/history/`` is left out: its logs describe the commands of their time. Commands are read
from code fences (a line, with its ``\\`` continuations, or one link of a ``&&`` chain, that
starts with ``scaloquant``; a ``# comment`` dropped) and from inline code that starts with
``scaloquant SUBCOMMAND`` or ``SUBCOMMAND --flag`` (``quantify --refine``). Nothing runs: each
command goes through :func:`scaloquant.cli.build_parser` only.

Each command is checked in two ways:

* every ``--flag`` is one of the subcommand's options, spelt in full (argparse would take an
  abbreviation, which a new flag can make ambiguous), and a value written after a flag with
  choices (``--preset quick``, ``{paper,cpu}``, ``invivo|default``) is among them;
* a concrete command (no synopsis marks ``[ ] { } | ...``) parses as a whole: ``argparse``
  takes it, placeholders of numbers (``--n N``) given a number. An inline mention may leave out
  required arguments (``scaloquant reproduce --preset cpu``) and a flag's value
  (``quantify --model``), nothing else.

The benchmark scripts the pages name (``python benchmarks/bench_fit_engine.py --n 64``, or
``bench_mrsi.py --side 32`` inline) are not imported (most load torch, seconds each):
every ``--flag`` written after a script's name must be one that script defines, a ``"--flag"``
literal of its source.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from scaloquant.cli import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^\s*(```|~~~)")
#: A placeholder the reader replaces (``N``, ``CKPT``, ``MIN``): capitals, digits, ``_``.
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
SYNOPSIS = re.compile(r"[\[\]{}|]|\.\.\.")


@dataclass(frozen=True)
class Command:
    where: str  # "docs/fit.md:12"
    text: str  # the command as written, continuations joined
    inline: bool  # inline code (a mention) rather than a code fence's line

    @property
    def synopsis(self) -> bool:
        return bool(SYNOPSIS.search(self.text))


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def fenced_commands(path: Path, root: Path = ROOT) -> list[Command]:
    """The ``scaloquant`` lines of a file's code fences."""
    found, fenced, pending, start = [], False, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced, pending = not fenced, ""
            continue
        if not fenced:
            continue
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", line).rstrip()  # a shell comment
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = pending + line, ""
        for part in re.split(r"&&|;", text):
            if part.split()[:1] == ["scaloquant"]:
                where = f"{path.relative_to(root)}:{start}"
                found.append(Command(where, " ".join(part.split()), inline=False))
    return found


def inline_commands(path: Path, root: Path = ROOT) -> list[Command]:
    """Inline code that is a command: ``scaloquant SUB …`` or ``SUB --flag …``."""
    text = path.read_text(encoding="utf-8")
    subs = "|".join(SUBCOMMANDS)
    starts = re.compile(rf"^(?:scaloquant (?:{subs})(?=\s|$)|(?:{subs}) --)")
    found, fenced, offset = [], False, 0
    for line in text.splitlines(keepends=True):  # code fences are read by fenced_commands
        if FENCE.match(line):
            fenced = not fenced
            text = text[:offset] + re.sub(r"[^\n]", " ", line) + text[offset + len(line) :]
        elif fenced:
            text = text[:offset] + re.sub(r"\S", " ", line) + text[offset + len(line) :]
        offset += len(line)
    for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", text):
        span = " ".join(match.group(1).replace("\\|", "|").split())
        if not starts.match(span) or ": error:" in span:  # a refusal quoted, not a command
            continue
        if not span.startswith("scaloquant "):
            span = "scaloquant " + span
        line = text.count("\n", 0, match.start()) + 1
        found.append(Command(f"{path.relative_to(root)}:{line}", span, inline=True))
    return found


def doc_commands() -> list[Command]:
    return [c for p in doc_files() for c in (*fenced_commands(p), *inline_commands(p))]


@cache
def subcommand_parser(words: tuple[str, ...]) -> argparse.ArgumentParser:
    """The parser of ``scaloquant WORDS…`` (``("fit",)``, ``("basis", "info")``)."""
    parser = build_parser(list(words))
    for word in words:
        parser = parser.subcommands[1][word]
    return parser


def command_words(argv: list[str]) -> tuple[str, ...]:
    """The subcommand's words of ``argv`` (``basis`` takes an action word after it)."""
    if argv[0] == "basis" and len(argv) > 1 and not argv[1].startswith("-"):
        return tuple(argv[:2])
    return tuple(argv[:1])


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in parser.arguments for o in a.option_strings}


def choices_of(action: argparse.Action) -> list[str]:
    """An option's choices: argparse's, or those its metavar lists (``fit --preset`` checks its
    names itself and shows them as ``{invivo,simulated,simulated-plain}``)."""
    if action.choices:
        return [str(c) for c in action.choices]
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    return metavar[1:-1].split(",") if re.fullmatch(r"\{[^{}]+\}", metavar) else []


def _values(token: str) -> list[str]:
    """The values a synopsis token offers: ``{a,b}`` -> a, b; ``a|b`` -> a, b."""
    token = token.strip("[]")
    if token.startswith("{") and token.endswith("}"):
        return token[1:-1].split(",")
    return token.split("|")


def problems(command: Command) -> list[str]:
    """What is wrong with one documented command (empty if nothing)."""
    argv = shlex.split(command.text)[1:]
    if not argv or argv[0] not in SUBCOMMANDS:
        return [f"no subcommand {argv[:1]}"]
    words = command_words(argv)
    if argv[0] == "basis" and len(words) < 2:
        return []  # 'scaloquant basis' named alone
    parser = subcommand_parser(words)
    known = options(parser)
    found = []
    tokens = [t.strip("[]") for t in argv[len(words) :]]
    for i, token in enumerate(tokens):
        if not token.startswith("--"):
            continue
        flag = token.split("=")[0]
        action = known.get(flag)
        if action is None:
            found.append(f"{' '.join(words)} has no option {flag}")
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        choices = choices_of(action)
        if choices and nxt and not nxt.startswith("-") and not PLACEHOLDER.match(nxt):
            if any(v not in choices for v in _values(nxt)):
                found.append(f"{flag} {nxt}: not among {sorted(choices)}")
    if found or command.synopsis:
        return found
    return _parse_problems(argv, known, command.inline)


def _numbers_for_placeholders(argv: list[str], known: dict[str, argparse.Action]) -> list[str]:
    """``argv`` with a placeholder value of a typed option (``--n N``) given the number 1."""
    out = list(argv)
    for i, token in enumerate(argv):
        action = known.get(token)
        if action is None or action.type in (None, str, Path) or action.nargs == 0:
            continue
        j = i + 1
        while j < len(argv) and PLACEHOLDER.match(argv[j]):
            out[j] = "1"
            j += 1
    return out


def _parse_problems(argv: list[str], known: dict[str, argparse.Action], inline: bool) -> list[str]:
    """``argparse``'s refusal of the whole command, if any (an inline mention may leave out
    required arguments)."""
    argv = _numbers_for_placeholders(argv, known)
    if inline:  # a flag named without its value (`quantify --model`) is a mention of it
        argv = [
            t
            for i, t in enumerate(argv)
            if t not in known
            or known[t].nargs == 0
            or (i + 1 < len(argv) and not argv[i + 1].startswith("-"))
        ]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser(argv).parse_args(argv)
    except SystemExit as stop:
        if stop.code == 0:  # --help
            return []
        message = err.getvalue().strip().splitlines()[-1]
        if inline and "the following arguments are required" in message:
            return []
        return [message]
    return []


#: A benchmark or tool script's name and what follows it on the line (a code span's text, a
#: fence's line): its flags up to a ``--`` that passes the rest on (``bench_invivo_ratios.py OUT
#: -- --ratio-priors P``: those are ``scaloquant fit``'s).
SCRIPT = re.compile(r"\b([a-z_]+\.py)((?:\s+(?!--\s)(?![\w/.]+\.py\b)[^\s`]+)*)")


@cache
def script_flags() -> dict[str, frozenset[str]]:
    """The ``"--flag"`` literals of each script under ``benchmarks/`` and ``tools/``."""
    scripts = [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "tools").glob("*.py")]
    return {
        p.name: frozenset(
            re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", p.read_text(encoding="utf-8"))
        )
        for p in scripts
    }


def script_flag_problems(text: str, where: str) -> list[str]:
    """Flags written after a script's name in ``text`` that the script does not define."""
    known, found = script_flags(), []
    for match in SCRIPT.finditer(" ".join(text.split())):
        flags = known.get(match.group(1))
        if flags is None:
            continue
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", match.group(2)):
            if flag not in flags and flag != "--help":
                found.append(f"{where}: {match.group(1)} has no option {flag}")
    return found


def test_every_benchmark_flag_the_docs_name_exists():
    checked, broken = 0, []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        pieces = [m.group(1) for m in re.finditer(r"`([^`]+)`", text)] + text.splitlines()
        for piece in pieces:
            checked += len(SCRIPT.findall(piece))
            broken += script_flag_problems(piece, str(path.relative_to(ROOT)))
    assert checked > 100  # the pages name many scripts
    assert not broken, "flags the docs give scripts that do not define them:\n" + "\n".join(
        sorted(set(broken))
    )


def test_a_scripts_unknown_flag_is_found():
    assert (
        script_flag_problems("python benchmarks/bench_fit_engine.py --n 64 --lcmodel-n 8", "x")
        == []
    )
    assert script_flag_problems("bench_fit_engine.py --n 64 --lcmodel 8", "x") == [
        "x: bench_fit_engine.py has no option --lcmodel"
    ]
    # after ``--`` the flags are another command's
    assert script_flag_problems("bench_invivo_ratios.py OUT -- --ratio-priors P", "x") == []


def test_the_docs_show_commands_of_every_kind():
    commands = doc_commands()
    assert sum(not c.inline for c in commands) >= 8  # README's and physics-models.md's fences
    assert sum(c.inline for c in commands) >= 40
    assert {c.text.split()[1] for c in commands} == set(SUBCOMMANDS)


def test_every_documented_command_parses():
    broken = [f"{c.where}: `{c.text}`: {p}" for c in doc_commands() for p in problems(c)]
    assert not broken, "documented commands the CLI refuses:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("text", "inline", "expected"),
    [
        ("scaloquant fit a.nii --out d --thread 2", False, "has no option --thread"),
        ("scaloquant fit a.nii --out d --threads two", False, "must be a whole number"),
        ("scaloquant fit INPUT... [--preset invivo|simulatd]", False, "simulatd: not among"),
        ("scaloquant scalogram --in s.h5 --preset {paper,gpu} --out x", False, "not among"),
        ("scaloquant simulate --n N --seed S", False, "required: --out"),
        ("scaloquant no-such-command --out d", True, "no subcommand"),
    ],
)
def test_the_checker_tells_a_broken_command(text, inline, expected):
    """A renamed flag, a wrong value, a missing argument of a concrete command are found; so
    is an abbreviation, which argparse itself would take."""
    assert any(expected in p for p in problems(Command("x", text, inline))), problems(
        Command("x", text, inline)
    )


def test_the_checker_takes_what_the_docs_write():
    for text, inline in [
        ("scaloquant simulate --n N --seed S --out sim.h5", False),  # numbers as placeholders
        ("scaloquant reproduce --preset cpu", True),  # a mention: --out left out
        ("scaloquant quantify --model", True),  # a mention of a flag
        ("scaloquant basis info [PATH] [--plot out.png]", True),
        ("scaloquant train --model {scalogram_cnn,spectrum_cnn} --preset P --out DIR", True),
    ]:
        assert problems(Command("x", text, inline)) == [], text
    # a concrete fence command may not leave out a required argument
    assert problems(Command("x", "scaloquant reproduce --preset cpu", False))


def test_fences_are_read_as_a_shell_reads_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\n"
        "pip install . && scaloquant fit a.nii \\\n"
        "    --out d   # a comment --no-such-flag\n"
        "```\n"
        "`fit --refine` and `scaloquant` alone, ``scaloquant fit`` quoted twice\n",
        encoding="utf-8",
    )
    fenced = [(c.where, c.text, c.inline) for c in fenced_commands(page, tmp_path)]
    assert fenced == [("page.md:2", "scaloquant fit a.nii --out d", False)]
    inline = [(c.where, c.text) for c in inline_commands(page, tmp_path)]
    assert inline == [("page.md:5", "scaloquant fit --refine")]


def test_a_quoted_refusal_is_not_a_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "refused as `scaloquant fit: error: ... (see scaloquant fit --help)` or "
        "`scaloquant basis info: error: no such file`; run `scaloquant fit a.nii --out d`\n",
        encoding="utf-8",
    )
    assert [c.text for c in inline_commands(page, tmp_path)] == ["scaloquant fit a.nii --out d"]
