"""The documentation says what the code does: fields documented, figures real, every code listed."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import io
import pydoc
import re
from pathlib import Path

import pytest

import torchlstm_params
from torchlstm_params import Report
from torchlstm_params.sanity import CODES

DOCS = Path(__file__).parent.parent / "docs"


def public_types() -> list[type]:
    out = []
    for name in torchlstm_params.__all__:
        obj = getattr(torchlstm_params, name)
        if inspect.isclass(obj) and (dataclasses.is_dataclass(obj) or hasattr(obj, "_fields")):
            out.append(obj)
    return out


def fields_of(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(cls._fields)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", public_types(), ids=lambda cls: cls.__name__)
def test_every_field_of_a_public_type_is_documented(cls: type):
    doc = inspect.getdoc(cls) or ""
    assert "Attributes:" in doc
    documented = re.findall(r"^    (\w+): \S", doc.split("Attributes:", 1)[1], re.M)
    assert documented == fields_of(cls)  # every field, in order, each with a description


def test_help_report_is_useful():
    text = pydoc.render_doc(Report, renderer=pydoc.TextDoc())
    for word in ("render(explain=True)", "plot()", "to_dict()", "total_params: unique parameter elements"):
        assert word in text


def test_the_codes_page_lists_every_code_from_the_library():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = hooks.on_page_markdown((DOCS / "codes.md").read_text(encoding="utf-8"))
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+) \|$", page, re.M)
    assert [(code, meaning) for code, _, meaning in rows] == list(CODES.items())
    assert {severity for _, severity, _ in rows} <= {"error", "warning"}


def test_getting_started_shows_the_real_repr():
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    code = re.search(r"## A first summary\n\n```python\n(.*?)```", page, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code.group(1), "getting-started.md", "exec"), namespace)
    assert repr(namespace["report"]) in page


def test_every_page_is_in_the_navigation():
    nav = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert pages and all(f": {name}" in nav for name in pages)
