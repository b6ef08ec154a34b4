"""Per-module counts against torch's own ``module.parameters()`` (which counts each tensor once)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from torch import nn

from tests.strategies import ModuleGraph, module_graphs
from torchlstm_params import summarize


def torch_counts(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())  # torch's own walk: every tensor once, every module once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def test_an_alias_inside_an_aliased_module_is_counted():
    """The issue's case: c holds b, b holds lin, and lin is registered first as a: c holds lin's 8 elements."""
    lin = nn.Linear(2, 4, bias=False)
    b = nn.Sequential(lin)
    c = nn.Sequential(b)
    root = nn.Module()
    root.a, root.b, root.c = lin, b, c
    rows = {row.name: row.params for row in summarize(root).rows}
    assert rows == {"": 8, "a": 8, "b": 8, "c": 8}
    assert torch_counts(c) == (8, 8)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(module_graphs())
def test_every_row_is_torchs_count_of_that_module(graph: ModuleGraph):
    """Random module graphs (shared modules, cycles, tensors shared across and inside modules): every row's
    params and trainable params are what ``module.parameters()`` of that module holds."""
    root = graph.build()
    report = summarize(root)
    assert [row.name for row in report.rows] == [name for name, _ in root.named_modules()]
    for row in report.rows:
        assert (row.params, row.trainable_params) == torch_counts(root.get_submodule(row.name)), row.name
    assert (report.total_params, report.trainable_params) == torch_counts(root)
    for entry in report.recurrent:
        assert entry.tensor_params == torch_counts(root.get_submodule(entry.name))[0], entry.name
