"""The ``>>>`` examples in the package's docstrings run as tests.

Collected here rather than with ``--doctest-modules`` so that a module needing an optional
extra (the Lightning integration) is skipped, naming what is missing, instead of breaking
collection of the whole suite.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import torchlstm_params

OPTIONAL = {"torchlstm_params.integrations.lightning": "lightning"}
MODULES = [
    "torchlstm_params",
    *sorted(
        info.name
        for info in pkgutil.walk_packages(torchlstm_params.__path__, prefix="torchlstm_params.")
        if info.name != "torchlstm_params.__main__"  # running it is the command line's job
    ),
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name], reason=f"{name} needs the {OPTIONAL[name]} extra")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"


def test_every_module_with_examples_is_collected() -> None:
    """The main modules do carry examples (a guard against this file testing nothing)."""
    counted = 0
    for name in ("torchlstm_params.formulas", "torchlstm_params.names", "torchlstm_params.summary"):
        module = importlib.import_module(name)
        counted += sum(len(t.examples) for t in doctest.DocTestFinder().find(module))
    assert counted >= 8
