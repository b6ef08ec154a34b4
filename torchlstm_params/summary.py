"""``summarize(model)``: one static pass over a model, returned as a :class:`~torchlstm_params.results.Report`.

No forward pass, no hooks, no tensor data read, no change to the model:
names, shapes, dtypes and ``requires_grad`` flags are all it looks at, so a
meta-device model summarizes as fast as any other. (The one piece of user code
it may run is a recurrent weight's parametrization whose shape torch does not
guarantee, and only on a copy of it holding meta tensors: see
:func:`torchlstm_params.crosscheck.crosscheck`.) The flow is the module
names': walk -> detect -> tally (with the formulas) -> crosscheck -> results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress

import torch
import torch.distributed as dist
from torch import nn
from torch.jit._script import RecursiveScriptModule
from torch.nn.utils import parametrize

from .crosscheck import Explanation, crosscheck
from .detect import TORCH_RECURRENT_CLASSES, Detected, detect_all, scripted_type
from .distributed import local_figures_of
from .errors import InvalidSettingsError, NotAModuleError
from .estimates import ITEMSIZE, compute, saved_activations, state_memory, tokens
from .formulas import Formula, RNNSpec, formula
from .hints import find_hints
from .names import parse_tensor_name, qualified
from .packed import PACKED_CLASSES, packed_module
from .pruning import pruned_tensors
from .recurrence import formula_of
from .registry import Registry, default_registry
from .results import (
    DtypeUsage,
    ModuleAlias,
    ModuleRows,
    OwnParams,
    PackedModule,
    PrunedTensor,
    RecurrentEntry,
    Report,
    SharedTensor,
)
from .tally import tally
from .walk import Tree, walk

__all__ = ["Summary", "summarize", "summarize_stack", "summarize_tree"]


@dataclass(frozen=True, slots=True)
class Summary:
    """A report and the tree it was built from, so that the sanity check, the memory figures and
    the command line read the model through the one walk ``summarize`` made."""

    report: Report
    tree: Tree


def summarize(
    model: nn.Module,
    max_depth: int | None = None,
    *,
    registry: Registry | None = None,
    batch: int | None = None,
    seq_len: int | Mapping[str, int] | None = None,
    lengths: Sequence[int] | None = None,
) -> Report:
    """Count, locate and cross-check every parameter of ``model``.

    ``max_depth`` limits the module rows (0: the root alone; ``None``: all);
    recurrent modules and totals always cover the whole model. Wrappers that
    only rename (``torch.compile``, ``DataParallel``, ``DistributedDataParallel``)
    are looked through and named once in ``wrappers``. ``registry`` adds
    recurrent classes (default: :data:`default_registry`). With ``batch`` and
    ``seq_len`` (or the ``lengths`` of a packed batch) every recurrent entry
    also gets its compute, returned-state and saved-for-backward sizes (see
    :mod:`torchlstm_params.estimates`). ``seq_len`` may be a mapping of module
    path to length (``{"encoder": 50, "decoder": 10}``): a recurrent module takes
    the length of the longest path that is itself or one of its ancestors (``""``
    is the whole model); one that no path covers gets no figures. A cell is
    taken to run once per token: ``seq_len`` calls on the batch.

    Scripted modules are shown by their original class (``LSTM (scripted)``), and
    a class name that two classes of the model share by its full module path.

    >>> from torch import nn
    >>> report = summarize(nn.LSTM(3, 2))
    >>> report.total_params, report.recurrent[0].formula.derivation
    (56, '[4·2·(3+2) + 2·4·2] = 56')
    >>> report
    Report(LSTM: 56 params, 56 trainable, 1 recurrent: ok)
    """
    return summarize_tree(model, max_depth, registry=registry, batch=batch, seq_len=seq_len, lengths=lengths).report


def summarize_tree(
    model: nn.Module,
    max_depth: int | None = None,
    *,
    registry: Registry | None = None,
    batch: int | None = None,
    seq_len: int | Mapping[str, int] | None = None,
    lengths: Sequence[int] | None = None,
) -> Summary:
    """:func:`summarize`, returning the walked tree beside the report (for the library's own consumers)."""
    _check_args(model, max_depth, registry, lengths)
    tree = walk(model)
    batch_shape = None
    if batch is not None or seq_len is not None or lengths is not None:
        batch_shape = _BatchShape(batch, seq_len, None if lengths is None else list(lengths), tree)
    report = _report(tree, max_depth, default_registry if registry is None else registry, batch_shape)
    if dist.is_available() and dist.is_initialized():  # sharded parameters: add this rank's share (no collective)
        report = dataclasses.replace(report, local=local_figures_of(tree))
    return Summary(report, tree)


def summarize_stack(
    stand_in: nn.Module,
    num_layers: int,
    max_depth: int | None = None,
    *,
    batch: int | None = None,
    seq_len: int | None = None,
    lengths: Sequence[int] | None = None,
) -> Summary:
    """The summary of a lone ``nn.RNNBase`` as if it had ``num_layers`` layers, from a shallower stand-in.

    torch takes time quadratic in ``num_layers`` to build a deep stack, even on ``meta``. Every
    layer above 0 holds tensors of one set of shapes (each sees ``D*r`` inputs), so a stand-in of
    2 or more layers has them all: its tensors are cross-checked as usual, and the layers it lacks
    are counted as copies of its layer 1, measured on its own registered tensors. The formula is
    the closed form with a collapsed breakdown (:func:`~torchlstm_params.formulas.formula`), so
    the summary is constant size for any depth. The tree is the stand-in's.
    """
    if not isinstance(stand_in, nn.RNNBase) or not isinstance(num_layers, int) or isinstance(num_layers, bool):
        raise InvalidSettingsError(
            f"summarize_stack() takes an nn.RNNBase stand-in and an int num_layers, got "
            f"{type(stand_in).__name__} and {num_layers!r}"
        )
    summary = summarize_tree(stand_in, max_depth, batch=batch, seq_len=seq_len, lengths=lengths)
    report = summary.report
    (entry,) = report.recurrent
    if not isinstance(entry.spec, RNNSpec):  # an nn.RNNBase is read through torch's settings, never a Recurrence
        raise InvalidSettingsError(f"summarize_stack() needs torch's recurrence, got {type(entry.spec).__name__}")
    have = entry.spec.num_layers
    if have < 2 or num_layers < have:
        raise InvalidSettingsError(
            f"summarize_stack() needs a stand-in of 2 to num_layers layers, got {have} for num_layers={num_layers}"
        )
    layer_one = [
        p
        for name, p in stand_in.named_parameters(recurse=False)
        if (parsed := parse_tensor_name(name)) is not None and parsed.layer == 1
    ]
    more = num_layers - have
    params = more * sum(p.numel() for p in layer_one)
    trainable = more * sum(p.numel() for p in layer_one if p.requires_grad)
    spec = dataclasses.replace(entry.spec, num_layers=num_layers)
    entry = dataclasses.replace(
        entry, spec=spec, formula=formula(spec, collapse=True), tensor_params=entry.tensor_params + params
    )
    if report.tokens is not None:
        shape = _BatchShape(batch, seq_len, None if lengths is None else list(lengths), summary.tree)
        entry = shape.figures(entry, stand_in)
    by_dtype: dict[str, tuple[int, int]] = {}
    for p in layer_one:
        dtype = str(p.dtype).removeprefix("torch.")
        n, t = by_dtype.get(dtype, (0, 0))
        by_dtype[dtype] = (n + more * p.numel(), t + (more * p.numel() if p.requires_grad else 0))
    dtypes = tuple(
        dataclasses.replace(
            d,
            params=d.params + by_dtype.get(d.dtype, (0, 0))[0],
            bytes=d.bytes + by_dtype.get(d.dtype, (0, 0))[0] * d.itemsize,
            trainable_params=d.trainable_params + by_dtype.get(d.dtype, (0, 0))[1],
        )
        for d in report.dtypes
    )
    rows = report.rows.with_added(params, trainable)
    report = dataclasses.replace(
        report,
        total_params=report.total_params + params,
        trainable_params=report.trainable_params + trainable,
        non_trainable_params=report.non_trainable_params + params - trainable,
        param_bytes=sum(d.bytes for d in dtypes),
        dtypes=dtypes,
        rows=rows,
        first_site=tuple(n + params for n in report.first_site),
        recurrent=(entry,),
    )
    return Summary(report, summary.tree)


def _check_args(model: object, max_depth: object, registry: object, lengths: object) -> None:
    if not isinstance(model, nn.Module):
        kind = type(model)
        raise NotAModuleError(
            f"summarize() expects a torch.nn.Module, got {kind.__module__}.{kind.__qualname__}: {model!r:.80}"
        )
    if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0):
        raise InvalidSettingsError(f"max_depth must be None or an int >= 0, got: {max_depth!r}")
    if registry is not None and not isinstance(registry, Registry):
        raise InvalidSettingsError(f"registry must be a torchlstm_params.Registry, got: {type(registry).__name__}")
    if lengths is not None and (isinstance(lengths, str | bytes) or not isinstance(lengths, Sequence)):
        raise InvalidSettingsError(f"lengths must be a sequence of ints (a packed batch), got: {lengths!r:.80}")


def _detect_all(tree: Tree, registry: Registry) -> dict[int, tuple[Detected, Formula]]:
    """Recurrent nodes -> (settings, formula).

    Every recurrent module is found wherever it sits, inside another recurrent module too.
    One memo for the whole summary: each class is asked once whether it may be recurrent,
    each distinct (class, settings, their types) validated once, each distinct spec's
    formula built once.
    """
    found: dict[int, tuple[Detected, Formula]] = {}
    formulas: dict[int, Formula] = {}  # id(Detected) -> its formula; detection's memo shares each Detected
    for i, detected in detect_all(tree.modules, registry, tree.path).items():
        f = formulas.get(id(detected))
        if f is None:
            f = formulas[id(detected)] = formula_of(detected.spec)
        found[i] = (detected, f)
    return found


def _entries(
    tree: Tree, recurrent: dict[int, tuple[Detected, Formula]], params: list[int], exact: set[int], types: list[str]
) -> list[RecurrentEntry]:
    """One entry per recurrent node; crosschecked where the tally did not find the formula's tensors."""
    out = []
    for i, (detected, f) in recurrent.items():
        entry = RecurrentEntry(
            name=tree.path(i),
            type=types[i],
            spec=detected.spec,
            dropout=detected.dropout,
            batch_first=detected.batch_first,
            formula=f,
            tensor_params=params[i],
            origin=detected.origin,
        )
        if i not in exact or params[i] != f.params:
            entry = _crosschecked(entry, tree.modules[i], detected)
        out.append(entry)
    return out


def _crosschecked(entry: RecurrentEntry, module: nn.Module, detected: Detected) -> RecurrentEntry:
    """``entry`` with what the crosscheck finds in ``module``'s tensors: findings and explanations."""
    f, tensor_params = entry.formula, entry.tensor_params
    check = crosscheck(f, module, detected, entry.name)
    explanations = check.explanations
    extra = tensor_params - check.accounted
    if not detected.packed and extra > 0:
        # Parameters of submodules that are neither the recurrent tensors nor their stand-ins.
        message = f"{extra:,} elements in submodules are not part of the recurrent formula; counted in totals"
        explanations += (Explanation("(submodules)", "extra", message, extra),)
    elif not detected.packed and extra < 0:
        # A registered class's tensors function may name tensors that are no parameters of this subtree.
        message = (
            f"{-extra:,} elements of the tensors matched to the formula are not parameters of this module or its "
            "submodules (buffers, plain tensors or another module's); totals count parameters only"
        )
        explanations += (Explanation("(not parameters)", "not_parameters", message, extra),)
    return dataclasses.replace(entry, findings=check.findings, explanations=explanations, packed=check.packed)


class _BatchShape:
    """The batch the compute and memory figures are for: padded (batch, seq_len) or packed (lengths).

    ``seq_len`` may map module paths to lengths; each recurrent module takes the longest path
    that is itself or an ancestor ("" covers the whole model).
    """

    def __init__(
        self, batch: int | None, seq_len: int | Mapping[str, int] | None, lengths: list[int] | None, tree: Tree
    ) -> None:
        self.batch, self.lengths = batch, lengths
        self.per_module: dict[str, int] | None = None
        if isinstance(seq_len, Mapping):
            if lengths is not None:
                raise InvalidSettingsError("give either lengths= (a packed batch) or seq_len=, not both")
            self.per_module = _per_module_lengths(batch, seq_len, tree)
            self.seq_len: int | None = None
            self.tokens: int | None = None
        else:
            self.seq_len = seq_len
            self.tokens = tokens(batch, seq_len, lengths)  # validates the arguments
        rows = len(lengths) if lengths is not None else batch
        assert rows is not None  # tokens() accepted the arguments
        self.rows: int = rows

    def length_of(self, path: str) -> int | None:
        """The sequence length of the module at ``path`` (None: no length given for it)."""
        if self.per_module is None:
            return self.seq_len
        node = path
        while True:
            if node in self.per_module:
                return self.per_module[node]
            if not node:
                return None
            node = node.rpartition(".")[0]

    def figures(self, entry: RecurrentEntry, module: nn.Module) -> RecurrentEntry:
        """``entry`` with its compute, returned-state and saved-for-backward figures for this batch.

        A described (hand-written) recurrence gets none: the estimates model torch's recurrences.
        """
        spec = entry.spec
        if not isinstance(spec, RNNSpec):
            return entry
        seq_len = self.length_of(entry.name)
        if self.lengths is None and seq_len is None:
            return entry
        n_tokens = tokens(self.batch, seq_len, self.lengths)
        dtype = _kernel_dtype(module, spec)
        saved = None
        packed_cell = entry.spec.is_cell and self.lengths is not None  # a loop over a packed batch is the caller's
        # Training-mode dropout between layers draws its mask with bernoulli, which has no complex kernel.
        complex_dropout = (
            dtype is not None and dtype.startswith("complex") and entry.dropout > 0 and entry.spec.num_layers > 1
        )
        if dtype is not None and _runs_torch_recurrence(module) and not packed_cell and not complex_dropout:
            saved = saved_activations(
                spec,
                self.batch,
                seq_len,
                self.lengths,
                batch_first=entry.batch_first,
                dropout=entry.dropout,
                dtype=dtype,
            )
        return dataclasses.replace(
            entry,
            compute=compute(spec, n_tokens),
            state=state_memory(spec, self.rows, n_tokens, dtype),
            saved=saved,
        )


def _per_module_lengths(batch: int | None, seq_len: Mapping[str, int], tree: Tree) -> dict[str, int]:
    """``seq_len``'s paths checked against the model's (a typo names the closest) and its lengths validated."""
    known = tree.locate(path for path in seq_len if isinstance(path, str))
    out: dict[str, int] = {}
    for path, length in seq_len.items():
        if not isinstance(path, str) or path not in known:
            close = tree.closest(str(path))
            hint = f"; closest: {', '.join(repr(c) for c in close)}" if close else ""
            raise InvalidSettingsError(f"seq_len names no module at {path!r}{hint}")
        try:
            tokens(batch, length)
        except InvalidSettingsError as exc:
            raise InvalidSettingsError(f"seq_len[{path!r}]: {exc}") from None
        out[path] = length
    return out


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


def _kernel_dtype(module: nn.Module, spec: RNNSpec) -> str | None:
    """The dtype ``module`` computes in, or None where torch has no kernel to run it in that dtype.

    A dtype outside :data:`~torchlstm_params.estimates.ITEMSIZE` (float8, complex32) runs nowhere, and
    torch's relu has no complex kernel, so a complex ``nonlinearity="relu"`` RNN or cell does not run either
    (``tests/test_estimates.py`` runs every floating and complex dtype torch has, per kind).
    """
    dtype = _activation_dtype(module)
    if dtype not in ITEMSIZE:
        return None
    relu = spec.kind == "RNN_RELU" or getattr(module, "nonlinearity", None) == "relu"
    if relu and dtype.startswith("complex"):
        return None
    return dtype


def _activation_dtype(module: nn.Module) -> str:
    """The dtype a recurrent module computes in: its first floating parameter's (float32 when packed)."""
    for p in module.parameters():
        if p.is_floating_point() or p.is_complex():
            return str(p.dtype).removeprefix("torch.")
    return "float32"  # dynamic-quantized modules keep int8 weights and compute in float32


def _packed_modules(tree: Tree) -> tuple[PackedModule, ...]:
    """Quantized Linear/Conv/Embedding modules, whose weights are packed out of ``parameters()``."""
    modules = tree.modules
    packed = {cls for cls in set(map(type, modules)) if issubclass(cls, PACKED_CLASSES)}
    out = []
    if packed:
        for i in compress(range(len(modules)), map(packed.__contains__, map(type, modules))):
            params, storage = packed_module(modules[i])
            out.append(PackedModule(tree.path(i), type(modules[i]).__name__, params, storage))
    return tuple(out)


def _report(tree: Tree, max_depth: int | None, registry: Registry, batch_shape: _BatchShape | None) -> Report:
    modules, depths = tree.modules, tree.depths
    recurrent = _detect_all(tree, registry)
    counts = tally(tree, {i: f for i, (_, f) in recurrent.items()})
    types = _type_names(modules)
    entries = _entries(tree, recurrent, counts.params, counts.exact, types)
    if batch_shape is not None:
        entries = [batch_shape.figures(e, modules[i]) for e, i in zip(entries, recurrent, strict=True)]
    sub, sub_train, sub_lazy = counts.params, counts.trainable, counts.lazy
    is_recurrent = [False] * len(tree)
    for i in recurrent:
        is_recurrent[i] = True
    first_site = counts.first_site
    shown = None
    if max_depth is not None:
        shown = [i for i, depth in enumerate(depths) if depth <= max_depth]
        first_site = [first_site[i] for i in shown]
    # Columns, built into rows when read (results.ModuleRows): no row object is made here.
    rows = ModuleRows(tree.names, tree.parents, types, depths, sub, sub_train, sub_lazy, is_recurrent, shown)
    dtypes = tuple(
        DtypeUsage(str(dt).removeprefix("torch."), k, k * dt.itemsize, counts.trainable_by_dtype[dt], dt.itemsize)
        for dt, k in sorted(counts.by_dtype.items(), key=lambda item: str(item[0]))
    )
    total, trainable = sub[0], sub_train[0]
    return Report(
        model_type=types[0],
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
        aliases=tuple(ModuleAlias(tree.alias_path(a), tree.path(a.target)) for a in tree.aliases),
        max_depth=max_depth,
        tokens=None if batch_shape is None else batch_shape.tokens,
        wrappers=tuple(f"{path}: {label}" if path else label for path, label in tree.wrappers),
        own=_own(tree, counts.direct, counts.direct_trainable, counts.shared_names),
        first_site=tuple(first_site),
        pruned=tuple(
            PrunedTensor(qualified(tree.path(p.node), p.name), p.params, p.kept)
            for p in pruned_tensors(tree, counts.orig_nodes)
        ),
        batch=None if batch_shape is None else batch_shape.batch,
        seq_len=None
        if batch_shape is None
        else (batch_shape.seq_len if batch_shape.per_module is None else dict(batch_shape.per_module)),
        packed_modules=_packed_modules(tree),
        hints=find_hints(tree, recurrent),
    )


def _own(
    tree: Tree, direct: list[int], direct_trainable: list[int], shared: list[tuple[list[str], torch.Tensor]]
) -> tuple[OwnParams, ...]:
    """Per module with children that registers parameters itself: their names and counts (a shared tensor
    at its first site)."""
    elsewhere = {name for names, _ in shared for name in names[1:]}  # registrations counted at an earlier site
    out = []
    with_children = sorted(set(tree.parents[1:]))  # the nodes that are some node's parent
    for i in compress(with_children, map(direct.__getitem__, with_children)):
        path = tree.path(i)
        names = tuple(n for n, p in tree.parameters[i].items() if p is not None)
        if elsewhere:
            names = tuple(n for n in names if qualified(path, n) not in elsewhere)
        out.append(OwnParams(path, names, direct[i], direct_trainable[i]))
    return tuple(out)


def _type_names(modules: list[nn.Module]) -> list[str]:
    """Each module's class as a reader knows it.

    A scripted module is shown by the class it was compiled from (``LSTM (scripted)``,
    not ``RecursiveScriptModule``); a name that two classes of the model share is
    shown by its full module path (``speechbrain.nnet.RNN.LSTM`` beside ``LSTM``).
    """
    classes = set(map(type, modules))
    by_class = {
        cls: (cls.__name__, f"{cls.__module__}.{cls.__qualname__}")
        for cls in classes
        if not issubclass(cls, RecursiveScriptModule)
    }
    if len(by_class) == len(classes):  # no scripted module: one C-level pass names every module
        keyed = list(map(by_class.__getitem__, map(type, modules)))
    else:  # a scripted module is named by the class it was compiled from, which its class does not say
        keyed = [by_class[type(m)] if type(m) in by_class else _scripted_name(m) for m in modules]
    shorts: dict[str, set[str]] = {}
    for short, full in set(keyed):
        shorts.setdefault(short, set()).add(full)
    if all(len(v) == 1 for v in shorts.values()):
        return [short for short, _ in keyed]
    return [full if len(shorts[short]) > 1 else short for short, full in keyed]


def _scripted_name(module: nn.Module) -> tuple[str, str]:
    """(short, full) name of the class a scripted module was compiled from."""
    assert isinstance(module, RecursiveScriptModule)
    qualified = scripted_type(module)
    short = str(getattr(module, "original_name", qualified.rpartition(".")[2]))
    return f"{short} (scripted)", f"{qualified} (scripted)"


def _numel_or_none(tensor: torch.Tensor) -> int | None:
    try:
        return tensor.numel()
    except ValueError:  # UninitializedParameter
        return None
