"""Reading console pages as a browser shows them: the rows of a table (a `<tr>` with data-*
attributes, and the text of its cells), any element marked with a data attribute, and a form's
inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Row:
    data: dict[str, str]  # the <tr>'s data-* attributes, without the prefix
    cells: list[str] = field(default_factory=list)  # each cell's text, whitespace collapsed

    @property
    def text(self) -> str:
        return " | ".join(self.cells)


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.marked: list[dict[str, str]] = []  # every element's attributes that has data-*
        self.inputs: list[dict[str, str]] = []
        self._row: Row | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        data = {k[5:]: v for k, v in found.items() if k.startswith("data-")}
        if data:
            self.marked.append(found | {"tag": tag})
        if tag == "input":
            self.inputs.append(found)
        if tag == "tr" and data:
            self._row = Row(data)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str, **wanted: str) -> list[Row]:
    """The page's data-marked rows, those whose data attributes match `wanted` (with _ for -)."""
    parser = _Tables()
    parser.feed(html)
    return [row for row in parser.rows
            if all(row.data.get(k.replace("_", "-")) == v for k, v in wanted.items())]


def marked(html: str, attribute: str) -> list[dict[str, str]]:
    """The attributes of every element that carries data-`attribute`."""
    parser = _Tables()
    parser.feed(html)
    return [a for a in parser.marked if f"data-{attribute}" in a]


def inputs(html: str, name: str) -> list[dict[str, str]]:
    """The attributes of the form's inputs called `name` (a ticked box has "checked")."""
    parser = _Tables()
    parser.feed(html)
    return [a for a in parser.inputs if a.get("name") == name]
