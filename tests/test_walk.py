"""The iterative walk against torch's own named_modules: order, aliases, cycles, depth, wrappers."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from hypothesis import HealthCheck, given, settings
from torch import nn

from tests.helpers import WalkCountedModel, free_port, numel
from tests.strategies import Graph, module_graphs
from torchlstm_params import summarize
from torchlstm_params.walk import Tree, unique_parameters, unwrap, walk


def paths_of(tree: Tree) -> list[str]:
    return [tree.path(i) for i in range(len(tree))]


def aliases_of(tree: Tree) -> list[tuple[str, int, int]]:
    return [(tree.alias_path(a), a.parent, a.target) for a in tree.aliases]


def expected_aliases(tree: Tree) -> list[tuple[str, int, int]]:
    """Every registration (torch's ``_modules`` of each visited module) that is not a visited path."""
    paths = paths_of(tree)
    visited = set(paths)
    index = {id(m): i for i, m in enumerate(tree.modules)}
    out = []
    for i, (path, module) in enumerate(zip(paths, tree.modules, strict=True)):
        for name, child in module._modules.items():
            registration = f"{path}.{name}" if path else name
            if child is not None and registration not in visited:
                out.append((registration, i, index[id(child)]))
    return sorted(out)


def assert_tree_is_torchs(model: nn.Module) -> Tree:
    """``walk(model)`` agrees with ``named_modules()`` and with the paths' own structure."""
    tree = walk(model)
    named = list(model.named_modules())  # torch: pre-order, each module once, at its first path
    paths = paths_of(tree)
    assert paths == [path for path, _ in named]
    assert [id(m) for m in tree.modules] == [id(m) for _, m in named]
    n = len(tree)
    for i, path in enumerate(paths):
        assert tree.depths[i] == (path.count(".") + 1 if path else 0)
        if i == 0:
            assert tree.parents[i] == -1
        else:
            assert paths[tree.parents[i]] == path.rpartition(".")[0]
        below = {j for j in range(n) if i == 0 or paths[j].startswith(path + ".")} - {i}
        assert set(range(i + 1, tree.ends[i])) == below, path
    assert sorted(aliases_of(tree)) == expected_aliases(tree)
    assert tree.locate(paths) == {path: i for i, path in enumerate(paths)}
    assert tree.wrappers == []
    return tree


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.encoder = nn.LSTM(4, 6, num_layers=2, bidirectional=True)
        self.decoder = nn.ModuleDict({"cell": nn.GRUCell(12, 6), "heads": nn.ModuleList([nn.Linear(6, 3)] * 1)})
        self.norm = nn.Sequential(nn.LayerNorm(6), nn.ReLU(), nn.Sequential(nn.Dropout(), nn.Identity()))


def test_order_equals_named_modules_on_a_normal_tree():
    model = Seq2Seq()
    model.register_module("empty", None)  # a None registration is skipped, as torch skips it
    tree = assert_tree_is_torchs(model)
    assert tree.aliases == []
    assert paths_of(tree)[:4] == ["", "embed", "encoder", "decoder"]


def test_a_module_registered_twice_is_visited_once_and_kept_as_an_alias():
    shared = nn.GRU(4, 4)
    model = nn.Module()
    model.a = nn.Sequential(shared, nn.Linear(4, 4))
    model.b = nn.Sequential(nn.Linear(4, 4), shared)
    model.c = model.a  # a whole subtree again
    tree = assert_tree_is_torchs(model)
    index = paths_of(tree).index
    assert aliases_of(tree) == [("b.1", index("b"), index("a.0")), ("c", 0, index("a"))]


def test_one_module_twice_under_one_parent():
    cell = nn.RNNCell(2, 2)
    model = nn.Sequential(cell, nn.Tanh(), cell)
    tree = assert_tree_is_torchs(model)
    assert aliases_of(tree) == [("2", 0, 1)]


def test_cycles_terminate():
    outer = nn.Sequential(nn.LSTM(2, 3))
    inner = nn.Sequential(nn.Linear(3, 3))
    outer.add_module("inner", inner)
    inner.add_module("back", outer)  # outer -> inner -> outer
    inner.add_module("self", inner)  # inner -> inner
    tree = assert_tree_is_torchs(outer)
    assert paths_of(tree) == ["", "0", "inner", "inner.0"]
    assert aliases_of(tree) == [("inner.back", 2, 0), ("inner.self", 2, 2)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(module_graphs())
def test_random_graphs_walk_as_named_modules(graph: Graph):
    model = graph.root
    tree = assert_tree_is_torchs(model)
    names = [path + "." + name if path else name for path, name, _ in unique_parameters(tree)]
    assert names == [name for name, _ in model.named_parameters()]  # torch's: each tensor once, first name


def test_five_thousand_deep_chain():
    chain: list[nn.Module] = [nn.LSTM(2, 3)]
    for _ in range(5_000):
        chain.append(nn.Sequential(chain[-1]))
    chain.reverse()  # chain[k] sits at depth k
    root = chain[0]
    with pytest.raises(RecursionError):
        list(root.named_modules())  # torch's recursive walk gives up
    tree = walk(root)
    assert [id(m) for m in tree.modules] == [id(m) for m in chain]
    assert paths_of(tree) == [".".join(["0"] * k) for k in range(5_001)]
    assert tree.depths == list(range(5_001))
    assert tree.parents == list(range(-1, 5_000))
    assert tree.ends == [5_001] * 5_001
    assert [name for _, name, _ in unique_parameters(tree)] == [n for n, _ in chain[-1].named_parameters()]


def test_shared_tensors_are_yielded_once_at_their_first_name():
    model = nn.Sequential(nn.Embedding(5, 3), nn.GRU(3, 3), nn.Linear(3, 5))
    model[2].weight = model[0].weight
    model[1].weight_hh_l0 = model[1].weight_ih_l0
    found = [(path, name, p) for path, name, p in unique_parameters(walk(model))]
    assert [(f"{path}.{name}", id(p)) for path, name, p in found] == [
        (name, id(p)) for name, p in model.named_parameters()
    ]
    assert sum(p.numel() for _, _, p in found) == numel(model)


# --- rename-only wrappers: looked through, named once ---


def test_unwrap_knows_only_rename_only_wrappers():
    inner = nn.LSTM(2, 2)
    assert unwrap(nn.DataParallel(inner)) == ("DataParallel", inner)
    assert unwrap(inner) is None
    assert unwrap(nn.Sequential(inner)) is None


# Importing torch._dynamo (on first torch.compile) trips a torch.jit deprecation notice inside torch.
_DYNAMO_IMPORT = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")


@_DYNAMO_IMPORT
def test_torch_compile_wrapper_is_seen_through():
    model = nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 4))
    compiled = torch.compile(model)
    tree = walk(compiled)  # type: ignore[arg-type]
    assert [(str(node), label) for node, label in tree.wrappers] == [("", "torch.compile (OptimizedModule)")]
    assert [id(m) for m in tree.modules] == [id(m) for m in model.modules()]
    report = summarize(compiled)  # type: ignore[arg-type]
    assert report.wrappers == ("torch.compile (OptimizedModule)",)
    assert [e.name for e in report.recurrent] == ["1"]
    assert [r.name for r in report.rows] == ["", "0", "1"]
    assert report.total_params == numel(model)
    assert str(report).startswith("Wrapped by torch.compile (OptimizedModule); names are shown without")


@_DYNAMO_IMPORT
def test_data_parallel_and_nested_compile():
    inner = nn.Sequential(nn.GRU(2, 3))
    model = nn.Module()
    model.encoder = torch.compile(inner)  # type: ignore[assignment]
    report = summarize(nn.DataParallel(model))
    assert report.wrappers == ("DataParallel", "encoder: torch.compile (OptimizedModule)")
    assert [e.name for e in report.recurrent] == ["encoder.0"]
    assert report.total_params == numel(inner)


def test_distributed_data_parallel_single_rank_gloo():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        model = nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 2))
        report = summarize(nn.parallel.DistributedDataParallel(model))
        assert report.wrappers == ("DistributedDataParallel",)
        assert [e.name for e in report.recurrent] == ["0"]
        assert report.total_params == numel(model)
    finally:
        dist.destroy_process_group()


# --- the walk counter the one-walk-per-call tests rely on ---


def test_walk_counter_sees_each_traversal_once_and_nothing_else():
    model = WalkCountedModel()
    model.record_walks()
    numel(model)
    list(model.modules())
    model.state_dict()
    assert model.walks == ["module.py:named_modules", "module.py:named_modules", "module.py:state_dict"]
    model.record_walks()
    model(torch.zeros(3, 2, dtype=torch.long))  # a forward reaches its submodules through __dict__: no walk
    assert model.walks == []
    walk(model)
    walk(model)
    assert model.walks == ["walk.py:walk", "walk.py:walk"]
    model.stop_recording()
    walk(model)
    assert not hasattr(model, "walks")


# --- paths as links: spelled out on demand ---


def test_paths_are_spelled_from_names_under_parents():
    model = Seq2Seq()
    tree = walk(model)
    named = [path for path, _ in model.named_modules()]
    assert [tree.path(i) for i in range(len(tree))] == named
    assert tree.names == [path.rpartition(".")[2] for path in named]  # each module's name under its parent


def test_locate_follows_names_and_leaves_out_what_is_not_there():
    tree = walk(Seq2Seq())
    paths = [tree.path(i) for i in range(len(tree))]
    wanted = ["", "decoder.heads.0", "norm.2.1", "decoder.cell", "nope", "decoder.nope", "norm.2.1.x"]
    assert tree.locate(wanted) == {p: paths.index(p) for p in wanted if p in paths}
    assert tree.locate([]) == {}


def test_a_deep_tree_holds_one_name_per_module_not_its_dotted_paths():
    chain: nn.Module = nn.Linear(2, 2)
    for _ in range(20_000):
        chain = nn.Sequential(chain)
    tree = walk(chain)
    assert tree.names == ["", *["0"] * 20_000]  # the name under the parent, not the path
    assert tree.parents == list(range(-1, 20_000))
    assert tree.path(20_000) == ".".join(["0"] * 20_000)
