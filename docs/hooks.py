"""mkdocs hook: the problem-code table is read from the library, so the page cannot drift from the code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- codes-table -->"


def _severity(sanity: Any, code: str) -> str:
    """The code's severity, where the library defines one; until then every problem fails ``check()``."""
    for name in ("SEVERITIES", "SEVERITY", "CODE_SEVERITIES"):
        table = getattr(sanity, name, None)
        if isinstance(table, dict) and code in table:
            return str(getattr(table[code], "value", table[code]))
    return "error"


def codes_table() -> str:
    root = str(Path(__file__).resolve().parent.parent)  # this checkout's package, not an installed one
    if root not in sys.path:
        sys.path.insert(0, root)
    from torchlstm_params import sanity

    lines = ["| Code | Severity | Meaning |", "| :--- | :--- | :--- |"]
    for code, meaning in sanity.CODES.items():
        lines.append(f"| `{code}` | {_severity(sanity, code)} | {meaning} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace(MARKER, codes_table()) if MARKER in markdown else markdown
