"""LCModel's results read back, to compare a scaloquant fit with LCModel's on the same spectrum:
its plot data file ``.coord`` (control-file keys ``LCOORD=9``, ``FILCOO``; ``NEACH=999`` adds
every metabolite's curve) and the concentration table that file and the ``.table`` share.

Format
------
Text, as LCModel 6.3 writes it (``LCModel.f``, FORMAT statements 5581, 5610, 5620 and 5660;
``../shared/peers/lcmodel/source``), in this order:

* ``N lines in following concentration table = NCONC+1``: a header ``Conc.  %SD /NAMREL
  Metabolite`` and ``NCONC`` rows ``conc  sd%  ratio[flag]name`` (concentration in the basis'
  units, or mM when scaled to water; %SD, LCModel's Cramér–Rao bound in per cent, 999 when not
  determined; the ratio to ``NAMREL``, Cr+PCr by default; a flag character, such as ``+``,
  printed flush against the name). The ``.table`` (``LTABLE=7``) holds the same rows under
  ``$$CONC``.
* ``M lines in following misc. output table`` (FWHM, S/N, data shift, phases), not read here.
* ``NY points on ppm-axis = NY`` and ``NY`` numbers, the axis (descending, ``PPMST`` to
  ``PPMEND``); ``NY phased data points follow``; ``NY points of the fit to the data follow``;
  ``NY background values follow``; then, with ``NEACH``, one block per metabolite titled
  ``NAME  Conc. = x``: that metabolite's curve *plus the background*.
* ``lines in following diagnostic table`` and what follows, not read here.

Convention
----------
The curves are real parts of the phased spectrum in LCModel's scale, on its referenced ppm axis
(the data's ppm plus its "Data shift"). Nothing is converted: nothing read here enters a fit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ._common import read_text

_NUMBER = r"-?\d+\.?\d*(?:[Ee][-+]?\d+)?"
#: A row of the concentration table: concentration, %SD, ratio, a one-character flag (blank, or
#: a sign such as ``+`` that LCModel prints flush against the name), name.
_CONC_ROW = re.compile(
    rf"^\s*(?P<conc>{_NUMBER})\s+(?P<sd>\d+)%\s*(?P<ratio>{_NUMBER})(?P<flag>[^\s\w]?)\s*"
    r"(?P<name>\S+)\s*$"
)
_DENOMINATOR = re.compile(r"%SD\s+/(\S+)")
_CONC_TITLE = re.compile(r"^\s*(\d+)\s+lines in following concentration table")
_COORD_TITLE = re.compile(r"^\s*(\d+) points on ppm-axis = NY")
_COORD_COMPONENT = re.compile(r"^\s*(\S+)\s+Conc\. =\s*(\S+)")
#: A row of the diagnostic table of a run LCModel stopped (``   1 FATAL     FTDATA  1``: its
#: type, routine and number, as its manual lists them)
_FATAL_ROW = re.compile(r"^\s*\d+\s+FATAL\s+(\S+)\s+(\d+)")
_CURVE_TITLES = {
    "phased data points follow": "data",
    "points of the fit to the data follow": "fit",
    "background values follow": "background",
}


@dataclass(frozen=True)
class LCModelTable:
    """LCModel's concentration table, keyed by metabolite or combination (``NAA+NAAG``), in
    table order.

    Attributes
    ----------
    concentrations : concentration (the basis' units, or mM when LCModel scaled to water).
    percent_sd : %SD (LCModel's Cramér–Rao bound in per cent; 999 = not determined).
    ratios : ratio to ``denominator``, as LCModel prints it (3 significant digits).
    denominator : ``NAMREL`` as the table names it (``Cr+PCr`` by default).
    flags : names that LCModel printed with a flag character -> that character.
    """

    concentrations: Mapping[str, float]
    percent_sd: Mapping[str, float]
    ratios: Mapping[str, float]
    denominator: str
    flags: Mapping[str, str]


@dataclass(frozen=True)
class LCModelCoord:
    """An LCModel ``.coord`` file: its concentration table and its plot data, all curves on
    its ppm axis ``(NY,)``.

    Attributes
    ----------
    table : the concentration table (:class:`LCModelTable`).
    ppm : the axis, ppm, descending.
    data : the phased data (real part, LCModel's scale).
    fit : the fit, baseline included.
    background : the baseline (zeros where the file has no background block).
    components : name -> that metabolite's fitted curve *plus the baseline*, as LCModel writes
        it (only with ``NEACH`` >= 1; every metabolite with a positive concentration with
        ``NEACH=999``).
    provenance : ``source`` (the path) and ``format`` (``"lcmodel-coord"``).
    """

    table: LCModelTable
    ppm: np.ndarray
    data: np.ndarray
    fit: np.ndarray
    background: np.ndarray
    components: Mapping[str, np.ndarray]
    provenance: Mapping[str, str]


def lcmodel_table(lines: Sequence[str], stated: int | None, source: str) -> LCModelTable:
    """The concentration table from its lines: the header (``Conc.  %SD /Cr+PCr  Metabolite``)
    then the rows; lines that are no row are skipped. ``stated``: the rows the file says it
    holds (its ``NCONC+1`` less one), checked where given; ``source`` names the file in errors.

    Raises
    ------
    InputFileError
        Fewer or more rows read than ``stated``: a layout this reader does not know.
    """
    header = _DENOMINATOR.search(lines[0]) if lines else None
    concentrations, percent_sd, ratios, flags = {}, {}, {}, {}
    for line in lines[1:]:
        m = _CONC_ROW.match(line)
        if m is None:
            continue
        name = m.group("name")
        concentrations[name] = float(m.group("conc"))
        percent_sd[name] = float(m.group("sd"))
        ratios[name] = float(m.group("ratio"))
        if m.group("flag"):
            flags[name] = m.group("flag")
    if stated is not None and len(concentrations) != stated:
        raise InputFileError(
            f"{source}: read {len(concentrations)} rows of LCModel's concentration table but it "
            f"states {stated}; the table is not in the layout of LCModel 6.3 that this reader knows"
        )
    return LCModelTable(
        concentrations=concentrations,
        percent_sd=percent_sd,
        ratios=ratios,
        denominator=header.group(1) if header else "?",
        flags=flags,
    )


def read_lcmodel_coord(path: str | os.PathLike) -> LCModelCoord:
    """Read LCModel's ``.coord`` file (its ``FILCOO``, written with ``LCOORD=9``).

    Returns
    -------
    LCModelCoord : the concentration table, the ppm axis ``(NY,)``, the data, fit and
    background ``(NY,)`` and each metabolite's curve ``(NY,)``.

    Raises
    ------
    InputFileError
        Missing, empty or binary; no concentration table or no ``points on ppm-axis`` line (not
        a ``.coord`` file, or that of a run LCModel stopped with a ``FATAL`` diagnostic, named);
        a block of other than ``NY`` numbers (truncated).
    """
    text = read_text(path)
    path = Path(path)
    lines = text.splitlines()
    found = [(i, _CONC_TITLE.match(line)) for i, line in enumerate(lines)]
    conc = next(((i, m) for i, m in found if m is not None), None)
    start = next((i for i, line in enumerate(lines) if _COORD_TITLE.match(line)), None)
    if conc is None or start is None or start < conc[0]:
        # a run LCModel stopped writes a .coord of its diagnostics alone: not another format
        fatal = next((m for line in lines if (m := _FATAL_ROW.match(line))), None)
        if conc is None and fatal is not None:
            raise InputFileError(
                f"{path} is the .coord of an LCModel run that stopped with the fatal error "
                f"{fatal.group(1)} {fatal.group(2)} (its diagnostic table): it holds no "
                "concentration table or fit; look the error up in LCModel's manual, mend the "
                "run and read its new .coord"
            )
        raise InputFileError(
            f"{path} is not an LCModel .coord file (no concentration table followed by "
            "'points on ppm-axis'); give the file LCModel writes with LCOORD=9 (its FILCOO)"
        )
    i_conc, title = conc
    stated = int(title.group(1)) - 1
    table = lcmodel_table(lines[i_conc + 1 : i_conc + 2 + stated], stated, str(path))
    ny = int(_COORD_TITLE.match(lines[start]).group(1))
    titles: list[tuple[str, int]] = [("ppm", start)]
    for i in range(start + 1, len(lines)):
        line = lines[i]
        curve = next((v for k, v in _CURVE_TITLES.items() if k in line), None)
        if curve is not None:
            titles.append((curve, i))
        elif (m := _COORD_COMPONENT.match(line)) is not None:
            titles.append((m.group(1), i))
        elif "lines in following" in line:
            break
    blocks: dict[str, np.ndarray] = {}
    for name, i in titles:
        numbers: list[float] = []
        j = i + 1
        while len(numbers) < ny and j < len(lines):
            try:
                numbers += [float(v) for v in lines[j].split()]
            except ValueError:  # the next block's title: this one is short
                break
            j += 1
        if len(numbers) != ny:
            raise InputFileError(
                f"{path}: LCModel .coord block {name!r} holds {len(numbers)} numbers, not its "
                f"NY = {ny}; the file is truncated or garbled"
            )
        blocks[name] = np.array(numbers)
    if not {"data", "fit"} <= blocks.keys():
        raise InputFileError(
            f"{path}: LCModel .coord file without its phased data or fit block; the file is "
            "truncated"
        )
    fixed = ("ppm", "data", "fit", "background")
    return LCModelCoord(
        table=table,
        ppm=blocks["ppm"],
        data=blocks["data"],
        fit=blocks["fit"],
        background=blocks.get("background", np.zeros(ny)),
        components={k: v for k, v in blocks.items() if k not in fixed},
        provenance={"source": str(path), "format": "lcmodel-coord"},
    )
