"""Quantized modules: the logical tensors behind packed weights (recurrent, Linear, Conv, Embedding), against the
float models they came from."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from tests.helpers import lstm_count, numel
from torchlstm_params import check, summarize
from torchlstm_params.detect import detect
from torchlstm_params.packed import PACKED_CLASSES, PackedStorage, packed_module, packed_tensors


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


def quantize_dynamic(model: nn.Module, classes: set[type[nn.Module]], dtype: torch.dtype = torch.qint8) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's own deprecation notices
        return torch.ao.quantization.quantize_dynamic(model, classes, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.qint8, torch.float16], ids=["qint8", "fp16"])
def test_dynamic_quantized_linear_and_recurrent_modules_keep_their_logical_total(dtype):
    float_model = nn.Sequential(
        nn.Linear(6, 8),
        nn.LSTM(8, 8, num_layers=2, bidirectional=True),
        nn.GRU(16, 5),
        nn.LSTMCell(5, 4),
        nn.GRUCell(4, 3),
        nn.RNNCell(3, 2),
        nn.LayerNorm(2),  # stays float: counted by parameters()
        nn.Linear(2, 7, bias=False),
    )
    classes = {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell}
    model = quantize_dynamic(float_model, classes, dtype)
    report = summarize(model)
    assert report.total_params == numel(model) == 4  # the LayerNorm alone
    assert report.logical_params == numel(float_model)
    assert [(m.name, m.params) for m in report.packed_modules] == [
        ("0", numel(float_model[0])),
        ("7", numel(float_model[7])),
    ]
    text = str(report)
    assert "Total params: 4 (what parameters() yields; quantization packs weights out)" in text
    logical = numel(float_model)
    (line,) = [line for line in text.splitlines() if line.startswith("Logical params:")]
    assert line.startswith(f"Logical params: {logical:,} (") and line.endswith(
        f"; {logical - 4:,} held packed by 7 modules)"
    )
    assert report.to_dict()["logical_params"] == numel(float_model)


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions.*deprecated:UserWarning")
def test_statically_quantized_linear_conv_and_embedding_count_their_packed_weights():
    import torch.ao.nn.quantized as nnq

    floats: list[nn.Module] = [
        nn.Linear(8, 4),
        nn.Conv2d(3, 4, 3),
        nn.Conv1d(2, 6, 5, bias=False),
        nn.ConvTranspose2d(4, 2, 2),
    ]
    quantized: list[nn.Module] = [
        nnq.Linear(8, 4),
        nnq.Conv2d(3, 4, 3),
        nnq.Conv1d(2, 6, 5, bias=False),
        nnq.ConvTranspose2d(4, 2, 2),
    ]
    quantized.append(nnq.Embedding(10, 4))
    floats.append(nn.Embedding(10, 4))
    model = nn.Sequential(*quantized)
    assert all(isinstance(m, PACKED_CLASSES) for m in quantized)
    for q, f in zip(quantized, floats, strict=True):
        params, storage = packed_module(q)
        assert params == numel(f)
        assert storage.elements == numel(f)
    qlinear_storage = packed_module(quantized[0])[1]
    assert qlinear_storage.dtypes == (("float32", 4, 16), ("qint8", 32, 32))  # bias float, weight 1 byte
    report = summarize(model)
    assert report.total_params == 0
    assert report.logical_params == sum(numel(f) for f in floats)


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:torchaudio",
    "ignore::UserWarning:torchaudio",
    "ignore:.*quantized tensor creation functions.*deprecated:UserWarning",
)
def test_wavernn_dynamic_quantized_logical_total_is_the_float_models():
    models = pytest.importorskip("torchaudio.models", reason="torchaudio's WaveRNN (pip install --no-deps torchaudio)")
    float_model = models.WaveRNN(upsample_scales=[5, 5, 11], n_classes=256, hop_length=275)
    model = quantize_dynamic(float_model, {nn.LSTM, nn.GRU, nn.Linear})
    report = summarize(model)
    assert report.total_params == numel(model)  # the convolutions and norms, still float
    assert report.logical_params == numel(float_model)  # 4,404,909: GRUs and Linears packed, all counted
    assert {m.type for m in report.packed_modules} == {"Linear"}
    assert [e.status for e in report.recurrent] == ["packed", "packed"]
