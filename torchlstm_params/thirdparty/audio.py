"""torchaudio: the Emformer RNN-T predictor's ``_CustomLSTM``.

``x2g`` is ``Linear(in, 4h)`` with a bias only without layer norm, ``p2g`` is
``Linear(h, 4h)`` without bias; with ``layer_norm=True`` it adds ``c_norm``
(LayerNorm(h)) and ``g_norm`` (LayerNorm(4h)). One layer, one direction.
"""

from __future__ import annotations

from torch import nn

from ..recurrence import Part, Recurrence, RecurrenceLayer, bias_vectors, gate_matrix, norm
from .base import Anchor, Shapes, ThirdPartyClass, setting, shape_of

__all__ = ["ANCHORS", "CLASSES", "custom_lstm"]

_ORIGIN = "torchaudio.models.rnnt._CustomLSTM"


def custom_lstm(input_dim: int, hidden_dim: int, layer_norm: bool) -> Recurrence:
    """``_CustomLSTM(input_dim, hidden_dim, layer_norm)``: 4 gate groups, one bias vector or two LayerNorms."""
    h = hidden_dim
    parts: list[Part] = [gate_matrix("x2g.weight", 4, h, input_dim)]
    if not layer_norm:
        parts.append(bias_vectors(["x2g.bias"], 4 * h, symbol="4h"))
    parts.append(gate_matrix("p2g.weight", 4, h, h, role="recurrent", source="h"))
    if layer_norm:
        parts += [norm("c_norm", h, symbol="h"), norm("g_norm", 4 * h, symbol="4h")]
    return Recurrence(
        "_CustomLSTM",
        input_dim,
        h,
        (RecurrenceLayer(0, "forward", tuple(parts)),),
        is_cell=True,
        gate_groups="4",
    )


def _read(module: nn.Module) -> Recurrence:
    x2g = module.x2g
    assert isinstance(x2g, nn.Linear)
    layer_norm = not isinstance(module.g_norm, nn.Identity)
    return custom_lstm(setting(x2g, "in_features"), setting(module, "hidden_dim"), layer_norm)


def _infer(shapes: Shapes) -> Recurrence | None:
    x2g, p2g = shape_of(shapes, "x2g.weight", 2), shape_of(shapes, "p2g.weight", 2)
    if x2g is None or p2g is None or p2g[0] != 4 * p2g[1]:
        return None
    return custom_lstm(x2g[1], p2g[1], "g_norm.weight" in shapes)


CLASSES = (ThirdPartyClass("torchaudio", "torchaudio.models.rnnt", "_CustomLSTM", _read),)
ANCHORS = (Anchor("p2g.weight", _ORIGIN, _infer),)
