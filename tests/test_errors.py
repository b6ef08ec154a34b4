"""The errors module: a leaf that imports nothing from its package, and the library's error classes."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import torchlstm_params
from torchlstm_params import errors
from torchlstm_params.errors import (
    CheckFailedError,
    CheckpointError,
    ConversionError,
    ForeignFileError,
    InvalidSettingsError,
    NotAModuleError,
    Problem,
    SpecError,
    TorchLstmParamsError,
)

SOURCE = Path(errors.__file__)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(level, module) of every import statement anywhere in the file, TYPE_CHECKING blocks included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_errors_imports_nothing_from_its_package():
    imports = imported_modules(ast.parse(SOURCE.read_text(encoding="utf-8")))
    assert imports, "errors.py imports something (dataclasses at least): the walk found no import at all"
    assert [(level, name) for level, name in imports if level > 0] == []  # no relative import
    roots = {name.split(".")[0] for _, name in imports}
    assert "torchlstm_params" not in roots
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots  # the standard library only


def test_the_import_walk_sees_every_kind_of_import():
    """The checker above would catch a relative import, a TYPE_CHECKING import and one inside a function."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .results import Report\n"
        "def f():\n    import torchlstm_params.sanity\n"
    )
    assert imported_modules(ast.parse(source)) == [(0, "typing"), (1, "results"), (0, "torchlstm_params.sanity")]


def test_errors_loads_on_its_own():
    """Loaded from its file alone, in a fresh interpreter: neither the package nor torch is imported."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('lone_errors', {str(SOURCE)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['lone_errors'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted(module.__all__))\n"
        "print(any(m.split('.')[0] in ('torchlstm_params', 'torch') for m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.splitlines() == [repr(sorted(errors.__all__)), "False"]


def test_every_error_derives_from_the_base_and_keeps_its_builtin_base():
    classes = [getattr(errors, name) for name in errors.__all__]
    exceptions = [cls for cls in classes if isinstance(cls, type) and issubclass(cls, BaseException)]
    assert set(exceptions) == {
        TorchLstmParamsError,
        InvalidSettingsError,
        NotAModuleError,
        SpecError,
        CheckpointError,
        CheckFailedError,
        ForeignFileError,
        ConversionError,
    }
    assert all(issubclass(cls, TorchLstmParamsError) for cls in exceptions)
    assert issubclass(InvalidSettingsError, ValueError) and issubclass(SpecError, ValueError)
    assert issubclass(ConversionError, ValueError)
    assert issubclass(NotAModuleError, TypeError)


def test_the_package_exports_the_errors_modules_classes():
    for name in errors.__all__:
        assert getattr(torchlstm_params, name) is getattr(errors, name)
    from torchlstm_params import checkpoint

    assert vars(checkpoint)["CheckpointError"] is CheckpointError  # one class, where every error lives


def test_problem_is_frozen_and_prints_code_path_and_message():
    problem = Problem("RNN_FROZEN", "encoder.rnn", "2 of 4 tensors have requires_grad=False")
    assert str(problem) == "[RNN_FROZEN] encoder.rnn: 2 of 4 tensors have requires_grad=False"
    assert str(Problem("PARAMS_MISMATCH", "", "expected 1")) == "[PARAMS_MISMATCH] (root): expected 1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.code = "OTHER"  # type: ignore[misc]
    assert not hasattr(problem, "__dict__")


def test_check_failed_error_lists_every_problem():
    problems = [Problem("PARAMS_MISMATCH", "", "expected 1, found 2"), Problem("NON_FINITE", "0", "weight holds NaN")]
    report = object()
    error = CheckFailedError(problems, report)
    assert str(error) == (
        "sanity check failed: 2 problems found\n"
        "  [PARAMS_MISMATCH] (root): expected 1, found 2\n"
        "  [NON_FINITE] 0: weight holds NaN"
    )
    assert error.codes == ("PARAMS_MISMATCH", "NON_FINITE")
    assert error.problems == tuple(problems) and error.report is report
    assert str(CheckFailedError(problems[:1], report)).startswith("sanity check failed: 1 problem found\n")
