"""``report.html``: the one page a user opens after ``quantify`` or ``fit``.

A header (command, version, date, model or basis), the acquisition and conversions said once
when the inputs share them, the notes, an overview table of spectra x metabolites (combined
metabolites first, %SD > 20 marked as in LCModel's tables, any per-spectrum QC columns the
run has), the metabolite maps of MRSI inputs, then each drawn spectrum's fit beside its table.

Self-contained: the figures are inlined as base64 PNG, the style is inline CSS (screen and
print), and nothing is fetched from elsewhere. :func:`report_html` is a pure function of the
run and the figures' PNG bytes; the maps are drawn here (matplotlib, imported lazily).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..quantify.gather import Run
from .content import (
    MAX_OVERVIEW_ROWS,
    SD_LIMIT_PCT,
    UNIT_LABELS,
    WATER_COLUMNS,
    InputFacts,
    MetaboliteTable,
    ReportHeader,
    abbreviated,
    combined_sd_sentence,
    format_pct,
    format_value,
    input_facts,
    input_label,
    metabolite_table,
    not_in_csv_sentence,
    row_labels,
    row_titles,
    run_spectrum_columns,
)

_e = html.escape

_UNIT_HEAD = {"mM": "mM", "ratio": "/tCr", "amplitude": "amplitude"}

CSS = """
:root{--ink:#1b1f24;--muted:#5b6470;--line:#d6dae0;--head:#eef1f5;--bad:#fbe1e1;
--badink:#b3261e;--warn:#fff4d6;--accent:#1f5f99}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
color:var(--ink);margin:0 auto;padding:1.2em 1.6em 3em;max-width:1500px}
h1{font-size:1.5em;margin:0 0 .2em}
h2{font-size:1.15em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:2px solid var(--line)}
h3{font-size:1em;margin:0 0 .4em}
header{border-bottom:3px solid var(--accent);padding-bottom:.6em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:.4em 0 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
code{font:12.5px ui-monospace,"DejaVu Sans Mono",monospace}
ul.facts{margin:.3em 0;padding-left:1.2em}ul.facts li{margin:.1em 0}
.kind{display:inline-block;min-width:6.5em;color:var(--muted)}
.warning .kind{color:var(--badink);font-weight:600}
p.caption{color:var(--muted);margin:.2em 0 .5em;font-size:.92em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:.2em .45em;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
thead th{background:var(--head);position:sticky;top:0;font-weight:600;white-space:nowrap}
th.row,td.text,th.text{text-align:left;white-space:nowrap}
thead th.qc,thead th.text{white-space:normal}
td.flagged{white-space:normal;min-width:8em}
th.row{font-weight:500}
tbody tr{background:#fff}
table.overview tbody th.row{position:sticky;left:0;background:inherit;z-index:1}
table.overview thead th:first-child{left:0;z-index:2}
tbody tr:nth-child(even){background:#f8f9fb}
th.combined,td.combined{font-weight:650}
th.first-metabolite,td.first-metabolite,th.first-single,td.first-single{border-left:2px solid var(--line)}
table.overview{font-size:12px}
table.overview th,table.overview td{padding:.15em .3em}
td .sd{display:block;font-size:10.5px;color:var(--muted);line-height:1.1}
td.unreliable{background:var(--bad)}
td.unreliable .sd{color:var(--badink);font-weight:700}
td.flagged{background:var(--warn)}
a{color:var(--accent);text-decoration:none}
.legend{font-size:.9em;color:var(--muted)}
.legend .swatch{display:inline-block;width:1.1em;height:.9em;background:var(--bad);
vertical-align:middle;border:1px solid #e3b8b8}
.maps{display:flex;flex-wrap:wrap;gap:.6em;margin-bottom:.6em}
.maps figure{margin:0;text-align:center}
.maps img{width:230px;height:auto}
section.fit{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:1em;
align-items:start;padding:1em 0;border-bottom:1px solid var(--line)}
section.fit img{width:100%;height:auto}
section.fit table{width:100%}
footer{margin-top:2em;color:var(--muted);font-size:.9em}
@media (max-width:1000px){section.fit{grid-template-columns:1fr}}
@media print{
@page{size:A4 landscape;margin:10mm}
body{font-size:10pt;max-width:none;padding:0}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
.scroll{overflow:visible}
table{font-size:7.5pt}
thead{display:table-header-group}
thead th,table.overview tbody th.row{position:static}
tr,figure,img,section.fit{break-inside:avoid;page-break-inside:avoid}
h2,h3{break-after:avoid;page-break-after:avoid}
section.fit{grid-template-columns:3fr 2fr}
section.fit img{max-height:120mm;object-fit:contain}
.maps img{width:55mm}
a{color:inherit}
}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _header(head: ReportHeader) -> str:
    rows = [
        ("command", f"<code>{_e(head.command)}</code>"),
        ("estimates", _e(head.model)),
        ("scaloquant", _e(head.version)),
        ("written", _e(head.created_utc)),
    ]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<header><h1>{_e(head.title)}</h1><dl class="meta">{items}</dl></header>'


def _fact_items(facts: Sequence[tuple[str, str]]) -> str:
    return "".join(
        f'<li class="{_e(kind)}"><span class="kind">{_e(kind)}</span> {_e(text)}</li>'
        for kind, text in facts
    )


def _acquisition(facts: InputFacts) -> str:
    out = ["<section id='acquisition'><h2>Acquisition</h2>"]
    if facts.shared:
        out.append(f"<p class='caption'>Shared by {_e(facts.shared_by)}:</p>")
        out.append(f"<ul class='facts'>{_fact_items(facts.shared)}</ul>")
    if facts.partial:
        out.append("<p class='caption'>Of some inputs only:</p><ul class='facts'>")
        out.append(
            _fact_items([(k, f"{t} ({abbreviated(labels)})") for k, t, labels in facts.partial])
        )
        out.append("</ul>")
    out.append("</section>")
    return "".join(out)


def _water(facts: InputFacts) -> str:
    """The water references' peak figures, one row per input (after the overview: checked
    after the estimates are read, and 28 rows would push them off the first screen)."""
    if not facts.water:
        return ""
    head = "".join(f"<th>{_e(c)}</th>" for c in WATER_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in facts.water
    )
    return (
        "<section id='water'><h2>Water references</h2>"
        "<p class='caption'>peak: the water peak over the tallest metabolite peak</p>"
        f"<table class='water'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</section>"
    )


def _notes(notes: Sequence[str]) -> str:
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f"<section id='notes'><h2>Notes</h2><ul class='facts'>{items}</ul></section>"


def _is_text(values: Sequence[Any]) -> bool:
    return any(isinstance(v, str) for v in values)


def _qc_cell(value: Any) -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, str):
        flagged = " flagged" if value else ""
        text = value.replace(";", ", ") if value else "ok"
        return f"<td class='text{flagged}'>{_e(text)}</td>"
    return f"<td>{format_value(float(value))}</td>"


def _metabolite_classes(table: MetaboliteTable, m: int) -> list[str]:
    """CSS classes of metabolite column ``m``: combined ones bold, a rule before each group."""
    cls = ["combined"] if m < table.combined else []
    if m == 0:
        cls.append("first-metabolite")
    elif m == table.combined:
        cls.append("first-single")
    return cls


def _metabolite_cells(table: MetaboliteTable, unit: str, row: int, with_sd: bool) -> str:
    cells = []
    unreliable = table.unreliable[row]
    for m, _ in enumerate(table.names):
        cls = _metabolite_classes(table, m) + (["unreliable"] if unreliable[m] else [])
        sd = f"<span class='sd'>{format_pct(table.pct_sd[row, m])}</span>" if with_sd else ""
        attr = f" class='{' '.join(cls)}'" if cls else ""
        cells.append(f"<td{attr}>{format_value(table.values[unit][row, m], unit)}{sd}</td>")
    return "".join(cells)


def _overview_table(
    run: Run,
    table: MetaboliteTable,
    unit: str,
    *,
    table_id: str,
    with_sd: bool,
    qc: Mapping[str, list[Any]],
    linked: set[tuple[int, int]],
) -> str:
    labels = row_labels(run, table.rows)
    n_rows = min(len(table.rows), MAX_OVERVIEW_ROWS)
    heads = [f"<th class='row'>{_e(name)}</th>" for name in labels]
    # QC headers may wrap after an underscore (fwhm_<wbr>ppm): they are the results.csv names
    heads += [
        f"<th class='{'text' if _is_text(values) else 'qc'}'>{_e(name).replace('_', '_<wbr>')}</th>"
        for name, values in qc.items()
    ]
    for m, name in enumerate(table.names):
        cls = _metabolite_classes(table, m)
        attr = f" class='{' '.join(cls)}'" if cls else ""
        heads.append(f"<th{attr}>{_e(name)}</th>")
    body = []
    for k in range(n_rows):
        i, j = table.rows[k]
        first, *rest = (_e(values[k]) for values in labels.values())
        if (i, j) in linked:
            first = f"<a href='#fit-{i}-{j}' title='fit figure'>{first}</a>"
        cells = [f"<th class='row' scope='row'>{first}</th>"]
        cells += [f"<td class='text'>{text}</td>" for text in rest]
        cells += [_qc_cell(values[k]) for values in qc.values()]
        cells.append(_metabolite_cells(table, unit, k, with_sd))
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<div class='scroll'><table class='overview' id='{table_id}'>"
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _overview(
    run: Run,
    table: MetaboliteTable,
    qc: Mapping[str, list[Any]],
    linked: set[tuple[int, int]],
) -> str:
    units = table.units
    out = ["<section id='results'><h2>Overview</h2>"]
    legend = (
        f"<span class='swatch'></span> {_e(table.sd_label)} &gt; {SD_LIMIT_PCT:g}: unreliable "
        f"(LCModel's criterion). {_e(combined_sd_sentence(table, bold=True))}"
    )
    for n, unit in enumerate(units):
        first = n == 0
        what = UNIT_LABELS[unit]
        if first:
            caption = f"{what}; under each value its {table.sd_label}."
        else:
            caption = f"{what}; cells marked as in the first table."
        if len(table.rows) > MAX_OVERVIEW_ROWS:
            caption += (
                f" The first {MAX_OVERVIEW_ROWS} of {len(table.rows)} spectra; all in results.csv."
            )
        if not first:
            out.append(f"<h3>{_e(_UNIT_HEAD[unit])}</h3>")
        out.append(f"<p class='caption'>{_e(caption)}</p>")
        if first:
            out.append(f"<p class='legend'>{legend}</p>")
        out.append(
            _overview_table(
                run,
                table,
                unit,
                table_id="overview" if first else f"overview-{unit}",
                with_sd=first,
                qc=qc if first else {},
                linked=linked,
            )
        )
    out.append("</section>")
    return "".join(out)


def _map_slices(run: Run):
    """Per MRSI input (more than one voxel): its index, label, shape and the table rows'
    slice of it."""
    start = 0
    for i, r in enumerate(run.results):
        n = r.input.n_spectra
        shape = r.input.fid.batch_shape
        if r.input.is_mrsi:
            yield i, input_label(r), shape, slice(start, start + n)
        start += n


def _central_slice(column: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(x, y)``: the central z slice of one input's column ``(N,)`` in C order of ``shape``
    (the first index of any extra dimensions)."""
    return column.reshape(*shape[:3], -1)[:, :, shape[2] // 2, 0]


def _map_images(table: MetaboliteTable, rows: slice, shape: tuple[int, ...]) -> list[list[str]]:
    """Two rows of inline ``<figure>`` maps: the combined metabolites (or the first four) in mM
    or amplitude, then their ratios to tCr."""
    from .figures import MapImage, map_pngs

    picked = list(range(table.combined)) or list(range(min(4, len(table.names))))
    unit = "mM" if "mM" in table.values else "amplitude"
    wanted = [
        [(unit, m, table.names[m]) for m in picked],
        [("ratio", m, f"{table.names[m]}/tCr") for m in picked if table.names[m] != "tCr"],
    ]
    maps = [
        MapImage(
            _central_slice(table.values[u][rows, m], shape),
            title=title,
            unit=_UNIT_HEAD[u],
            mask=_central_slice(table.unreliable[rows, m], shape),
        )
        for group in wanted
        for u, m, title in group
    ]
    pngs = iter(map_pngs(maps, dpi=100))
    return [
        [f"<figure>{_img(next(pngs), f'{title} map')}</figure>" for _, _, title in group]
        for group in wanted
    ]


def _maps(run: Run, table: MetaboliteTable, draw: bool = True) -> str:
    """The maps section: per MRSI input its central slice drawn (matplotlib, about 0.06 s CPU
    a map whatever the voxel count, :func:`~scaloquant.report.figures.map_pngs`) or, with ``draw`` off (``--max-figures 0``), only the
    pointer to the NIfTI maps."""
    sections = []
    for _, label, shape, rows in _map_slices(run):
        if not draw:
            sections.append(
                f"<h3>{_e(label)}</h3><p class='caption'>{shape[0]} x {shape[1]} x {shape[2]} "
                "voxels; maps not drawn (--max-figures 0): every metabolite's maps are NIfTI "
                "files in maps/.</p>"
            )
            continue
        extra = " (first index of the extra dimensions)" if len(shape) > 3 else ""
        sections.append(
            f"<h3>{_e(label)}</h3><p class='caption'>Slice z = {shape[2] // 2} of {shape[2]}"
            f"{extra}, {shape[0]} x {shape[1]} voxels, x to the right and y up (array order, "
            f"not a radiological view); white x: {_e(table.sd_label)} &gt; {SD_LIMIT_PCT:g}. "
            "Every metabolite's maps are NIfTI files in maps/.</p>"
            + "".join(
                f"<div class='maps'>{''.join(images)}</div>"
                for images in _map_images(table, rows, shape)
                if images
            )
        )
    if not sections:
        return ""
    return f"<section id='maps'><h2>Maps</h2>{''.join(sections)}</section>"


def _spectrum_table(table: MetaboliteTable, row: int) -> str:
    units = [u for u in ("amplitude", "ratio", "mM") if u in table.values]
    heads = ["metabolite", _UNIT_HEAD["amplitude"], table.sd_label] + [
        _UNIT_HEAD[u] for u in units[1:]
    ]
    body = []
    for m, name in enumerate(table.names):
        cls = "combined" if m < table.combined else ""
        bad = " unreliable" if table.unreliable[row, m] else ""
        cells = [f"<td class='text {cls}'>{_e(name)}</td>"]
        cells.append(f"<td class='{cls}'>{format_value(table.values['amplitude'][row, m])}</td>")
        cells.append(f"<td class='{cls}{bad}'>{format_pct(table.pct_sd[row, m])}</td>")
        cells += [
            f"<td class='{cls}'>{format_value(table.values[u][row, m], u)}</td>" for u in units[1:]
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    return (
        f"<table class='spectrum'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _fits(run: Run, table: MetaboliteTable, figures: Mapping[tuple[int, int], bytes]) -> str:
    if not figures:
        return ""
    titles = row_titles(run, table.rows)
    out = [
        "<section id='fits'><h2>Fits</h2><p class='caption'>Real part of each spectrum: data, "
        "fit and baseline, the residual above and the main components below; beside it, "
        "its estimates.</p>"
    ]
    for k, (i, j) in enumerate(table.rows):
        if (i, j) not in figures:
            continue
        title = titles[k]
        out.append(
            # the figure's own title names the spectrum (it is also a file in figures/)
            f"<section class='fit' id='fit-{i}-{j}'><div>"
            f"{_img(figures[(i, j)], f'fit of {title}')}</div>"
            f"<div>{_spectrum_table(table, k)}</div></section>"
        )
    out.append("</section>")
    return "".join(out)


def _columns_footer(run: Run, qc_names: Iterable[str]) -> str:
    return (
        "<footer>Every spectrum's values (all columns, full precision) are in "
        "<code>results.csv</code>"
        + (
            f" ({html.escape(sentence.removesuffix('.'))})"
            if (sentence := not_in_csv_sentence(qc_names))
            else ""
        )
        + ", what each column means in <code>results.json</code>, the "
        "inputs' SHA-256 and the options in <code>provenance.json</code>"
        + (
            ", the maps as NIfTI in <code>maps/</code>"
            if any(True for _ in _map_slices(run))
            else ""
        )
        + ".</footer>"
    )


def report_html(
    run: Run,
    header: ReportHeader,
    figures: Mapping[tuple[int, int], bytes] | None = None,
    *,
    map_figures: bool = True,
) -> str:
    """The report of ``run`` as one self-contained HTML page.

    Parameters
    ----------
    run : the run's typed results.
    header : from :func:`scaloquant.report.content.report_header`.
    figures : PNG bytes of the fit figures by ``(input index, spectrum index)``, inlined.
    map_figures : draw the MRSI maps (off: the section points to the NIfTI maps only).
    """
    figures = dict(figures or {})
    table = metabolite_table(run)
    facts = input_facts(run)
    qc = run_spectrum_columns(run)  # the overview's columns and the footer's names
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(header.title)}</title><style>{CSS}</style></head><body>",
        _header(header),
        _acquisition(facts),
        _notes(run.notes),
        _maps(run, table, map_figures),  # MRSI: the maps first, as they are read first
        _overview(run, table, qc, set(figures)),
        _water(facts),
        _fits(run, table, figures),
        _columns_footer(run, qc),
        "</body></html>\n",
    ]
    return "\n".join(p for p in parts if p)
