"""The README's example prints exactly the output the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_example_output_is_real():
    text = README.read_text(encoding="utf-8")
    example = re.search(r"## Example\n\n```python\n(.*?)```\n\nOutput:\n\n```text\n(.*?)```", text, re.S)
    assert example is not None, "README lost its Example section"
    code, shown = example.groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == shown


def test_ci_reads_the_readme_test_command():
    text = README.read_text(encoding="utf-8")
    command = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", text)
    assert command is not None
    assert "python -m pytest" in command.group(1)
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci
