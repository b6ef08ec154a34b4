"""The README's example prints exactly the output the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import torchlstm_params
from tests.helpers import KERAS_NUMPY2_WARNING, import_keras
from torchlstm_params.cli import main

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


def _blocks(section: str, kind: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{kind}\n(.*?)```", body, re.S)


def _versions(text: str) -> str:
    """The figures without the versions that move with installs (Keras, the exporter)."""
    text = re.sub(r"Keras \d+\.\d+\.\d+\)", "Keras X)", text)
    return re.sub(r"\(pytorch [^,]+, opset \d+\)", "(pytorch X, opset X)", text)


@pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)
def test_from_keras_section_is_a_real_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("h5py", reason="h5py is not installed: pip install 'torchlstm_params[keras]'")
    import_keras()
    save, convert = _blocks("From Keras", "python")
    shown_cli, shown_conversion = _blocks("From Keras", "text")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(save, "README.md", "exec"), namespace)
    assert main(["seed.keras", "--check"]) == 0
    assert _versions(capsys.readouterr().out) == _versions(shown_cli)
    exec(compile(convert, "README.md", "exec"), namespace)
    assert capsys.readouterr().out == shown_conversion


@pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning",
    "ignore:The feature will be removed. Please remove usage of this function:DeprecationWarning:torch.onnx",
    "ignore:Converting a tensor to a Python boolean might cause the trace to be incorrect:torch.jit.TracerWarning",
    "ignore:Exporting a model to ONNX with a batch_size other than 1:UserWarning",
)
def test_onnx_section_is_a_real_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'torchlstm_params[onnx]'")
    import torch

    (shown,) = _blocks("ONNX files", "text")
    monkeypatch.chdir(tmp_path)
    module = torch.nn.GRU(10, 20, num_layers=2, bidirectional=True).eval()
    torch.onnx.export(module, (torch.randn(5, 1, 10),), "gru.onnx", dynamo=False)
    assert main(["gru.onnx", "--check"]) == 0
    assert _versions(capsys.readouterr().out) == _versions(shown)


def api_names(text: str) -> list[str]:
    """The name each bullet of the README's "## API" section starts with: - `name(...)` or - `name`."""
    section = re.search(r"^## API\n(.*?)^## ", text, re.S | re.M)
    assert section is not None, "README lost its API section"
    return re.findall(r"^- `([A-Za-z_][A-Za-z0-9_]*)", section.group(1), re.M)


def test_the_api_list_is_exactly_all():
    names = api_names(README.read_text(encoding="utf-8"))
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert sorted(names) == sorted(torchlstm_params.__all__)


def test_api_names_are_read_from_bullets_only():
    text = "## API\n\n- `summarize(model) -> Report`: `total_params`\n  - `nested`\n- `CODES`: codes\n## Next\n- `x`\n"
    assert api_names(text) == ["summarize", "CODES"]


def test_readme_lists_every_code_with_its_severity_in_one_table():
    from torchlstm_params.sanity import SEVERITIES

    text = README.read_text(encoding="utf-8")
    tables = re.findall(r"\| code \| severity \| meaning \|\n\|---\|---\|---\|\n((?:\|.*\|\n)+)", text)
    assert len(tables) == 1, "the README has one table of codes and severities"
    rows = [line.split("|")[1:3] for line in tables[0].splitlines()]
    assert {code.strip().strip("`"): severity.strip() for code, severity in rows} == dict(SEVERITIES)
    assert len(rows) == len(SEVERITIES)


def test_readme_lists_every_exit_code():
    from torchlstm_params.cli import EXIT_CODES

    text = README.read_text(encoding="utf-8")
    table = re.search(r"Exit codes:\n\n\| code \| meaning \|\n\|---\|---\|\n((?:\|.*\|\n)+)", text)
    assert table is not None
    assert [int(line.split("|")[1]) for line in table.group(1).splitlines()] == list(EXIT_CODES)


def test_readme_lists_every_third_party_class_in_its_table():
    from torchlstm_params.thirdparty import CLASSES

    text = README.read_text(encoding="utf-8")
    table = re.search(r"\| library \| class \|[^\n]*\n\|[-|]+\|\n((?:\|.*\|\n)+)", text)
    assert table is not None, "README lost its table of third-party layers"
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.group(1).splitlines()]
    listed = {
        (library, name.rpartition(".")[2])
        for library, classes, *_ in rows
        for name in re.findall(r"`([\w.]+)`", classes)
    }
    missing = [c.origin for c in CLASSES if (c.library, c.qualname) not in listed]
    assert missing == [], f"the README's third-party table does not list {missing}"
