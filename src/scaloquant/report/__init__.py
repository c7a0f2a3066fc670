"""The reports of a run: every table, figure and HTML/Markdown page a user reads.

Public API::

    header = report_header(run, version=__version__, created_utc=now)
    text = report_html(run, header, figures={(0, 0): png})     # report.html, self-contained
    text = report_markdown(run, header, figure_files={(0, 0): "figures/x.png"})  # summary.md
    write_run(run, "out/")   # every output of a quantify/fit run (:mod:`.outputs`)

The content (which tables, which facts once) is pure (:mod:`.content`); the renderers are
:mod:`.html` and :mod:`.markdown`; matplotlib is imported by :mod:`.figures` and :mod:`.scalogram`
(the figure of one scalogram) only, and that
lazily (maps are drawn when a run has MRSI inputs).
"""

from .content import (
    COMBINED,
    SD_LIMIT_PCT,
    MetaboliteTable,
    ReportHeader,
    format_pct,
    format_value,
    input_facts,
    metabolite_table,
    report_header,
    run_spectrum_columns,
    spectrum_columns,
)
from .html import report_html
from .markdown import report_markdown
from .outputs import write_run

__all__ = [
    "COMBINED",
    "SD_LIMIT_PCT",
    "MetaboliteTable",
    "ReportHeader",
    "format_pct",
    "format_value",
    "input_facts",
    "metabolite_table",
    "report_header",
    "report_html",
    "report_markdown",
    "run_spectrum_columns",
    "spectrum_columns",
    "write_run",
]
