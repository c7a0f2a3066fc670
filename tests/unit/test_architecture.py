"""The rooms of ``src/scaloquant`` and the one-way flow between them (``docs/architecture.md``).

Every module is parsed with :mod:`ast` and every import is read, at any depth (imports inside
functions count: a lazy import is still an arrow). A *room* is the first name under
``scaloquant`` (``scaloquant.fit.batched`` is in ``fit``, ``scaloquant.types`` in ``types``);
the package itself (``from scaloquant import __version__``) is the room ``scaloquant``.

Rules
-----
1. **One-way layers**: a module imports only its own room and rooms of *lower* layers
   (:data:`LAYERS`, lowest first). Two rooms on one layer do not import each other.
2. **Nothing imports the CLI**: only ``cli`` (and ``__main__``) import ``scaloquant.cli``; inside
   ``cli`` a handler imports only the package and the private shared modules (``cli/_*.py``),
   never another handler.
3. **No trainer, no plotting below the jobs**: rooms below :data:`JOBS_LAYER` import neither
   Lightning nor matplotlib; matplotlib starts at :data:`WRITERS_LAYER` (the jobs and the
   evaluation compute without it).
4. **File formats live in io**: outside ``io`` (and the ``cli`` edge), nothing imports a file-format
   library (:data:`FORMAT_LIBRARIES`): readers and writers own their format's quirks.
5. **No cycle between modules**: inside a room too, the module-level import graph (lazy imports
   and ``TYPE_CHECKING`` imports count) has no cycle, so every module can be read, tested and
   changed knowing only the modules below it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "scaloquant"

#: The layers, lowest first: a room may import the rooms of the layers below its own.
#: Kept in step with the table of ``docs/architecture.md``.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("errors",)),
    (
        "foundations",
        (
            "scaloquant",
            "metabolites",
            "threads",
            "readahead",
            "paths",
            "_stats",
            "_config",
            "_words",
            "seeds",
            "presets",
            "defaults",
            "formats",
        ),
    ),
    ("conventions", ("signal", "physics")),
    ("types", ("types",)),
    ("engines", ("simulate", "scalogram", "fit", "io")),
    ("networks", ("models",)),
    ("jobs", ("train", "quantify")),
    # evaluate computes a typed Evaluation from the jobs' estimates; report writes it (and a
    # quantify Run), so the writers sit above every room whose results they write
    ("evaluation", ("evaluate",)),
    ("writers", ("report",)),
    ("reproduction", ("reproduce",)),
    ("cli", ("cli",)),
    ("entry", ("__main__",)),
)
#: Lightning and matplotlib are allowed from this layer up (the trainer, the drawing jobs).
JOBS_LAYER = "jobs"
#: matplotlib is allowed from this layer up (the writers draw; what they draw is computed below).
WRITERS_LAYER = "writers"
HEAVY_LIBRARIES = ("lightning", "pytorch_lightning", "lightning_fabric", "matplotlib")
#: Libraries that read or write a file format; only ``io`` (and the ``cli`` edge) use them.
FORMAT_LIBRARIES = ("yaml", "tomllib", "tomli", "h5py", "nibabel", "nifti_mrs")

LAYER_OF = {room: i for i, (_, rooms) in enumerate(LAYERS) for room in rooms}
LAYER_NAMES = [name for name, _ in LAYERS]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _from_target(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` in ``package`` names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(source: str, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import in ``source`` of ``module``, at any depth,
    relative ones resolved."""
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            if target == "scaloquant":  # from scaloquant import x: x may be a room
                for alias in node.names:
                    sub = f"scaloquant.{alias.name}"
                    yield (sub if _room(sub) in LAYER_OF else "scaloquant"), node.lineno
            else:
                yield target, node.lineno


def _all_imports() -> list[tuple[str, str, str, int]]:
    """``(module, its room, imported module, line)`` over the whole package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        source = path.read_text(encoding="utf-8")
        for target, line in _imports(source, module, path.name == "__init__.py"):
            out.append((module, _room(module), target, line))
    return out


IMPORTS = _all_imports()


def _internal(target: str) -> bool:
    return target == "scaloquant" or target.startswith("scaloquant.")


def test_every_room_has_a_layer():
    rooms = {room for _, room, _, _ in IMPORTS} | {
        _room(_module_name(p)) for p in PACKAGE.rglob("*.py")
    }
    missing = sorted(rooms - set(LAYER_OF))
    assert not missing, f"rooms without a layer in LAYERS (add them, and to the docs): {missing}"


def test_the_parser_sees_lazy_and_relative_imports():
    """The checks below are only as good as this reading of the source."""
    found = {(m, t) for m, _, t, _ in IMPORTS}
    # a relative import at module level, and one inside a function (cli.scalogram draws lazily)
    assert ("scaloquant.types", "scaloquant.signal") in found or (
        "scaloquant.types",
        "scaloquant.signal.axes",
    ) in found
    lazy = [
        t
        for m, _, t, _ in IMPORTS
        if m == "scaloquant.cli.scalogram" and t.startswith("scaloquant.report")
    ]
    assert lazy, "the lazy figure import of cli.scalogram was not seen"


def test_dependencies_run_one_way_down_the_layers():
    upward = [
        f"{module}:{line} imports {target} ({room} is on layer "
        f"{LAYER_NAMES[LAYER_OF[room]]}, {_room(target)} on {LAYER_NAMES[LAYER_OF[_room(target)]]})"
        for module, room, target, line in IMPORTS
        if _internal(target)
        and _room(target) != room
        and _room(target) in LAYER_OF
        and room in LAYER_OF
        and LAYER_OF[_room(target)] >= LAYER_OF[room]
    ]
    assert not upward, "arrows that run up or sideways:\n" + "\n".join(upward)


def test_nothing_outside_the_cli_imports_it():
    bad = [
        f"{module}:{line} imports {target}"
        for module, room, target, line in IMPORTS
        if _internal(target) and _room(target) == "cli" and room not in ("cli", "__main__")
    ]
    assert not bad, "\n".join(bad)


def test_cli_handlers_do_not_import_each_other():
    handlers = {_module_name(p) for p in (PACKAGE / "cli").glob("*.py")} - {"scaloquant.cli"}
    bad = [
        f"{module}:{line} imports {target}"
        for module, room, target, line in IMPORTS
        if room == "cli"
        and module in handlers
        and not module.rsplit(".", 1)[1].startswith("_")
        and target in handlers
        and target != module
        and not target.rsplit(".", 1)[1].startswith("_")
    ]
    assert not bad, "share through cli/_common.py instead:\n" + "\n".join(bad)


@pytest.mark.parametrize("libraries", [HEAVY_LIBRARIES], ids=["lightning-matplotlib"])
def test_no_trainer_or_plotting_below_the_jobs(libraries):
    jobs = LAYER_NAMES.index(JOBS_LAYER)
    bad = [
        f"{module}:{line} imports {target}"
        for module, room, target, line in IMPORTS
        if LAYER_OF.get(room, jobs) < jobs and target.split(".")[0] in libraries
    ]
    assert not bad, "\n".join(bad)


def test_plotting_starts_at_the_writers():
    writers = LAYER_NAMES.index(WRITERS_LAYER)
    bad = [
        f"{module}:{line} imports {target}"
        for module, room, target, line in IMPORTS
        if LAYER_OF.get(room, writers) < writers and target.split(".")[0] == "matplotlib"
    ]
    assert not bad, "draw in report/, compute below it:\n" + "\n".join(bad)


def test_file_formats_are_read_and_written_in_io():
    bad = [
        f"{module}:{line} imports {target}"
        for module, room, target, line in IMPORTS
        if room not in ("io", "cli") and target.split(".")[0] in FORMAT_LIBRARIES
    ]
    assert not bad, "go through scaloquant.io:\n" + "\n".join(bad)


def test_the_reading_catches_a_violation():
    """A known-bad module, read as if it sat in ``scaloquant/signal/``: every arrow is seen."""
    source = (
        "import numpy\n"
        "def f():\n"
        "    from ..types import FID\n"
        "    import matplotlib.pyplot\n"
        "    from .. import cli\n"
        "    from . import axes\n"
    )
    got = [t for t, _ in _imports(source, "scaloquant.signal.probe", False)]
    assert got == [
        "numpy",
        "scaloquant.types",
        "matplotlib.pyplot",
        "scaloquant.cli",
        "scaloquant.signal",
    ]
    assert LAYER_OF[_room("scaloquant.types")] > LAYER_OF["signal"]  # would be refused


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _module_targets(source: str, module: str, is_package: bool) -> Iterator[str]:
    """The package's modules that ``module`` imports: ``from PKG import name`` counts as an
    arrow to ``PKG.name`` where that is a module, else to ``PKG``."""
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    yield sub
                elif target in MODULES:
                    yield target


def _module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of ``graph``: its strongly connected components of more than one module
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules():
    graph = {
        module: set(
            _module_targets(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        )
        - {module}
        for module, path in MODULES.items()
    }
    cycles = _module_cycles(graph)
    assert not cycles, "modules that import each other (directly or round a loop):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_cycle_check_finds_a_loop():
    """A lazy import back (``fit.batched`` -> ``fit.search`` -> ``fit.batched`` inside a
    function, as these two modules had until session 14) is a cycle; a chain is not."""
    source = "def f():\n    from . import batched\n"
    back = set(_module_targets(source, "scaloquant.fit.search", False))
    assert back == {"scaloquant.fit.batched"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _module_cycles(graph) == [["a", "b", "c"]]
    assert _module_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_docs_table_is_the_layer_table():
    """``docs/architecture.md`` draws the same layers, in the same order, with the same rooms."""
    doc = PACKAGE.parents[1] / "docs" / "architecture.md"
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in doc.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| layer")
    ]
    documented = [(name, tuple(r.strip("` ") for r in rooms.split(","))) for name, rooms, _ in rows]
    assert documented == list(LAYERS)


#: A module or folder ``docs/architecture.md`` names by its path: under ``src/scaloquant``
#: (``signal/axes.py``, ``physics/``, ``defaults.py``), in the repository (``tests/oracle.py``),
#: or, bare, in the room its bullet is about (``lm.py`` in "The fit room (`fit/`)").
_DOC_PATH = re.compile(r"`((?:[a-z_]+/)*[a-z_]+(?:\.py|/))`")


def _missing_doc_paths(text: str, package: Path) -> list[str]:
    missing = set()
    for bullet in re.split(r"\n(?=\* |\| )", text):
        paths = _DOC_PATH.findall(bullet)
        rooms = [p for p in paths if p.endswith("/") and "/" not in p[:-1]]
        bases = [package, package.parents[1], *(package / r for r in rooms[:1])]
        missing |= {p for p in paths if not any((b / p).exists() for b in bases)}
    return sorted(missing)


def test_every_path_the_architecture_doc_names_exists():
    """Every module and folder the map names is in the tree (a moved or renamed module must
    move in the doc too)."""
    text = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert len(set(_DOC_PATH.findall(text))) > 20  # the doc's paths were read
    missing = _missing_doc_paths(text, PACKAGE)
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_the_path_check_sees_a_missing_module():
    text = (
        "* `signal/axes.py` and `physics/`, and `fit/gone.py`\n"
        "* **The fit room** (`fit/`): `lm.py` <- `nowhere.py`; `x.md` is no module\n"
    )
    assert _missing_doc_paths(text, PACKAGE) == ["fit/gone.py", "nowhere.py"]


#: Rooms whose modules stand in one order (``docs/architecture.md``, "Where things live": its
#: arrows ``<-``): each module imports only the modules before it in its room (the package's
#: ``__init__`` may import any). A module added to such a room takes its place here. ``io``,
#: ``physics``, ``report`` and ``cli`` have none: their modules sit side by side.
ROOM_ORDER: dict[str, tuple[str, ...]] = {
    "signal": (
        "axes",
        "decimate",
        "grid",
        "lineshapes",
        "peaks",
        "match",
        "qc_spectra",
        "median",
        "noise",
        "mirror",
        "singlets",
        "snr_fwhm",
        "water_peak",
        "quality",
        "ecc",
        "water",
        "scale",
    ),
    "simulate": (
        "config",
        "parameters",
        "model",
        "effects",
        "dataset",
        "prior",
        "linewidths",
        "draws",
        "invivo",
    ),
    "scalogram": ("morse", "config", "transform", "axes", "reference"),
    "fit": (
        "config",
        "basis_grid",
        "scale",
        "model",
        "problem",
        "evaluation",
        "lm",
        "start",
        "crlb",
        "covariance",
        "stages",
        "search",
        "batched",
        "result",
        "spectra",
        "measured_mm",
    ),
    "train": ("config", "data", "checkpoint", "module", "run", "physics"),
    "evaluate": ("metrics", "calibration", "bootstrap", "encoders", "report", "pipeline", "run"),
    "models": (
        "cnn",
        "transforms",
        "uncertainty",
        "quantifier",
        "physics_config",
        "physics_head",
        "physics_truth",
        "physics",
        "checkpoint",
        "export",
        "adapt",
    ),
    "quantify": (
        "water",
        "inputs",
        "results",
        "rows",
        "notes",
        "matching",
        "figures",
        "checks",
        "gather",
        "run",
        "fit_run",
    ),
}


def _out_of_order(order: tuple[str, ...], graph: dict[str, set[str]]) -> list[str]:
    """``module -> target`` for every arrow of ``graph`` (module names inside one room) to a
    module not before it in ``order``; every module of ``graph`` must be in ``order``."""
    place = {name: i for i, name in enumerate(order)}
    bad = [f"{m} is not in the room's order" for m in sorted(graph) if m not in place]
    bad += [
        f"{m} -> {t}"
        for m in sorted(graph)
        if m in place
        for t in sorted(graph[m])
        if place.get(t, len(order)) >= place[m]
    ]
    return bad


@pytest.mark.parametrize("room", sorted(ROOM_ORDER))
def test_the_modules_of_a_room_import_only_those_before_them(room):
    graph = {}
    for module, path in MODULES.items():
        parts = module.split(".")
        if len(parts) != 3 or parts[1] != room:
            continue  # the room's package itself may gather its modules
        source = path.read_text(encoding="utf-8")
        graph[parts[2]] = {
            t.split(".")[2]
            for t in _module_targets(source, module, False)
            if t.count(".") == 2 and t.split(".")[1] == room and t != module
        }
    bad = _out_of_order(ROOM_ORDER[room], graph)
    assert not bad, f"the {room} room's order (ROOM_ORDER, docs/architecture.md):\n" + "\n".join(
        bad
    )


def test_the_order_check_sees_an_arrow_back_and_a_new_module():
    order = ("rows", "notes", "run")
    assert _out_of_order(order, {"rows": set(), "notes": {"rows"}, "run": {"notes"}}) == []
    assert _out_of_order(order, {"rows": {"run"}, "run": set(), "new": set()}) == [
        "new is not in the room's order",
        "rows -> run",
    ]
