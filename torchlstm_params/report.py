"""``summarize(model)``: one static pass over a model, returned as frozen data.

No forward pass, no hooks, no tensor data read, no change to the model:
names, shapes, dtypes and ``requires_grad`` flags are all it looks at, so a
meta-device model summarizes as fast as any other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from .crosscheck import TensorFinding, crosscheck
from .detect import Detected, detect
from .errors import InvalidSettingsError, NotAModuleError
from .formulas import Formula, LayerCount, RNNSpec, formula
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


class ModuleRow(NamedTuple):
    """One module of the tree. Counts cover its whole subtree, shared tensors once.

    A ``NamedTuple`` rather than a frozen dataclass: one is built per module,
    and it is five times cheaper to build while just as immutable.
    """

    name: str
    type: str
    depth: int
    params: int
    trainable_params: int
    uninitialized: int  # lazy tensors in the subtree, not counted in params
    recurrent: bool


@dataclass(frozen=True, slots=True)
class RecurrentEntry:
    """A recurrent module: its settings, the formula's count and the tensors' count.

    The settings and formula figures are read through properties (``kind``,
    ``hidden_size``, ``formula_params``, ``derivation``, ...); ``to_dict()``
    spells every one of them out.
    """

    name: str
    type: str
    spec: RNNSpec
    dropout: float
    batch_first: bool
    formula: Formula
    tensor_params: int
    findings: tuple[TensorFinding, ...]

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def hidden_size(self) -> int:
        return self.spec.hidden_size

    @property
    def num_layers(self) -> int:
        return self.spec.num_layers

    @property
    def bidirectional(self) -> bool:
        return self.spec.bidirectional

    @property
    def proj_size(self) -> int:
        return self.spec.proj_size

    @property
    def bias(self) -> bool:
        return self.spec.bias

    @property
    def formula_params(self) -> int:
        return self.formula.params

    @property
    def breakdown(self) -> tuple[LayerCount, ...]:
        return self.formula.layers

    @property
    def derivation(self) -> str:
        return self.formula.derivation

    @property
    def keras_params(self) -> int | None:
        return self.formula.keras_params

    @property
    def keras_derivation(self) -> str | None:
        return self.formula.keras_derivation

    @property
    def matches(self) -> bool:
        return not self.findings and self.tensor_params == self.formula.params

    @property
    def status(self) -> str:
        return "ok" if self.matches else "mismatch"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "proj_size": self.proj_size,
            "bias": self.bias,
            "dropout": self.dropout,
            "batch_first": self.batch_first,
            "formula_params": self.formula_params,
            "tensor_params": self.tensor_params,
            "matches": self.matches,
            "status": self.status,
            "findings": [_plain(f) for f in self.findings],
            "breakdown": [_plain(layer) for layer in self.breakdown],
            "derivation": self.derivation,
            "keras_params": self.keras_params,
            "keras_derivation": self.keras_derivation,
        }


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
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "recurrent":
                out["recurrent"] = [entry.to_dict() for entry in value]
            else:
                out[field.name] = _plain(value)
        out["matches"] = self.matches
        return out

    def render(self, tablefmt: str = "simple", *, keras: bool = False, explain: bool = True) -> str:
        """The report as text tables in any ``tabulate`` format."""
        from .render import render_report

        return render_report(self, tablefmt=tablefmt, keras=keras, explain=explain)

    def __str__(self) -> str:
        return self.render()


def _plain(value: object) -> object:
    if isinstance(value, ModuleRow):
        return value._asdict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _recurrent(tree: Tree) -> tuple[list[RecurrentEntry], set[int]]:
    entries: list[RecurrentEntry] = []
    nodes: set[int] = set()
    settings: dict[Hashable, Detected] = {}
    formulas: dict[RNNSpec, Formula] = {}
    recurrent_class: dict[type, bool] = {}
    for i, module in enumerate(tree.modules):
        cls = type(module)
        candidate = recurrent_class.get(cls)
        if candidate is None:
            candidate = recurrent_class[cls] = issubclass(cls, nn.RNNBase | nn.RNNCellBase)
        if not candidate:
            continue
        found = detect(module, tree.paths[i], settings)
        if found is None:
            continue
        spec = found.spec
        f = formulas.get(spec)
        if f is None:
            f = formulas[spec] = formula(spec)
        check = crosscheck(f, module._parameters)
        nodes.add(i)
        entries.append(
            RecurrentEntry(
                tree.paths[i],
                type(module).__name__,
                spec,
                found.dropout,
                found.batch_first,
                f,
                check.tensor_params,
                check.findings,
            )
        )
    return entries, nodes


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_args(model: object, max_depth: object) -> None:
    if not isinstance(model, nn.Module):
        kind = type(model)
        raise NotAModuleError(
            f"summarize() expects a torch.nn.Module, got {kind.__module__}.{kind.__qualname__}: {model!r:.80}"
        )
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise InvalidSettingsError(f"max_depth must be None or an int >= 0, got: {max_depth!r}")


def summarize(model: nn.Module, max_depth: int | None = None) -> Report:
    """Count, locate and cross-check every parameter of ``model``.

    ``max_depth`` limits the module rows (0: the root alone; ``None``: all);
    recurrent modules and totals always cover the whole model.

    >>> from torch import nn
    >>> report = summarize(nn.LSTM(3, 2))
    >>> report.total_params, report.recurrent[0].derivation
    (56, '4·2·(3+2) + 2·4·2 = 56')
    """
    _check_args(model, max_depth)
    tree = walk(model)
    n = len(tree)
    modules, parents, paths = tree.modules, tree.parents, tree.paths
    # Per node: elements, trainable elements and lazy tensors first seen there.
    own = [0] * n
    own_train = [0] * n
    own_lazy = [0] * n
    first: dict[int, int] = {}  # id(tensor) -> node of its first registration
    shared: dict[int, torch.Tensor] = {}  # id(tensor) -> tensor, for tensors met more than once
    names: dict[int, list[str]] = {}  # id(tensor) -> every name, for tensors registered twice
    sites: dict[int, list[int]] = {}  # id(tensor) -> further nodes that hold it
    uninitialized: list[str] = []
    by_dtype: dict[torch.dtype | None, int] = {}
    run_dtype: torch.dtype | None = None
    run = 0

    for i, module in enumerate(modules):
        params = module._parameters
        if not params:
            continue
        acc = acc_train = 0
        for name, p in params.items():
            if p is None:
                continue
            key = id(p)
            if key in first:
                shared[key] = p
                sites.setdefault(key, []).append(i)
                if key not in names:
                    names[key] = [_join(paths[first[key]], _first_name(modules[first[key]], p))]
                names[key].append(_join(paths[i], name))
                continue
            first[key] = i
            try:
                k = p.numel()
            except ValueError:  # UninitializedParameter: shape unknown until the first forward
                own_lazy[i] += 1
                uninitialized.append(_join(paths[i], name))
                continue
            acc += k
            if p.requires_grad:
                acc_train += k
            if p.dtype is not run_dtype:  # dtypes come in long runs: one dict update per run
                by_dtype[run_dtype] = by_dtype.get(run_dtype, 0) + run
                run_dtype, run = p.dtype, 0
            run += k
        own[i] = acc
        own_train[i] = acc_train
    by_dtype[run_dtype] = by_dtype.get(run_dtype, 0) + run
    by_dtype.pop(None, None)

    # A module registered twice adds a site, its parent, for every tensor of its subtree.
    for alias in tree.aliases:
        for j in range(alias.target, tree.ends[alias.target]):
            for p in modules[j]._parameters.values():
                if p is not None:
                    shared[id(p)] = p
                    sites.setdefault(id(p), []).append(alias.parent)

    sub, sub_train, sub_lazy = own, own_train, own_lazy  # summed up in place
    for i in range(n - 1, 0, -1):
        up = parents[i]
        sub[up] += sub[i]
        sub_train[up] += sub_train[i]
        sub_lazy[up] += sub_lazy[i]
    # A shared tensor is in the sums of its first site's ancestors; add it once to the
    # ancestors of its further sites that do not hold it yet.
    for key, further in sites.items():
        k, k_train, lazy = _value(shared[key])
        covered: set[int] = set()
        node = first[key]
        while node != -1:
            covered.add(node)
            node = parents[node]
        for node in further:
            while node != -1 and node not in covered:
                covered.add(node)
                sub[node] += k
                sub_train[node] += k_train
                sub_lazy[node] += lazy
                node = parents[node]

    entries, recurrent_nodes = _recurrent(tree)
    depths = tree.depths
    rows = tuple(
        ModuleRow(
            paths[i], type(modules[i]).__name__, depths[i], sub[i], sub_train[i], sub_lazy[i], i in recurrent_nodes
        )
        for i in range(n)
        if max_depth is None or depths[i] <= max_depth
    )
    buffer_count, buffer_elements, buffer_bytes = _buffers(modules)
    dtypes = tuple(
        DtypeUsage(str(dt).removeprefix("torch."), k, k * dt.itemsize)
        for dt, k in sorted(by_dtype.items(), key=lambda item: str(item[0]))
        if dt is not None
    )
    total = sub[0]
    trainable = sub_train[0]
    return Report(
        model_type=type(model).__name__,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        uninitialized=tuple(uninitialized),
        param_bytes=sum(d.bytes for d in dtypes),
        dtypes=dtypes,
        buffer_count=buffer_count,
        buffer_elements=buffer_elements,
        buffer_bytes=buffer_bytes,
        rows=rows,
        recurrent=tuple(entries),
        shared=tuple(
            SharedTensor(tuple(v), _value(shared[key])[0] if not _value(shared[key])[2] else None)
            for key, v in names.items()
        ),
        aliases=tuple(ModuleAlias(a.path, paths[a.target]) for a in tree.aliases),
        max_depth=max_depth,
    )


def _value(tensor: torch.Tensor) -> tuple[int, int, int]:
    """(elements, trainable elements, lazy tensors) that one tensor adds to a count."""
    try:
        k = tensor.numel()
    except ValueError:
        return 0, 0, 1
    return k, k if tensor.requires_grad else 0, 0


def _buffers(modules: list[nn.Module]) -> tuple[int, int, int]:
    """Unique buffers: (count, elements, bytes); lazy buffers count as tensors only."""
    seen: set[int] = set()
    elements = size = 0
    for module in modules:
        buffers = module._buffers
        if not buffers:
            continue
        for b in buffers.values():
            if b is None or id(b) in seen:
                continue
            seen.add(id(b))
            try:
                k = b.numel()
            except ValueError:  # UninitializedBuffer
                continue
            elements += k
            size += k * b.element_size()
    return len(seen), elements, size


def _first_name(module: nn.Module, tensor: torch.Tensor) -> str:
    for name, p in module._parameters.items():
        if p is tensor:
            return name
    raise AssertionError("a tensor vanished from the module that registered it")
