"""A state dict's names, shapes and dtypes -> a meta-device stand-in model that ``summarize`` reads.

Every tensor goes into a module at its key's path, straight into that module's
``_parameters`` or ``_buffers`` (never through ``setattr``), so any key is held as
it is: ``training``, ``forward.weight``, ``bias`` beside ``weight_ih``, both ``a``
and ``a.b``, an empty name.

What a state dict does not say is inferred, and the result says so:

- **Recurrent modules.** The tensors named in torch's recurrent grammar
  (:func:`~torchlstm_params.names.parse_tensor_name`) under one path, with the
  originals of parametrized (``parametrizations.weight_hh_l0.original0/1``) and
  legacy weight-normed (``weight_hh_l0_g``/``_v``) tensors standing for the
  tensor they compute, are given to :func:`~torchlstm_params.infer.infer`. When
  one torch setting fits them all, the module is a real ``nn.LSTM``/``GRU``/
  ``RNN`` or cell object holding exactly the checkpoint's tensors, made without
  running torch's ``__init__`` (no weights created, then thrown away), so the
  cross-check reports missing and unexpected tensors as for a live model. Any
  other recurrent-named tensors end in a note (and a problem for ``--check``).
- **Buffers.** Integer and bool tensors are never parameters; a tensor whose
  last name part is a conventional buffer name (:data:`BUFFER_NAMES`) is taken
  as a buffer; a caller's pattern replaces that list.
- **Trainable.** A state dict does not record ``requires_grad``: the stand-in's
  floating-point parameters require grad and :attr:`StandIn.trainable_recorded`
  is False, for the caller to say so.
- **Ties.** Tensors viewing the same stored memory (same storage identity,
  offset, stride, shape and dtype) become one Parameter, counted once. The
  reader gives the identity; it is ``None`` where the file has none (meta tensors).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import torch
from torch import nn

from .errors import CheckpointError, Problem
from .formulas import RNNSpec, breakdown
from .infer import Inference, infer
from .names import parse_tensor_name, qualified
from .thirdparty import Described, InferredRecurrence, infer_checkpoint

__all__ = ["BUFFER_NAMES", "ModuleMaker", "StandIn", "TensorMeta", "build_stand_in"]

Shape = tuple[int, ...]

#: Last name parts taken as buffers in a state dict, by convention: normalisation statistics
#: (``running_mean``, ``running_var``, any ``running_*``, ``num_batches_tracked``), masks
#: (``mask``, ``_mask``, ``attn_mask``, ``drop_mask``, ``drop_masks``, any ``*mask``/``*masks``),
#: position tables (``position_ids``, rotary ``inv_freq``) and caches (``*_cached``).
BUFFER_NAMES: Final = re.compile(r"running_\w+|num_batches_tracked|\w*masks?|position_ids|inv_freq|\w+_cached")
_BUFFER_RULE: Final = (
    "integer/bool dtype, or a conventional buffer name (running_*, num_batches_tracked, *mask, *masks, "
    "position_ids, inv_freq, *_cached)"
)
_ORIGINAL: Final = re.compile(r"original[0-9]*")
_FULL_CLASSES: Final[Mapping[str, type[nn.Module]]] = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN}
_CELL_CLASSES: Final[Mapping[str, type[nn.Module]]] = {
    "LSTMCell": nn.LSTMCell,
    "GRUCell": nn.GRUCell,
    "RNNCell": nn.RNNCell,
}
_SHOWN: Final = 10  # names listed in one note before "and N more"


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What a checkpoint says about one tensor, without its values.

    ``storage`` identifies the memory it views, as ``(storage identity, offset, stride)``, where
    the file records one (tied tensors share it); ``None`` where it does not.
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    storage: tuple[Hashable, int, tuple[int, ...]] | None = None


@dataclass(frozen=True, slots=True)
class StandIn:
    """The stand-in model and what was inferred to build it."""

    model: nn.Module
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()  # recurrent-named tensors that are no torch module, or missing ones
    buffers: tuple[str, ...] = ()  # the tensors taken as buffers, when that was inferred
    trainable_recorded: bool = True  # False: which parameters train is not known (a state dict)


def _paths(names: list[str]) -> str:
    text = ", ".join(names[:_SHOWN])
    return text + (f" and {len(names) - _SHOWN:,} more" if len(names) > _SHOWN else "")


def _largest(shapes: Mapping[str, Shape]) -> Shape:
    def numel(shape: Shape) -> int:
        n = 1
        for d in shape:
            n *= d
        return n

    return max(shapes.values(), key=numel)


class _Evidence:
    """The recurrent-named tensors of each module path, as held: directly, weight-normed, parametrized."""

    def __init__(self) -> None:
        self.direct: dict[str, dict[str, Shape]] = {}
        self.weight_norm: dict[str, dict[str, dict[str, Shape]]] = {}
        self.parametrized: dict[str, dict[str, dict[str, Shape]]] = {}
        self._parsed: dict[str, bool] = {}

    def _recurrent(self, leaf: str) -> bool:
        known = self._parsed.get(leaf)
        if known is None:
            known = self._parsed[leaf] = parse_tensor_name(leaf) is not None
        return known

    def add(self, prefix: str, leaf: str, shape: Shape) -> None:
        if self._recurrent(leaf):
            self.direct.setdefault(prefix, {})[leaf] = shape
        elif leaf[-2:] in ("_g", "_v") and self._recurrent(leaf[:-2]):
            self.weight_norm.setdefault(prefix, {}).setdefault(leaf[:-2], {})[leaf[-1]] = shape
        elif _ORIGINAL.fullmatch(leaf):
            head, _, name = prefix.rpartition(".")
            owner, _, container = head.rpartition(".")
            if container == "parametrizations" and self._recurrent(name):
                self.parametrized.setdefault(owner, {}).setdefault(name, {})[leaf] = shape

    def logical(self) -> tuple[dict[str, dict[str, Shape]], dict[str, list[str]]]:
        """Module path -> torch name -> the shape of the tensor it stands for; and incomplete pieces."""
        out = {path: dict(found) for path, found in self.direct.items()}
        partial: dict[str, list[str]] = {}
        for path, groups in self.weight_norm.items():
            found = out.setdefault(path, {})
            for name, parts in groups.items():
                if name in found:
                    continue
                if "g" in parts and "v" in parts:
                    found[name] = parts["v"]  # weight = g * v / |v|: v has the weight's shape
                else:
                    partial.setdefault(path, []).extend(f"{name}_{p}" for p in parts)
        for path, groups in self.parametrized.items():
            found = out.setdefault(path, {})
            for name, originals in groups.items():
                if name not in found:
                    found[name] = _largest(originals)  # the original that carries the weight's shape
        return {p: f for p, f in out.items() if f}, partial


class ModuleMaker:
    """Module objects made without running their ``__init__``: the attributes ``nn.Module.__init__`` sets,
    copied from one probe, plus a recurrent class's settings. Torch's ``RNNBase.__init__`` would create
    and initialise every weight, only for them to be replaced.

    ``_parameters``, ``_buffers``, ``_modules`` and the other containers are fresh and empty for each
    module; the eleven hook registries are one read-only empty mapping shared by all (a stand-in runs
    no forward: registering a hook on one fails loudly instead of reaching the others). That halves
    a module's memory, which counts at 30,000 modules.
    """

    def __init__(self) -> None:
        probe = nn.Module().__dict__
        containers = (dict, set, list)
        no_hooks: Mapping[object, object] = MappingProxyType({})
        self._plain = {k: v for k, v in probe.items() if not isinstance(v, containers)}
        self._plain.update((k, no_hooks) for k, v in probe.items() if isinstance(v, dict) and "hooks" in k)
        self._fresh: list[tuple[str, type]] = [
            (k, type(v)) for k, v in probe.items() if isinstance(v, containers) and k not in self._plain
        ]
        self._names: dict[RNNSpec, tuple[list[str], list[list[str]]]] = {}

    def make(self, cls: type[nn.Module]) -> nn.Module:
        module = cls.__new__(cls)
        attrs = module.__dict__
        attrs.update(self._plain)
        for name, container in self._fresh:  # a new, empty dict / OrderedDict / set for each
            attrs[name] = container()
        return module

    def recurrent(self, spec: RNNSpec) -> nn.Module:
        """A torch recurrent module object with ``spec``'s settings and no tensors yet."""
        cell = spec.kind in _CELL_CLASSES
        cls = _CELL_CLASSES[spec.kind] if cell else _FULL_CLASSES[spec.kind]
        module = self.make(cls)
        attrs: dict[str, object] = {"input_size": spec.input_size, "hidden_size": spec.hidden_size, "bias": spec.bias}
        if cls in (nn.RNN, nn.RNNCell):
            attrs["nonlinearity"] = "tanh"  # shapes cannot tell tanh from relu (said in a note)
        if not cell:
            names = self._names.get(spec)
            if names is None:
                layers = breakdown(spec)
                names = self._names[spec] = (
                    [t.name for layer in layers for t in layer.tensors],
                    [[t.name for t in layer.tensors] for layer in layers],
                )
            attrs.update(
                mode=spec.kind,
                num_layers=spec.num_layers,
                batch_first=False,
                dropout=0.0,
                bidirectional=spec.bidirectional,
                proj_size=spec.proj_size,
                _flat_weights_names=list(names[0]),
                _all_weights=[list(group) for group in names[1]],
                _flat_weights=[],
            )
        module.__dict__.update(attrs)
        return module


class _Builder:
    """Modules made on first use, parents first, in the checkpoint's key order."""

    def __init__(self, specs: Mapping[str, RNNSpec], described: Mapping[str, InferredRecurrence]) -> None:
        self.specs = specs
        self.described = described
        self.maker = ModuleMaker()
        self.nodes: dict[str, nn.Module] = {"": self._make("")}

    def _make(self, path: str) -> nn.Module:
        third = self.described.get(path)
        if third is not None:  # a third-party class found by its distinctive tensor names
            return Described(third.recurrence, third.origin)
        spec = self.specs.get(path)
        if spec is not None:
            return self.maker.recurrent(spec)
        if path.rpartition(".")[2] == "parametrizations":
            return self.maker.make(nn.ModuleDict)  # what torch.nn.utils.parametrize registers: the cross-check reads it
        return self.maker.make(nn.Module)

    def node(self, path: str) -> nn.Module:
        found = self.nodes.get(path)
        if found is not None:
            return found
        chain = [path]
        parent = path.rpartition(".")[0]
        while parent not in self.nodes:  # iterative: a key may have thousands of parts
            chain.append(parent)
            parent = parent.rpartition(".")[0]
        module = self.nodes[parent]
        for child in reversed(chain):
            made = self._make(child)
            module._modules[child.rpartition(".")[2]] = made
            self.nodes[child] = module = made
        return module


def _described(tensors: Mapping[str, TensorMeta]) -> tuple[dict[str, InferredRecurrence], frozenset[str]]:
    """Third-party recurrent classes found by their distinctive tensor names, and their buffers' full names."""
    found = {f.path: f for f in infer_checkpoint({n: m.shape for n, m in tensors.items()})}
    buffers = frozenset(qualified(path, b) for path, f in found.items() for b in f.recurrence.buffers)
    return found, buffers


def _inside(prefix: str, described: Mapping[str, InferredRecurrence]) -> bool:
    return any(path == "" or prefix == path or prefix.startswith(path + ".") for path in described)


def _is_buffer(name: str, leaf: str, dtype: torch.dtype, pattern: re.Pattern[str] | None) -> bool:
    if not (dtype.is_floating_point or dtype.is_complex):
        return True
    if pattern is not None:
        return pattern.search(name) is not None
    return BUFFER_NAMES.fullmatch(leaf) is not None


def _inferences(
    evidence: _Evidence,
) -> tuple[dict[str, RNNSpec], list[str], list[Problem]]:
    logical, partial = evidence.logical()
    specs: dict[str, RNNSpec] = {}
    by_note: dict[str, list[str]] = {}
    problems: list[Problem] = []
    tanh: list[str] = []
    memo: dict[tuple[tuple[str, Shape], ...], Inference] = {}
    for path, found in logical.items():
        key = tuple(sorted(found.items()))
        result = memo.get(key)
        if result is None:
            result = memo[key] = infer(found)
        where = path or "(root)"
        if result.spec is not None:
            specs[path] = result.spec
            if result.spec.kind in ("RNN_TANH", "RNNCell"):
                tanh.append(f"{where} ({'RNN' if result.spec.kind == 'RNN_TANH' else 'RNNCell'})")
        for note in result.notes:
            by_note.setdefault(note, []).append(where)
        problems.extend(Problem(code, path, message) for code, message in result.problems)
    for path, pieces in partial.items():
        if path in logical:
            continue  # the module is judged on its other tensors; the cross-check names the missing one
        message = (
            f"{', '.join(pieces)}: one half of a legacy weight_norm pair of a recurrent tensor, the other half "
            "missing; counted as plain parameters"
        )
        by_note.setdefault(message, []).append(path or "(root)")
        problems.append(Problem("RNN_UNRECOGNISED", path, message))
    notes = [f"{_paths(paths)}: {note}" for note, paths in by_note.items()]
    if tanh:
        notes.append(
            f"a plain RNN's tanh or relu cannot be told apart from shapes (same count), shown as tanh: {_paths(tanh)}"
        )
    return specs, notes, problems


def build_stand_in(tensors: Mapping[str, TensorMeta], *, buffers: str | None = None) -> StandIn:
    """A meta-device module tree holding ``tensors`` (name -> metadata), recurrent modules inferred.

    ``buffers``: a regular expression; tensors whose full name it matches (``re.search``) are the
    buffers, instead of :data:`BUFFER_NAMES`. Integer and bool tensors are buffers either way.
    """
    # No collector pause here: pausing Python's gc is interpreter-wide state, which a library call
    # must not flip (another thread's summary would run with it off, or get it back on mid-way).
    return _build(tensors, buffers)


def _build(tensors: Mapping[str, TensorMeta], buffers: str | None) -> StandIn:
    pattern = None
    if buffers is not None:
        try:
            pattern = re.compile(buffers)
        except re.error as exc:
            raise CheckpointError(f"--buffers {buffers!r} is not a regular expression: {exc}") from None
    evidence = _Evidence()
    seen: set[Hashable] = set()
    repeated: set[Hashable] = set()  # storages viewed by more than one tensor: the only ones that can tie
    for name, meta in tensors.items():
        prefix, _, leaf = name.rpartition(".")
        evidence.add(prefix, leaf, meta.shape)
        if meta.storage is not None:
            identity = meta.storage[0]
            if identity in seen:
                repeated.add(identity)
            seen.add(identity)
    del seen
    described, described_buffers = _described(tensors)
    if described:  # a described class's tensors are not torch's, whatever their names
        for found in (evidence.direct, evidence.weight_norm, evidence.parametrized):
            for path in [p for p in found if _inside(p, described)]:
                del found[path]
    specs, notes, problems = _inferences(evidence)
    builder = _Builder(specs, described)
    node = builder.node
    taken: list[str] = []
    shared: dict[Hashable, nn.Parameter] = {}
    meta_device = torch.device("meta")
    for name, meta in tensors.items():
        prefix, _, leaf = name.rpartition(".")
        owner = node(prefix)
        tensor = torch.empty(meta.shape, dtype=meta.dtype, device=meta_device)
        if name in described_buffers or _is_buffer(name, leaf, meta.dtype, pattern):
            owner._buffers[leaf] = tensor
            taken.append(name)
            continue
        storage = meta.storage
        key = None if storage is None or storage[0] not in repeated else (storage, meta.shape, meta.dtype)
        param = None if key is None else shared.get(key)
        if param is None:
            param = nn.Parameter(tensor)
            if key is not None:
                shared[key] = param
        owner._parameters[leaf] = param
    for path in specs:
        module = builder.nodes.get(path)
        if isinstance(module, nn.RNNBase):
            module._flat_weights = [module._parameters.get(n) for n in module._flat_weights_names]
    rule = f"--buffers {buffers!r} (and integer/bool dtype)" if buffers is not None else _BUFFER_RULE
    taken_text = f"{len(taken):,}: {_paths(taken)}" if taken else "none"
    notes.append(f"a state dict does not record which tensors are buffers; taken as buffers by {rule}: {taken_text}")
    return StandIn(builder.nodes[""], tuple(notes), tuple(problems), tuple(taken), trainable_recorded=False)
