"""``summarize(model)``: one static pass over a model, returned as frozen data.

No forward pass, no hooks, no tensor data read, no change to the model:
names, shapes, dtypes and ``requires_grad`` flags are all it looks at, so a
meta-device model summarizes as fast as any other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .crosscheck import TensorFinding, crosscheck
from .detect import detect
from .errors import InvalidSettingsError, NotAModuleError
from .formulas import (
    LayerCount,
    RNNSpec,
    TensorSpec,
    breakdown,
    derivation,
    keras_count,
    keras_derivation,
    pytorch_count,
)
from .walk import Tree, walk

__all__ = [
    "DtypeUsage",
    "ModuleAlias",
    "ModuleRow",
    "RecurrentEntry",
    "Report",
    "SharedTensor",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class ModuleRow:
    """One module of the tree. Counts cover its whole subtree, shared tensors once."""

    name: str
    type: str
    depth: int
    params: int
    trainable_params: int
    uninitialized: int  # lazy tensors in the subtree, not counted in params
    recurrent: bool


@dataclass(frozen=True, slots=True)
class RecurrentEntry:
    """A recurrent module: its settings, the formula's count and the tensors' count."""

    name: str
    type: str
    kind: str
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    proj_size: int
    bias: bool
    dropout: float
    batch_first: bool
    formula_params: int
    tensor_params: int
    matches: bool
    findings: tuple[TensorFinding, ...]
    breakdown: tuple[LayerCount, ...]
    derivation: str
    keras_params: int | None  # None where Keras has no equivalent (proj_size)
    keras_derivation: str | None

    @property
    def status(self) -> str:
        return "ok" if self.matches else "mismatch"

    @property
    def spec(self) -> RNNSpec:
        return RNNSpec(
            self.kind,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bias,
            self.bidirectional,
            self.proj_size,
        )


@dataclass(frozen=True, slots=True)
class SharedTensor:
    """One tensor registered under several names (tied weights); counted once."""

    names: tuple[str, ...]
    numel: int | None  # None when uninitialized


@dataclass(frozen=True, slots=True)
class ModuleAlias:
    """A module registered again under another path; visited once, at ``same_as``."""

    path: str
    same_as: str


@dataclass(frozen=True, slots=True)
class DtypeUsage:
    """Unique parameter elements and bytes of one dtype."""

    dtype: str
    params: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``summarize`` found. ``str(report)`` renders tables; ``to_dict()`` is JSON-ready."""

    model_type: str
    total_params: int
    trainable_params: int
    non_trainable_params: int
    uninitialized: tuple[str, ...]  # names of lazy parameters, not in any count
    param_bytes: int
    dtypes: tuple[DtypeUsage, ...]
    buffer_count: int
    buffer_elements: int
    buffer_bytes: int
    rows: tuple[ModuleRow, ...]
    recurrent: tuple[RecurrentEntry, ...]
    shared: tuple[SharedTensor, ...]
    aliases: tuple[ModuleAlias, ...]
    max_depth: int | None

    @property
    def matches(self) -> bool:
        """True when every recurrent module's tensors are exactly its formula's."""
        return all(e.matches for e in self.recurrent)

    @property
    def bytes_by_dtype(self) -> dict[str, int]:
        return {d.dtype: d.bytes for d in self.dtypes}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, ints, strings): ``json.dumps`` accepts it."""
        out = _plain(self)
        assert isinstance(out, dict)
        out["matches"] = self.matches
        for entry, raw in zip(self.recurrent, out["recurrent"], strict=True):
            raw["status"] = entry.status
        return out

    def render(self, tablefmt: str = "simple", *, keras: bool = False, explain: bool = True) -> str:
        """The report as text tables in any ``tabulate`` format."""
        from .render import render_report

        return render_report(self, tablefmt=tablefmt, keras=keras, explain=explain)

    def __str__(self) -> str:
        return self.render()


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class _Formula:
    """Everything about a spec that does not depend on the module: computed once per summarize."""

    params: int
    layers: tuple[LayerCount, ...]
    expected: tuple[TensorSpec, ...]
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    derivation: str
    keras_params: int | None
    keras_derivation: str | None


def _formula(spec: RNNSpec) -> _Formula:
    layers = breakdown(spec)
    expected = tuple(t for layer in layers for t in layer.tensors)
    keras = None if spec.proj_size else keras_count(spec)
    return _Formula(
        pytorch_count(spec),
        layers,
        expected,
        tuple(t.name for t in expected),
        tuple(t.shape for t in expected),
        derivation(spec),
        keras,
        None if keras is None else keras_derivation(spec),
    )


def _recurrent(tree: Tree, formulas: dict[RNNSpec, _Formula]) -> tuple[list[RecurrentEntry], set[int]]:
    entries: list[RecurrentEntry] = []
    nodes: set[int] = set()
    for i, module in enumerate(tree.modules):
        if not isinstance(module, nn.RNNBase | nn.RNNCellBase):
            continue
        found = detect(module, tree.paths[i])
        if found is None:
            continue
        spec = found.spec
        f = formulas.get(spec)
        if f is None:
            f = formulas[spec] = _formula(spec)
        check = crosscheck(f.expected, module._parameters)
        nodes.add(i)
        entries.append(
            RecurrentEntry(
                name=tree.paths[i],
                type=type(module).__name__,
                kind=spec.kind,
                input_size=spec.input_size,
                hidden_size=spec.hidden_size,
                num_layers=spec.num_layers,
                bidirectional=spec.bidirectional,
                proj_size=spec.proj_size,
                bias=spec.bias,
                dropout=found.dropout,
                batch_first=found.batch_first,
                formula_params=f.params,
                tensor_params=check.tensor_params,
                matches=not check.findings and check.tensor_params == f.params,
                findings=check.findings,
                breakdown=f.layers,
                derivation=f.derivation,
                keras_params=f.keras_params,
                keras_derivation=f.keras_derivation,
            )
        )
    return entries, nodes


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def summarize(model: nn.Module, max_depth: int | None = None) -> Report:
    """Count, locate and cross-check every parameter of ``model``.

    ``max_depth`` limits the module rows (0: the root alone; ``None``: all);
    recurrent modules and totals always cover the whole model.

    >>> from torch import nn
    >>> report = summarize(nn.LSTM(3, 2))
    >>> report.total_params, report.recurrent[0].derivation
    (56, '4·2·(3+2) + 2·4·2 = 56')
    """
    if not isinstance(model, nn.Module):
        kind = type(model)
        raise NotAModuleError(
            f"summarize() expects a torch.nn.Module, got {kind.__module__}.{kind.__qualname__}: {model!r:.80}"
        )
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise InvalidSettingsError(f"max_depth must be None or an int >= 0, got: {max_depth!r}")

    tree = walk(model)
    n = len(tree)
    modules, parents = tree.modules, tree.parents
    # Per node: elements, trainable elements and lazy tensors first seen there.
    own = [0] * n
    own_train = [0] * n
    own_lazy = [0] * n
    first: dict[int, int] = {}  # id(tensor) -> node of first registration
    value: dict[int, tuple[int, int, int]] = {}  # id(tensor) -> (numel, trainable numel, lazy)
    names: dict[int, list[str]] = {}  # id(tensor) -> every name, for tensors seen more than once
    extra: dict[int, list[int]] = {}  # id(tensor) -> further nodes that contain it
    uninitialized: list[str] = []
    by_dtype: dict[torch.dtype, list[int]] = {}
    total = trainable = 0

    for i, module in enumerate(modules):
        params = module._parameters
        if not params:
            continue
        for name, p in params.items():
            if p is None:
                continue
            key = id(p)
            if key in first:
                extra.setdefault(key, []).append(i)
                names.setdefault(key, [_join(tree.paths[first[key]], _first_name(modules[first[key]], p))]).append(
                    _join(tree.paths[i], name)
                )
                continue
            first[key] = i
            try:
                k = p.numel()
            except ValueError:  # UninitializedParameter: shape unknown until the first forward
                own_lazy[i] += 1
                value[key] = (0, 0, 1)
                uninitialized.append(_join(tree.paths[i], name))
                continue
            own[i] += k
            total += k
            if p.requires_grad:
                own_train[i] += k
                trainable += k
                value[key] = (k, k, 0)
            else:
                value[key] = (k, 0, 0)
            usage = by_dtype.get(p.dtype)
            if usage is None:
                by_dtype[p.dtype] = [k, k * p.element_size()]
            else:
                usage[0] += k
                usage[1] += k * p.element_size()

    # A module registered twice adds a site for every tensor of its subtree.
    for alias in tree.aliases:
        for j in range(alias.target, tree.ends[alias.target]):
            for p in modules[j]._parameters.values():
                if p is not None:
                    extra.setdefault(id(p), []).append(alias.parent)

    sub = own[:]
    sub_train = own_train[:]
    sub_lazy = own_lazy[:]
    for i in range(n - 1, 0, -1):
        up = parents[i]
        sub[up] += sub[i]
        sub_train[up] += sub_train[i]
        sub_lazy[up] += sub_lazy[i]
    # Shared tensors: add them once to every ancestor of a further site not already holding them.
    for key, sites in extra.items():
        k, kt, lazy = value[key]
        covered: set[int] = set()
        node = first[key]
        while node != -1:
            covered.add(node)
            node = parents[node]
        for node in sites:
            while node != -1 and node not in covered:
                covered.add(node)
                sub[node] += k
                sub_train[node] += kt
                sub_lazy[node] += lazy
                node = parents[node]

    formulas: dict[RNNSpec, _Formula] = {}
    entries, recurrent_nodes = _recurrent(tree, formulas)

    paths, depths = tree.paths, tree.depths
    rows = tuple(
        ModuleRow(
            paths[i], type(modules[i]).__name__, depths[i], sub[i], sub_train[i], sub_lazy[i], i in recurrent_nodes
        )
        for i in range(n)
        if max_depth is None or depths[i] <= max_depth
    )

    buffer_seen: set[int] = set()
    buffer_elements = buffer_bytes = 0
    for module in modules:
        buffers = module._buffers
        if not buffers:
            continue
        for b in buffers.values():
            if b is None or id(b) in buffer_seen:
                continue
            buffer_seen.add(id(b))
            try:
                k = b.numel()
            except ValueError:  # UninitializedBuffer
                continue
            buffer_elements += k
            buffer_bytes += k * b.element_size()

    dtypes = tuple(
        DtypeUsage(str(dt).removeprefix("torch."), v[0], v[1])
        for dt, v in sorted(by_dtype.items(), key=lambda item: str(item[0]))
    )
    return Report(
        model_type=type(model).__name__,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        uninitialized=tuple(uninitialized),
        param_bytes=sum(d.bytes for d in dtypes),
        dtypes=dtypes,
        buffer_count=len(buffer_seen),
        buffer_elements=buffer_elements,
        buffer_bytes=buffer_bytes,
        rows=rows,
        recurrent=tuple(entries),
        shared=tuple(SharedTensor(tuple(v), value[key][0] if not value[key][2] else None) for key, v in names.items()),
        aliases=tuple(ModuleAlias(a.path, paths[a.target]) for a in tree.aliases),
        max_depth=max_depth,
    )


def _first_name(module: nn.Module, tensor: torch.Tensor) -> str:
    for name, p in module._parameters.items():
        if p is tensor:
            return name
    raise AssertionError("tensor vanished from the module that registered it")
