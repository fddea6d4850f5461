"""Every table of a rendered HTML page as rows of cell texts, and the tags met on the way:
for tests that read a report or an A/B page as a person reads it."""

from __future__ import annotations

from html.parser import HTMLParser


class Tables(HTMLParser):
    """Feed it a page; ``tables`` holds each table's rows of stripped cell texts (``th``
    and ``td`` alike), ``tags`` every start tag in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
