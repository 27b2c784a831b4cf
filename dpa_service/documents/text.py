"""The visible text of a rendered HTML document, one line per block: what a reader sees, for comparing two
renders (an agreement against the standard text, one template version against another)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _TextOf(HTMLParser):
    """The visible text of rendered HTML, one line per block, for comparing two renders."""

    BLOCKS = frozenset({"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "section", "br", "table", "dt", "dd"})

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = [""]
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in {"style", "script", "head"}:
            self._skip += 1
        if tag in self.BLOCKS:
            self.lines.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script", "head"}:
            self._skip = max(0, self._skip - 1)
        if tag in self.BLOCKS:
            self.lines.append("")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.lines[-1] += data

    def text(self) -> list[str]:
        return [" ".join(line.split()) for line in self.lines if line.strip()]


def visible_text(html: str) -> list[str]:
    parser = _TextOf()
    parser.feed(html)
    return parser.text()
