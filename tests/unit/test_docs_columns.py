"""The user docs name the quality columns of ``results.csv`` that the code writes, no more.

The docs list them by hand in prose, in the places where docs/architecture.md's bullet on a
column of ``results.csv`` sends a new one: README's paragraph on the quality figures, docs/fit.md
where it lists them and docs/python.md's ``result.quality``; docs/report.md gives some as
examples. Each passage is found by the words around it and its backticked names are read with
the parentheses' asides dropped (README's ``fit_residual (after `fit`, `--refine` ...)`` names
a command, not a column). A column added to :data:`scaloquant.quantify.results.QUALITY_COLUMNS`
(the writers' list), renamed or dropped fails here until the docs follow.

The same holds for the values of the ``qc`` column: README's paragraph, where docs/architecture.md's
bullet on a quality flag sends a new one, names every flag of
:data:`scaloquant.signal.quality.FLAG_NAMES`, in its order, and no other.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scaloquant.cli import SUBCOMMANDS
from scaloquant.quantify.results import QUALITY_COLUMNS
from scaloquant.signal.quality import FLAG_NAMES

ROOT = Path(__file__).resolve().parents[2]
#: The docs folder, joined to each file's name: written as one path before a quoted string,
#: test_docs_references would read the string as the name of a section of that file.
DOCS = Path("docs")
#: The per-spectrum figures (``SpectraResult.quality``): the columns less the flags.
FIGURES = [c for c in QUALITY_COLUMNS if c != "qc"]

#: (file, the words before the list, the words after it, the names it must give in order).
LISTS = [
    (Path("README.md"), "after its metabolite columns:", ": `empty`", list(QUALITY_COLUMNS)),
    (
        DOCS / "fit.md",
        "the quality figures measured on the data (",
        "; `scaloquant.signal.quality`)",
        list(QUALITY_COLUMNS),
    ),
    (DOCS / "python.md", "`result.quality` the per-spectrum", "; `result.qc`", FIGURES),
]
#: README's list of the flags the ``qc`` column holds: the words before it and after it.
FLAG_LIST = ("and `qc`:", ". Each flag a run raised")
#: Passages that name some of the columns as examples: each name must be one.
EXAMPLES = [(DOCS / "report.md", "Per-spectrum columns the run has (e.g.", ")")]


def _passage(path: Path, before: str, after: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    assert before in text, f"{path}: the list of quality columns after {before!r} is gone"
    rest = text.split(before, 1)[1]
    assert after in rest, f"{path}: the list after {before!r} no longer ends with {after!r}"
    return rest.split(after, 1)[0]


def _names(passage: str) -> list[str]:
    """The backticked names of ``passage`` outside its parentheses; ``a`/`b`` gives both."""
    while True:
        bare = re.sub(r"\([^()]*\)", "", passage)
        if bare == passage:
            break
        passage = bare
    return re.findall(r"`([A-Za-z_]\w*)`", passage)


def test_names_reads_a_list_as_the_docs_write_it():
    text = "`snr` (NAA (tallest) over `noise`), `fwhm_hz`/`fwhm_ppm` (of `NAA`) and `qc`"
    assert _names(text) == ["snr", "fwhm_hz", "fwhm_ppm", "qc"]


@pytest.mark.parametrize(
    ("path", "before", "after", "expected"), LISTS, ids=[str(p) for p, *_ in LISTS]
)
def test_the_docs_list_every_quality_column_and_no_other(path, before, after, expected):
    assert _names(_passage(path, before, after)) == expected


@pytest.mark.parametrize(("path", "before", "after"), EXAMPLES, ids=[str(p) for p, *_ in EXAMPLES])
def test_the_docs_examples_are_quality_columns(path, before, after):
    names = _names(_passage(path, before, after))
    assert names and set(names) <= set(QUALITY_COLUMNS), names


def test_readme_lists_every_quality_flag_and_no_other():
    """A flag added to ``FLAG_NAMES`` (``signal/quality.py``) without its words in README's
    paragraph fails here (a newcomer's flag, made by docs/architecture.md's recipe in a scratch
    copy, passed every other test without them; session 36, newcomer36). The paragraph also
    names the commands after which some flags come (`fit`): they are no flags."""
    names = _names(_passage(Path("README.md"), *FLAG_LIST))
    assert [n for n in names if n not in SUBCOMMANDS] == list(FLAG_NAMES)
