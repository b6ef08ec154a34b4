"""What a safely read pickle holds: its state dict, its module tree, tied tensors, recurrent settings.

Works on the object graph :func:`torchlstm_params.unpickle.read_pickled` returns, without importing
or calling anything:

- :func:`find_state_dict`: the mapping of names to tensors, at the top or nested under the keys
  training code uses (Lightning's ``state_dict``, ``model_state_dict``, ``model``, ...).
- :func:`find_module` / :func:`module_tree`: a pickled ``nn.Module`` (``torch.save(model)``, or the
  root of a TorchScript archive) as a :class:`PickledModule` tree. For an eager module everything is
  read from the pickled ``__dict__``: ``_parameters``, ``_buffers``, ``_modules``,
  ``_non_persistent_buffers_set`` and its plain settings. For a TorchScript module, parameters and
  buffers are told apart by the ``__parameters__``/``__buffers__`` its archived code declares, and
  the settings include its ``Final`` constants (``hidden_size``, ``num_layers``, ...).
- :func:`tie_groups`: tensors that are the same view of the same stored memory, by the file's own
  storage key (never by an address: every meta tensor has address 0).
- :func:`recurrent_settings`: the constructor settings of a pickled LSTM/GRU/RNN or cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

import torch

from .errors import CheckpointError
from .unpickle import PickledFile, PickledObject, PickledTensor, ScriptClass

__all__ = [
    "FoundStateDict",
    "PickledModule",
    "RecurrentSettings",
    "find_module",
    "find_state_dict",
    "meta_tensors",
    "module_tree",
    "recurrent_settings",
    "tie_groups",
]

_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
_MAX_SEARCH_DEPTH = 3
_MAX_NAMES = 10_000_000  # named_* without de-duplication on a shared-module DAG: refuse a blow-up
_MANGLE = re.compile(r"\.___torch_mangle_\d+")
_RECURRENT_KINDS = {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"}
_RECURRENT_MODULES = ("torch.nn.modules.rnn", "torch.ao.nn.quantized.dynamic.modules.rnn")
_RECURRENT_KEYS = (
    "mode",
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
    "proj_size",
    "nonlinearity",
)
_MODE_KINDS = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}
_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes, torch.dtype)
_T = TypeVar("_T")


def _items(value: object) -> list[tuple[object, object]] | None:
    """The (key, value) pairs of a pickled mapping: a dict, or a stand-in that had items set on it."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, PickledObject) and value.dictitems:
        return list(value.dictitems)
    return None


@dataclass(frozen=True, slots=True)
class FoundStateDict:
    """A state dict found in a pickle: its tensors in file order, where it sat, what else it held."""

    tensors: Mapping[str, PickledTensor]
    where: str  # "" at the top, else the keys leading to it, e.g. "state_dict" or "checkpoint.model"
    others: tuple[str, ...]  # names whose values are not tensors (``_extra_state``, sparse tensors, ...)


def _as_state_dict(value: object) -> FoundStateDict | None:
    pairs = _items(value)
    if not pairs or not all(isinstance(k, str) for k, _ in pairs):
        return None
    tensors = {str(k): v for k, v in pairs if isinstance(v, PickledTensor)}
    if not tensors:
        return None
    others = tuple(str(k) for k, v in pairs if not isinstance(v, PickledTensor))
    return FoundStateDict(MappingProxyType(tensors), "", others)


def _search(root: object, match: Callable[[object], _T | None]) -> tuple[_T, str] | None:
    """Breadth first from the top through the usual keys (3 levels deep): the first value ``match`` takes."""
    todo: list[tuple[object, str, int]] = [(root, "", 0)]
    while todo:
        value, where, depth = todo.pop(0)
        found = match(value)
        if found is not None:
            return found, where
        pairs = _items(value)
        if pairs is None or depth >= _MAX_SEARCH_DEPTH:
            continue
        by_key = {k: v for k, v in pairs if isinstance(k, str)}
        for key in _STATE_KEYS:
            if key in by_key:
                todo.append((by_key[key], f"{where}.{key}" if where else key, depth + 1))
    return None


def find_state_dict(root: object) -> FoundStateDict | None:
    """The first mapping of str keys holding tensors, at the top or under the usual keys (3 levels deep).

    ``root`` is a :class:`PickledFile` or its ``root``.
    """
    if isinstance(root, PickledFile):
        root = root.root
    found = _search(root, _as_state_dict)
    if found is None:
        return None
    state, where = found
    return FoundStateDict(state.tensors, where, state.others)


@dataclass(frozen=True, slots=True, eq=False)
class PickledModule:
    """One pickled ``nn.Module``, read from its recorded state; nothing of its class is imported or run.

    ``qualname`` is the class as the file names it (``torch.nn.modules.rnn.LSTM``, ``__torch__.Model``);
    :attr:`class_name` is the Python class it stands for. ``settings`` holds the plain public
    attributes (``hidden_size``, ``training``, ...; a TorchScript class's ``Final`` constants too),
    ``tensors`` any tensor attribute that is neither a parameter nor a buffer, ``state`` everything
    pickled. A module shared by two parents is one object here, as in torch. TorchScript does not
    record which buffers are persistent: ``non_persistent`` is then empty and :meth:`state_dict`
    lists every buffer.
    """

    qualname: str
    parameters: Mapping[str, PickledTensor]
    buffers: Mapping[str, PickledTensor]
    children: Mapping[str, PickledModule]
    settings: Mapping[str, object]
    tensors: Mapping[str, PickledTensor]
    non_persistent: frozenset[str]
    scripted: bool
    state: Mapping[str, object]

    @property
    def class_name(self) -> str:
        """The Python class: TorchScript's ``__torch__.`` prefix and ``___torch_mangle_N`` parts removed."""
        if not self.scripted:
            return self.qualname
        return _MANGLE.sub("", self.qualname.removeprefix("__torch__."))

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, PickledModule]]:
        """Like ``nn.Module.named_modules``: self first, then depth first in registration order."""
        seen: set[int] = set()
        stack: list[tuple[str, PickledModule]] = [(prefix, self)]
        count = 0
        while stack:
            path, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            count += 1
            if count > _MAX_NAMES:
                raise CheckpointError(f"module tree expands to more than {_MAX_NAMES:,} paths")
            yield path, module
            below = [(f"{path}.{name}" if path else name, child) for name, child in module.children.items()]
            stack.extend(reversed(below))

    def _named(self, which: str, prefix: str, remove_duplicate: bool) -> Iterator[tuple[str, PickledTensor]]:
        seen: set[int] = set()
        for path, module in self.named_modules(prefix, remove_duplicate):
            for name, tensor in getattr(module, which).items():
                if remove_duplicate:
                    if id(tensor) in seen:
                        continue
                    seen.add(id(tensor))
                yield (f"{path}.{name}" if path else name), tensor

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, PickledTensor]]:
        """Like ``nn.Module.named_parameters``; a parameter shared by two modules is listed once."""
        return self._named("parameters", prefix, remove_duplicate)

    def named_buffers(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, PickledTensor]]:
        """Like ``nn.Module.named_buffers`` (non-persistent buffers included)."""
        return self._named("buffers", prefix, remove_duplicate)

    def state_dict(self) -> dict[str, PickledTensor]:
        """The names ``state_dict()`` would give: every path, persistent buffers only, ties kept."""
        out: dict[str, PickledTensor] = {}
        for path, module in self.named_modules(remove_duplicate=False):
            dot = f"{path}." if path else ""
            out.update((dot + name, t) for name, t in module.parameters.items())
            out.update((dot + name, t) for name, t in module.buffers.items() if name not in module.non_persistent)
        return out


def _state_of(obj: PickledObject) -> dict[str, object] | None:
    """The pickled ``__dict__`` (BUILD state; ``(dict, slots)`` merged) when every key is a str, else None."""
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2:  # (__dict__, slots)
        pairs = (_items(state[0]) or []) + (_items(state[1]) or [])
    else:
        pairs = _items(state) or []
    if not pairs or not all(isinstance(k, str) for k, _ in pairs):
        return None
    return {str(k): v for k, v in pairs}


def _is_plain(value: object, depth: int = 0) -> bool:
    if isinstance(value, _PLAIN_SCALARS):
        return True
    if depth >= 4:
        return False
    if isinstance(value, (tuple, list, set, frozenset)):
        return len(value) <= 1000 and all(_is_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return len(value) <= 1000 and all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


class _TreeBuilder:
    def __init__(self, script_classes: Mapping[str, ScriptClass]) -> None:
        self.script_classes = script_classes

    def is_module(self, value: object) -> bool:
        if not isinstance(value, PickledObject):
            return False
        script = self.script_classes.get(value.qualified_name)
        if script is not None:
            return script.is_module
        state = _state_of(value)
        return (
            state is not None
            and _items(state.get("_modules")) is not None
            and _items(state.get("_parameters")) is not None
        )

    def children(self, obj: PickledObject) -> list[tuple[str, PickledObject]]:
        state = _state_of(obj) or {}
        if obj.qualified_name in self.script_classes:
            pairs = list(state.items())
        else:
            pairs = [(str(k), v) for k, v in _items(state.get("_modules")) or [] if isinstance(k, str)]
        return [(name, value) for name, value in pairs if isinstance(value, PickledObject) and self.is_module(value)]

    def make(self, obj: PickledObject, built: Mapping[int, PickledModule]) -> PickledModule:
        state = _state_of(obj) or {}
        children = {name: built[id(child)] for name, child in self.children(obj)}
        script = self.script_classes.get(obj.qualified_name)
        if script is not None:
            params = {n: v for n in script.parameters if isinstance(v := state.get(n), PickledTensor)}
            buffers = {n: v for n in script.buffers if isinstance(v := state.get(n), PickledTensor)}
            non_persistent: frozenset[str] = frozenset()
            skip = set(params) | set(buffers) | set(children)
            settings = dict(script.constants)
        else:
            params = {str(k): v for k, v in _items(state.get("_parameters")) or [] if isinstance(v, PickledTensor)}
            buffers = {str(k): v for k, v in _items(state.get("_buffers")) or [] if isinstance(v, PickledTensor)}
            names = state.get("_non_persistent_buffers_set")
            non_persistent = (
                frozenset(n for n in names if isinstance(n, str)) if isinstance(names, set) else frozenset()
            )
            skip = {"_parameters", "_buffers", "_modules"}
            settings = {}
        tensors = {k: v for k, v in state.items() if isinstance(v, PickledTensor) and k not in skip}
        settings.update(
            (k, v)
            for k, v in state.items()
            if not k.startswith("_") and k not in skip and k not in tensors and _is_plain(v)
        )
        return PickledModule(
            obj.qualified_name,
            MappingProxyType(params),
            MappingProxyType(buffers),
            MappingProxyType(children),
            MappingProxyType(settings),
            MappingProxyType(tensors),
            non_persistent,
            script is not None,
            MappingProxyType(state),
        )


def module_tree(obj: object, script_classes: Mapping[str, ScriptClass] | None = None) -> PickledModule:
    """The :class:`PickledModule` tree of a pickled module (``PickledFile.root`` of ``torch.save(model)``).

    Pass ``PickledFile.script_classes`` for a TorchScript archive. Raises :class:`CheckpointError` when
    ``obj`` is not a pickled module or its submodules contain themselves.
    """
    builder = _TreeBuilder(script_classes or {})
    if not isinstance(obj, PickledObject) or not builder.is_module(obj):
        raise CheckpointError(f"{obj!r:.120} is not a pickled nn.Module (no _modules and _parameters in its state)")
    # Iterative depth-first post-order: a hostile file can nest modules deeper than Python's recursion limit.
    order: list[PickledObject] = []
    state: dict[int, bool] = {id(obj): False}  # False: on the current path; True: done
    stack: list[tuple[PickledObject, Iterator[tuple[str, PickledObject]]]] = [(obj, iter(builder.children(obj)))]
    while stack:
        node, pending = stack[-1]
        step = next(pending, None)
        if step is None:
            stack.pop()
            state[id(node)] = True
            order.append(node)
            continue
        name, child = step
        done = state.get(id(child))
        if done is False:
            raise CheckpointError(f"module {child.qualified_name} contains itself (through {name!r})")
        if done is None:
            state[id(child)] = False
            stack.append((child, iter(builder.children(child))))
    built: dict[int, PickledModule] = {}
    for node in order:
        built[id(node)] = builder.make(node, built)
    return built[id(obj)]


def find_module(
    root: object, script_classes: Mapping[str, ScriptClass] | None = None
) -> tuple[PickledModule, str] | None:
    """A pickled module at the top, or under the usual keys (``{"model": model, ...}``): tree and where.

    ``root`` is a :class:`PickledFile` (its TorchScript classes are then used) or its ``root``.
    """
    if isinstance(root, PickledFile):
        script_classes = root.script_classes if script_classes is None else script_classes
        root = root.root
    builder = _TreeBuilder(script_classes or {})

    def match(value: object) -> PickledModule | None:
        return module_tree(value, script_classes) if builder.is_module(value) else None

    return _search(root, match)


@dataclass(frozen=True, slots=True)
class RecurrentSettings:
    """A pickled recurrent module's kind and constructor settings, as its state recorded them.

    ``kind`` is "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell" or "RNNCell". ``from_class`` is False when
    the class is not torch's own but its state carries ``nn.RNNBase``'s ``mode`` and flat-weight names
    (a subclass of ``nn.LSTM`` in user code): the kind is then read from ``mode``.
    """

    kind: str
    settings: Mapping[str, object]
    from_class: bool


def recurrent_settings(module: PickledModule) -> RecurrentSettings | None:
    """Kind and settings (``input_size``, ``hidden_size``, ``num_layers``, ...) of a recurrent module, else None."""
    owner, _, short = module.class_name.rpartition(".")
    settings = MappingProxyType({k: module.settings[k] for k in _RECURRENT_KEYS if k in module.settings})
    if owner in _RECURRENT_MODULES and short in _RECURRENT_KINDS:
        return RecurrentSettings(short, settings, True)
    mode = module.settings.get("mode")
    if isinstance(mode, str) and mode in _MODE_KINDS and "_flat_weights_names" in module.state:
        return RecurrentSettings(_MODE_KINDS[mode], settings, False)
    return None


def tie_groups(tensors: Mapping[str, PickledTensor]) -> list[tuple[str, ...]]:
    """Names that are the same view of the same stored memory, each group in file order.

    Uses :attr:`PickledTensor.tie_key`: the file's storage key with offset, shape, stride and dtype.
    Tensors without a storage in the file (meta tensors) are tied to nothing; two views of one
    storage at different offsets (an LSTM's weights flattened for cuDNN) are not ties either.
    """
    groups: dict[tuple[object, ...], list[str]] = {}
    for name, tensor in tensors.items():
        key = tensor.tie_key
        if key is not None:
            groups.setdefault(key, []).append(name)
    return [tuple(names) for names in groups.values() if len(names) > 1]


def meta_tensors(tensors: Mapping[str, PickledTensor]) -> dict[str, torch.Tensor]:
    """Meta-device tensors with the files' shapes, strides and dtypes; one meta storage per storage key.

    Tensors that share a storage in the file share one here (``a.untyped_storage() is
    b.untyped_storage()``), so storage identity carries over; their ``data_ptr()`` cannot tell.
    """
    storages: dict[str, torch.UntypedStorage] = {}
    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        ref = tensor.storage
        if ref is None:
            out[name] = torch.empty_strided(tensor.shape, tensor.stride, dtype=tensor.dtype, device="meta")
            continue
        storage = storages.get(ref.key)
        if storage is None:
            storage = storages[ref.key] = torch.UntypedStorage(ref.nbytes, device="meta")  # type: ignore[no-untyped-call]
        empty = torch.empty(0, dtype=tensor.dtype, device="meta")
        out[name] = empty.set_(storage, tensor.storage_offset, tensor.shape, tensor.stride)
    return out
