"""Tables and CSV of Keras and ONNX file reports, from real files."""

from __future__ import annotations

import csv
import io

import pytest
from torch import nn

from tests.helpers import KERAS_NUMPY2_WARNING, keras_model, save_both
from torchlstm_params.file_render import keras_file_csv, onnx_file_csv, render_keras_file, render_onnx_file
from torchlstm_params.keras_file import read_keras_file
from torchlstm_params.onnx_file import read_onnx_file

pytestmark = pytest.mark.filterwarnings(KERAS_NUMPY2_WARNING)


@pytest.fixture
def keras_report(tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed: pip install 'torchlstm_params[keras]'")

    def build(L, x):
        x = L.LSTM(2, return_sequences=True, name="low")(x)
        x = L.LSTM(2, name="high")(x)
        x = L.Dense(1, name="head")(x)
        return x

    model = keras_model(build)
    keras_path, _ = save_both(model, tmp_path, "stack")
    return read_keras_file(keras_path)


@pytest.mark.parametrize(("tablefmt", "header"), [("simple", "Layer    "), ("github", "| Layer"), ("pipe", "| Layer")])
def test_keras_table_in_each_format(keras_report, tablefmt, header):
    text = render_keras_file(keras_report, tablefmt)
    lines = text.splitlines()
    assert lines[0].startswith(f"Keras file {keras_report.path} (Keras 3 .keras, Keras 3.")
    assert ": Functional 'functional" in lines[0]
    assert any(line.startswith(header) for line in lines)
    assert "nn.LSTM(3, 2, batch_first=True)" in text and "nn.LSTM(2, 2, batch_first=True)" in text
    assert "  low: [4·2·(3+2) + 4·2] = 48" in lines
    assert "  high: [4·2·(2+2) + 4·2] = 40" in lines
    assert "Stack 'low' + 'high' is one nn.LSTM(3, 2, num_layers=2, batch_first=True): Keras 88, PyTorch 104" in lines
    assert "Recurrent params: Keras 88, PyTorch 104 (+16: PyTorch keeps two bias vectors, bias_ih and bias_hh)" in lines
    assert "Weights stored in the file: 91 (recurrent 88, other layers 3)" in lines


def test_keras_csv_rows(keras_report):
    rows = list(csv.DictReader(io.StringIO(keras_file_csv(keras_report))))
    assert [(r["layer"], r["keras_params"], r["torch_params"], r["shape_check"]) for r in rows] == [
        ("low", "48", "56", "ok"),
        ("high", "40", "48", "ok"),
    ]
    assert rows[0]["torch_expression"] == "nn.LSTM(3, 2, batch_first=True)"


def test_keras_text_shows_what_has_no_equivalent(tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed: pip install 'torchlstm_params[keras]'")
    model = keras_model(lambda L, x: L.GRU(2, reset_after=False, name="old")(x))
    report = read_keras_file(save_both(model, tmp_path, "old")[0])
    text = render_keras_file(report)
    assert "none (see notes)" in text
    assert "Note: layer 'old': no PyTorch equivalent: reset_after=False applies the reset gate" in text
    assert "Recurrent params: Keras 36, PyTorch n/a (a layer has no equivalent)" in text
    (row,) = csv.DictReader(io.StringIO(keras_file_csv(report)))
    assert (row["torch_expression"], row["torch_params"]) == ("", "")


def test_keras_text_without_weights(keras_report):
    report = read_keras_file(keras_report.path, read_weights=False)
    text = render_keras_file(report)
    assert "skipped (not asked to read weights)" in text
    assert "Weights stored in the file" not in text
    assert "Note: weight shapes not read: not asked to read weights; the counts come from the config alone" in text


@pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning",
    "ignore:The feature will be removed. Please remove usage of this function:DeprecationWarning:torch.onnx",
    "ignore:Converting a tensor to a Python boolean might cause the trace to be incorrect:torch.jit.TracerWarning",
    "ignore:Exporting a model to ONNX with a batch_size other than 1:UserWarning",
)
def test_onnx_table_and_csv(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'torchlstm_params[onnx]'")
    import torch

    module = nn.GRU(3, 2, num_layers=2, bidirectional=True).eval()
    path = tmp_path / "gru.onnx"
    torch.onnx.export(module, (torch.randn(5, 1, 3),), str(path), dynamo=False)
    report = read_onnx_file(path)
    text = render_onnx_file(report, "github")
    assert "| Node" in text
    assert "nn.GRU(3, 2, bidirectional=True)" in text and "nn.GRU(4, 2, bidirectional=True)" in text
    assert "layout=0 linear_before_reset=1" in text
    assert f"Stored tensors: recurrent weights {report.recurrent_params:,} + initial states 0" in text
    rows = list(csv.DictReader(io.StringIO(onnx_file_csv(report))))
    assert [(r["input_size"], r["params"], r["torch_params"]) for r in rows] == [("3", "84", "84"), ("4", "96", "96")]
    assert sum(int(r["params"]) for r in rows) == sum(p.numel() for p in module.parameters())
