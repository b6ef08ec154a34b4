"""How a report shows itself: a short ``repr``, notebook HTML and Markdown, colour on a terminal.

``repr(report)`` is one line (``Report(GRU: 4,800 params, 4,800 trainable, 1 recurrent: ok)``);
IPython and Jupyter call ``_repr_pretty_`` (the text tables), ``_repr_html_`` and
``_repr_markdown_``, which lay the report out with the same parts and defaults as ``str(report)``
(:func:`torchlstm_params.render.report_parts`). Colour is for terminals only: :func:`use_color`
says yes for a TTY unless ``NO_COLOR`` is set to anything non-empty (https://no-color.org) or
``TERM`` is ``dumb``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .render import Table, Text, report_parts

if TYPE_CHECKING:
    from .results import Report

__all__ = ["report_html", "report_markdown", "short_repr", "use_color"]


def short_repr(report: Report) -> str:
    """One line: the model's class, its counts and the recurrent modules' statuses."""
    parts = [f"{report.total_params:,} params", f"{report.trainable_params:,} trainable"]
    if report.uninitialized:
        parts.append(f"{len(report.uninitialized):,} lazy tensors not counted")
    if report.recurrent:
        statuses: dict[str, int] = {}
        for e in report.recurrent:
            statuses[e.status] = statuses.get(e.status, 0) + 1
        states = ", ".join(f"{n:,} {s}" for s, n in statuses.items())
        if len(statuses) == 1:
            states = next(iter(statuses))
        parts.append(f"{len(report.recurrent):,} recurrent: {states}")
    else:
        parts.append("no recurrent modules")
    return f"Report({report.model_type}: {', '.join(parts)})"


def _html_table(table: Table) -> str:
    head = "".join(
        f'<th style="text-align: {align}">{html.escape(h)}</th>'
        for h, align in zip(table.headers, table.colalign, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align: {align}">{html.escape(cell)}</td>'
            for cell, align in zip(row, table.colalign, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(report: Report, **options: Any) -> str:
    """The report as one HTML fragment (tables and paragraphs), every text escaped."""
    out = ['<div class="torchlstm-params-report">']
    for part in report_parts(report, **options):
        if isinstance(part, Table):
            out.append(_html_table(part))
        else:
            out.append("<p>" + "<br>".join(html.escape(line) for line in part.lines) + "</p>")
    out.append("</div>")
    return "\n".join(out)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def report_markdown(report: Report, **options: Any) -> str:
    """The report as Markdown: pipe tables, and text lines with hard line breaks."""
    out = []
    for part in report_parts(report, **options):
        if isinstance(part, Table):
            align = {"left": ":---", "right": "---:", "center": ":---:"}
            lines = [
                "| " + " | ".join(_markdown_cell(h) for h in part.headers) + " |",
                "| " + " | ".join(align.get(a, "---") for a in part.colalign) + " |",
            ]
            lines.extend("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in part.rows)
            out.append("\n".join(lines))
        elif isinstance(part, Text):
            out.append("  \n".join(part.lines))
    return "\n\n".join(out)


def use_color(stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, no ``NO_COLOR``, no ``TERM=dumb``."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False
