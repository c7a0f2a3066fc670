"""Every reference to a section of the docs names a file and a heading that exist.

Two forms are checked, wherever they stand in ``src/``, ``benchmarks/``, ``tests/``, ``README.md``,
``CONTRIBUTING.md`` and ``docs/``:

* a quoted section name after a docs path: ``docs/fit.md "Solver and bounds"``,
  ``docs/fit.md`` ``("Cheaper model evaluations", "Where the fit's time goes")``,
  ``[docs/fit.md](docs/fit.md), "Solver and bounds"``. The name is the heading's text or its
  beginning up to a word's end ("Fewer iterations" names "Fewer iterations (session 8)");
* a link to an anchor: ``docs/physics-models.md#test-time-adaptation-quantify---adapt`` or a
  markdown link ``[...](fit.md#solver-and-bounds)``, resolved as GitHub makes heading anchors.

A reference wrapped over lines (a docstring, a ``#:`` comment) is read with its line breaks and
comment markers removed. Unquoted section names (``docs/fit.md (Measured)``) are not checked:
quote them.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("src", "benchmarks", "tests", "docs", "README.md", "CONTRIBUTING.md")
SUFFIXES = {".py", ".md", ".txt", ".toml", ".yaml", ".yml", ".cfg"}

#: A docs path not inside another path (``../shared/docs/x.md`` is not this repository's).
DOC_PATH = r"(?<![\w./-])(docs/[\w./-]+?\.md)"
#: The path, its closing backticks or markdown link, then one or more quoted names.
QUOTED = re.compile(
    DOC_PATH + r"`*(?:\]\([^)]*\))?[`,;:]*\s*\(?\s*"
    r"((?:\"[^\"]+\"(?:\s*(?:,|;|and)\s*)?)+)"
)
NAME = re.compile(r"\"([^\"]+)\"")
PATH_ANCHOR = re.compile(DOC_PATH + r"#([\w-]+)")
MD_LINK_ANCHOR = re.compile(r"\]\(([^()\s#]*)#([\w-]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-`` (a repeated heading gets ``-1``, ``-2``: see :func:`headings`)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def headings(path: Path) -> tuple[tuple[str, ...], frozenset[str]]:
    """The headings' texts of a markdown file (outside code fences) and their anchors."""
    texts, anchors, fenced = [], set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6} +(.*?)\s*#*\s*$", line)
        if fenced or match is None:
            continue
        texts.append(match.group(1))
        base, n = anchor(match.group(1)), 0
        while (candidate := base if n == 0 else f"{base}-{n}") in anchors:
            n += 1
        anchors.add(candidate)
    return tuple(texts), frozenset(anchors)


def names_a_heading(name: str, texts: tuple[str, ...]) -> bool:
    """``name`` is a heading, or a heading's beginning that ends where a word ends."""
    name = " ".join(name.split())
    return any(t == name or (t.startswith(name) and not t[len(name)].isalnum()) for t in texts)


def joined(path: Path) -> str:
    """The file as one line: line breaks and leading comment markers become one space."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return " ".join(re.sub(r"^\s*(#:?|//)?\s*", "", line) for line in lines)


def scanned_files() -> list[Path]:
    files = []
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in sorted(path.rglob("*")) if p.suffix in SUFFIXES and p.is_file()]
    return files


def broken_references() -> list[str]:
    """One line per reference whose file or heading does not exist."""
    broken = []
    for path in scanned_files():
        where = path.relative_to(ROOT)
        text = joined(path)
        for match in QUOTED.finditer(text):
            doc = ROOT / match.group(1)
            if not doc.is_file():
                broken.append(f"{where}: {match.group(1)} does not exist")
                continue
            texts = headings(doc)[0]
            for name in NAME.findall(match.group(2)):
                if not names_a_heading(name, texts):
                    broken.append(f'{where}: {match.group(1)} has no heading "{name}"')
        links = [(ROOT / m.group(1), m.group(2)) for m in PATH_ANCHOR.finditer(text)]
        if path.suffix == ".md":
            links += [
                ((path.parent / m.group(1)).resolve() if m.group(1) else path, m.group(2))
                for m in MD_LINK_ANCHOR.finditer(text)
                if not re.match(r"[a-z]+:", m.group(1))
            ]
        for doc, name in links:
            shown = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc
            if doc.suffix != ".md":
                continue
            if not doc.is_file():
                broken.append(f"{where}: {shown} does not exist")
            elif name not in headings(doc)[1]:
                broken.append(f"{where}: {shown} has no anchor #{name}")
    return sorted(set(broken))


def test_every_docs_reference_resolves():
    broken = broken_references()
    assert not broken, "references to docs sections that do not resolve:\n" + "\n".join(broken)


def test_the_checker_sees_a_broken_reference(tmp_path):
    """The checker's own known answers: a good and a wrong name, a good and a wrong anchor."""
    texts, anchors = headings(ROOT / "docs" / "fit.md")
    assert names_a_heading("Solver and bounds", texts)
    assert not names_a_heading("Solver and bound", texts)
    assert "solver-and-bounds" in anchors
    assert (
        anchor("Test-time adaptation (`quantify --adapt`)")
        == "test-time-adaptation-quantify---adapt"
    )
    doc = tmp_path / "x.md"
    doc.write_text("# A\n\n## B (one)\n\n## B (one)\n\n```\n# not a heading\n```\n")
    assert headings(doc) == (("A", "B (one)", "B (one)"), frozenset({"a", "b-one", "b-one-1"}))


def test_every_benchmark_script_is_in_benchmarks_md():
    """``docs/benchmarks.md`` names every script under ``benchmarks/`` (its table "Every
    script"), so that the map of what each measures matches the folder."""
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
    assert len(scripts) > 10
    missing = [name for name in scripts if f"`{name}`" not in text]
    assert not missing, f'add these to docs/benchmarks.md "Every script": {missing}'
