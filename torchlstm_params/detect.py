"""Module -> recurrent settings.

Detection is by ``isinstance`` against torch's own base classes and reads the
public settings PyTorch stores on the module (``RNNBase.__constants__``); it
never looks at class names or reprs, so subclasses (an FSDP-wrapped
``nn.LSTM`` is one) are found too.
"""

from __future__ import annotations

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


def _spec(path: str, kind: object, module: nn.Module, **settings: object) -> RNNSpec:
    try:
        return make_spec(kind, **settings)  # type: ignore[arg-type]
    except InvalidSettingsError as exc:
        where = path or "(root)"
        raise InvalidSettingsError(f"{where} ({type(module).__name__}): {exc}") from None


def detect(module: nn.Module, path: str = "") -> Detected | None:
    """The recurrent settings of ``module``, or ``None`` when it is not recurrent.

    ``path`` only serves error messages: a module whose stored settings are
    impossible raises :class:`InvalidSettingsError` naming it.
    """
    if isinstance(module, nn.RNNBase):
        spec = _spec(
            path,
            module.mode,
            module,
            input_size=module.input_size,
            hidden_size=module.hidden_size,
            num_layers=module.num_layers,
            bias=module.bias,
            bidirectional=module.bidirectional,
            proj_size=getattr(module, "proj_size", 0),
        )
        return Detected(spec, float(module.dropout), bool(module.batch_first))
    if isinstance(module, nn.RNNCellBase):
        for cls, kind in _CELL_KINDS:
            if isinstance(module, cls):
                spec = _spec(
                    path,
                    kind,
                    module,
                    input_size=module.input_size,
                    hidden_size=module.hidden_size,
                    bias=module.bias,
                )
                return Detected(spec)
    return None
