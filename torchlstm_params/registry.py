"""The extension point: teach the library a recurrent class it does not know.

A recogniser is a function from a module to its settings (and, optionally, a
function that maps the formula's tensor names to the tensors that play those
roles). ``torch.ao.nn.quantizable.LSTM`` is registered through this same
mechanism below, so the mechanism is proven by a class torch itself ships.

>>> from torch import nn
>>> from torchlstm_params import summarize
>>> class MyCell(nn.Module):
...     def __init__(self, i, h):
...         super().__init__()
...         self.ih, self.hh = nn.Linear(i, 4 * h), nn.Linear(h, 4 * h)
>>> registry = Registry()
>>> registry.register(
...     MyCell,
...     lambda m: {"kind": "LSTMCell", "input_size": m.ih.in_features, "hidden_size": m.hh.in_features},
...     tensors=lambda m: {
...         "weight_ih": m.ih.weight, "weight_hh": m.hh.weight, "bias_ih": m.ih.bias, "bias_hh": m.hh.bias
...     },
... )
>>> summarize(MyCell(3, 2), registry=registry).recurrent[0].status
'ok'

The one deliberate piece of module-level state in the library is
``default_registry`` (what :func:`register_recurrent` adds to); it is keyed
by class objects, never by names, and any call can pass its own
:class:`Registry` instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InvalidSettingsError, NotAModuleError
from .formulas import RNNSpec
from .recurrence import Recurrence
from .thirdparty import CLASSES as THIRD_PARTY
from .thirdparty import Described

__all__ = ["Recognizer", "Registry", "default_registry", "register_recurrent"]

#: What a settings function returns: an RNNSpec, a mapping of settings named as in
#: :data:`~torchlstm_params.formulas.SETTINGS` (``kind``, ``input_size`` and ``hidden_size``
#: required; the others default as in torch), or a :class:`~torchlstm_params.recurrence.Recurrence`
#: (any other gated recurrence, its tensors named relative to the module).
Settings = RNNSpec | Recurrence | Mapping[str, object]
TensorMap = Callable[[nn.Module], Mapping[str, torch.Tensor | None]]


@dataclass(frozen=True, slots=True)
class Recognizer:
    """How to read one registered class."""

    cls: type[nn.Module]
    settings: Callable[[nn.Module], Settings]
    tensors: TensorMap | None  # formula name -> tensor; None: the module's own parameters
    origin: str


def _defined(module: str, qualname: str) -> object:
    """The object ``qualname`` names in ``sys.modules[module]``, or None: never imports anything."""
    found: object = sys.modules.get(module)
    for part in qualname.split("."):
        if found is None:
            return None
        found = getattr(found, part, None)
    return found


class Registry:
    """Recurrent classes the built-in detection does not know, by class (subclasses included).

    Besides classes registered by object, a registry can hold classes named by the module
    that defines them (``register_by_name``): those are looked at only when that module is
    already imported, and only the very class object it defines matches.
    """

    def __init__(
        self,
        recognizers: tuple[Recognizer, ...] = (),
        by_name: Mapping[tuple[str, str], Recognizer] | None = None,
    ) -> None:
        self._by_class: dict[type[nn.Module], Recognizer] = {r.cls: r for r in recognizers}
        self._by_name: dict[tuple[str, str], Recognizer] = dict(by_name or {})

    def register(
        self,
        cls: type[nn.Module],
        settings: Callable[[nn.Module], Settings],
        *,
        tensors: TensorMap | None = None,
        origin: str | None = None,
    ) -> None:
        """Recognise ``cls`` (and its subclasses) as recurrent.

        ``settings(module)`` returns an :class:`RNNSpec` or a mapping of its
        fields. ``tensors(module)`` maps the formula's tensor names (as in
        :func:`expected_tensors`) to the tensors that play those roles; without
        it the module's own parameters are compared by name.
        """
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise NotAModuleError(f"register() expects an nn.Module subclass, got {cls!r}")
        if not callable(settings) or (tensors is not None and not callable(tensors)):
            raise InvalidSettingsError(
                "register() expects settings (and tensors, if given) to be callables taking the module"
            )
        self._by_class[cls] = Recognizer(cls, settings, tensors, origin or f"{cls.__module__}.{cls.__qualname__}")

    def register_by_name(
        self, module: str, qualname: str, settings: Callable[[nn.Module], Settings], *, origin: str | None = None
    ) -> None:
        """Recognise the class ``qualname`` of ``module`` once that module is imported, without importing it."""
        if not callable(settings):
            raise InvalidSettingsError("register_by_name() expects settings to be a callable taking the module")
        self._by_name[(module, qualname)] = Recognizer(nn.Module, settings, None, origin or f"{module}.{qualname}")

    def unregister(self, cls: type[nn.Module]) -> None:
        self._by_class.pop(cls, None)
        self._by_name.pop((cls.__module__, cls.__qualname__), None)

    def lookup(self, cls: type) -> Recognizer | None:
        """The recogniser of ``cls`` or of its nearest registered base class.

        Not memoized: ``summarize`` asks once per class and summary.
        """
        by_class, by_name = self._by_class, self._by_name
        if not by_class and not by_name:
            return None
        for base in cls.__mro__:
            found = by_class.get(base)
            if found is not None:
                return found
            if by_name:
                named = by_name.get((base.__module__, base.__qualname__))
                if named is not None and _defined(base.__module__, base.__qualname__) is base:
                    return named
        return None

    def copy(self) -> Registry:
        return Registry(tuple(self._by_class.values()), self._by_name)

    def __contains__(self, cls: object) -> bool:
        if cls in self._by_class:
            return True
        return isinstance(cls, type) and (cls.__module__, cls.__qualname__) in self._by_name


def _quantizable_settings(module: nn.Module) -> Settings:
    return {
        "kind": "LSTM",
        "input_size": module.input_size,
        "hidden_size": module.hidden_size,
        "num_layers": module.num_layers,
        "bias": bool(module.bias),
        "bidirectional": bool(module.bidirectional),
        "dropout": module.dropout,
        "batch_first": bool(module.batch_first),
    }


def _quantizable_tensors(module: nn.Module) -> dict[str, torch.Tensor | None]:
    """``layers.{k}.layer_fw|layer_bw.cell.igates|hgates.weight|bias`` -> PyTorch's names."""
    out: dict[str, torch.Tensor | None] = {}
    layers = module.layers
    assert isinstance(layers, nn.ModuleList)
    for k, layer in enumerate(layers):
        for direction, sfx in (("layer_fw", ""), ("layer_bw", "_reverse")):
            half = getattr(layer, direction, None)
            if half is None:
                continue
            cell = half.cell
            for gates, role in (("igates", "ih"), ("hgates", "hh")):
                linear = getattr(cell, gates)
                out[f"weight_{role}_l{k}{sfx}"] = linear.weight
                if linear.bias is not None:
                    out[f"bias_{role}_l{k}{sfx}"] = linear.bias
    return out


def _described(module: nn.Module) -> Settings:
    assert isinstance(module, Described)
    return module.recurrence


def _builtin() -> Registry:
    registry = Registry()
    from torch.ao.nn.quantizable import LSTM as QuantizableLSTM

    registry.register(
        QuantizableLSTM,
        _quantizable_settings,
        tensors=_quantizable_tensors,
        origin="torch.ao.nn.quantizable.LSTM",
    )
    for third in THIRD_PARTY:  # looked at only once the user has imported the library
        registry.register_by_name(third.module, third.qualname, third.read, origin=third.origin)
    registry.register(Described, _described, origin="checkpoint (inferred)")
    return registry


default_registry = _builtin()


def register_recurrent(
    cls: type[nn.Module],
    settings: Callable[[nn.Module], Settings],
    *,
    tensors: TensorMap | None = None,
    origin: str | None = None,
) -> None:
    """Register ``cls`` in the default registry (see :meth:`Registry.register`)."""
    default_registry.register(cls, settings, tensors=tensors, origin=origin)
