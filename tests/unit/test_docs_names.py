"""Every ``scaloquant.…`` name that the docs and the docstrings quote in backticks exists.

``docs/*.md`` (not ``docs/history/``, whose logs describe the code of their time), ``README.md``,
``CONTRIBUTING.md`` and every module's text under ``src/`` are searched for a backticked dotted name that starts
with ``scaloquant.`` (``scaloquant.fit.fit_spectra``, ``:func:`~scaloquant.signal.axes.ppm_axis```)
or, in a module, a Sphinx role relative to its package (``:mod:`.text```), and each is
resolved without importing anything: the longest prefix that is a module, then a name defined
or imported at its top level, then (for a class) a method, attribute or field. A name moved or
renamed (``models.physics.least_squares_amplitudes`` went to ``physics_head`` in
session 26) fails here until its references move too.

The pages a contributor follows to make a change (docs/architecture.md's "Making a change" and
"Where things live", CONTRIBUTING.md, docs/README.md, docs/fit.md's head) also quote names without the package:
``fit_flags``, ``MODEL_FLAG_SAMPLES`` (a test's table), ``fit.config.GROUPING_NAMES``. Each
must be defined somewhere under ``src/`` or ``tests/`` (a function, class, constant, field,
parameter or module), or be a value the code holds as a string (a grouping's name, a column's);
a dotted one that starts with a room resolves as above.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
QUOTED = re.compile(r"`~?(scaloquant(?:\.[A-Za-z_]\w*)+)(?:\(\))?`")
#: A Sphinx role with a name relative to the module's package (``:mod:`.text```,
#: ``:func:`~.calibration.snr_groups```), in the modules under ``src/``.
RELATIVE = re.compile(r":(?:mod|func|class|data|meth|attr|exc):`~?(\.[A-Za-z_][\w.]*)`")


#: The pages a contributor follows to make a change (see the module's docstring), each up to
#: the heading given (None: whole); the docs folder joined to each name: written as one path
#: before a quoted string, test_docs_references would read the string as a section's name.
CONTRIBUTOR_PAGES: tuple[tuple[Path, str | None], ...] = (
    (Path("docs") / "architecture.md", None),
    (Path("CONTRIBUTING.md"), None),
    (Path("docs") / "README.md", None),
    (Path("docs") / "fit.md", "\n## Where it stands"),  # its head: the modules and presets
)
#: A backticked bare or dotted name (``fit_flags``, ``SpectraResult.columns``, ``cli.main()``),
#: or a dotted one that opens a longer code span (``lm.LM_DOWN=0.3``, ``X.y = FitConfig()``).
BARE = re.compile(
    r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\(\))?`|`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)[ =(\[]"
)
#: A file's name, which test_architecture checks where docs/architecture.md names it.
FILE_NAME = re.compile(r"\.(py|md|csv|json|html|npz|yaml|toml|txt)$")
#: Names of other tools that those pages quote: numpy's, LCModel's control key, Python's debugger.
OTHER_TOOLS = {"SeedSequence", "CHRATO", "pdb"}


def _module_file(dotted: str) -> Path | None:
    base = SRC.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """What a module or class body defines or imports at its top level."""
    out: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out[name.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, (ast.If, ast.Try)):  # TYPE_CHECKING blocks, optional imports
            out |= _names(node.body)
    return out


@cache
def _module_names(path: Path) -> dict[str, ast.AST]:
    return _names(ast.parse(path.read_text(encoding="utf-8")).body)


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        path = _module_file(".".join(parts[:i]))
        if path is None:
            continue
        rest = parts[i:]
        if not rest:
            return True
        node = _module_names(path).get(rest[0])
        if node is None:
            return False
        if len(rest) > 1 and isinstance(node, ast.ClassDef):
            return rest[1] in _names(node.body)
        return True  # an imported name or an instance attribute: not followed further
    return False


@cache
def _defined() -> frozenset[str]:
    """Every name defined under ``src/`` and ``tests/`` (functions, classes, assigned names and
    attributes, parameters, imported names, modules and packages; this file's own left out, its
    known answers name missing ones) and every string the code under ``src/`` holds."""
    names: set[str] = set()
    tests = [p for p in sorted((ROOT / "tests").rglob("*.py")) if p != Path(__file__).resolve()]
    for path in [*sorted(SRC.rglob("*.py")), *tests]:
        in_src = path.is_relative_to(SRC)
        names |= {path.stem, path.parent.name}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):  # a name imported, and its library's
                names |= {(node.asname or node.name).split(".")[-1], node.name.split(".")[0]}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
            elif in_src and isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return frozenset(names)


def cited_name_exists(name: str) -> bool:
    """A name a contributor page quotes without the package exists (see the docstring)."""
    parts = name.split(".")
    if len(parts) > 1 and _module_file("scaloquant." + parts[0]) is not None:
        return resolves("scaloquant." + name)
    return name in OTHER_TOOLS or all(part in _defined() for part in parts)


def test_every_name_the_contributor_pages_cite_exists():
    missing = []
    for page, until in CONTRIBUTOR_PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        if until is not None:
            assert until in text, f"{page}: {until!r} is gone"
            text = text.split(until, 1)[0]
        for match in BARE.finditer(text):
            name = match.group(1) or match.group(2)
            if not FILE_NAME.search(name) and not cited_name_exists(name):
                missing.append(f"{page}:{text.count(chr(10), 0, match.start()) + 1}: {name}")
    assert not missing, "names the pages cite that do not exist (renamed?):\n" + "\n".join(missing)


def test_the_cited_name_check_tells_a_name_from_a_missing_one():
    assert cited_name_exists("fit_flags")  # a function of signal/quality.py
    assert cited_name_exists("MODEL_FLAG_SAMPLES")  # a table of tests/cli/test_cli_fit.py
    assert cited_name_exists("SpectraResult.columns")  # a class and its field
    assert cited_name_exists("fit.config.GROUPING_NAMES")  # resolved in the room
    assert cited_name_exists("metabolites_and_each_mm")  # a value the code holds
    assert not cited_name_exists("fit.config.NO_SUCH_NAMES")
    assert not cited_name_exists("_block_figures_renamed")
    # docs/fit.md's head named this class, which never existed, until session 36
    assert not cited_name_exists("QuantifyOptions.fit_config")
    found = [
        m.group(1) or m.group(2)
        for m in BARE.finditer(
            "`fit_flags`, `lm.LM_DOWN=0.3`, `QuantifyOptions.fit_config = FitConfig()`, `--n N`"
        )
    ]
    assert found == ["fit_flags", "lm.LM_DOWN", "QuantifyOptions.fit_config"]


def _texts() -> list[Path]:
    return [
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *sorted((SRC / "scaloquant").rglob("*.py")),
    ]


def _package(path: Path) -> str:
    """The package a module under ``src/`` sits in (a package's ``__init__``: itself)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1])


def test_every_quoted_scaloquant_name_exists():
    seen, missing = 0, []
    for path in _texts():
        text = path.read_text(encoding="utf-8")
        found = [(m.start(), m.group(1)) for m in QUOTED.finditer(text)]
        if path.suffix == ".py":
            found += [(m.start(), _package(path) + m.group(1)) for m in RELATIVE.finditer(text)]
        for start, name in found:
            seen += 1
            if not resolves(name):
                line = text.count("\n", 0, start) + 1
                missing.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert seen > 100  # the texts were read
    assert not missing, "names that do not exist (moved or renamed?):\n" + "\n".join(missing)


def test_the_resolver_tells_a_name_from_a_missing_one():
    assert resolves("scaloquant.fit.fit_spectra")  # re-exported by the package
    assert resolves("scaloquant.signal.axes")  # a module
    assert resolves("scaloquant.fit.config.FitConfig.from_dict")  # a method
    assert resolves("scaloquant.fit.config.FitConfig.max_iterations")  # a field
    assert not resolves("scaloquant.models.physics.least_squares_amplitudes")
    assert not resolves("scaloquant.fit.config.FitConfig.no_such_field")
    assert not resolves("scaloquant.no_such_room.x")
    # a relative role is read in the module's package, an __init__'s being the package itself
    assert _package(SRC / "scaloquant" / "io" / "text.py") == "scaloquant.io"
    assert _package(SRC / "scaloquant" / "io" / "__init__.py") == "scaloquant.io"
    assert [m.group(1) for m in RELATIVE.finditer(":mod:`.text` :func:`~.a.b`")] == [
        ".text",
        ".a.b",
    ]
