"""Module -> recurrent settings.

Detection is by ``isinstance`` against torch's own base classes and reads the
public settings PyTorch stores on the module (``RNNBase.__constants__``); it
never looks at class names or reprs, so subclasses (an FSDP-wrapped
``nn.LSTM`` is one) are found too.
"""

from __future__ import annotations

import operator
from collections.abc import Hashable
from dataclasses import dataclass

from torch import nn

from .errors import InvalidSettingsError
from .formulas import RNNSpec, make_spec

__all__ = ["Detected", "detect"]


@dataclass(frozen=True, slots=True)
class Detected:
    """What detection learned about one recurrent module."""

    spec: RNNSpec
    dropout: float = 0.0
    batch_first: bool = False


_CELL_KINDS: tuple[tuple[type[nn.RNNCellBase], str], ...] = (
    (nn.LSTMCell, "LSTMCell"),
    (nn.GRUCell, "GRUCell"),
    (nn.RNNCell, "RNNCell"),
)

# (kind, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, dropout, batch_first)
_Raw = tuple[object, object, object, object, object, object, object, object, object]
_STORED = operator.itemgetter(
    "mode", "input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size", "dropout", "batch_first"
)


def _raw(module: nn.Module) -> _Raw | None:
    if isinstance(module, nn.RNNBase):
        try:  # the settings torch stores as plain attributes, fetched in one C call
            raw: _Raw = _STORED(module.__dict__)
        except KeyError:  # a subclass that computes a setting: ask it properly
            raw = (
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
        return raw
    if isinstance(module, nn.RNNCellBase):
        for cls, kind in _CELL_KINDS:
            if isinstance(module, cls):
                return (kind, module.input_size, module.hidden_size, 1, module.bias, False, 0, 0.0, False)
    return None


def _validate(raw: _Raw, path: str, module: nn.Module) -> Detected:
    kind, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, dropout, batch_first = raw
    try:  # flags go through bool(): torch itself only tests their truth
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
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{path or '(root)'} ({type(module).__name__}): {exc}") from None
    return Detected(spec, float(dropout), bool(batch_first))


def detect(module: nn.Module, path: str = "", cache: dict[Hashable, Detected] | None = None) -> Detected | None:
    """The recurrent settings of ``module``, or ``None`` when it is not recurrent.

    ``path`` only serves error messages: a module whose stored settings are
    impossible raises :class:`InvalidSettingsError` naming it. ``cache`` (one
    dict per summary) skips re-validating settings already seen.
    """
    raw = _raw(module)
    if raw is None:
        return None
    if cache is None:
        return _validate(raw, path, module)
    try:
        hit = cache.get(raw)
    except TypeError:  # an unhashable setting: validation will name it
        return _validate(raw, path, module)
    if hit is None:
        hit = cache[raw] = _validate(raw, path, module)
    return hit
