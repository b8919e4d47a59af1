"""The HTML pieces the report pages share: their style sheet, tables, figures as data URIs and
number formatting."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

from brain2text.reports.criteria import as_float

CSS = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f0f0f0}img{max-width:100%}pre{background:#f7f7f7;padding:.5em;overflow-x:auto}
.met{background:#d9f2d9}.not-met{background:#f8d7d7}.not-measurable{background:#eee}"""


def html_table(
    header: Sequence[Any] | None,
    rows: Sequence[Sequence[Any]],
    classes: Sequence[str] | None = None,
) -> str:
    """A table of escaped cells; ``classes``: one CSS class per row."""

    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values)

    head = f"<tr>{cells('th', header)}</tr>" if header else ""
    body = "".join(
        (f'<tr class="{classes[i]}">' if classes else "<tr>") + cells("td", row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table>{head}{body}</table>"


def image(name: str, png: bytes) -> str:
    """An ``<img>`` holding the PNG itself, so that the page needs no other file."""
    return (
        f'<img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
    )


def fmt(value: object, digits: int = 4) -> str:
    """A figure with ``digits`` decimals; "-" for a missing or non-finite one."""
    number = as_float(value) if isinstance(value, (int, float, str)) else math.nan
    return "-" if not math.isfinite(number) else f"{number:.{digits}f}"
