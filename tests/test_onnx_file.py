"""Reading real ONNX files: torch.onnx.export of recurrent modules, and graphs built with onnx's own helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from torchlstm_params import summarize
from torchlstm_params.errors import ForeignFileError
from torchlstm_params.onnx_file import OnnxFile, read_onnx_file

onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install 'torchlstm_params[onnx]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402  (after the importorskip)

ROOT = Path(__file__).parent.parent
# torch 2.13's TorchScript exporter (dynamo=False) is the one that writes LSTM/GRU/RNN nodes for every
# module here. It warns that it is the legacy exporter, warns from its own internals (a deprecated
# helper, the tracer reading RNNBase's settings, a note on batch sizes at run time): all torch's own.
LEGACY = pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning",
    "ignore:The feature will be removed. Please remove usage of this function:DeprecationWarning:torch.onnx",
    "ignore:Converting a tensor to a Python boolean might cause the trace to be incorrect:torch.jit.TracerWarning",
    "ignore:Exporting a model to ONNX with a batch_size other than 1:UserWarning",
)
# The torch.export-based exporter warns about RNNBase's internal _flat_weights, and a torch-internal
# pytree deprecation; both come from inside torch.
DYNAMO = pytest.mark.filterwarnings(
    "ignore:The tensor attributes self._flat_weights:UserWarning",
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning",
)


def _export(module: nn.Module, path: Path, *, dynamo: bool = False) -> Path:
    module.eval()
    first = next(m for m in module.modules() if isinstance(m, nn.RNNBase))
    x = torch.randn(5, 2, first.input_size)
    torch.onnx.export(module, (x,), str(path), dynamo=dynamo)
    return path


def _stored_elements(path: Path) -> int:
    """Every initializer and Constant-node tensor, counted with onnx's own numpy conversion."""
    model = onnx.load(str(path))
    total = sum(numpy_helper.to_array(t).size for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = helper.get_attribute_value(node.attribute[0])
            total += numpy_helper.to_array(value).size if isinstance(value, TensorProto) else 1
    return int(total)


MODULES = [
    ("lstm_bidirectional_two_layers", lambda: nn.LSTM(10, 20, num_layers=2, bidirectional=True)),
    ("gru_bidirectional_two_layers", lambda: nn.GRU(10, 20, num_layers=2, bidirectional=True)),
    ("rnn_three_layers_no_bias", lambda: nn.RNN(10, 20, num_layers=3, bias=False)),
    ("rnn_relu", lambda: nn.RNN(6, 4, nonlinearity="relu")),
    ("lstm_no_bias", lambda: nn.LSTM(3, 2, bias=False)),
    ("gru_no_bias_bidirectional", lambda: nn.GRU(3, 2, bias=False, bidirectional=True)),
    ("lstm_batch_first", lambda: nn.LSTM(3, 2, batch_first=True)),
]


def _same_as_summarize(report: OnnxFile, module: nn.RNNBase) -> None:
    summary = summarize(module)
    (entry,) = summary.recurrent
    spec = entry.spec
    assert len(report.nodes) == spec.num_layers  # torch writes one node per layer
    for k, node in enumerate(report.nodes):
        assert node.kind == spec.kind
        assert node.hidden_size == spec.hidden_size
        assert node.input_size == spec.layer_input_size(k)
        assert node.direction == ("bidirectional" if spec.bidirectional else "forward")
        assert node.has_bias == spec.bias and not node.has_peepholes
        assert node.params == node.formula_params == node.torch_params
    assert sum(n.params or 0 for n in report.nodes) == summary.total_params == report.recurrent_params
    assert report.problems == ()


@LEGACY
@pytest.mark.parametrize(("name", "make"), MODULES, ids=[m[0] for m in MODULES])
def test_torch_export_round_trip(tmp_path, name, make):
    module = make()
    path = _export(module, tmp_path / f"{name}.onnx")
    report = read_onnx_file(path)
    _same_as_summarize(report, module)
    assert report.total_elements == _stored_elements(path)
    assert report.producer.startswith("pytorch")
    first = report.nodes[0]
    expected = f"nn.{type(module).__name__}({module.input_size}, {module.hidden_size}"
    assert first.torch_expression is not None and first.torch_expression.startswith(expected)


@LEGACY
def test_the_published_figures_through_onnx(tmp_path):
    for module, expected in [
        (nn.LSTM(10, 20), 2_560),
        (nn.GRU(10, 20, num_layers=2, bidirectional=True), 11_280),
        (nn.RNN(10, 20, num_layers=3, bias=False), 2_200),
        (nn.LSTM(3, 2), 56),
    ]:
        report = read_onnx_file(_export(module, tmp_path / "m.onnx"))
        assert report.recurrent_params == expected


@LEGACY
def test_other_initializers_are_counted_so_the_total_is_the_files(tmp_path):
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(8, 16, bidirectional=True)
            self.head = nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0])

    model = Tagger()
    path = _export(model, tmp_path / "tagger.onnx")
    report = read_onnx_file(path)
    assert report.recurrent_params == sum(p.numel() for p in model.rnn.parameters())
    assert report.other_params == sum(p.numel() for p in model.head.parameters())
    assert report.total_elements == _stored_elements(path)
    assert report.recurrent_params + report.state_elements + report.other_params + report.constant_elements == (
        report.total_elements
    )


@DYNAMO
@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), lambda: nn.GRU(3, 2)])
def test_the_dynamo_exporter_writes_the_same_nodes(tmp_path, make):
    module = make()
    path = _export(module, tmp_path / "d.onnx", dynamo=True)
    report = read_onnx_file(path)
    _same_as_summarize(report, module)
    assert report.state_elements > 0  # it stores the zero initial states as initializers
    assert report.total_elements == _stored_elements(path)


@DYNAMO
@pytest.mark.slow
def test_the_dynamo_exporter_writes_no_rnn_node(tmp_path):
    # torch 2.13's torch.export-based exporter decomposes nn.RNN into MatMul/Add nodes.
    path = _export(nn.RNN(3, 2, num_layers=2), tmp_path / "rnn.onnx", dynamo=True)
    report = read_onnx_file(path)
    assert report.nodes == ()
    assert "no LSTM, GRU or RNN node" in report.notes[0]
    assert report.total_elements == _stored_elements(path)


@LEGACY
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
def test_proj_size_does_not_export_with_the_torchscript_exporter(tmp_path):
    with pytest.raises(Exception, match="LSTMs with projections") as caught:
        _export(nn.LSTM(3, 4, proj_size=2), tmp_path / "proj.onnx")
    assert "Unsupported: ONNX export of operator LSTM" in str(caught.value)


@DYNAMO
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
def test_proj_size_exports_a_broken_file_with_the_dynamo_exporter(tmp_path):
    # torch 2.13 writes an LSTM node with hidden_size=proj_size, drops weight_hr and the extra gate
    # rows, and keeps initial_c at the real hidden size: ONNX's own checker rejects the result.
    path = _export(nn.LSTM(3, 4, proj_size=2), tmp_path / "proj.onnx", dynamo=True)
    with pytest.raises(onnx.shape_inference.InferenceError):
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    report = read_onnx_file(path)
    (node,) = report.nodes
    assert node.hidden_size == 2
    assert node.params == 56 != summarize(nn.LSTM(3, 4, proj_size=2)).total_params == 120
    (problem,) = report.problems
    assert problem.startswith(f"LSTM node {node.name!r} initial_c ")
    assert problem.endswith("expected [1, ?, 2] from its attributes, found [1, 2, 4]")


def _save(tmp_path: Path, nodes, initializers, inputs, outputs, name: str = "made.onnx") -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="test")
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / name
    onnx.save_model(model, str(path))
    return path


def _tensor(name: str, shape: tuple[int, ...]):
    numpy = pytest.importorskip("numpy", reason="numpy is not installed")
    return numpy_helper.from_array(numpy.random.default_rng(0).normal(size=shape).astype("float32"), name)


def test_peepholes_count_and_have_no_torch_equivalent(tmp_path):
    numpy = pytest.importorskip("numpy", reason="numpy is not installed")
    h, i = 2, 3
    weights = [
        _tensor("W", (2, 4 * h, i)),
        _tensor("R", (2, 4 * h, h)),
        _tensor("B", (2, 8 * h)),
        _tensor("P", (2, 3 * h)),
    ]
    node = helper.make_node(
        "LSTM", ["X", "W", "R", "B", "", "", "", "P"], ["Y"], hidden_size=h, direction="bidirectional", name="peep"
    )
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, i])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [5, 2, 1, h])
    path = _save(tmp_path, [node], weights, [x], [y])
    out = onnx.reference.ReferenceEvaluator(onnx.load(str(path))).run(None, {"X": numpy.zeros((5, 1, i), "float32")})
    assert out[0].shape == (5, 2, 1, h)  # a valid model, run by onnx's reference evaluator
    (read,) = read_onnx_file(path).nodes
    assert read.has_peepholes and read.params == sum(numpy_helper.to_array(w).size for w in weights) == 2 * (
        4 * h * (i + h) + 8 * h + 3 * h
    )
    assert read.params == read.formula_params
    assert read.torch_expression is None and "peepholes" in read.torch_note


def test_settings_torch_cannot_express(tmp_path):
    h, i = 2, 3
    nodes = [
        helper.make_node("GRU", ["X", "W", "R"], ["Y1"], hidden_size=h, name="reset_first"),
        helper.make_node("RNN", ["X", "Wr", "Rr"], ["Y2"], hidden_size=h, direction="reverse", name="backwards"),
        helper.make_node("RNN", ["X", "Wr", "Rr"], ["Y3"], hidden_size=h, activations=["Sigmoid"], name="sigmoid"),
    ]
    weights = [
        _tensor("W", (1, 3 * h, i)),
        _tensor("R", (1, 3 * h, h)),
        _tensor("Wr", (1, h, i)),
        _tensor("Rr", (1, h, h)),
    ]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, i])
    ys = [helper.make_tensor_value_info(f"Y{k}", TensorProto.FLOAT, [5, 1, 1, h]) for k in (1, 2, 3)]
    report = read_onnx_file(_save(tmp_path, nodes, weights, [x], ys))
    gru, backwards, sigmoid = report.nodes
    assert gru.torch_expression is None and "linear_before_reset=0" in gru.torch_note
    assert backwards.torch_expression == "nn.RNN(3, 2, bias=False)" and "input reversed in time" in backwards.torch_note
    assert sigmoid.torch_expression is None and "Tanh or Relu only" in sigmoid.torch_note
    assert report.recurrent_params == 3 * h * (i + h) + h * (i + h)  # Wr and Rr are shared: counted once


def test_a_node_inside_a_subgraph(tmp_path):
    h, i = 2, 3
    inner = helper.make_graph(
        [helper.make_node("LSTM", ["X", "W", "R"], ["", "Yh"], hidden_size=h, name="inner_lstm")],
        "then",
        [],
        [helper.make_tensor_value_info("Yh", TensorProto.FLOAT, [1, 1, h])],
        initializer=[_tensor("W", (1, 4 * h, i)), _tensor("R", (1, 4 * h, h))],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["Z"], ["Zo"])],
        "else",
        [],
        [helper.make_tensor_value_info("Zo", TensorProto.FLOAT, [1, 1, h])],
        initializer=[_tensor("Z", (1, 1, h))],
    )
    node = helper.make_node("If", ["cond"], ["out"], then_branch=inner, else_branch=other, name="branch")
    inputs = [
        helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 1, i]),
    ]
    path = _save(tmp_path, [node], [], inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, h])])
    report = read_onnx_file(path)
    (lstm,) = report.nodes
    assert lstm.graph == "If 'branch' then_branch"
    assert lstm.params == 4 * h * (i + h) and not lstm.has_bias
    assert lstm.torch_expression == "nn.LSTM(3, 2, bias=False)"
    assert report.other_params == h and report.total_elements == 4 * h * (i + h) + h


@LEGACY
def test_a_shape_that_does_not_fit_its_attributes(tmp_path):
    path = _export(nn.LSTM(3, 2), tmp_path / "lstm.onnx")
    model = onnx.load(str(path))
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    next(a for a in lstm.attribute if a.name == "hidden_size").i = 3
    onnx.save_model(model, str(path))
    report = read_onnx_file(path)
    (node,) = report.nodes
    assert report.problems[0] == (
        f"LSTM node {node.name!r} W {lstm.input[1]!r}: expected [1, 12, 3] from its attributes, found [1, 8, 3]"
    )
    assert report.problems[-1] == f"LSTM node {node.name!r}: its stored weights hold 56 elements, the formula says 96"


@LEGACY
def test_external_data_is_never_opened(tmp_path):
    module = nn.GRU(10, 20, num_layers=2, bidirectional=True)
    exported = _export(module, tmp_path / "inline.onnx")
    target = tmp_path / "external.onnx"
    onnx.save_model(
        onnx.load(str(exported)),
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    (tmp_path / "weights.bin").unlink()  # gone: reading the data would fail
    report = read_onnx_file(target)
    _same_as_summarize(report, module)
    assert report.external == len(onnx.load(str(exported)).graph.initializer)
    assert "keep their data in external files, which were not opened" in report.notes[-1]
    assert report.nodes[0].tensors[0].source == "initializer (external data)"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("dir", "is a directory"), (b"\x08\x07garbage", "is not a readable ONNX model")],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ForeignFileError) as caught:
        read_onnx_file(path)
    assert message in str(caught.value)


def test_without_onnx_the_error_says_what_to_install(tmp_path):
    script = (
        "import sys; sys.modules['onnx'] = None\n"
        "from torchlstm_params.onnx_file import read_onnx_file\n"
        "from torchlstm_params.errors import ForeignFileError\n"
        "try:\n"
        "    read_onnx_file('x.onnx')\n"
        "except ForeignFileError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == (
        "reading ONNX files needs onnx: the onnx package is not installed (pip install 'torchlstm_params[onnx]')"
    )


@LEGACY
def test_to_dict_is_json_ready(tmp_path):
    report = read_onnx_file(_export(nn.GRU(3, 2, bidirectional=True), tmp_path / "g.onnx"))
    data = json.loads(json.dumps(report.to_dict()))
    (node,) = data["nodes"]
    assert (node["op_type"], node["direction"], node["linear_before_reset"], node["params"]) == (
        "GRU",
        "bidirectional",
        1,
        84,
    )
    assert [t["role"] for t in node["tensors"]][:3] == ["W", "R", "B"]
    assert data["recurrent_params"] == 84 and data["problems"] == []
