"""Module -> recurrent settings.

Detection is by ``isinstance`` against torch's own base classes and reads the
public settings PyTorch stores on the module (the ones
:data:`~torchlstm_params.formulas.SETTINGS` names, as ``RNNBase.__constants__``
does); it never looks at class names or reprs, so subclasses (an FSDP-wrapped
``nn.LSTM`` is one) are found too. A scripted module is recognised by its
TorchScript qualified type (``__torch__.torch.nn.modules.rnn.LSTM``), never by
its short name: a user's scripted class called ``GRU`` is not torch's.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Final

from torch import nn
from torch.ao.nn.quantized.dynamic.modules import rnn as qdynamic
from torch.jit._script import RecursiveScriptModule

from .errors import InvalidSettingsError
from .formulas import (
    RUN_SETTINGS,
    SETTINGS,
    SPEC_SETTINGS,
    TORCH_ATTRIBUTES,
    RNNSpec,
    make_spec,
    require_dropout,
    require_spec,
)
from .recurrence import Recurrence
from .registry import Recognizer, Registry, TensorMap

__all__ = [
    "TORCH_RECURRENT_CLASSES",
    "Detected",
    "Memo",
    "detect",
    "detect_all",
    "scripted_kind",
    "scripted_type",
]


@dataclass(frozen=True, slots=True)
class Detected:
    """What detection learned about one recurrent module."""

    spec: RNNSpec | Recurrence  # a Recurrence: a hand-written layer, described part by part
    dropout: float = 0.0
    batch_first: bool = False
    origin: str = "torch.nn"  # where the class comes from: torch.nn, torch.jit.script, a registry entry...
    tensors: TensorMap | None = None  # formula name -> tensor, for registered classes that store them elsewhere
    packed: bool = False  # dynamic-quantized: weights are packed, parameters() yields nothing


#: One summary's memo: ("recognizer", class) -> the registry's entry for it, and (class, raw
#: settings, their types) -> what they validate to. Keyed by value *and* type, so ``3``, ``3.0`` and ``True``
#: never share an entry. Made per call of ``summarize``; nothing outlives it.
Memo = dict[Hashable, object]

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
#: TorchScript's qualified type of each scripted torch recurrent class -> its kind.
_SCRIPTED: Final = {
    f"__torch__.torch.nn.modules.rnn.{name}": name for name in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")
}
_MANGLED: Final = re.compile(r"\.___torch_mangle_\d+")
_SEQUENCE_BASES: Final = (nn.RNNBase, qdynamic.RNNBase)  # a tuple: isinstance checks it faster than a union
_CELL_BASES: Final = (nn.RNNCellBase, qdynamic.RNNCellBase)
_BUILTIN_BASES: Final = (nn.RNNBase, nn.RNNCellBase, qdynamic.RNNBase, qdynamic.RNNCellBase, RecursiveScriptModule)

# The settings in SETTINGS order, as torch stores them: fetched from __dict__ in one C call.
_Raw = tuple[object, ...]
_STORED = operator.itemgetter(*(TORCH_ATTRIBUTES.get(name, name) for name in SETTINGS))
_DEFAULTS: Final[Mapping[str, object]] = {"proj_size": 0}  # quantized RNNs and old pickles have no proj_size


def _asked(module: nn.Module) -> _Raw:
    """The full-sequence settings, through attribute access (properties and scripted modules)."""
    return tuple(
        getattr(module, TORCH_ATTRIBUTES.get(name, name), *((_DEFAULTS[name],) if name in _DEFAULTS else ()))
        for name in SETTINGS
    )


def _cell(kind: str, module: nn.Module) -> _Raw:
    values = {"kind": kind, "input_size": module.input_size, "hidden_size": module.hidden_size, "bias": module.bias}
    cell_defaults = {"num_layers": 1, "bidirectional": False, "proj_size": 0, "dropout": 0.0, "batch_first": False}
    return tuple(values[name] if name in values else cell_defaults[name] for name in SETTINGS)


def scripted_type(module: RecursiveScriptModule) -> str:
    """The qualified name of the class a scripted module was compiled from (``torch.nn.modules.rnn.LSTM``)."""
    # TorchScript mangles the names of classes it compiles twice: ...rnn.___torch_mangle_3.GRU
    return _MANGLED.sub("", module._c._type().qualified_name()).removeprefix("__torch__.")


def scripted_kind(module: nn.Module) -> str | None:
    """The torch class a scripted module was compiled from, by its qualified type; None for other classes."""
    if not isinstance(module, RecursiveScriptModule):
        return None
    return _SCRIPTED.get(f"__torch__.{scripted_type(module)}")


def _stored(module: nn.Module) -> _Raw:
    """A full-sequence module's settings as torch stores them, as plain attributes."""
    try:  # fetched from __dict__ in one C call
        raw: _Raw = _STORED(module.__dict__)
    except KeyError:  # a subclass that computes a setting, or a class without proj_size: ask it
        raw = _asked(module)
    return raw


def _raw(module: nn.Module) -> _Raw | None:
    if isinstance(module, _SEQUENCE_BASES):
        return _stored(module)
    if isinstance(module, _CELL_BASES):
        for cls, kind in _CELL_KINDS:
            if isinstance(module, cls):
                return _cell(kind, module)
        return None
    name = scripted_kind(module)
    if name is not None:  # a scripted RNN keeps its settings as attributes
        return _cell(name, module) if name.endswith("Cell") else _asked(module)
    return None


def _origin(module: nn.Module) -> tuple[str, bool]:
    if isinstance(module, qdynamic.RNNBase | qdynamic.RNNCellBase):
        return "torch.ao.nn.quantized.dynamic", True
    if isinstance(module, RecursiveScriptModule):
        return "torch.jit.script", False
    return "torch.nn", False


def _run_settings(dropout: object, batch_first: object) -> tuple[float, bool]:
    return require_dropout(dropout), bool(batch_first)


def _validate(raw: _Raw, path: object, module: nn.Module) -> Detected:
    origin, packed = _origin(module)
    values = dict(zip(SETTINGS, raw, strict=True))
    try:
        # flags go through bool(): torch itself only tests their truth
        spec = make_spec(
            values["kind"],
            values["input_size"],
            values["hidden_size"],
            values["num_layers"],
            bias=bool(values["bias"]),
            bidirectional=bool(values["bidirectional"]),
            proj_size=values["proj_size"],
        )
        dropout, batch_first = _run_settings(values["dropout"], values["batch_first"])
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{str(path) or '(root)'} ({type(module).__name__}): {exc}") from None
    return Detected(spec, dropout, batch_first, origin, None, packed)


def _registered(recognizer: Recognizer, module: nn.Module, path: object) -> Detected:
    cls = type(module)
    where = f"{str(path) or '(root)'} ({cls.__name__})"
    callback = f"the settings function registered for {cls.__module__}.{cls.__qualname__}"
    try:
        settings = recognizer.settings(module)
    except Exception as exc:
        raise InvalidSettingsError(f"{where}: {callback} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(settings, Recurrence):
        return Detected(settings, origin=recognizer.origin, tensors=recognizer.tensors)
    if isinstance(settings, RNNSpec):
        spec = require_spec(settings, f"{where}: {callback} returned an invalid RNNSpec")
        return Detected(spec, origin=recognizer.origin, tensors=recognizer.tensors)
    if not isinstance(settings, Mapping):
        raise InvalidSettingsError(
            f"{where}: {callback} should return an RNNSpec, a Recurrence or a mapping of settings, "
            f"got: {type(settings).__name__}"
        )
    try:  # a user's mapping: reading it may fail too
        given = dict(settings)
    except Exception as exc:
        raise InvalidSettingsError(f"{where}: {callback} returned a mapping that cannot be read: {exc!r}") from exc
    unknown = sorted(str(k) for k in given if k not in SETTINGS)
    if unknown:
        raise InvalidSettingsError(
            f"{where}: {callback} returned unknown settings {unknown}; known: {', '.join(SETTINGS)}"
        )
    fields = {k: given[k] for k in SPEC_SETTINGS if k in given}
    run = {k: given[k] for k in RUN_SETTINGS if k in given}
    try:
        spec = make_spec(fields.pop("kind", None), **fields)
        dropout, batch_first = _run_settings(run.get("dropout", 0.0), run.get("batch_first", False))
    except TypeError as exc:
        raise InvalidSettingsError(f"{where}: {callback} returned settings {sorted(given)}: {exc}") from None
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{where}: {callback}: {exc}") from None
    return Detected(spec, dropout, batch_first, recognizer.origin, recognizer.tensors)


def detect(
    module: nn.Module,
    path: object = "",
    memo: Memo | None = None,
    registry: Registry | None = None,
) -> Detected | None:
    """The recurrent settings of ``module``, or ``None`` when it is not recurrent.

    ``path`` only serves error messages: a module whose stored settings are
    impossible raises :class:`InvalidSettingsError` naming it (anything whose
    ``str`` is the path: the walk passes its links, spelled out only then). ``memo`` (one
    per summary) skips re-validating settings already seen, keyed by class,
    values and their types. A class in ``registry`` is read by its registered
    settings function first.
    """
    if registry is not None:
        cls = type(module)
        if memo is None:
            recognizer = registry.lookup(cls)
        else:  # the registry is asked once per class and summary
            looked = memo.get(("recognizer", cls), memo)
            if looked is memo:
                looked = memo[("recognizer", cls)] = registry.lookup(cls)
            recognizer = looked if isinstance(looked, Recognizer) else None
        if recognizer is not None:
            return _registered(recognizer, module, path)
    raw = _raw(module)
    if raw is None:
        return None
    if memo is None:
        return _validate(raw, path, module)
    return _memoized(raw, path, module, memo)


def _memoized(raw: _Raw, path: object, module: nn.Module, memo: Memo) -> Detected:
    """``raw`` validated, once per (class, values, their types) in ``memo``."""
    key = (type(module), raw, tuple(map(type, raw)))
    try:
        hit = memo.get(key)
    except TypeError:  # an unhashable setting: validation will name it
        return _validate(raw, path, module)
    if hit is None:
        hit = memo[key] = _validate(raw, path, module)
    assert isinstance(hit, Detected)
    return hit


def detect_all(modules: Sequence[nn.Module], registry: Registry, path_of: Callable[[int], str]) -> dict[int, Detected]:
    """The recurrent settings of every recurrent module of ``modules``, by index.

    One memo for the call: each class is looked up once (in ``registry``, then among torch's
    recurrent bases) and only the modules of the classes that may be recurrent are read; each
    distinct (class, settings, their types) is validated once. ``path_of(i)`` names module ``i``
    in an error, and is called only then (detection runs again, naming it; a registered settings
    function is called a second time for it).
    """
    plan: dict[type, Recognizer | bool] = {}  # a registered class's entry; torch's sequence classes: True
    for cls in set(map(type, modules)):
        recognizer = registry.lookup(cls)
        if recognizer is not None:
            plan[cls] = recognizer
        elif issubclass(cls, _BUILTIN_BASES):
            plan[cls] = issubclass(cls, _SEQUENCE_BASES)
    memo: Memo = {}
    found: dict[int, Detected] = {}
    for i in compress(range(len(modules)), map(plan.__contains__, map(type, modules))):
        module = modules[i]
        how = plan[type(module)]
        try:
            if isinstance(how, Recognizer):
                detected: Detected | None = _registered(how, module, "")
            elif how:  # torch's sequence classes: their stored settings, straight into the memo
                detected = _memoized(_stored(module), "", module, memo)
            else:  # cells, quantized and scripted modules
                detected = detect(module, "", memo)
        except InvalidSettingsError:
            detect(module, path_of(i), None, registry)  # again, naming the module: raises
            raise
        if detected is not None:
            found[i] = detected
    return found
