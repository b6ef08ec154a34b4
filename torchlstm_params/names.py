"""The grammar of PyTorch's recurrent tensor names, and its exact inverse.

torch names a recurrent module's tensors with one format string
(``torch/nn/modules/rnn.py``): ``{weight|bias}_{ih|hh}`` and ``weight_hr``,
followed by ``_l{k}`` for layer ``k`` of a full-sequence module and
``_reverse`` for its backward direction; a cell's tensors have no suffix.
:func:`tensor_name` generates these names and :func:`parse_tensor_name` is
its exact inverse: it accepts exactly the names ``tensor_name`` produces.

>>> tensor_name("weight_hh", 1, reverse=True)
'weight_hh_l1_reverse'
>>> parse_tensor_name("weight_hh_l1_reverse")
TensorName(role='weight_hh', layer=1, reverse=True)
>>> parse_tensor_name("weight_hh_l01") is None  # torch never writes a leading zero
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["ROLES", "TensorName", "parse_tensor_name", "qualified", "tensor_name"]

#: The roles a recurrent tensor can play, in torch's registration order.
ROLES: Final = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")

_GRAMMAR: Final = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)(?:_l(0|[1-9][0-9]*)(_reverse)?)?")


@dataclass(frozen=True, slots=True)
class TensorName:
    """A parsed recurrent tensor name: its role, layer (``None`` for a cell) and direction."""

    role: str
    layer: int | None
    reverse: bool = False

    def __str__(self) -> str:
        return tensor_name(self.role, self.layer, reverse=self.reverse)


def qualified(path: str, name: str) -> str:
    """``name`` under the module at ``path``, as torch names it: ``path.name``, or ``name`` at the root (``""``)."""
    return f"{path}.{name}" if path else name


def tensor_name(role: str, layer: int | None, *, reverse: bool = False) -> str:
    """The name torch gives the tensor with ``role`` of ``layer`` (``None``: a cell's)."""
    if layer is None:
        return role
    return f"{role}_l{layer}_reverse" if reverse else f"{role}_l{layer}"


def parse_tensor_name(name: str) -> TensorName | None:
    """The parts of a recurrent tensor name, or ``None`` when torch never writes ``name``.

    Exact inverse of :func:`tensor_name`: ``str(parse_tensor_name(n)) == n`` for every name it accepts.
    """
    match = _GRAMMAR.fullmatch(name)
    if match is None:
        return None
    role, layer, reverse = match.groups()
    return TensorName(role, None if layer is None else int(layer), reverse is not None)
