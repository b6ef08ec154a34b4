"""speechbrain: ``nnet.RNN.LiGRU``, ``SLiGRU`` and ``QuasiRNN``.

- LiGRU (light GRU): per layer ``rnn.k.w`` = ``Linear(in_k, 2h, bias=False)``, ``rnn.k.u`` =
  ``Linear(h, 2h, bias=False)`` and a normalisation of the ``2h`` gate pre-activations
  (``rnn.k.norm``, BatchNorm1d or LayerNorm: a weight and a bias either way; with
  ``bias=False`` the norm's bias is frozen, not removed). SLiGRU adds ``rnn.k.layer_norm``,
  LayerNorm(2h) on the recurrent product, affine only with ``recurrent_elementwise_affine``.
- QuasiRNN: per layer ``qrnn.k.w`` = ``Linear(in_k, g·h)`` with ``g`` 3 (z, f, o) or 2
  without the output gate; no recurrent matrix (the recurrence is a forget-mult).

A bidirectional layer runs both directions on one set of weights (the batch is
doubled), so it holds what a one-directional layer holds; the layers above read
``2h`` features. The layers' dropout masks (``drop_masks``, 16,000 x h) are buffers.
"""

from __future__ import annotations

import re

from torch import nn

from ..recurrence import Part, Recurrence, RecurrenceLayer, bias_vectors, gate_matrix, norm
from .base import Anchor, Shapes, ThirdPartyClass, setting, shape_of

__all__ = ["ANCHORS", "CLASSES", "ligru", "quasi_rnn"]

_SHARED = "both directions run on one set of weights (speechbrain doubles the batch)"


def _layer_input(k: int, input_size: int, hidden: int, bidirectional: bool) -> tuple[int, str]:
    if k == 0:
        return input_size, "in"
    return (2 * hidden, "2h") if bidirectional else (hidden, "h")


def ligru(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    *,
    kind: str = "LiGRU",
    recurrent_norm: bool = False,
    drop_masks_saved: bool = True,
) -> Recurrence:
    """speechbrain's LiGRU (``kind="SLiGRU"``: with ``recurrent_norm``, the affine recurrent LayerNorm)."""
    h = hidden_size
    layers = []
    buffers: list[str] = []
    for k in range(num_layers):
        width, source = _layer_input(k, input_size, h, bidirectional)
        parts: list[Part] = [
            gate_matrix(f"rnn.{k}.w.weight", 2, h, width, source=source),
            gate_matrix(f"rnn.{k}.u.weight", 2, h, h, role="recurrent", source="h"),
        ]
        if recurrent_norm:
            parts.append(norm(f"rnn.{k}.layer_norm", 2 * h, symbol="2h"))
        parts.append(norm(f"rnn.{k}.norm", 2 * h, symbol="2h"))
        layers.append(RecurrenceLayer(k, "forward", tuple(parts)))
        buffers += [f"rnn.{k}.h_init", f"rnn.{k}.drop_mask_te"]
        if drop_masks_saved:
            buffers.append(f"rnn.{k}.drop_masks")
    return Recurrence(
        kind,
        input_size,
        h,
        tuple(layers),
        num_layers=num_layers,
        bidirectional=bidirectional,
        gate_groups="2",
        shared_directions=True,
        buffers=tuple(buffers),
        note=_SHARED if bidirectional else "",
    )


def quasi_rnn(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, output_gate: bool) -> Recurrence:
    """speechbrain's QuasiRNN: one input matrix and its bias per layer, no recurrent matrix."""
    h, g = hidden_size, 3 if output_gate else 2
    layers = []
    for k in range(num_layers):
        width, source = _layer_input(k, input_size, h, bidirectional)
        parts = (
            gate_matrix(f"qrnn.{k}.w.weight", g, h, width, source=source),
            bias_vectors([f"qrnn.{k}.w.bias"], g * h, symbol=f"{g}h"),
        )
        layers.append(RecurrenceLayer(k, "forward", parts))
    return Recurrence(
        "QuasiRNN",
        input_size,
        h,
        tuple(layers),
        num_layers=num_layers,
        bidirectional=bidirectional,
        gate_groups=f"{g} (no recurrent matrix)",
        shared_directions=True,
        note=_SHARED if bidirectional else "",
    )


def _read_ligru(module: nn.Module) -> Recurrence:
    return ligru(
        setting(module, "fea_dim"),
        setting(module, "hidden_size"),
        setting(module, "num_layers"),
        bool(module.bidirectional),
    )


def _read_sligru(module: nn.Module) -> Recurrence:
    return ligru(
        setting(module, "fea_dim"),
        setting(module, "hidden_size"),
        setting(module, "num_layers"),
        bool(module.bidirectional),
        kind="SLiGRU",
        recurrent_norm=bool(module.recurrent_elementwise_affine),
        drop_masks_saved=False,
    )


def _read_quasi_rnn(module: nn.Module) -> Recurrence:
    layers = module.qrnn
    assert isinstance(layers, nn.ModuleList)
    first = layers[0].w  # the input size is a constructor argument kept only by the first Linear
    assert isinstance(first, nn.Linear)
    kwargs = module.kwargs
    assert isinstance(kwargs, dict)
    return quasi_rnn(
        setting(first, "in_features"),
        setting(module, "hidden_size"),
        setting(module, "num_layers"),
        bool(module.bidirectional),
        bool(kwargs.get("output_gate", True)),
    )


def _infer_ligru(shapes: Shapes) -> Recurrence | None:
    u0, w0 = shape_of(shapes, "rnn.0.u.weight", 2), shape_of(shapes, "rnn.0.w.weight", 2)
    if u0 is None or w0 is None or u0[0] != 2 * u0[1]:
        return None
    h = u0[1]
    layers = 1 + max(int(m.group(1)) for n in shapes if (m := re.fullmatch(r"rnn\.(\d+)\.w\.weight", n)))
    w1 = shape_of(shapes, "rnn.1.w.weight", 2)
    bidirectional = w1 is not None and w1[1] == 2 * h
    sligru = "rnn.0.layer_norm.weight" in shapes or "rnn.0.drop_masks" not in shapes
    return ligru(
        w0[1],
        h,
        layers,
        bidirectional,
        kind="SLiGRU" if sligru else "LiGRU",
        recurrent_norm="rnn.0.layer_norm.weight" in shapes,
        drop_masks_saved=not sligru,
    )


CLASSES = (
    ThirdPartyClass("speechbrain", "speechbrain.nnet.RNN", "LiGRU", _read_ligru),
    ThirdPartyClass("speechbrain", "speechbrain.nnet.RNN", "SLiGRU", _read_sligru),
    ThirdPartyClass("speechbrain", "speechbrain.nnet.RNN", "QuasiRNN", _read_quasi_rnn),
)
ANCHORS = (Anchor("rnn.0.h_init", "speechbrain.nnet.RNN.LiGRU", _infer_ligru),)
