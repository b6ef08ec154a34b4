"""``summarize(model)``: one static pass over a model, returned as frozen data.

No forward pass, no hooks, no tensor data read, no change to the model:
names, shapes, dtypes and ``requires_grad`` flags are all it looks at, so a
meta-device model summarizes as fast as any other.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.utils import parametrize

from .activations import ITEMSIZE, SavedActivations, saved_activations
from .compute import Compute, StateMemory, compute, state_memory, tokens
from .crosscheck import Explanation, TensorFinding, crosscheck
from .detect import TORCH_RECURRENT_CLASSES, Detected, detect, may_be_recurrent
from .distributed import LocalFigures, local_figures
from .errors import InvalidSettingsError, NotAModuleError
from .formulas import Formula, LayerCount, RNNSpec, formula
from .packed import PackedStorage
from .registry import Registry, default_registry
from .tally import tally
from .walk import Tree, walk

_DISTRIBUTED = dist.is_available()

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


class RecurrentEntry(NamedTuple):
    """A recurrent module: its settings, the formula's count and the tensors' count.

    The settings and formula figures are read through properties (``kind``,
    ``hidden_size``, ``formula_params``, ``derivation``, ...); ``to_dict()``
    spells every one of them out. A ``NamedTuple``, like :class:`ModuleRow`,
    because models hold thousands of these and it is as immutable as a
    frozen dataclass at a fifth of the cost to build.
    """

    name: str
    type: str
    spec: RNNSpec
    dropout: float
    batch_first: bool
    formula: Formula
    tensor_params: int  # what sum(p.numel() for p in module.parameters()) says
    findings: tuple[TensorFinding, ...]  # unexplained differences: each one makes a mismatch
    explanations: tuple[Explanation, ...] = ()  # understood differences (weight_norm, packed, extras...)
    origin: str = "torch.nn"
    packed: PackedStorage | None = None
    compute: Compute | None = None  # with summarize(batch=..., seq_len=...) or lengths=...
    state: StateMemory | None = None  # elements of what forward returns, for that batch
    saved: SavedActivations | None = None  # what autograd saves for backward, for that batch

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
        """True when the tensors are the formula's, or differ only in explained ways."""
        return not self.findings

    @property
    def status(self) -> str:
        """``ok``, ``explained`` (see ``explanations``), ``packed`` (dynamic-quantized) or ``mismatch``."""
        if self.findings:
            return "mismatch"
        if self.packed is not None:
            return "packed"
        return "explained" if self.explanations else "ok"

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
            "explanations": [_plain(e) for e in self.explanations],
            "origin": self.origin,
            "packed": None
            if self.packed is None
            else {
                "bytes": self.packed.bytes,
                "dtypes": [{"dtype": d, "elements": n, "bytes": b} for d, n, b in self.packed.dtypes],
            },
            "compute": None if self.compute is None else _compute_dict(self.compute),
            "state": None
            if self.state is None
            else {**dataclasses.asdict(self.state), "elements": self.state.elements, "bytes": self.state.bytes},
            "saved": None
            if self.saved is None
            else {**dataclasses.asdict(self.saved), "elements": self.saved.elements, "bytes": self.saved.bytes},
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
    tokens: int | None = None  # sequence elements the compute figures are for (None: not asked)
    local: LocalFigures | None = None  # this rank's share, when a torch.distributed process group is up
    wrappers: tuple[str, ...] = ()  # rename-only wrappers looked through ("path: label"; root: label), outermost first

    @property
    def matches(self) -> bool:
        """True when every recurrent module's tensors are exactly its formula's."""
        return all(e.matches for e in self.recurrent)

    @property
    def logical_params(self) -> int:
        """``total_params`` plus the weights that dynamic quantization packed out of ``parameters()``."""
        return self.total_params + sum(e.formula_params for e in self.recurrent if e.packed is not None)

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
        out["logical_params"] = self.logical_params
        return out

    def render(self, tablefmt: str = "simple", *, keras: bool = False, explain: bool = True) -> str:
        """The report as text tables in any ``tabulate`` format."""
        from .render import render_report

        return render_report(self, tablefmt=tablefmt, keras=keras, explain=explain)

    def __str__(self) -> str:
        return self.render()


def _compute_dict(c: Compute) -> dict[str, int]:
    return {**dataclasses.asdict(c), "forward_flops": c.forward_flops}


def _plain(value: object) -> object:
    if isinstance(value, ModuleRow):
        return value._asdict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _detect_all(tree: Tree, registry: Registry) -> dict[int, tuple[Detected, Formula]]:
    """Recurrent nodes -> (settings, formula); each distinct class and spec is looked at once.

    The submodules of a recurrent module (the cells of a quantizable LSTM, a
    parametrization) belong to it and are not reported as recurrent again.
    """
    found: dict[int, tuple[Detected, Formula]] = {}
    settings: dict[Hashable, Detected] = {}
    formulas: dict[int, Formula] = {}  # id(Detected) -> Formula; `settings` keeps each Detected alive
    candidate_class: dict[type, bool] = {}
    inside = 0  # nodes before this index are inside the last recurrent module found
    for i, module in enumerate(tree.modules):
        if i < inside:
            continue
        cls = type(module)
        candidate = candidate_class.get(cls)
        if candidate is None:
            candidate = candidate_class[cls] = may_be_recurrent(cls, registry)
        if not candidate:
            continue
        detected = detect(module, tree.paths[i], settings, registry)
        if detected is None:
            continue
        f = formulas.get(id(detected))
        if f is None:
            f = formulas[id(detected)] = formula(detected.spec)
        found[i] = (detected, f)
        inside = tree.ends[i]
    return found


def _entry(tree: Tree, i: int, detected: Detected, f: Formula, tensor_params: int, exact: bool) -> RecurrentEntry:
    module = tree.modules[i]
    name, kind = tree.paths[i], type(module).__name__
    if exact and tensor_params == f.params:
        return RecurrentEntry._make(
            (
                name,
                kind,
                detected.spec,
                detected.dropout,
                detected.batch_first,
                f,
                f.params,
                (),
                (),
                detected.origin,
                None,
                None,
                None,
                None,
            )
        )
    check = crosscheck(f, module, detected)
    explanations = check.explanations
    if not detected.packed and tensor_params != check.accounted:
        # Parameters of submodules that are neither the recurrent tensors nor their stand-ins.
        extra = tensor_params - check.accounted
        message = f"{extra:,} elements in submodules are not part of the recurrent formula; counted in totals"
        explanations += (Explanation("(submodules)", "extra", message, extra),)
    return RecurrentEntry(
        name,
        kind,
        detected.spec,
        detected.dropout,
        detected.batch_first,
        f,
        tensor_params,
        check.findings,
        explanations,
        detected.origin,
        check.packed,
    )


def _check_args(model: object, max_depth: object) -> None:
    if not isinstance(model, nn.Module):
        kind = type(model)
        raise NotAModuleError(
            f"summarize() expects a torch.nn.Module, got {kind.__module__}.{kind.__qualname__}: {model!r:.80}"
        )
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise InvalidSettingsError(f"max_depth must be None or an int >= 0, got: {max_depth!r}")


def summarize(
    model: nn.Module,
    max_depth: int | None = None,
    *,
    registry: Registry | None = None,
    batch: int | None = None,
    seq_len: int | None = None,
    lengths: Sequence[int] | None = None,
) -> Report:
    """Count, locate and cross-check every parameter of ``model``.

    ``max_depth`` limits the module rows (0: the root alone; ``None``: all);
    recurrent modules and totals always cover the whole model. Wrappers that
    only rename (``torch.compile``, ``DataParallel``, ``DistributedDataParallel``)
    are looked through and named once in ``wrappers``. ``registry`` adds
    recurrent classes (default: :data:`default_registry`). With ``batch`` and
    ``seq_len`` (or the ``lengths`` of a packed batch) every recurrent entry
    also gets its compute and returned-state sizes (see :mod:`torchlstm_params.compute`).

    >>> from torch import nn
    >>> report = summarize(nn.LSTM(3, 2))
    >>> report.total_params, report.recurrent[0].derivation
    (56, '4·2·(3+2) + 2·4·2 = 56')
    """
    _check_args(model, max_depth)
    batch_shape = None
    if batch is not None or seq_len is not None or lengths is not None:
        batch_shape = _BatchShape(batch, seq_len, None if lengths is None else list(lengths))
    # Python's cyclic collector is paused while the report is built. A summary of a large model
    # allocates one row per module while the model's own objects fill the heap; each collection
    # the new rows trigger would scan all of them (measured: a third of the time on a
    # 20,000-module model). The report holds no reference cycles, so nothing is left to collect.
    # (A plain try/finally: a context manager costs a few microseconds per call on small models.)
    collecting = gc.isenabled()
    gc.disable()
    try:
        report = _summarize(model, max_depth, default_registry if registry is None else registry, batch_shape)
    finally:
        if collecting:
            gc.enable()
    if _DISTRIBUTED and dist.is_initialized():  # sharded parameters: add this rank's share (no collective)
        report = dataclasses.replace(report, local=local_figures(model))
    return report


class _BatchShape:
    """The batch the compute and memory figures are for: padded (batch, seq_len) or packed (lengths)."""

    def __init__(self, batch: int | None, seq_len: int | None, lengths: list[int] | None) -> None:
        self.tokens = tokens(batch, seq_len, lengths)  # validates the arguments
        self.batch, self.seq_len, self.lengths = batch, seq_len, lengths
        rows = len(lengths) if lengths is not None else batch
        assert rows is not None  # tokens() accepted the arguments
        self.rows: int = rows

    def figures(self, entry: RecurrentEntry, module: nn.Module) -> RecurrentEntry:
        """``entry`` with its compute, returned-state and saved-for-backward figures for this batch."""
        dtype: str | None = _activation_dtype(module)
        if dtype not in ITEMSIZE:  # a dtype no recurrent kernel computes in (float8, say): elements only
            dtype = None
        saved = None
        if dtype is not None and _runs_torch_recurrence(module):
            saved = saved_activations(
                entry.spec,
                self.batch,
                self.seq_len,
                self.lengths,
                batch_first=entry.batch_first,
                dropout=entry.dropout,
                dtype=dtype,
            )
        return entry._replace(
            compute=compute(entry.spec, self.tokens),
            state=state_memory(entry.spec, self.rows, self.tokens, dtype),
            saved=saved,
        )


def _runs_torch_recurrence(module: nn.Module) -> bool:
    """Whether ``module``'s forward is torch's own and nothing else, which the saved-activation figures model.

    Dynamic-quantized modules (no autograd), torch's quantizable LSTM and registered
    classes (recurrences written in Python), subclasses with their own forward, and
    scripted RNNs (torch 2.13 compiles no forward for them) save something else or nothing;
    parametrized weights (weight_norm, say) and forward hooks save their own tensors on top.
    """
    if parametrize.is_parametrized(module) or module._forward_pre_hooks or module._forward_hooks:
        return False
    defining = next((cls for cls in type(module).__mro__ if "forward" in vars(cls)), None)
    return defining in TORCH_RECURRENT_CLASSES


def _activation_dtype(module: nn.Module) -> str:
    """The dtype a recurrent module computes in: its first floating parameter's (float32 when packed)."""
    for p in module.parameters():
        if p.is_floating_point():
            return str(p.dtype).removeprefix("torch.")
    return "float32"  # dynamic-quantized modules keep int8 weights and compute in float32


def _summarize(
    model: nn.Module, max_depth: int | None, registry: Registry, batch_shape: _BatchShape | None = None
) -> Report:
    tree = walk(model)
    modules, paths, depths = tree.modules, tree.paths, tree.depths
    recurrent = _detect_all(tree, registry)
    counts = tally(tree, {i: f for i, (_, f) in recurrent.items()})
    entries = [
        _entry(tree, i, detected, f, counts.params[i], i in counts.exact) for i, (detected, f) in recurrent.items()
    ]
    if batch_shape is not None:
        entries = [batch_shape.figures(e, modules[i]) for e, i in zip(entries, recurrent, strict=True)]
    sub, sub_train, sub_lazy = counts.params, counts.trainable, counts.lazy
    types = [type(m).__name__ for m in modules]
    is_recurrent = [i in recurrent for i in range(len(tree))]
    make_row = ModuleRow._make  # tuple.__new__ on ready tuples: no per-row Python-level __new__
    rows = tuple(map(make_row, zip(paths, types, depths, sub, sub_train, sub_lazy, is_recurrent, strict=True)))
    if max_depth is not None:
        rows = tuple(row for row in rows if row.depth <= max_depth)
    dtypes = tuple(
        DtypeUsage(str(dt).removeprefix("torch."), k, k * dt.itemsize)
        for dt, k in sorted(counts.by_dtype.items(), key=lambda item: str(item[0]))
    )
    total, trainable = sub[0], sub_train[0]
    return Report(
        model_type=type(modules[0]).__name__,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        uninitialized=tuple(counts.uninitialized),
        param_bytes=sum(d.bytes for d in dtypes),
        dtypes=dtypes,
        buffer_count=counts.buffer_count,
        buffer_elements=counts.buffer_elements,
        buffer_bytes=counts.buffer_bytes,
        rows=rows,
        recurrent=tuple(entries),
        shared=tuple(SharedTensor(tuple(v), _numel_or_none(t)) for v, t in counts.shared_names),
        aliases=tuple(ModuleAlias(a.path, paths[a.target]) for a in tree.aliases),
        max_depth=max_depth,
        tokens=None if batch_shape is None else batch_shape.tokens,
        wrappers=tuple(f"{path}: {label}" if path else label for path, label in tree.wrappers),
    )


def _numel_or_none(tensor: torch.Tensor) -> int | None:
    try:
        return tensor.numel()
    except ValueError:  # UninitializedParameter
        return None
