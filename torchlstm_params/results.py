"""What ``summarize`` returns: frozen data types, each with ``to_dict()``.

Nothing here walks a model or reads a tensor: these types only hold figures.
``Report.__str__`` and ``Report.render`` import :mod:`torchlstm_params.render`
lazily, inside the call: the one import that runs upward in the layering
(documented in the import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

from .crosscheck import Explanation, TensorFinding
from .distributed import LocalFigures
from .estimates import Compute, SavedActivations, StateMemory
from .formulas import SETTINGS, SPEC_SETTINGS, Formula, RNNSpec
from .packed import PackedStorage

__all__ = ["DtypeUsage", "ModuleAlias", "ModuleRow", "RecurrentEntry", "Report", "SharedTensor"]


class ModuleRow(NamedTuple):
    """One module of the tree. Counts cover its whole subtree, shared tensors once.

    A ``NamedTuple`` rather than a frozen dataclass: one is built per module,
    and ``benchmarks/bench_summarize`` measures it cheaper to build while just
    as immutable.
    """

    name: str
    type: str
    depth: int
    params: int
    trainable_params: int
    uninitialized: int  # lazy tensors in the subtree, not counted in params
    recurrent: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecurrentEntry:
    """A recurrent module: its settings, the formula's count and the tensors' count.

    The settings that fix the parameters are ``spec`` (an :class:`RNNSpec`: ``spec.kind``,
    ``spec.hidden_size``, ...), the others ``dropout`` and ``batch_first``;
    :attr:`settings` has them all by name. The formula's figures are in ``formula``
    (``formula.params``, ``formula.layers`` per layer and direction, ``formula.derivation``,
    ``formula.keras_params``); ``to_dict()`` spells every one of them out.
    """

    name: str  # module path ("" for the root)
    type: str  # the module's class name
    spec: RNNSpec
    dropout: float
    batch_first: bool
    formula: Formula
    tensor_params: int  # what sum(p.numel() for p in module.parameters()) says
    findings: tuple[TensorFinding, ...] = ()  # unexplained differences: each one makes a mismatch
    explanations: tuple[Explanation, ...] = ()  # understood differences (weight_norm, packed, extras...)
    origin: str = "torch.nn"
    packed: PackedStorage | None = None
    compute: Compute | None = None  # with summarize(batch=..., seq_len=...) or lengths=...
    state: StateMemory | None = None  # elements of what forward returns, for that batch
    saved: SavedActivations | None = None  # what autograd saves for backward, for that batch

    @property
    def settings(self) -> dict[str, object]:
        """Every setting by name, in :data:`~torchlstm_params.formulas.SETTINGS` order."""
        out: dict[str, object] = {name: getattr(self.spec, name) for name in SPEC_SETTINGS}
        out["dropout"] = self.dropout
        out["batch_first"] = self.batch_first
        return out

    @property
    def formula_params(self) -> int:
        """The closed-form count for these settings (PyTorch convention)."""
        return self.formula.params

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
        settings = self.settings
        assert tuple(settings) == SETTINGS
        f = self.formula
        return {
            "name": self.name,
            "type": self.type,
            **settings,
            "formula_params": f.params,
            "tensor_params": self.tensor_params,
            "matches": self.matches,
            "status": self.status,
            "findings": [plain(x) for x in self.findings],
            "explanations": [plain(x) for x in self.explanations],
            "origin": self.origin,
            "packed": None
            if self.packed is None
            else {
                "bytes": self.packed.bytes,
                "dtypes": [{"dtype": d, "elements": n, "bytes": b} for d, n, b in self.packed.dtypes],
            },
            "compute": None
            if self.compute is None
            else {**plain(self.compute), "forward_flops": self.compute.forward_flops},
            "state": None
            if self.state is None
            else {**plain(self.state), "elements": self.state.elements, "bytes": self.state.bytes},
            "saved": None
            if self.saved is None
            else {**plain(self.saved), "elements": self.saved.elements, "bytes": self.saved.bytes},
            "breakdown": [plain(layer) for layer in f.layers],
            "derivation": f.derivation,
            "keras_params": f.keras_params,
            "keras_derivation": f.keras_derivation,
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
    """Unique parameter elements and bytes of one dtype, and how many of those elements train."""

    dtype: str
    params: int
    bytes: int
    trainable_params: int
    itemsize: int  # bytes per element


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``summarize`` found. ``str(report)`` renders tables; ``to_dict()`` is JSON-ready.

    Counts are of unique tensors (a tied weight once). ``rows`` has one
    :class:`ModuleRow` per module down to ``max_depth``; ``recurrent`` one
    :class:`RecurrentEntry` per recurrent module, wherever it sits.
    """

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
                out[field.name] = plain(value)
        out["matches"] = self.matches
        out["logical_params"] = self.logical_params
        return out

    def render(self, tablefmt: str = "simple", *, keras: bool = False, explain: bool = True) -> str:
        """The report as text tables in any ``tabulate`` format."""
        from .render import render_report  # the one upward import (see the module docstring)

        return render_report(self, tablefmt=tablefmt, keras=keras, explain=explain)

    def __str__(self) -> str:
        return self.render()


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses and named tuples as dicts, tuples as lists."""
    if isinstance(value, ModuleRow):
        return value._asdict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value
