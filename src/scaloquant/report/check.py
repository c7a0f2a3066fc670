"""Read a ``report.html`` back: the rows of each table that has an id, the inline images and
every URL the page refers to (for tests and tools that check what was written)."""

from __future__ import annotations

from html.parser import HTMLParser


class ReportPage(HTMLParser):
    """A parsed report page.

    Attributes
    ----------
    rows : table id -> number of body rows.
    images : ``(src, alt)`` of every ``<img>``.
    urls : every ``src``, ``href``, ``action`` and ``data`` attribute, in page order.
    """

    def __init__(self, text: str):
        super().__init__()
        self.rows: dict[str, int] = {}
        self.images: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self._table: str | None = None
        self._body = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table" and found.get("id"):
            self._table = found["id"]
            self.rows[self._table] = 0
        elif tag == "tbody":
            self._body = True
        elif tag == "tr" and self._table and self._body:
            self.rows[self._table] += 1
        elif tag == "img":
            self.images.append((found.get("src", ""), found.get("alt", "")))
        self.urls += [found[k] for k in ("src", "href", "action", "data") if found.get(k)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "tbody":
            self._body = False

    @property
    def external_urls(self) -> list[str]:
        """URLs that would be fetched or followed elsewhere: all but inline PNGs and anchors."""
        return [u for u in self.urls if not u.startswith(("data:image/png;base64,", "#"))]
