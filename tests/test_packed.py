"""Dynamic-quantized recurrent modules: the logical tensors behind packed weights, against the float model."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from tests.helpers import lstm_count, numel
from torchlstm_params import check, summarize
from torchlstm_params.detect import detect
from torchlstm_params.packed import PackedStorage, packed_tensors


def quantized(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's own deprecation notice
        return torch.ao.quantization.quantize_dynamic(
            model, {nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell}, dtype=dtype
        )


FLOAT_MODULES = [
    lambda: nn.LSTM(4, 8, num_layers=2, bidirectional=True),
    lambda: nn.GRU(3, 5, bidirectional=True),
    lambda: nn.GRU(4, 6, num_layers=3),
    lambda: nn.LSTMCell(3, 5),
    lambda: nn.GRUCell(3, 4),
    lambda: nn.RNNCell(2, 3),
]


@pytest.mark.parametrize("make", FLOAT_MODULES)
@pytest.mark.parametrize(
    ("dtype", "weight_dtype", "weight_bytes"), [(torch.qint8, "qint8", 1), (torch.float16, "float16", 2)]
)
def test_logical_shapes_and_storage_are_the_float_models(make, dtype, weight_dtype, weight_bytes):
    float_module = make()
    packed = quantized(nn.Sequential(float_module), dtype)[0]  # type: ignore[index]
    assert numel(packed) == 0  # what a numel sum says
    detected = detect(packed)
    assert detected is not None and detected.packed
    shapes, storage = packed_tensors(packed, detected.spec.directions)
    assert shapes == {name: tuple(p.shape) for name, p in float_module.named_parameters()}
    weights = sum(p.numel() for n, p in float_module.named_parameters() if n.startswith("weight"))
    biases = sum(p.numel() for n, p in float_module.named_parameters() if n.startswith("bias"))
    expected = {weight_dtype: (weights, weights * weight_bytes)}
    if biases:
        expected["float32"] = (biases, 4 * biases)
    assert {dt: (n, b) for dt, n, b in storage.dtypes} == expected
    assert storage.elements == numel(float_module)
    assert storage.bytes == weights * weight_bytes + 4 * biases


def test_packed_storage_sums():
    storage = PackedStorage((("float32", 10, 40), ("qint8", 100, 100)))
    assert (storage.elements, storage.bytes) == (110, 140)


def test_dynamic_quantized_lstm_and_gru_report_packed_storage():
    float_model = nn.Sequential(nn.LSTM(4, 8, num_layers=2, bidirectional=True), nn.GRU(4, 6), nn.LSTMCell(3, 5))
    model = quantized(float_model, torch.qint8)
    assert numel(model) == 0  # what a numel sum says
    report = summarize(model)
    assert [e.spec.kind for e in report.recurrent] == ["LSTM", "GRU", "LSTMCell"]
    lstm_e, gru_e, cell_e = report.recurrent
    assert lstm_e.formula_params == numel(float_model[0]) == lstm_count(4, 8, 2, bidirectional=True)
    assert gru_e.formula_params == numel(float_model[1])
    assert cell_e.formula_params == numel(float_model[2])
    assert lstm_e.status == "packed" and lstm_e.matches and lstm_e.tensor_params == 0
    assert lstm_e.origin == "torch.ao.nn.quantized.dynamic"
    # packed storage: int8 weights (1 byte each) + float32 biases, from the float model's shapes
    weights = sum(p.numel() for n, p in float_model[0].named_parameters() if n.startswith("weight"))
    biases = sum(p.numel() for n, p in float_model[0].named_parameters() if n.startswith("bias"))
    assert lstm_e.packed is not None
    assert lstm_e.packed.dtypes == (("float32", biases, 4 * biases), ("qint8", weights, weights))
    assert "weights are packed by dynamic quantization" in lstm_e.explanations[0].message
    assert check(model).total_params == 0  # packed is not a problem
    assert report.logical_params == numel(float_model)


def test_dynamic_quantized_fp16_storage():
    model = quantized(nn.Sequential(nn.GRU(4, 6)), torch.float16)
    (entry,) = summarize(model).recurrent
    weights = 3 * 6 * (4 + 6)
    assert entry.packed is not None
    assert entry.packed.dtypes == (("float16", weights, 2 * weights), ("float32", 2 * 18, 4 * 2 * 18))
