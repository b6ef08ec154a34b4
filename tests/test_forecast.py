"""neuralforecast's dilated-RNN cells and pytorch-forecasting's xLSTM cells, built by the real
packages through their documented models (DilatedRNN, xLSTMTime)."""

from __future__ import annotations

import pytest
import torch

from tests import helpers
from torchlstm_params.recurrence import recurrence_formula
from torchlstm_params.thirdparty.forecast import m_lstm_cell, res_lstm_cell, s_lstm_cell


def _dilated_rnn():
    module = pytest.importorskip(
        "neuralforecast.models.dilated_rnn",
        reason="neuralforecast is not installed (pip install --no-deps neuralforecast and .ci/thirdparty.txt)",
    )
    return module


# xLSTMTime stores its loss and metric modules as hyperparameters, and lightning says so on construction
# (advice to xLSTMTime's authors, nothing about the model's tensors).
_LOSS_HPARAM = pytest.mark.filterwarnings(
    r"ignore:Attribute '(loss|logging_metrics)' is an instance of `nn.Module`:UserWarning"
)


def _xlstm():
    return pytest.importorskip(
        "pytorch_forecasting.models.xlstm",
        reason="pytorch-forecasting is not installed (pip install --no-deps pytorch-forecasting; see .ci/run)",
    )


def _cells(kind: str) -> dict[str, str]:
    # DilatedRNN's default dilations [[1, 2], [4, 8]]: two stacks of two layers, each with one cell.
    return {f"rnn_stack.{s}.cells.{c}.cell": kind for s in range(2) for c in range(2)}


def test_dilated_rnn_with_res_lstm_cells():
    model = _dilated_rnn().DilatedRNN(h=12, input_size=24, cell_type="ResLSTM", max_steps=1)
    report = helpers.assert_recognised(model, _cells("ResLSTMCell"))
    # By hand, from the sizes DilatedRNN gave the first cell.
    first = report.recurrent[0]
    i, h = first.spec.input_size, first.spec.hidden_size
    assert first.formula_params == 3 * h * i + 3 * h * h + 3 * h * h + 3 * 3 * h + h * h + h + h * i
    assert first.spec.gate_groups == "3+1"


def test_dilated_rnn_attentive_lstm_cells_are_lstm_cells():
    model = _dilated_rnn().DilatedRNN(h=12, input_size=24, cell_type="AttentiveLSTM", max_steps=1)
    report = helpers.assert_recognised(model, _cells("LSTMCell"))
    assert report.recurrent[0].origin == "neuralforecast.models.dilated_rnn.LSTMCell"


def test_res_lstm_cell_on_the_meta_device_reads_its_sizes_off_its_weights():
    with torch.device("meta"):
        cell = _dilated_rnn().ResLSTMCell(6, 4)
    helpers.assert_recognised(cell, {"": "ResLSTMCell"})


@pytest.mark.parametrize(("cell_type", "tensor"), [("ResLSTM", "weight_ic"), ("AttentiveLSTM", "weight_hh")])
def test_a_tampered_tensor_is_named(cell_type, tensor):
    model = _dilated_rnn().DilatedRNN(h=12, input_size=24, cell_type=cell_type, max_steps=1)
    helpers.assert_tamper_named(model, "rnn_stack.1.cells.0.cell", tensor)


@pytest.mark.parametrize("cell_type", ["ResLSTM", "AttentiveLSTM"])
def test_the_checkpoint_agrees_with_the_live_model(cell_type, tmp_path):
    model = _dilated_rnn().DilatedRNN(h=12, input_size=24, cell_type=cell_type, max_steps=1)
    live, saved = helpers.checkpoint_rows(model, tmp_path / "drnn.pt")
    assert len(live) == 4
    assert live == saved


@_LOSS_HPARAM
@pytest.mark.parametrize(("xlstm_type", "kind"), [("slstm", "sLSTMCell"), ("mlstm", "mLSTMCell")])
def test_xlstm_time_cells(xlstm_type, kind):
    model = _xlstm().xLSTMTime(input_size=3, hidden_size=16, output_size=12, xlstm_type=xlstm_type)
    report = helpers.assert_recognised(model, {f"lstm.{xlstm_type}_layer.cells.0": kind})
    entry = report.recurrent[0]
    i, h = entry.spec.input_size, entry.spec.hidden_size
    if kind == "sLSTMCell":  # two Linear(., 4h) with bias, LayerNorms h, h, 4h, 4h
        assert entry.formula_params == 4 * h * i + 4 * h + 4 * h * h + 4 * h + 2 * (2 * h) + 2 * (2 * 4 * h)
    else:  # six Linear(in, h) with bias, six LayerNorm(h)
        assert entry.formula_params == 6 * (h * i + h) + 6 * 2 * h


@_LOSS_HPARAM
@pytest.mark.parametrize(("xlstm_type", "tensor"), [("slstm", "ln_input.weight"), ("mlstm", "Wf.weight")])
def test_xlstm_tampered_tensor_is_named(xlstm_type, tensor):
    model = _xlstm().xLSTMTime(input_size=3, hidden_size=16, output_size=12, xlstm_type=xlstm_type)
    helpers.assert_tamper_named(model, f"lstm.{xlstm_type}_layer.cells.0", tensor)


@_LOSS_HPARAM
@pytest.mark.parametrize("xlstm_type", ["slstm", "mlstm"])
def test_xlstm_checkpoint_agrees_with_the_live_model(xlstm_type, tmp_path):
    model = _xlstm().xLSTMTime(input_size=3, hidden_size=16, output_size=12, xlstm_type=xlstm_type, num_layers=2)
    live, saved = helpers.checkpoint_rows(model, tmp_path / "xlstm.pt")
    assert len(live) == 2
    assert live == saved


def test_the_descriptions_are_the_classes_tensors():
    pairs = []
    pairs.append((_dilated_rnn().ResLSTMCell(7, 5), res_lstm_cell(7, 5)))
    xlstm = pytest.importorskip("pytorch_forecasting.layers._recurrent._slstm.cell", reason="pytorch-forecasting")
    mlstm = pytest.importorskip("pytorch_forecasting.layers._recurrent._mlstm.cell", reason="pytorch-forecasting")
    for norm in (True, False):
        pairs.append((xlstm.sLSTMCell(7, 5, use_layer_norm=norm), s_lstm_cell(7, 5, norm)))
        pairs.append((mlstm.mLSTMCell(7, 5, layer_norm=norm), m_lstm_cell(7, 5, norm)))
    for module, description in pairs:
        f = recurrence_formula(description)
        assert dict(zip(f.names, f.shapes, strict=True)) == {n: tuple(p.shape) for n, p in module.named_parameters()}
