"""Module -> recurrent settings.

Detection is by ``isinstance`` against torch's own base classes and reads the
public settings PyTorch stores on the module (``RNNBase.__constants__``); it
never looks at class names or reprs, so subclasses (an FSDP-wrapped
``nn.LSTM`` is one) are found too.
"""

from __future__ import annotations

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
_Raw = tuple[object, object, object, object, bool, bool, object, object, bool]


def _raw(module: nn.Module) -> _Raw | None:
    # Flags go through bool() as torch itself only tests their truth.
    if isinstance(module, nn.RNNBase):
        return (
            module.mode,
            module.input_size,
            module.hidden_size,
            module.num_layers,
            bool(module.bias),
            bool(module.bidirectional),
            getattr(module, "proj_size", 0),
            module.dropout,
            bool(module.batch_first),
        )
    if isinstance(module, nn.RNNCellBase):
        for cls, kind in _CELL_KINDS:
            if isinstance(module, cls):
                return (kind, module.input_size, module.hidden_size, 1, bool(module.bias), False, 0, 0.0, False)
    return None


def _validate(raw: _Raw, path: str, module: nn.Module) -> Detected:
    kind, input_size, hidden_size, num_layers, bias, bidirectional, proj_size, dropout, batch_first = raw
    try:
        spec = make_spec(
            kind,
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            bidirectional=bidirectional,
            proj_size=proj_size,
        )
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise InvalidSettingsError(f"dropout should be a number, got: {type(dropout).__name__} ({dropout!r})")
    except InvalidSettingsError as exc:
        raise InvalidSettingsError(f"{path or '(root)'} ({type(module).__name__}): {exc}") from None
    return Detected(spec, float(dropout), batch_first)


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
