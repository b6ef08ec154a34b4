"""neuralforecast's dilated-RNN cells and pytorch-forecasting's xLSTM cells.

- neuralforecast ``models.dilated_rnn.LSTMCell``: ``weight_ih``, ``weight_hh``, ``bias_ih``,
  ``bias_hh`` as ``nn.LSTMCell`` holds them, so it is read as an ``LSTMCell`` (which a
  checkpoint of it is inferred as, too).
- neuralforecast ``ResLSTMCell`` (residual LSTM): the input, forget and output gates read
  the input (``weight_ii``), the hidden state (``weight_ih``) and the cell state
  (``weight_ic``, a full peephole matrix), each with its bias; the cell gate reads the
  hidden state alone (``weight_hh``, ``bias_hh``): gate groups 3+1. ``weight_ir`` maps the
  input onto the residual path (held whether or not ``in == h``). Its sizes are buffers
  (on the meta device, which holds no values, they are read off ``weight_ii`` and ``weight_hh``).
- pytorch-forecasting ``sLSTMCell``: ``input_weights`` = ``Linear(in, 4h)``,
  ``hidden_weights`` = ``Linear(h, 4h)``, with ``use_layer_norm`` LayerNorms on the cell
  (h), the hidden output (h) and both gate products (4h each).
- pytorch-forecasting ``mLSTMCell``: six ``Linear(in, h)`` (query, key, value and the
  input, forget and output gates), with ``layer_norm`` a LayerNorm(h) after each; no
  recurrent matrix (the recurrence is the matrix memory).
"""

from __future__ import annotations

import torch
from torch import nn

from ..formulas import RNNSpec
from ..recurrence import Part, Recurrence, RecurrenceLayer, bias_vectors, gate_matrices, gate_matrix, norm
from .base import Anchor, Shapes, ThirdPartyClass, setting, shape_of

__all__ = ["ANCHORS", "CLASSES", "m_lstm_cell", "res_lstm_cell", "s_lstm_cell"]

_MLSTM_LINEARS = ("Wq", "Wk", "Wv", "Wi", "Wf", "Wo")
_MLSTM_NORMS = ("ln_q", "ln_k", "ln_v", "ln_i", "ln_f", "ln_o")


def _cell(
    kind: str, input_size: int, hidden: int, parts: list[Part], gates: str, buffers: tuple[str, ...] = ()
) -> Recurrence:
    return Recurrence(
        kind,
        input_size,
        hidden,
        (RecurrenceLayer(0, "forward", tuple(parts)),),
        is_cell=True,
        gate_groups=gates,
        buffers=buffers,
    )


def res_lstm_cell(input_size: int, hidden_size: int) -> Recurrence:
    """neuralforecast's ``ResLSTMCell(input_size, hidden_size)``, in registration order."""
    i, h = input_size, hidden_size
    parts = [
        gate_matrix("weight_ii", 3, h, i),
        gate_matrix("weight_ic", 3, h, h, role="peephole", source="c"),
        gate_matrix("weight_ih", 3, h, h, role="recurrent", source="h"),
        bias_vectors(["bias_ii", "bias_ic", "bias_ih"], 3 * h, symbol="3h"),
        gate_matrix("weight_hh", 1, h, h, role="recurrent", source="h"),
        bias_vectors(["bias_hh"], h),
        gate_matrix("weight_ir", 1, h, i, role="residual"),
    ]
    return _cell("ResLSTMCell", i, h, parts, "3+1", buffers=("input_size", "hidden_size"))


def s_lstm_cell(input_size: int, hidden_size: int, layer_norm: bool) -> Recurrence:
    """pytorch-forecasting's ``sLSTMCell(input_size, hidden_size, use_layer_norm=...)``."""
    i, h = input_size, hidden_size
    parts = [
        gate_matrix("input_weights.weight", 4, h, i),
        gate_matrix("hidden_weights.weight", 4, h, h, role="recurrent", source="h"),
        bias_vectors(["input_weights.bias", "hidden_weights.bias"], 4 * h, symbol="4h"),
    ]
    if layer_norm:
        parts += [
            norm("ln_cell", h, symbol="h"),
            norm("ln_hidden", h, symbol="h"),
            norm("ln_input", 4 * h, symbol="4h"),
            norm("ln_hidden_update", 4 * h, symbol="4h"),
        ]
    return _cell("sLSTMCell", i, h, parts, "4")


def m_lstm_cell(input_size: int, hidden_size: int, layer_norm: bool) -> Recurrence:
    """pytorch-forecasting's ``mLSTMCell(input_size, hidden_size, layer_norm=...)``."""
    i, h = input_size, hidden_size
    parts = [
        gate_matrices([f"{n}.weight" for n in _MLSTM_LINEARS], h, i),
        bias_vectors([f"{n}.bias" for n in _MLSTM_LINEARS], h),
    ]
    if layer_norm:
        parts += [norm(n, h, symbol="h") for n in _MLSTM_NORMS]
    return _cell("mLSTMCell", i, h, parts, "6 (q, k, v, i, f, o; no recurrent matrix)")


def _read_lstm_cell(module: nn.Module) -> RNNSpec:
    return RNNSpec("LSTMCell", setting(module, "input_size"), setting(module, "hidden_size"))


def _read_res_lstm_cell(module: nn.Module) -> Recurrence:
    sizes = (module.input_size, module.hidden_size)
    if any(isinstance(t, torch.Tensor) and t.is_meta for t in sizes):
        # Its sizes are buffers, which hold no value on the meta device: read them off the weights.
        ii, hh = module.weight_ii, module.weight_hh
        assert isinstance(ii, torch.Tensor)
        assert isinstance(hh, torch.Tensor)
        return res_lstm_cell(ii.shape[1], hh.shape[1])
    return res_lstm_cell(setting(module, "input_size"), setting(module, "hidden_size"))


def _read_s_lstm_cell(module: nn.Module) -> Recurrence:
    return s_lstm_cell(setting(module, "input_size"), setting(module, "hidden_size"), bool(module.use_layer_norm))


def _read_m_lstm_cell(module: nn.Module) -> Recurrence:
    return m_lstm_cell(setting(module, "input_size"), setting(module, "hidden_size"), bool(module.layer_norm))


def _infer_res_lstm_cell(shapes: Shapes) -> Recurrence | None:
    ii, hh = shape_of(shapes, "weight_ii", 2), shape_of(shapes, "weight_hh", 2)
    if ii is None or hh is None or "weight_ic" not in shapes:
        return None
    return res_lstm_cell(ii[1], hh[1])


def _infer_s_lstm_cell(shapes: Shapes) -> Recurrence | None:
    x, hh = shape_of(shapes, "input_weights.weight", 2), shape_of(shapes, "hidden_weights.weight", 2)
    if x is None or hh is None:
        return None
    return s_lstm_cell(x[1], hh[1], "ln_cell.weight" in shapes)


def _infer_m_lstm_cell(shapes: Shapes) -> Recurrence | None:
    q = shape_of(shapes, "Wq.weight", 2)
    if q is None or any(f"{n}.weight" not in shapes for n in _MLSTM_LINEARS):
        return None
    return m_lstm_cell(q[1], q[0], "ln_q.weight" in shapes)


_NF = "neuralforecast.models.dilated_rnn"
_SLSTM = "pytorch_forecasting.layers._recurrent._slstm.cell"
_MLSTM = "pytorch_forecasting.layers._recurrent._mlstm.cell"

CLASSES = (
    ThirdPartyClass("neuralforecast", _NF, "LSTMCell", _read_lstm_cell),
    ThirdPartyClass("neuralforecast", _NF, "ResLSTMCell", _read_res_lstm_cell),
    ThirdPartyClass("pytorch-forecasting", _SLSTM, "sLSTMCell", _read_s_lstm_cell),
    ThirdPartyClass("pytorch-forecasting", _MLSTM, "mLSTMCell", _read_m_lstm_cell),
)
ANCHORS = (
    Anchor("weight_ir", f"{_NF}.ResLSTMCell", _infer_res_lstm_cell),
    Anchor("hidden_weights.weight", f"{_SLSTM}.sLSTMCell", _infer_s_lstm_cell),
    Anchor("Wq.weight", f"{_MLSTM}.mLSTMCell", _infer_m_lstm_cell),
)
