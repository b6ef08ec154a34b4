"""Module -> recurrent settings.

Detection is by ``isinstance`` against torch's own base classes and reads the
public settings PyTorch stores on the module (``RNNBase.__constants__``); it
never looks at class names or reprs, so subclasses (an FSDP-wrapped
``nn.LSTM`` is one) are found too.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from torch import nn
from torch.ao.nn.quantized.dynamic.modules import rnn as qdynamic
from torch.jit._script import RecursiveScriptModule

from .errors import InvalidSettingsError
from .formulas import RNNSpec, make_spec
from .registry import Recognizer, Registry, TensorMap

__all__ = ["TORCH_RECURRENT_CLASSES", "Detected", "detect", "may_be_recurrent"]


@dataclass(frozen=True, slots=True)
class Detected:
    """What detection learned about one recurrent module."""

    spec: RNNSpec
    dropout: float = 0.0
    batch_first: bool = False
    origin: str = "torch.nn"  # where the class comes from: torch.nn, torch.jit.script, a registry entry...
    tensors: TensorMap | None = None  # formula name -> tensor, for registered classes that store them elsewhere
    packed: bool = False  # dynamic-quantized: weights are packed, parameters() yields nothing


_CELL_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.LSTMCell, "LSTMCell"),
    (nn.GRUCell, "GRUCell"),
    (nn.RNNCell, "RNNCell"),
    (qdynamic.LSTMCell, "LSTMCell"),
    (qdynamic.GRUCell, "GRUCell"),
    (qdynamic.RNNCell, "RNNCell"),
)
#: torch's own recurrent classes, exactly (not subclasses).
TORCH_RECURRENT_CLASSES: Final = frozenset({nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell})
_SCRIPTED: Final = {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"}
_BUILTIN_BASES: Final = (nn.RNNBase, nn.RNNCellBase, qdynamic.RNNBase, qdynamic.RNNCellBase, RecursiveScriptModule)


def may_be_recurrent(cls: type, registry: Registry) -> bool:
    """Cheap class-level filter: only instances of these classes are looked at closely."""
    return issubclass(cls, _BUILTIN_BASES) or registry.lookup(cls) is not None


# (kind, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, dropout, batch_first)
_Raw = tuple[object, object, object, object, object, object, object, object, object]
_STORED = operator.itemgetter(
    "mode", "input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size", "dropout", "batch_first"
)


def _asked(module: nn.Module) -> _Raw:
    """The full-sequence settings, through attribute access (properties and scripted modules)."""
    return (
        module.mode,
        module.input_size,
        module.hidden_size,
        module.num_layers,
        module.bias,
        module.bidirectional,
        getattr(module, "proj_size", 0),
        module.dropout,
        module.batch_first,
    )


def _cell(kind: str, module: nn.Module) -> _Raw:
    return (kind, module.input_size, module.hidden_size, 1, module.bias, False, 0, 0.0, False)


def _raw(module: nn.Module) -> _Raw | None:
    if isinstance(module, nn.RNNBase | qdynamic.RNNBase):
        try:  # the settings torch stores as plain attributes, fetched in one C call
            raw: _Raw = _STORED(module.__dict__)
        except KeyError:  # a subclass that computes a setting, or a class without proj_size: ask it
            raw = _asked(module)
        return raw
    if isinstance(module, nn.RNNCellBase | qdynamic.RNNCellBase):
        for cls, kind in _CELL_KINDS:
            if isinstance(module, cls):
                return _cell(kind, module)
        return None
    if isinstance(module, RecursiveScriptModule) and module.original_name in _SCRIPTED:
        # A scripted RNN keeps its settings as attributes; its class is gone, its original name stays.
        name = module.original_name
        return _cell(name, module) if name.endswith("Cell") else _asked(module)
    return None


def _keyable(raw: _Raw) -> bool:
    """Whether ``raw`` can key the per-summary cache by value: its sizes are exact ints, dropout is no bool.

    Values that compare equal but differ in type (``3``, ``3.0``, ``True``) validate differently;
    the flags go through ``bool()`` anyway, so only these fields matter.
    """
    _, input_size, hidden_size, num_layers, _, _, proj_size, dropout, _ = raw
    return (
        type(input_size) is int
        and type(hidden_size) is int
        and type(num_layers) is int
        and type(proj_size) is int
        and type(dropout) is not bool
    )


def _origin(module: nn.Module) -> tuple[str, bool]:
    if isinstance(module, qdynamic.RNNBase | qdynamic.RNNCellBase):
        return "torch.ao.nn.quantized.dynamic", True
    if isinstance(module, RecursiveScriptModule):
        return "torch.jit.script", False
    return "torch.nn", False


@functools.lru_cache(maxsize=4096)
def _settings(raw: _Raw, types: tuple[type, ...], origin: str, packed: bool) -> Detected:
    """Validated settings, memoized across calls by value *and* type (``16``, ``16.0`` and ``True`` differ)."""
    kind, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, dropout, batch_first = raw
    # flags go through bool(): torch itself only tests their truth
    spec = make_spec(
        kind,
        input_size,
        hidden_size,
        num_layers,
        bias=bool(bias),
        bidirectional=bool(bidirectional),
        proj_size=proj_size,
    )
    if isinstance(dropout, bool) or not isinstance(dropout, int | float):
        raise InvalidSettingsError(f"dropout should be a number, got: {type(dropout).__name__} ({dropout!r})")
    return Detected(spec, float(dropout), bool(batch_first), origin, None, packed)


def _validate(raw: _Raw, path: str, module: nn.Module) -> Detected:
    origin, packed = _origin(module)
    types = tuple(map(type, raw))
    try:
        try:
            return _settings(raw, types, origin, packed)
        except TypeError:  # an unhashable setting: validate without the memo, which names it
            return _settings.__wrapped__(raw, types, origin, packed)
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{path or '(root)'} ({type(module).__name__}): {exc}") from None


def _registered(recognizer: Recognizer, module: nn.Module, path: str) -> Detected:
    where = f"{path or '(root)'} ({type(module).__name__})"
    try:
        settings = recognizer.settings(module)
    except Exception as exc:
        raise InvalidSettingsError(f"{where}: the registered settings function raised {exc!r}") from exc
    if isinstance(settings, RNNSpec):
        return Detected(settings, origin=recognizer.origin, tensors=recognizer.tensors)
    fields = dict(settings)
    dropout = fields.pop("dropout", 0.0)
    batch_first = fields.pop("batch_first", False)
    kind = fields.pop("kind", None)
    try:
        spec = make_spec(kind, **fields)
    except TypeError as exc:
        raise InvalidSettingsError(f"{where}: registered settings {sorted(settings)}: {exc}") from None
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{where}: {exc}") from None
    if isinstance(dropout, bool) or not isinstance(dropout, int | float):
        raise InvalidSettingsError(f"{where}: dropout should be a number, got: {dropout!r}")
    return Detected(spec, float(dropout), bool(batch_first), recognizer.origin, recognizer.tensors)


def detect(
    module: nn.Module,
    path: str = "",
    cache: dict[Hashable, Detected] | None = None,
    registry: Registry | None = None,
) -> Detected | None:
    """The recurrent settings of ``module``, or ``None`` when it is not recurrent.

    ``path`` only serves error messages: a module whose stored settings are
    impossible raises :class:`InvalidSettingsError` naming it. ``cache`` (one
    dict per summary) skips re-validating settings already seen. A class in
    ``registry`` is read by its registered settings function first.
    """
    if registry is not None:
        recognizer = registry.lookup(type(module))
        if recognizer is not None:
            return _registered(recognizer, module, path)
    raw = _raw(module)
    if raw is None:
        return None
    if cache is None:
        return _validate(raw, path, module)
    if not _keyable(raw):  # 3.0 or True where an int belongs would hit the entry of a valid 3
        return _validate(raw, path, module)
    cls = type(module)
    key = raw if cls in TORCH_RECURRENT_CLASSES else (cls, raw)  # the common classes skip building a nested key
    try:
        hit = cache.get(key)
    except TypeError:  # an unhashable setting: validation will name it
        return _validate(raw, path, module)
    if hit is None:
        hit = cache[key] = _validate(raw, path, module)
    return hit
