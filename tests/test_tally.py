"""tally(): per-subtree sums, dtypes, sharing and buffers against torch's own per-module sums."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from tests.helpers import lstm_count, numel
from tests.strategies import Config, Graph, ModuleGraph, configs, module_dags, module_graphs
from torchlstm_params import summarize
from torchlstm_params.detect import detect
from torchlstm_params.formulas import Formula
from torchlstm_params.recurrence import formula_of
from torchlstm_params.tally import Tally, tally
from torchlstm_params.walk import Tree, walk


def formulas_of(tree: Tree) -> dict[int, Formula]:
    """What summarize hands tally: each recurrent node's formula."""
    out = {}
    for i, module in enumerate(tree.modules):
        detected = detect(module)
        if detected is not None:
            out[i] = formula_of(detected.spec)
    return out


def lazy(p: torch.Tensor) -> bool:
    return isinstance(p, nn.parameter.UninitializedParameter)


def assert_counts_are_torchs(tree: Tree, counts: Tally) -> None:
    """Each node's subtree sums equal torch's parameters() of that module (each tensor once)."""
    for i, module in enumerate(tree.modules):
        params = list(module.parameters())
        assert counts.params[i] == sum(p.numel() for p in params if not lazy(p)), tree.path(i)
        assert counts.trainable[i] == sum(p.numel() for p in params if not lazy(p) and p.requires_grad)
        assert counts.lazy[i] == sum(1 for p in params if lazy(p))
    root = [p for p in tree.modules[0].parameters() if not lazy(p)]
    by_dtype: dict[torch.dtype, int] = {}
    trainable_by_dtype: dict[torch.dtype, int] = {}
    for p in root:
        by_dtype[p.dtype] = by_dtype.get(p.dtype, 0) + p.numel()
        trainable_by_dtype[p.dtype] = trainable_by_dtype.get(p.dtype, 0) + (p.numel() if p.requires_grad else 0)
    assert counts.by_dtype == by_dtype
    assert counts.trainable_by_dtype == trainable_by_dtype
    buffers = [b for b in tree.modules[0].buffers()]
    assert counts.buffer_count == len(buffers)
    sized = [b for b in buffers if not isinstance(b, nn.parameter.UninitializedBuffer)]
    assert counts.buffer_elements == sum(b.numel() for b in sized)
    assert counts.buffer_bytes == sum(b.numel() * b.element_size() for b in sized)


# Any number of extra registrations: aliases inside other aliases' targets included (issue 17, item 1).
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(module_graphs())
def test_subtree_sums_equal_torchs_on_random_graphs(graph: Graph):
    """A shared subtree or a cycle, tied weights, frozen tensors, two dtypes: each node as torch counts it."""
    tree = walk(graph.root)
    with_formulas = tally(tree, formulas_of(tree))
    assert_counts_are_torchs(tree, with_formulas)
    without = tally(tree, {})  # the formulas only take a shortcut: the counts are the same
    assert (without.params, without.trainable, without.lazy, without.by_dtype) == (
        with_formulas.params,
        with_formulas.trainable,
        with_formulas.lazy,
        with_formulas.by_dtype,
    )


def test_tied_weights_are_named_and_counted_once_per_subtree():
    model = nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 8), nn.Sequential(nn.Linear(8, 50)))
    model[2][0].weight = model[0].weight  # type: ignore[index]
    model[1].weight_hh_l0 = model[1].weight_ih_l0  # a tie inside a recurrent module
    tree = walk(model)
    counts = tally(tree, formulas_of(tree))
    assert_counts_are_torchs(tree, counts)
    torch_groups: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        torch_groups.setdefault(id(p), []).append(name)
    expected = sorted((names, key) for key, names in torch_groups.items() if len(names) > 1)
    assert sorted((names, id(t)) for names, t in counts.shared_names) == expected
    assert len(expected) == 2
    assert counts.params[0] == numel(model) == 50 * 8 + lstm_count(8, 8) - 8 * 32 + 50


def test_an_aliased_module_counts_in_each_subtree_that_holds_it():
    shared = nn.GRU(4, 4)
    model = nn.Module()
    model.a = nn.Sequential(shared, nn.Linear(4, 4))
    model.b = nn.Sequential(nn.Linear(4, 4), shared)
    tree = walk(model)
    assert [tree.alias_path(a) for a in tree.aliases] == ["b.1"]
    counts = tally(tree, formulas_of(tree))
    assert_counts_are_torchs(tree, counts)
    gru = 3 * 4 * (4 + 4) + 2 * 3 * 4
    index = [tree.path(i) for i in range(len(tree))].index
    assert counts.params[index("a")] == counts.params[index("b")] == gru + 20
    assert counts.params[0] == gru + 40


def test_recurrent_nodes_whose_tensors_are_the_formulas_are_exact():
    good, bad, frozen = nn.LSTM(3, 4, num_layers=2), nn.GRU(3, 4), nn.RNN(3, 4)
    bad.weight_hh_l0 = nn.Parameter(torch.zeros(12, 5))
    frozen.weight_ih_l0.requires_grad_(False)
    half = nn.GRU(3, 4).to(torch.float16)
    model = nn.Sequential(good, bad, frozen, half, nn.Linear(4, 4))
    tree = walk(model)
    counts = tally(tree, formulas_of(tree))
    assert counts.exact == {1, 3, 4}  # bad's shapes are not its formula's
    assert_counts_are_torchs(tree, counts)
    assert counts.params[1] == numel(good) == lstm_count(3, 4, 2)
    assert counts.trainable[3] == numel(frozen) - 4 * 3
    assert counts.by_dtype[torch.float16] == numel(half)


def test_lazy_tensors_and_buffers():
    model = nn.Sequential(nn.LSTM(4, 6), nn.LazyLinear(3), nn.BatchNorm1d(6), nn.LazyBatchNorm1d())
    model.add_module("again", model[2])  # a shared buffer owner: its buffers once
    tree = walk(model)
    counts = tally(tree, formulas_of(tree))
    assert_counts_are_torchs(tree, counts)
    assert counts.uninitialized == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert counts.lazy[0] == 4
    assert counts.buffer_count == 6  # BatchNorm1d: 3; the lazy one: 3, two of them uninitialized
    assert counts.buffer_elements == 6 + 6 + 1 + 1  # running mean and var, two num_batches_tracked


DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.data())
def test_trainable_and_dtype_figures_follow_each_tensor(config: Config, data: st.DataObject):
    """Frozen tensors and mixed dtypes inside a recurrent module: every figure equals torch's own sums."""
    with torch.device("meta"):
        module = config.build()
    for name, p in list(module.named_parameters()):
        p.requires_grad_(data.draw(st.booleans(), label=f"{name} trainable"))
        dtype = data.draw(st.sampled_from(DTYPES), label=f"{name} dtype")
        setattr(module, name, torch.nn.Parameter(p.to(dtype), requires_grad=p.requires_grad))
    tree = walk(module)
    assert_counts_are_torchs(tree, tally(tree, formulas_of(tree)))
    report = summarize(module)
    params = list(module.parameters())
    assert report.total_params == sum(p.numel() for p in params)
    assert report.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    by_dtype: dict[str, int] = {}
    for p in params:
        key = str(p.dtype).removeprefix("torch.")
        by_dtype[key] = by_dtype.get(key, 0) + p.numel() * p.element_size()
    assert report.bytes_by_dtype == by_dtype
    (entry,) = report.recurrent
    assert entry.matches


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
@given(module_dags())
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
