"""What ``summarize`` returns: frozen data types, each with ``to_dict()``.

Nothing here walks a model or reads a tensor: these types only hold figures.
Showing them is done above this layer: ``Report.__str__``/``render`` import
:mod:`torchlstm_params.render`, ``repr`` and the notebook displays
:mod:`torchlstm_params.display`, ``plot`` :mod:`torchlstm_params.plot`, each
lazily, inside the call: the only imports that run upward in the layering
(documented in the import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, overload

from .crosscheck import Explanation, TensorFinding
from .distributed import LocalFigures
from .errors import Problem
from .estimates import Compute, SavedActivations, StateMemory
from .formulas import SETTINGS, SPEC_SETTINGS, Formula, RNNSpec
from .hints import Hint
from .packed import PackedStorage
from .recurrence import Recurrence
from .scan import ValueScan
from .walk import locate

__all__ = [
    "CheckResult",
    "DtypeUsage",
    "ModuleAlias",
    "ModulePath",
    "ModuleRow",
    "ModuleRows",
    "OwnParams",
    "PackedModule",
    "PrunedTensor",
    "RecurrentEntry",
    "Report",
    "SharedTensor",
]


class ModulePath:
    """Where a module sits: its name under its parent and the parent's ``ModulePath``.

    ``str(path)`` spells the dotted path (``"encoder.layers.0"``; ``""`` for the root), built
    on each call from the links, so that the paths of a deep tree take memory linear in its
    depth. Two paths are equal when they spell the same; a path also equals its spelling
    as a ``str``.

    >>> root = ModulePath.root()
    >>> str(root.child("encoder").child("0")), root.child("encoder").depth
    ('encoder.0', 1)

    Attributes:
        depth: 0 for the root, 1 for its children, ...
        name: the module's name under its parent (``""`` for the root).
        parent: the parent's path (None for the root).
    """

    __slots__ = ("depth", "name", "parent")

    name: str
    parent: ModulePath | None
    depth: int

    def __init__(self, name: str, parent: ModulePath | None, depth: int) -> None:
        self.name, self.parent, self.depth = name, parent, depth

    @staticmethod
    def root() -> ModulePath:
        return ModulePath("", None, 0)

    @staticmethod
    def of(names: Iterable[str]) -> ModulePath:
        """The path whose names from the root's child down are ``names``."""
        path = ModulePath.root()
        for name in names:
            path = path.child(name)
        return path

    def child(self, name: str) -> ModulePath:
        return ModulePath(name, self, self.depth + 1)

    def names(self) -> list[str]:
        """The names from the root's child down to this module (``[]`` for the root)."""
        out = []
        node: ModulePath | None = self
        while node is not None and node.parent is not None:
            out.append(node.name)
            node = node.parent
        out.reverse()
        return out

    def __str__(self) -> str:
        parent = self.parent
        if parent is None or parent.parent is None:  # the root, or a child of the root
            return self.name
        if parent.parent.parent is None:  # the common shallow case, without a list
            return f"{parent.name}.{self.name}"
        return ".".join(self.names())

    def __repr__(self) -> str:
        return f"ModulePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other
        if not isinstance(other, ModulePath):
            return NotImplemented
        a: ModulePath | None = self
        b: ModulePath | None = other
        while a is not b:  # links shared from some ancestor up are equal without reading further
            if a is None or b is None or a.name != b.name or a.depth != b.depth:
                return False
            a, b = a.parent, b.parent
        return True

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple[object, tuple[list[str]]]:
        # By names, not by links: pickle would recurse once per level on the links.
        return ModulePath.of, (self.names(),)


class ModuleRow(NamedTuple):
    """One module of the tree. Counts cover its whole subtree, shared tensors once.

    A ``NamedTuple`` rather than a frozen dataclass: one is built per module,
    and ``benchmarks/bench_summarize`` measures it cheaper to build while just
    as immutable.

    ``name`` is the module's dotted path (``""`` for the root), without rename-only wrappers'
    prefixes, spelled out from ``path`` on each read: rows of a deep tree hold links, not long strings.

    Attributes:
        path: where the module sits (:class:`~torchlstm_params.walk.ModulePath`); ``name`` spells it.
        type: its class as a reader knows it (``LSTM (scripted)``; a full module path where two classes
            of the model share a name).
        depth: 0 for the root, 1 for its children, ...
        params: parameter elements in its subtree, each tensor once.
        trainable_params: those with ``requires_grad``.
        uninitialized: lazy tensors in the subtree, not counted in ``params``.
        recurrent: whether the module itself is a recurrent module (see ``Report.recurrent``).
    """

    path: ModulePath
    type: str
    depth: int
    params: int
    trainable_params: int
    uninitialized: int  # lazy tensors in the subtree, not counted in params
    recurrent: bool

    @property
    def name(self) -> str:
        """The module's dotted path, spelled out now from ``path``."""
        return str(self.path)

    def to_dict(self, name: str | None = None) -> dict[str, Any]:
        """JSON-ready: the path spelled out as ``name`` (or given, by a caller that spelled it already)."""
        out = self._asdict()
        del out["path"]
        return {"name": str(self.path) if name is None else name, **out}


class ModuleRows(Sequence[ModuleRow]):
    """The report's module rows, in walk order (a module before its children), one per module
    down to the report's ``max_depth``.

    Kept as columns, one entry per module, and built into :class:`ModuleRow` when read: a
    summary makes no row and no path link that nobody reads. A row's :class:`ModulePath` is made
    on its first read (with its ancestors') and shared by later reads, so reading every row of a
    chain ``depth`` deep takes ``depth`` links. Compares equal to any sequence of the same rows.
    """

    __slots__ = (
        "_depths",
        "_lazy",
        "_links",
        "_names",
        "_params",
        "_parents",
        "_recurrent",
        "_shown",
        "_trainable",
        "_types",
    )

    def __init__(
        self,
        names: Sequence[str],
        parents: Sequence[int],
        types: Sequence[str],
        depths: Sequence[int],
        params: Sequence[int],
        trainable: Sequence[int],
        lazy: Sequence[int],
        recurrent: Sequence[bool],
        shown: Sequence[int] | None = None,
    ) -> None:
        """One entry per module, in walk order (``parents``: -1 for the root); ``shown``: the
        modules that get a row (default: every one)."""
        self._names, self._parents, self._types, self._depths = names, parents, types, depths
        self._params, self._trainable, self._lazy, self._recurrent = params, trainable, lazy, recurrent
        self._shown: Sequence[int] = range(len(names)) if shown is None else shown
        self._links: list[ModulePath | None] = [None] * len(names)

    def __len__(self) -> int:
        return len(self._shown)

    @overload
    def __getitem__(self, k: int) -> ModuleRow: ...
    @overload
    def __getitem__(self, k: slice) -> tuple[ModuleRow, ...]: ...
    def __getitem__(self, k: int | slice) -> ModuleRow | tuple[ModuleRow, ...]:
        if isinstance(k, slice):
            return tuple(self._row(i) for i in self._shown[k])
        return self._row(self._shown[k])

    def __iter__(self) -> Iterator[ModuleRow]:
        return map(self._row, self._shown)

    def _row(self, i: int) -> ModuleRow:
        return ModuleRow(
            self._link(i),
            self._types[i],
            self._depths[i],
            self._params[i],
            self._trainable[i],
            self._lazy[i],
            self._recurrent[i],
        )

    def _link(self, i: int) -> ModulePath:
        """Module ``i``'s path link, made now with any of its ancestors' not made yet (iteratively)."""
        links = self._links
        link = links[i]
        if link is not None:
            return link
        missing = []
        j = i
        while j >= 0 and links[j] is None:
            missing.append(j)
            j = self._parents[j]
        above = links[j] if j >= 0 else None
        for k in reversed(missing):
            above = links[k] = ModulePath(self._names[k], above, self._depths[k])
        assert above is not None
        return above

    def find(self, path: str) -> ModuleRow | None:
        """The row of the module at ``path``, followed name by name (None: no such module has a row)."""
        i = locate(self._names, self._parents, [path]).get(path)
        if i is None:
            return None
        shown = self._shown
        if isinstance(shown, range) or i in set(shown):
            return self._row(i)
        return None

    def spelled(self) -> list[str]:
        """Every row's dotted path, each built from its parent's: the cost of the characters
        written, where spelling each path from the root would cost its depth again."""
        names, parents = self._names, self._parents
        spelled: dict[int, str] = {}
        out = []
        for i in self._shown:
            parent = parents[i]
            if parent <= 0:
                name = names[i]
            else:
                above = spelled.get(parent)
                name = f"{above}.{names[i]}" if above is not None else str(self._link(i))
            spelled[i] = name
            out.append(name)
        return out

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every row as JSON-ready data, its name spelled from its parent's (see :meth:`spelled`)."""
        return [row.to_dict(name) for row, name in zip(self, self.spelled(), strict=True)]

    def with_added(self, params: int, trainable: int) -> ModuleRows:
        """These rows with ``params`` elements (``trainable`` of them trainable) added to every module."""
        return ModuleRows(
            self._names,
            self._parents,
            self._types,
            self._depths,
            [k + params for k in self._params],
            [k + trainable for k in self._trainable],
            self._lazy,
            self._recurrent,
            self._shown,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModuleRows | tuple | list):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=False))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<ModuleRows: {len(self):,} rows>"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        columns = (self._names, self._parents, self._types, self._depths, self._params, self._trainable)
        return ModuleRows, (*map(list, columns), list(self._lazy), list(self._recurrent), list(self._shown))


class OwnParams(NamedTuple):
    """Parameters a module with children registers itself, not through a child (a shared tensor at
    its first site). The table shows them as an "(own)" row, so that children and "(own)" add up
    to their parent.

    Attributes:
        path: the module's path (``""`` for the root).
        names: the names of the tensors it registers (those counted here).
        params: their elements.
        trainable_params: those with ``requires_grad``.
    """

    path: str  # the module's path ("" for the root)
    names: tuple[str, ...]  # the tensors' names on that module
    params: int
    trainable_params: int


@dataclass(frozen=True, slots=True)
class PrunedTensor:
    """A tensor under ``torch.nn.utils.prune``: ``name_orig`` holds ``params`` elements, the mask keeps ``kept``.

    ``kept`` is the number of non-zero entries of ``name_mask``, read from its values;
    ``None`` on the ``meta`` device, where there are no values to read.

    Attributes:
        name: the pruned tensor's full path (``fc.weight``; torch holds it as ``fc.weight_orig``).
        params: its elements, all counted in ``total_params``.
        kept: the mask's non-zero entries (None: not read, on ``meta``).
    """

    name: str  # full path of the pruned tensor ("fc.weight"; it is held as fc.weight_orig)
    params: int
    kept: int | None


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class RecurrentEntry:
    """A recurrent module: its settings, the formula's count and the tensors' count.

    The settings that fix the parameters are ``spec`` (an :class:`RNNSpec`: ``spec.kind``,
    ``spec.hidden_size``, ...), the others ``dropout`` and ``batch_first``;
    :attr:`settings` has them all by name. The formula's figures are in ``formula``
    (``formula.params``, ``formula.layers`` per layer and direction, ``formula.derivation``,
    ``formula.keras_params``); ``to_dict()`` spells every one of them out.

    Attributes:
        name: the module's path (``""`` for the root).
        type: its class as a reader knows it (see :class:`ModuleRow`).
        spec: the settings that fix its parameters (:class:`~torchlstm_params.RNNSpec`).
        dropout: its dropout between layers.
        batch_first: whether it takes (batch, seq, feature) inputs.
        formula: the formula's figures for ``spec``: ``params``, ``layers`` (per layer and direction),
            ``derivation``, ``keras_params`` and ``keras_derivation``.
        tensor_params: what ``sum(p.numel() for p in module.parameters())`` says.
        findings: unexplained differences from the formula (each makes a mismatch).
        explanations: understood differences (weight_norm, packed weights, extra parameters...).
        origin: where the class comes from (``torch.nn``, ``torch.jit.script``, a registry entry...).
        packed: dynamic-quantized storage (None otherwise).
        compute: MACs for the batch given to ``summarize`` (None without one).
        state: elements of what forward returns for that batch.
        saved: what autograd saves for backward in one training call (None where it is not modelled).
    """

    name: str  # module path ("" for the root)
    type: str  # the module's class name
    spec: RNNSpec | Recurrence  # a Recurrence for a hand-written layer, described part by part
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

    def __init__(
        self,
        *,
        name: str,
        type: str,  # the field's name
        spec: RNNSpec | Recurrence,
        dropout: float,
        batch_first: bool,
        formula: Formula,
        tensor_params: int,
        findings: tuple[TensorFinding, ...] = (),
        explanations: tuple[Explanation, ...] = (),
        origin: str = "torch.nn",
        packed: PackedStorage | None = None,
        compute: Compute | None = None,
        state: StateMemory | None = None,
        saved: SavedActivations | None = None,
    ) -> None:
        # The dataclass's own __init__ sets each field through object.__setattr__ (a frozen class's
        # __setattr__ refuses); the slots' setters are 2.5x quicker, measured, and summarize builds one
        # entry per recurrent module. tests/test_results.py keeps this signature the fields'.
        (s_name, s_type, s_spec, s_dropout, s_batch_first, s_formula, s_tensor_params) = _ENTRY_SETTERS[:7]
        s_name(self, name)
        s_type(self, type)
        s_spec(self, spec)
        s_dropout(self, dropout)
        s_batch_first(self, batch_first)
        s_formula(self, formula)
        s_tensor_params(self, tensor_params)
        (s_findings, s_explanations, s_origin, s_packed, s_compute, s_state, s_saved) = _ENTRY_SETTERS[7:]
        s_findings(self, findings)
        s_explanations(self, explanations)
        s_origin(self, origin)
        s_packed(self, packed)
        s_compute(self, compute)
        s_state(self, state)
        s_saved(self, saved)

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

    def __repr__(self) -> str:
        s = self.spec
        options = [f"num_layers={s.num_layers}"] if s.num_layers != 1 else []
        options += ["bidirectional=True"] if s.bidirectional else []
        options += [f"proj_size={s.proj_size}"] if s.proj_size else []
        options += ["bias=False"] if not s.bias else []
        args = ", ".join([str(s.input_size), str(s.hidden_size), *options])
        return (
            f"RecurrentEntry({self.name or '(root)'!r}: {s.kind}({args}), {self.tensor_params:,} params, {self.status})"
        )

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
            "recurrence": None if isinstance(self.spec, RNNSpec) else _recurrence_dict(self.spec),
        }


#: The setters of RecurrentEntry's slots, in field order (what its __init__ calls).
_ENTRY_SETTERS: Final = tuple(vars(RecurrentEntry)[f.name].__set__ for f in dataclasses.fields(RecurrentEntry))


def _recurrence_dict(rec: Recurrence) -> dict[str, Any]:
    """A described recurrence's structure: gate groups, closed form, and its parts layer by layer."""
    return {
        "gate_groups": rec.gate_groups,
        "closed_form": rec.closed_form,
        "shared_directions": rec.shared_directions,
        "note": rec.note,
        "layers": [
            {
                "layer": layer.layer,
                "direction": layer.direction,
                "parts": [
                    {"role": p.role, "expression": p.expression, "arithmetic": p.arithmetic, "params": p.params}
                    for p in layer.parts
                ],
            }
            for layer in rec.layers
        ],
    }


@dataclass(frozen=True, slots=True)
class SharedTensor:
    """One tensor registered under several names (tied weights); counted once.

    Attributes:
        names: every name it is registered under, the first (where it is counted) first.
        numel: its elements (None when uninitialized).
    """

    names: tuple[str, ...]
    numel: int | None  # None when uninitialized


@dataclass(frozen=True, slots=True)
class ModuleAlias:
    """A module registered again under another path; visited once, at ``same_as``.

    Attributes:
        path: the second path.
        same_as: the path it was visited at.
    """

    path: str
    same_as: str


@dataclass(frozen=True, slots=True)
class PackedModule:
    """A non-recurrent module whose weights quantization packed out of ``parameters()``.

    Attributes:
        name: its module path.
        type: its class name (``Linear``, ``Conv2d``, ``Embedding``, ...).
        params: the logical elements (weight and bias) it holds packed.
        packed: their storage.
    """

    name: str
    type: str
    params: int
    packed: PackedStorage


@dataclass(frozen=True, slots=True)
class DtypeUsage:
    """Unique parameter elements and bytes of one dtype, and how many of those elements train.

    Attributes:
        dtype: torch's name without the ``torch.`` prefix (``float32``).
        params: unique elements of that dtype.
        bytes: their bytes.
        trainable_params: those with ``requires_grad``.
        itemsize: bytes per element.
    """

    dtype: str
    params: int
    bytes: int
    trainable_params: int
    itemsize: int  # bytes per element


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What the sanity check ran, what it skipped and why, and every problem it found.

    ``ran`` maps each part of the check to ``True`` (it ran), ``False`` (not asked for)
    or ``"skipped: why"`` (asked for, but it could not run). The parts: ``tensors``
    (recurrent tensors against their formulas, lazy tensors), ``counts``
    (``expect_params``, ``max_params``, ``min_params``, ``expect_trainable``), ``expect``
    (per-module settings), ``settings`` (frozen, dtype, device, layout, dropout) and
    ``values`` (the NaN/Inf scan; ``values`` says how much was scanned).

    ``status`` is ``"failed"`` when a problem fails the check (an error, or under
    ``strict`` a warning too), else ``"incomplete"`` when a part was skipped, else
    ``"passed"``: a part that did not run is never reported as passed.

    Attributes:
        ran: per part, ``True`` (it ran), ``False`` (not asked for) or ``"skipped: why"``.
        problems: every problem found, errors and warnings, minus the codes allowed.
        strict: whether warnings (and explained differences) fail the check.
        values: how much the NaN/Inf scan read and what it found (None when it did not run).
    """

    ran: Mapping[str, bool | str]
    problems: tuple[Problem, ...]
    strict: bool = False
    values: ValueScan | None = None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def failing(self) -> tuple[Problem, ...]:
        """The problems that fail the check: every error, and under ``strict`` every warning too."""
        return self.problems if self.strict else self.errors

    @property
    def skipped(self) -> dict[str, str]:
        """The parts asked for that did not run, with why."""
        return {part: str(how).removeprefix("skipped: ") for part, how in self.ran.items() if isinstance(how, str)}

    @property
    def status(self) -> str:
        if self.failing:
            return "failed"
        return "incomplete" if self.skipped else "passed"

    @property
    def passed(self) -> bool:
        """True only when nothing failed and every part asked for ran."""
        return self.status == "passed"

    def headline(self) -> str:
        """One line: passed, failed or incomplete, with the counts of errors and warnings."""
        errors, warnings = len(self.errors), len(self.warnings)
        counts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
        if warnings:
            counts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
        found = ", ".join(counts)
        if self.status == "failed":
            strict = " (strict: warnings fail too)" if self.strict and warnings else ""
            return f"Sanity check: FAILED, {found}{strict}"
        if self.status == "incomplete":
            skipped = "; ".join(f"{part} skipped: {why}" for part, why in self.skipped.items())
            return f"Sanity check: NOT COMPLETE, {found or 'no problems'} in the parts that ran; {skipped}"
        return "Sanity check: passed" + (f" with {found}" if found else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "passed": self.passed,
            "strict": self.strict,
            "ran": dict(self.ran),
            "problems": [
                {"code": p.code, "severity": p.severity, "path": p.path, "message": p.message} for p in self.problems
            ],
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "values": None if self.values is None else self.values.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``summarize`` found. ``str(report)`` renders tables; ``to_dict()`` is JSON-ready.

    Counts are of unique tensors (a tied weight once). ``rows`` has one
    :class:`ModuleRow` per module down to ``max_depth``; ``recurrent`` one
    :class:`RecurrentEntry` per recurrent module, wherever it sits.

    Showing it: ``repr(report)`` is one line; ``str(report)`` and ``render()`` the tables (modules
    down to depth 2, alike siblings folded; ``render(explain=True)`` adds the per-layer breakdown and
    the derivations, ``render(max_depth=None, fold=False)`` every module); in IPython and Jupyter it
    displays as its tables; ``plot()`` draws where the parameters live; ``to_dict()`` has everything.

    Attributes:
        model_type: the root module's class.
        total_params: unique parameter elements of the whole model (lazy tensors not included).
        trainable_params: those with ``requires_grad``.
        non_trainable_params: the others.
        uninitialized: names of lazy (uninitialized) parameters, in no count.
        param_bytes: bytes of the unique parameters.
        dtypes: elements and bytes per dtype.
        buffer_count: unique buffers (lazy ones included).
        buffer_elements: their elements.
        buffer_bytes: their bytes.
        rows: one per module down to ``max_depth``, in walk order; counts cover the subtree
            (:class:`ModuleRows`, a sequence of :class:`ModuleRow` built as they are read).
        recurrent: one per recurrent module, with its settings, formula and cross-check.
        shared: tensors registered under several names, counted once.
        aliases: modules registered under a second path, visited once.
        max_depth: the depth ``rows`` was cut at (None: every module).
        tokens: sequence elements the compute figures are for (None: not asked, or per module).
        local: this rank's share, when a torch.distributed process group is up.
        wrappers: rename-only wrappers looked through (``torch.compile``, DDP, ...), outermost first.
        own: per module with children that registers parameters itself, those parameters.
        first_site: per row of ``rows``, its subtree's parameters with a shared tensor counted only under
            its first registration (they add up to ``total_params``; the picture's boxes).
        pruned: tensors under ``torch.nn.utils.prune``, with what their masks keep.
        batch: the batch size the compute figures are for.
        seq_len: the sequence length given: one int, or a path -> length mapping.
        packed_modules: quantized Linear/Conv/Embedding modules, whose weights are packed out of
            ``parameters()`` (``logical_params`` adds them back).
        trainable_recorded: False for a state dict, which does not record what trains: ``trainable_params``
            is then every floating-point parameter (what its stand-in assumes), and ``to_dict()`` and the
            tables say null / "not recorded".
        hints: modules that look recurrent but that nothing recognises, each with the registration
            snippet that would cover it.
        check: the sanity check's result (a :class:`CheckResult`) when ``check()`` or ``--check`` made the
            report; None from ``summarize``.
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
    rows: ModuleRows
    recurrent: tuple[RecurrentEntry, ...]
    shared: tuple[SharedTensor, ...]
    aliases: tuple[ModuleAlias, ...]
    max_depth: int | None
    tokens: int | None = None  # sequence elements the compute figures are for (None: not asked)
    local: LocalFigures | None = None  # this rank's share, when a torch.distributed process group is up
    wrappers: tuple[str, ...] = ()  # rename-only wrappers looked through ("path: label"; root: label), outermost first
    own: tuple[OwnParams, ...] = ()  # per module with children that registers parameters itself
    first_site: tuple[int, ...] = ()  # per row: its subtree, a shared tensor only under its first registration
    pruned: tuple[PrunedTensor, ...] = ()  # tensors under torch.nn.utils.prune
    batch: int | None = None  # the batch the compute figures are for (None: not asked, or lengths=)
    seq_len: int | dict[str, int] | None = None  # as given to summarize: one length, or per module path
    packed_modules: tuple[PackedModule, ...] = ()  # quantized Linear/Conv/Embedding: weights packed out of parameters()
    trainable_recorded: bool = True  # False for a state dict, which does not record what trains
    hints: tuple[Hint, ...] = ()  # modules that look recurrent but are not recognised, with a registration snippet
    check: CheckResult | None = None  # set by check() and the CLI's --check; summarize() leaves it None

    @property
    def matches(self) -> bool:
        """True when every recurrent module's tensors are exactly its formula's."""
        return all(e.matches for e in self.recurrent)

    @property
    def packed_params(self) -> int:
        """Logical elements that quantization packed out of ``parameters()``: packed recurrent modules'
        formula counts and packed Linear/Conv/Embedding weights and biases."""
        recurrent = sum(e.formula_params for e in self.recurrent if e.packed is not None)
        return recurrent + sum(m.params for m in self.packed_modules)

    @property
    def logical_params(self) -> int:
        """``total_params`` plus the weights that quantization packed out of ``parameters()``."""
        return self.total_params + self.packed_params

    @property
    def bytes_by_dtype(self) -> dict[str, int]:
        """Parameter bytes per dtype name."""
        return {d.dtype: d.bytes for d in self.dtypes}

    @property
    def effective_params(self) -> int | None:
        """``total_params`` less the entries pruning masks zero out (None when a mask could not be read)."""
        if any(p.kept is None for p in self.pruned):
            return None
        return self.total_params - sum(p.params - (p.kept or 0) for p in self.pruned)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, ints, strings): ``json.dumps`` accepts it."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "recurrent":
                out["recurrent"] = [entry.to_dict() for entry in value]
            elif field.name == "check":
                out["check"] = None if value is None else value.to_dict()
            else:
                out[field.name] = plain(value)
        out["matches"] = self.matches
        out["logical_params"] = self.logical_params
        if not self.trainable_recorded:  # not known: null, never a copy of the parameter counts
            out["trainable_params"] = out["non_trainable_params"] = None
            for item in (*out["rows"], *out["dtypes"]):
                item["trainable_params"] = None
        return out

    def render(
        self,
        tablefmt: str = "simple",
        *,
        keras: bool = False,
        explain: bool = False,
        max_depth: int | Literal["auto"] | None = "auto",
        fold: bool = True,
        color: bool = False,
    ) -> str:
        """The report as text tables in any ``tabulate`` format.

        ``max_depth``: ``"auto"`` shows modules down to the report's own ``max_depth``, or
        :data:`~torchlstm_params.render.DEFAULT_DEPTH` when it has every row; an int limits
        every section; ``None`` shows everything. ``fold`` merges alike siblings into one
        row. ``explain`` adds the per-layer breakdown and the derivations. ``color`` marks
        status words with ANSI colours (the command line turns it on for a terminal).
        """
        from .render import render_report  # upward, lazily (see the module docstring)

        return render_report(
            self, tablefmt=tablefmt, keras=keras, explain=explain, max_depth=max_depth, fold=fold, color=color
        )

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        from .display import short_repr  # upward, lazily (see the module docstring)

        return short_repr(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: the tables; inside a container (IPython's printer stack holds
        the container too), the short repr."""
        nested = len(getattr(printer, "stack", ())) > 1
        printer.text(repr(self) if cycle or nested else str(self))

    def _repr_html_(self) -> str:
        """A notebook's display: the tables as HTML."""
        from .display import report_html  # upward, lazily (see the module docstring)

        return report_html(self)

    def _repr_markdown_(self) -> str:
        """Markdown display (pipe tables)."""
        from .display import report_markdown  # upward, lazily (see the module docstring)

        return report_markdown(self)

    def plot(self, path: str | os.PathLike[str] | None = None, **options: Any) -> Any:
        """Where the parameters live, as an interactive plotly figure; see :func:`torchlstm_params.plot.figure`.

        With ``path`` (``.html``, self-contained and offline; ``.svg``/``.png`` need kaleido),
        the figure is also written there. Needs the ``plot`` extra (plotly).
        """
        from .plot import figure, write  # upward, lazily; plotly is imported only there

        fig = figure(self, **options)
        if path is not None:
            write(fig, path)
        return fig


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses and named tuples as dicts, tuples as lists."""
    if isinstance(value, ModuleRow):
        return value.to_dict()
    if isinstance(value, ModuleRows):
        return value.to_dicts()
    if isinstance(value, OwnParams):
        return {**value._asdict(), "names": list(value.names)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value
