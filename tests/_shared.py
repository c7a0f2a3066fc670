"""Where the shared data lie for the tests: ``../shared`` beside the repository's folder, as CI
and a developer's checkout have it (the tests that need a file skip, saying which, where it is
absent). One place, so that a test never names a machine's own path. And the one check the CLI
tests share: a refusal is one line of the command's error."""

from __future__ import annotations

from pathlib import Path

#: ``../shared`` beside the repository.
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
#: The default basis set's source files (LCModel ``.BASIS``, jMRUI, text).
ISMRM2016_BASIS = DATA / "ismrm2016" / "basis"
#: The 28 ISMRM 2016 fitting-challenge spectra.
CHALLENGE = DATA / "ismrm2016-challenge"
#: The scanner spectra (Philips, Siemens) as vendor files and NIfTI-MRS.
INVIVO = DATA / "invivo"


def one_error_line(capsys, command: str, starts: str = "", *, kind: str = "error:") -> str:
    """The one line ``scaloquant COMMAND`` wrote to stderr, asserted to be its only line and
    its error (``scaloquant COMMAND: error: ...``, the message beginning with ``starts``; with
    ``kind="interrupted;"`` the line of a run stopped by Ctrl-C), with no traceback's words in
    it."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert lines[0].startswith(f"scaloquant {command}: {kind} {starts}"), lines
    return lines[0]


def argparse_error_line(capsys, command: str, starts: str = "") -> str:
    """:func:`one_error_line` of a refusal by argparse itself (a value not of the flag's type or
    choices, an unknown flag, a missing argument; the command's ``SystemExit(2)``): its usage
    block left out, the line ends with where to look."""
    line = one_error_line(capsys, command, starts)
    assert line.endswith(f" (see scaloquant {command} --help)"), line
    return line
