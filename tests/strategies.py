"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st
from torch import nn

from torchlstm_params.formulas import RNNSpec, make_spec

FULL_KINDS = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
CELL_KINDS = ("LSTMCell", "GRUCell", "RNNCell")


@dataclass(frozen=True)
class Config:
    kind: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    bidirectional: bool = False
    proj_size: int = 0

    def spec(self) -> RNNSpec:
        """The library's validated spec for these settings."""
        return make_spec(
            self.kind,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.bias,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
        )

    def build(self) -> nn.Module:
        """The real torch module (on the current default device)."""
        i, h = self.input_size, self.hidden_size
        if self.kind == "LSTMCell":
            return nn.LSTMCell(i, h, bias=self.bias)
        if self.kind == "GRUCell":
            return nn.GRUCell(i, h, bias=self.bias)
        if self.kind == "RNNCell":
            return nn.RNNCell(i, h, bias=self.bias)
        common = {"num_layers": self.num_layers, "bias": self.bias, "bidirectional": self.bidirectional}
        if self.kind == "LSTM":
            return nn.LSTM(i, h, proj_size=self.proj_size, **common)
        if self.kind == "GRU":
            return nn.GRU(i, h, **common)
        return nn.RNN(i, h, nonlinearity="relu" if self.kind == "RNN_RELU" else "tanh", **common)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    kind = draw(st.sampled_from(FULL_KINDS + CELL_KINDS))
    input_size = draw(st.integers(1, 64))
    hidden_size = draw(st.integers(1, 64))
    if kind in CELL_KINDS:
        return Config(kind, input_size, hidden_size, bias=draw(st.booleans()))
    proj = draw(st.integers(0, hidden_size - 1)) if kind == "LSTM" and hidden_size > 1 else 0
    return Config(
        kind,
        input_size,
        hidden_size,
        num_layers=draw(st.integers(1, 4)),
        bias=draw(st.booleans()),
        bidirectional=draw(st.booleans()),
        proj_size=proj,
    )


@dataclass(frozen=True)
class Graph:
    """A module graph and the steps that built it (its repr: a cyclic module's own repr recurses forever)."""

    root: nn.Module
    steps: tuple[str, ...]

    def __repr__(self) -> str:
        return "Graph(" + "; ".join(self.steps) + ")"


@st.composite
def module_graphs(draw: st.DrawFn, max_extra: int = 6) -> Graph:
    """A random tree of real modules plus up to ``max_extra`` extra registrations (shared subtrees,
    cycles: a module registered under one of its own descendants), None slots, tied Linear
    weights, frozen tensors and a second dtype."""
    n = draw(st.integers(1, 24))
    kinds: dict[str, Callable[[], nn.Module]] = {
        "Module": nn.Module,
        "Linear": lambda: nn.Linear(1, 1),
        "ReLU": nn.ReLU,
        "GRU": lambda: nn.GRU(1, 1),
        "Sequential": nn.Sequential,
    }
    chosen = [draw(st.sampled_from(sorted(kinds))) for _ in range(n)]
    modules = [kinds[kind]() for kind in chosen]
    steps = [f"m{j} = {kind}" for j, kind in enumerate(chosen)]
    names = st.sampled_from(["0", "1", "2", "a", "b", "rnn", "weight", "x_y"])

    def register(parent: int, name: str, child: int | None) -> None:
        modules[parent].register_module(name, None if child is None else modules[child])
        steps.append(f"m{parent}.{name} = {'None' if child is None else f'm{child}'}")

    for j in range(1, n):
        register(draw(st.integers(0, j - 1)), draw(names) + f"_{j}", j)  # suffix: each child its own slot
    for k in range(draw(st.integers(0, max_extra))):  # any module, ancestors included
        register(draw(st.integers(0, n - 1)), f"extra{k}", draw(st.integers(0, n - 1)))
    if draw(st.booleans()):
        register(draw(st.integers(0, n - 1)), "none", None)
    linears = [j for j, m in enumerate(modules) if isinstance(m, nn.Linear)]
    if len(linears) > 1:
        for _ in range(draw(st.integers(0, 3))):
            a, b = draw(st.sampled_from(linears)), draw(st.sampled_from(linears))
            modules[b].weight = modules[a].weight
            steps.append(f"m{b}.weight = m{a}.weight")
    for j, module in enumerate(modules):
        for name, p in list(module._parameters.items()):
            if p is None or draw(st.integers(0, 4)) != 0:
                continue
            if draw(st.booleans()):
                p.requires_grad_(False)
                steps.append(f"m{j}.{name} frozen")
            else:
                module._parameters[name] = nn.Parameter(p.detach().double(), requires_grad=p.requires_grad)
                steps.append(f"m{j}.{name} float64")
    return Graph(modules[0], tuple(steps))


# --- random module graphs: shared modules (registered under several paths, cycles included) and shared tensors ---

#: Shapes of the tensor pool: the recurrent modules' own shapes among them, so that a pool tensor can take a
#: recurrent tensor's place (a tie across modules, or inside one).
POOL_SHAPES = ((9, 2), (9, 3), (9,), (12, 2), (12, 3), (12,), (2,), (3, 4))
#: Module kinds a graph node can be: a plain container, or one of two small recurrent modules.
NODE_KINDS = ("plain", "plain", "plain", "GRU", "LSTMCell")


@dataclass(frozen=True)
class ModuleGraph:
    """Modules 0..n-1 (0 is the root), registrations between them, and a pool of tensors some of them hold.

    Dense on purpose: 3 to 8 modules and up to 3 registrations per module make modules registered under
    several paths, inside modules that are themselves registered twice, common (about 1 graph in 80 got a
    wrong row before issue 17's fix, so 500 examples find such a bug all but surely).
    """

    kinds: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]  # (parent, child): child registered in parent (under "m<edge index>")
    pool: tuple[tuple[tuple[int, ...], bool], ...]  # (shape, requires_grad) of each shared tensor
    holds: tuple[tuple[int, int], ...]  # (module, pool tensor): the module registers it

    def build(self) -> nn.Module:
        """The real modules, wired as drawn (tensors on the meta device: no data)."""
        import torch

        with torch.device("meta"):
            modules = [
                nn.GRU(2, 3) if kind == "GRU" else nn.LSTMCell(2, 3) if kind == "LSTMCell" else nn.Module()
                for kind in self.kinds
            ]
            tensors = [nn.Parameter(torch.empty(shape), requires_grad=grad) for shape, grad in self.pool]
            for i, module in enumerate(modules):  # a tensor of its own, so that every module shows in the counts
                if not module._parameters:
                    module.register_parameter("own", nn.Parameter(torch.empty(i + 1), requires_grad=i % 3 != 0))
        for k, (i, j) in enumerate(self.holds):
            target, tensor = modules[i], tensors[j]
            # take a recurrent tensor's place where one has the shape, else register it under a name of its own
            same = [n for n, p in target._parameters.items() if p is not None and p.shape == tensor.shape]
            target.register_parameter(same[0] if same and k % 2 == 0 else f"t{k}", tensor)
        for k, (parent, child) in enumerate(self.edges):
            modules[parent].add_module(f"m{k}", modules[child])
        return modules[0]


@st.composite
def module_dags(draw: st.DrawFn, max_modules: int = 8) -> ModuleGraph:
    """Dense random module graphs with shared modules and a pool of shared tensors (issue 17's DAG fuzz)."""
    n = draw(st.integers(3, max_modules))
    kinds = tuple(draw(st.sampled_from(NODE_KINDS)) for _ in range(n))
    forward = st.integers(0, n - 2).flatmap(lambda parent: st.tuples(st.just(parent), st.integers(parent + 1, n - 1)))
    edges = draw(st.lists(forward, min_size=n - 1, max_size=3 * n))  # dense: many modules registered twice
    if draw(st.integers(0, 9)) == 0:  # now and then a cycle: a module registers itself or an ancestor
        edges += draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=2))
    pool = draw(st.lists(st.tuples(st.sampled_from(POOL_SHAPES), st.booleans()), min_size=1, max_size=5))
    holds = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, len(pool) - 1)), max_size=10))
    return ModuleGraph(kinds, tuple(edges), tuple(pool), tuple(holds))
