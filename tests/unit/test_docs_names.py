"""Every ``scaloquant.…`` name that the docs and the docstrings quote in backticks exists.

``docs/*.md`` (not ``docs/history/``, whose logs describe the code of their time), ``README.md``,
``CONTRIBUTING.md`` and every module's text under ``src/`` are searched for a backticked dotted name that starts
with ``scaloquant.`` (``scaloquant.fit.fit_spectra``, ``:func:`~scaloquant.signal.axes.ppm_axis```)
or, in a module, a Sphinx role relative to its package (``:mod:`.text```), and each is
resolved without importing anything: the longest prefix that is a module, then a name defined
or imported at its top level, then (for a class) a method, attribute or field. A name moved or
renamed (``models.physics.least_squares_amplitudes`` went to ``physics_head`` in
session 26) fails here until its references move too.
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
