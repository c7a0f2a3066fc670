"""Render a scaloquant ``report.html`` in headless Chromium: a PNG screenshot and a PDF print.

    python tools/screenshot_report.py OUT_DIR/report.html [--png out.png] [--pdf out.pdf]
        [--width 1400] [--height 2000] [--chromium /usr/bin/chromium]

Checks what a user sees when they open the report in a browser (layout, inlined figures, the
overview table) and what prints. Chromium comes from the Debian package (``apt-get install -y
chromium``); it is run with a throw-away profile, no network services, no GPU and no sandbox
(the last for running as root in a container). The report itself needs no network: every
figure is inlined.

Defaults: ``report.png`` and ``report.pdf`` beside the report. Exit status 0 when both files
were written and the PNG is not a single colour (see :func:`png_is_blank`), else 1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Chromium flags: headless, no GPU, no first-run, no background traffic (updates, sync...).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium(given: str | None = None) -> str | None:
    """The Chromium executable: ``given``, else ``chromium`` or ``chromium-browser`` on PATH."""
    if given:
        return given
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(report: Path, args: list[str], *, chromium: str | None, timeout_s: float) -> None:
    """Run Chromium headless on ``report`` with ``args``, in a throw-away profile."""
    exe = find_chromium(chromium)
    if exe is None:
        raise FileNotFoundError(
            "no chromium found; apt-get install -y chromium, or give --chromium"
        )
    with tempfile.TemporaryDirectory(prefix="scaloquant-chromium-") as profile:
        subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, report.resolve().as_uri()],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )


def screenshot(
    report: Path,
    png: Path,
    *,
    width: int = 1400,
    height: int = 2000,
    chromium: str | None = None,
    timeout_s: float = 120.0,
) -> Path:
    """A ``width`` x ``height`` screenshot of the top of ``report``."""
    args = [f"--screenshot={png.resolve()}", f"--window-size={width},{height}"]
    _chromium(report, args, chromium=chromium, timeout_s=timeout_s)
    return png


def print_pdf(
    report: Path, pdf: Path, *, chromium: str | None = None, timeout_s: float = 120.0
) -> Path:
    """``report`` printed to PDF (the page size and margins of its ``@media print`` style)."""
    args = ["--no-pdf-header-footer", f"--print-to-pdf={pdf.resolve()}"]
    _chromium(report, args, chromium=chromium, timeout_s=timeout_s)
    return pdf


def png_is_blank(png: Path) -> bool:
    """True when the PNG is a single colour (a page that did not render)."""
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(png)
    return bool(np.all(pixels == pixels[0, 0]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, help="a report.html")
    p.add_argument("--png", type=Path, help="screenshot (default: report.png beside it)")
    p.add_argument("--pdf", type=Path, help="printed PDF (default: report.pdf beside it)")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=2000)
    p.add_argument("--chromium", help="the Chromium executable (default: chromium on PATH)")
    args = p.parse_args(argv)
    png = args.png or args.report.with_name("report.png")
    pdf = args.pdf or args.report.with_name("report.pdf")
    try:
        screenshot(args.report, png, width=args.width, height=args.height, chromium=args.chromium)
        print_pdf(args.report, pdf, chromium=args.chromium)
    except (FileNotFoundError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        print(f"screenshot_report: {err}", file=sys.stderr)
        return 1
    if not png.is_file() or not pdf.is_file() or png_is_blank(png):
        print(f"screenshot_report: {png} is missing or blank, or {pdf} is missing", file=sys.stderr)
        return 1
    print(f"screenshot: {png}\nprint: {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
