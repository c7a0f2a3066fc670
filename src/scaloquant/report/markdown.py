"""``summary.md``: the report in plain text, from the same blocks as ``report.html``
(:mod:`scaloquant.report.content`): header, acquisition once, notes, the overview table in
the first unit with its %SD, and links to the fit figures."""

from __future__ import annotations

from collections.abc import Mapping

from ..quantify.gather import Run
from .content import (
    MAX_OVERVIEW_ROWS,
    SD_LIMIT_PCT,
    UNIT_LABELS,
    WATER_COLUMNS,
    ReportHeader,
    abbreviated,
    combined_sd_sentence,
    figure_numbers_path,
    format_pct,
    format_value,
    input_facts,
    metabolite_table,
    not_in_csv_sentence,
    row_labels,
    row_titles,
    run_spectrum_columns,
)


def _cell(value, unit: str = "amplitude", pct: float | None = None, bad: bool = False) -> str:
    if isinstance(value, str):
        return value.replace(";", ", ") or "ok"
    text = format_value(None if value is None else float(value), unit)
    if pct is not None and text != "–":
        text += f" ({format_pct(pct)}{'!' if bad else ''})"
    return text


def _table(header: list[str], rows: list[list[str]], n_text: int) -> str:
    """A Markdown table, its first ``n_text`` columns left-aligned, the numbers right."""
    lines = [header, ["---"] * n_text + ["---:"] * (len(header) - n_text), *rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


def report_markdown(
    run: Run, header: ReportHeader, figure_files: Mapping[tuple[int, int], str] | None = None
) -> str:
    """The report of ``run`` as Markdown; ``figure_files``: the fit figures' paths relative to
    the output folder, by ``(input index, spectrum index)``."""
    figure_files = dict(figure_files or {})
    table = metabolite_table(run)
    facts = input_facts(run)
    out = [
        f"# {header.title}\n",
        f"- command: `{header.command}`\n- estimates: {header.model}\n"
        f"- scaloquant {header.version}, written {header.created_utc}\n",
        "## Acquisition\n",
    ]
    out.append(
        f"Shared by {facts.shared_by}:\n\n" + "".join(f"- {k}: {t}\n" for k, t in facts.shared)
    )
    if facts.partial:
        out.append(
            "Of some inputs only:\n\n"
            + "".join(f"- {k}: {t} ({abbreviated(lab)})\n" for k, t, lab in facts.partial)
        )
    out.append("## Notes\n")
    out.append("".join(f"- {n}\n" for n in run.notes))
    unit = table.units[0]
    qc = run_spectrum_columns(run)
    out.append("## Overview\n")
    out.append(
        f"{UNIT_LABELS[unit]}, with {table.sd_label} in brackets; '!': {table.sd_label} > "
        f"{SD_LIMIT_PCT:g} (unreliable). "
        + (f"{sentence} " if (sentence := combined_sd_sentence(table)) else "")
        + "Other units in results.csv and report.html."
        + (f" {sentence}" if (sentence := not_in_csv_sentence(qc)) else "")
        + "\n"
    )
    labels = row_labels(run, table.rows)
    titles = row_titles(run, table.rows)
    head = [*labels, *qc, *table.names]
    rows = []
    for k in range(min(len(table.rows), MAX_OVERVIEW_ROWS)):
        row = [values[k] for values in labels.values()]
        row += [_cell(v[k]) for v in qc.values()]
        row += [
            _cell(table.values[unit][k, m], unit, table.pct_sd[k, m], bool(table.unreliable[k, m]))
            for m in range(len(table.names))
        ]
        rows.append(row)
    out.append(_table(head, rows, len(labels)))
    if len(table.rows) > MAX_OVERVIEW_ROWS:
        out.append(
            f"The first {MAX_OVERVIEW_ROWS} of {len(table.rows)} spectra; all in results.csv.\n"
        )
    if facts.water:
        out.append("## Water references\n")
        out.append(
            "peak: the water peak over the tallest metabolite peak\n\n"
            + _table(list(WATER_COLUMNS), [list(row) for row in facts.water], 2)
        )
    if figure_files:
        out.append("## Fits\n")
        for k, (i, j) in enumerate(table.rows):
            if (i, j) in figure_files:
                png = figure_files[(i, j)]
                numbers = figure_numbers_path(png)
                out.append(
                    f"![fit of {titles[k]}]({png})\n\nIts curves as numbers: [{numbers}]({numbers})\n"
                )
    return "\n".join(out)
